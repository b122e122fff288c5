// The detail page's four live charts (CPU, memory, network, disk over the last minutes), loaded only when the page
// shows them (React.lazy in MetricsCard): ECharts comes with this chunk. A null value is a gap in the line.
import { MetricsState, type WukongMetrics } from "@gen/novasphere/v1/metrics_service_pb";
import { Col, Row, Typography } from "antd";
import { LineChart } from "echarts/charts";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { EChart, echarts, type ChartOption } from "./EChart";
import { stateWords, WINDOW_MINUTES, type MetricsPoint } from "./metricsStream";
import { formatPercent, formatRate } from "./units";

echarts.use([LineChart]);

const HEIGHT = 200;
const CLOCK_TICK_MS = 5_000;
type Field = Exclude<keyof MetricsPoint, "time">;
type Chart = {
  id: "cpu" | "memory" | "network" | "disk";
  lines: { field: Field; name: string }[];
  format: (value: number) => string;
  source?: { state: MetricsState; message: string };
};

export function MetricsCharts({ points, latest }: { points: MetricsPoint[]; latest: WukongMetrics | null }) {
  const { t } = useTranslation();
  const charts: Chart[] = [
    { id: "cpu", lines: [{ field: "cpuPercent", name: t("metrics.series.cpu") }], format: formatPercent },
    { id: "memory", lines: [{ field: "memoryPercent", name: t("metrics.series.memory") }], format: formatPercent },
    {
      id: "network",
      lines: [
        { field: "receivedBytes", name: t("metrics.series.received") },
        { field: "sentBytes", name: t("metrics.series.sent") },
      ],
      format: formatRate,
      source: latest?.network,
    },
    {
      id: "disk",
      lines: [
        { field: "readBytes", name: t("metrics.series.read") },
        { field: "writtenBytes", name: t("metrics.series.written") },
      ],
      format: formatRate,
      source: latest?.disk,
    },
  ];
  const now = useNow();
  const end = Math.max(now, points.at(-1)?.time ?? 0);
  return (
    <Row gutter={[16, 16]}>
      {charts.map((chart) => (
        <Col key={chart.id} xs={24} lg={12}>
          <Typography.Text strong>{t(`metrics.charts.${chart.id}`)}</Typography.Text>
          {/* network and disk have a source of their own: say when it, alone, has nothing */}
          {chart.source && chart.source.state !== MetricsState.AVAILABLE && chart.source.state !== latest?.state && (
            <Typography.Text type="secondary" data-testid={`metrics-${chart.id}-state`}>
              {" · "}
              {stateWords(t, chart.source.state, chart.source.message)}
            </Typography.Text>
          )}
          <TimeChart chart={chart} points={points} end={end} />
        </Col>
      ))}
    </Row>
  );
}

/** The clock, read again every few seconds: the window moves on while no sample comes (a stopped VM's gap grows). */
function useNow(): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), CLOCK_TICK_MS);
    return () => clearInterval(tick);
  }, []);
  return now;
}

function TimeChart({ chart, points, end }: { chart: Chart; points: MetricsPoint[]; end: number }) {
  const { t } = useTranslation();
  const option: ChartOption = {
    grid: { left: 8, right: 16, top: 32, bottom: 8, outerBoundsMode: "same" },
    legend: { top: 0, show: chart.lines.length > 1 },
    tooltip: {
      trigger: "axis",
      valueFormatter: (value: unknown) => (typeof value === "number" ? chart.format(value) : "—"),
    },
    xAxis: { type: "time", min: end - WINDOW_MINUTES * 60_000, max: end },
    yAxis: { type: "value", min: 0, axisLabel: { formatter: chart.format } },
    series: chart.lines.map((line) => ({
      type: "line",
      name: line.name,
      symbolSize: 4,
      connectNulls: false,
      data: points.map((point) => [point.time, point[line.field]]),
    })),
  };
  return (
    <EChart
      option={option}
      height={HEIGHT}
      label={t("metrics.chartLabel", { what: t(`metrics.charts.${chart.id}`), minutes: WINDOW_MINUTES })}
      testId={`metrics-${chart.id}-chart`}
    />
  );
}
