// The detail page's live metrics: CPU, memory, network and disk over the last minutes (WatchWukongMetrics). A VM
// that is not measured says why in words (not running, collecting, unavailable) and its charts show a gap, never a
// zero. The latest values are also given as text, the charts' summary for people who cannot see them.
import { MetricsState, type WukongMetrics } from "@gen/novasphere/v1/metrics_service_pb";
import type { Wukong } from "@gen/novasphere/v1/wukong_pb";
import { Alert, Card, Descriptions, Spin, Tag } from "antd";
import { lazy, Suspense } from "react";
import { useTranslation } from "react-i18next";
import { formatNumber, formatTime } from "../../i18n/format";
import { type Connection, stateWords, useMetricsStream } from "./metricsStream";
import { formatGiB, formatPercent, formatRate } from "./units";

const MetricsCharts = lazy(() => import("./MetricsCharts").then((m) => ({ default: m.MetricsCharts })));

export function MetricsCard({ wukong }: { wukong: Wukong }) {
  const { t } = useTranslation();
  const { latest, points, connection } = useMetricsStream(wukong.namespace, wukong.name);
  const samples = points.filter((point) => point.cpuPercent !== null).length;
  const stateName = latest ? MetricsState[latest.state] : "";
  return (
    <Card title={t("metrics.title")} size="small" data-testid="metrics" style={{ minWidth: 0 }} extra={<ConnectionTag connection={connection} />}>
      {latest && latest.state !== MetricsState.AVAILABLE && (
        <Alert
          type={latest.state === MetricsState.UNAVAILABLE ? "warning" : "info"}
          showIcon
          title={stateWords(t, latest.state, latest.message, false)}
          data-testid="metrics-state"
          data-state={stateName}
          style={{ marginBottom: 12 }}
        />
      )}
      <Suspense fallback={<Spin aria-label={t("metrics.loadingCharts")} />}>
        <MetricsCharts points={points} latest={latest} />
      </Suspense>
      <Summary latest={latest} samples={samples} />
    </Card>
  );
}

function ConnectionTag({ connection }: { connection: Connection }) {
  const { t } = useTranslation();
  const color = { connecting: "default", live: "green", reconnecting: "orange", gone: "red" }[connection];
  return (
    <Tag color={color} data-testid="metrics-connection">
      {t(`metrics.connection.${connection}`)}
    </Tag>
  );
}

/** The latest values in words: what the charts show, for screen readers and for copying. */
function Summary({ latest, samples }: { latest: WukongMetrics | null; samples: number }) {
  const { t } = useTranslation();
  const measured = latest?.state === MetricsState.AVAILABLE;
  const none = (part: { state: MetricsState; message?: string } | null | undefined) =>
    part ? stateWords(t, part.state, part.message) : "—";
  const network = latest?.network?.state === MetricsState.AVAILABLE ? latest.network : undefined;
  const disk = latest?.disk?.state === MetricsState.AVAILABLE ? latest.disk : undefined;
  return (
    <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }} style={{ marginTop: 16 }} data-testid="metrics-summary">
      <Descriptions.Item label={t("metrics.charts.cpu")}>
        {measured && latest.cpu
          ? t("metrics.summary.cpu", {
              percent: formatPercent(latest.cpu.percent),
              cores: formatNumber(latest.cpu.cores, { maximumFractionDigits: 2 }),
              count: latest.cpu.vcpus,
            })
          : none(latest)}
      </Descriptions.Item>
      <Descriptions.Item label={t("metrics.charts.memory")}>
        {measured && latest.memory
          ? t("metrics.summary.memory", {
              used: formatGiB(Number(latest.memory.usedBytes)),
              guest: formatGiB(Number(latest.memory.guestBytes)),
              percent: formatPercent(latest.memory.percent),
            })
          : none(latest)}
      </Descriptions.Item>
      <Descriptions.Item label={t("metrics.charts.network")}>
        {network
          ? t("metrics.summary.network", {
              received: formatRate(network.receiveBytesPerSecond ?? 0),
              sent: formatRate(network.transmitBytesPerSecond ?? 0),
            })
          : none(latest?.network)}
      </Descriptions.Item>
      <Descriptions.Item label={t("metrics.charts.disk")}>
        {disk
          ? t("metrics.summary.disk", {
              read: formatRate(disk.readBytesPerSecond ?? 0),
              written: formatRate(disk.writeBytesPerSecond ?? 0),
              readIops: formatNumber(disk.readIops ?? 0, { maximumFractionDigits: 1 }),
              writeIops: formatNumber(disk.writeIops ?? 0, { maximumFractionDigits: 1 }),
            })
          : none(latest?.disk)}
      </Descriptions.Item>
      <Descriptions.Item label={t("metrics.lastSample")}>
        {measured && latest.sampleTime ? formatTime(latest.sampleTime) : "—"}
      </Descriptions.Item>
      <Descriptions.Item label={t("metrics.samplesShown")}>
        <span data-testid="metrics-samples">{formatNumber(samples)}</span>
      </Descriptions.Item>
    </Descriptions>
  );
}
