// The tenant at a glance (GetStats, from the API's caches): VMs by power state and vCPU / memory requested vs
// allocated vs quota, in all and per namespace, as charts and as a table (the charts' text equivalent). Read again
// every few seconds while open: the numbers are cheap for the server and change with every start and stop.
import type { NamespaceStats, UsageStats } from "@gen/novasphere/v1/stats_service_pb";
import { ReloadOutlined } from "@ant-design/icons";
import { useQuery } from "@tanstack/react-query";
import { Alert, Button, Card, Col, Flex, Row, Skeleton, Statistic, Table, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { BarChart } from "echarts/charts";
import type { HTMLAttributes } from "react";
import { useTranslation } from "react-i18next";
import { statsClient } from "../api/clients";
import { problem } from "../api/errors";
import { EChart, echarts, type ChartOption } from "../components/metrics/EChart";
import { formatGiB } from "../components/metrics/units";
import { formatNumber, formatTime } from "../i18n/format";

echarts.use([BarChart]);

const REREAD_MS = 10_000;
const POWER_STATES = ["running", "stopped", "paused", "provisioning", "error", "transitioning"] as const;
type PowerCount = (typeof POWER_STATES)[number];
const POWER_COLORS: Record<PowerCount, string> = {
  running: "#52c41a",
  stopped: "#8c8c8c",
  paused: "#faad14",
  provisioning: "#1677ff",
  error: "#ff4d4f",
  transitioning: "#13c2c2",
};
const MIB = 2 ** 20;
/** Room for a tooltip listing the six power states, even with one namespace. */
const MIN_CHART_HEIGHT = 220;

export function Overview() {
  const { t } = useTranslation();
  const stats = useQuery({
    queryKey: ["stats"],
    queryFn: ({ signal }) => statsClient.getStats({}, { signal }),
    refetchInterval: REREAD_MS,
    staleTime: 0, // coming back to the page reads the numbers again
  });
  const namespaces = stats.data?.namespaces ?? [];
  const total = stats.data?.total;
  return (
    <Flex vertical gap="middle">
      <Flex wrap gap="small" align="center">
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t("overview.title")}
        </Typography.Title>
        <Button icon={<ReloadOutlined />} loading={stats.isFetching} onClick={() => void stats.refetch()}>
          {t("overview.refresh")}
        </Button>
        {stats.dataUpdatedAt > 0 && (
          <Typography.Text type="secondary">{t("overview.updated", { time: formatTime(new Date(stats.dataUpdatedAt)) })}</Typography.Text>
        )}
      </Flex>
      {stats.error && <Alert type="error" showIcon title={t("overview.readFailed")} description={problem(stats.error).message} />}
      {!total ? (
        !stats.error && <Skeleton active />
      ) : (
        <>
          <Totals usage={total} />
          <Row gutter={[16, 16]}>
            <Col xs={24} xl={8}>
              <Card size="small" title={t("overview.charts.power")}>
                <PowerChart namespaces={namespaces} />
              </Card>
            </Col>
            <Col xs={24} xl={8}>
              <Card size="small" title={t("overview.charts.vcpu")}>
                <ResourceChart namespaces={namespaces} resource="vcpu" />
              </Card>
            </Col>
            <Col xs={24} xl={8}>
              <Card size="small" title={t("overview.charts.memory")}>
                <ResourceChart namespaces={namespaces} resource="memory" />
              </Card>
            </Col>
          </Row>
          <NamespaceTable namespaces={namespaces} total={total} />
        </>
      )}
    </Flex>
  );
}

function Totals({ usage }: { usage: UsageStats }) {
  const { t } = useTranslation();
  const count = (value: number) => formatNumber(value);
  return (
    <Card size="small" data-testid="overview-totals">
      <Flex wrap gap="middle" justify="space-between">
        <Statistic title={t("overview.vms")} value={count(usage.vms)} />
        {POWER_STATES.map((state) => (
          <Statistic
            key={state}
            title={t(`overview.states.${state}`)}
            value={count(usage[state])}
            styles={{ content: { color: usage[state] ? POWER_COLORS[state] : undefined } }}
          />
        ))}
        <Statistic
          title={t("overview.vcpuAllocatedOfRequested")}
          value={t("overview.ofTotal", { part: count(usage.vcpuAllocated), whole: count(usage.vcpuTotal) })}
        />
        <Statistic
          title={t("overview.memoryAllocatedOfRequested")}
          value={t("overview.ofTotal", {
            part: formatGiB(usage.memoryMbAllocated * MIB),
            whole: formatGiB(usage.memoryMbTotal * MIB),
          })}
        />
      </Flex>
    </Card>
  );
}

/** Each namespace's bars need this much height, so that many namespaces stay legible; the three charts side by
 * side are as high as each other. */
function chartHeight(namespaces: number): number {
  return Math.max(MIN_CHART_HEIGHT, 90 + namespaces * 48);
}

function PowerChart({ namespaces }: { namespaces: NamespaceStats[] }) {
  const { t } = useTranslation();
  const option: ChartOption = {
    grid: { left: 8, right: 16, top: 56, bottom: 8, outerBoundsMode: "same" },
    legend: { top: 0 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: namespaces.map((n) => n.namespace) },
    series: POWER_STATES.map((state) => ({
      type: "bar",
      stack: "vms",
      name: t(`overview.states.${state}`),
      itemStyle: { color: POWER_COLORS[state] },
      data: namespaces.map((n) => n.usage?.[state] ?? 0),
    })),
  };
  return <EChart option={option} height={chartHeight(namespaces.length)} label={t("overview.charts.powerLabel")} testId="overview-power-chart" />;
}

function ResourceChart({ namespaces, resource }: { namespaces: NamespaceStats[]; resource: "vcpu" | "memory" }) {
  const { t } = useTranslation();
  const values = (n: NamespaceStats) =>
    resource === "vcpu"
      ? {
          requested: n.usage?.vcpuTotal ?? 0,
          allocated: n.usage?.vcpuAllocated ?? 0,
          quota: n.quota ? n.quota.cpuHardMillis / 1000 : null,
        }
      : {
          requested: (n.usage?.memoryMbTotal ?? 0) / 1024,
          allocated: (n.usage?.memoryMbAllocated ?? 0) / 1024,
          quota: n.quota ? n.quota.memoryHardMb / 1024 : null,
        };
  const rows = namespaces.map(values);
  const format = (value: number) =>
    resource === "vcpu" ? formatNumber(value, { maximumFractionDigits: 2 }) : formatGiB(value * 1024 * MIB);
  const option: ChartOption = {
    grid: { left: 8, right: 16, top: 32, bottom: 8, outerBoundsMode: "same" },
    legend: { top: 0 },
    tooltip: {
      trigger: "axis",
      axisPointer: { type: "shadow" },
      valueFormatter: (value: unknown) => (typeof value === "number" ? format(value) : "—"),
    },
    xAxis: { type: "value", axisLabel: { formatter: format } },
    yAxis: { type: "category", inverse: true, data: namespaces.map((n) => n.namespace) },
    series: (["requested", "allocated", "quota"] as const).map((key) => ({
      type: "bar",
      name: t(`overview.resources.${key}`),
      data: rows.map((row) => row[key]),
    })),
  };
  return (
    <EChart
      option={option}
      height={chartHeight(namespaces.length)}
      label={t(resource === "vcpu" ? "overview.charts.vcpuLabel" : "overview.charts.memoryLabel")}
      testId={`overview-${resource}-chart`}
    />
  );
}

function NamespaceTable({ namespaces, total }: { namespaces: NamespaceStats[]; total: UsageStats }) {
  const { t } = useTranslation();
  const count = (key: PowerCount | "vms") => ({
    key,
    title: key === "vms" ? t("overview.vms") : t(`overview.states.${key}`),
    align: "right" as const,
    render: (_: unknown, n: NamespaceStats) => formatNumber(n.usage?.[key] ?? 0),
  });
  const quota = (used: number, hard: number, format: (value: number) => string) =>
    t("overview.quotaUsed", { used: format(used), hard: format(hard) });
  const cores = (millis: number) => formatNumber(millis / 1000, { maximumFractionDigits: 2 });
  const gib = (mb: number) => formatGiB(mb * MIB);
  const columns: ColumnsType<NamespaceStats> = [
    { key: "namespace", title: t("overview.namespace"), dataIndex: "namespace", fixed: "left" },
    count("vms"),
    ...POWER_STATES.map(count),
    {
      key: "vcpu",
      title: t("overview.vcpu"),
      children: [
        { key: "vcpuRequested", title: t("overview.resources.requested"), align: "right", render: (_, n) => formatNumber(n.usage?.vcpuTotal ?? 0) },
        { key: "vcpuAllocated", title: t("overview.resources.allocated"), align: "right", render: (_, n) => formatNumber(n.usage?.vcpuAllocated ?? 0) },
        {
          key: "vcpuQuota",
          title: t("overview.resources.quotaUsedOfHard"),
          align: "right",
          render: (_, n) => (n.quota ? quota(n.quota.cpuUsedMillis, n.quota.cpuHardMillis, cores) : "—"),
        },
      ],
    },
    {
      key: "memory",
      title: t("overview.memory"),
      children: [
        { key: "memoryRequested", title: t("overview.resources.requested"), align: "right", render: (_, n) => gib(n.usage?.memoryMbTotal ?? 0) },
        { key: "memoryAllocated", title: t("overview.resources.allocated"), align: "right", render: (_, n) => gib(n.usage?.memoryMbAllocated ?? 0) },
        {
          key: "memoryQuota",
          title: t("overview.resources.quotaUsedOfHard"),
          align: "right",
          render: (_, n) => (n.quota ? quota(n.quota.memoryUsedMb, n.quota.memoryHardMb, gib) : "—"),
        },
      ],
    },
  ];
  return (
    <Card size="small" title={t("overview.byNamespace")}>
      {/* scrolls sideways in a region a keyboard can focus (axe: scrollable-region-focusable) */}
      <div className="scroll-region" tabIndex={0} role="region" aria-label={t("overview.byNamespace")}>
      <Table<NamespaceStats>
        size="small"
        bordered
        pagination={false}
        rowKey="namespace"
        dataSource={namespaces}
        columns={columns}
        onRow={(n) => ({ "data-testid": `namespace-${n.namespace}` }) as HTMLAttributes<HTMLElement>}
        summary={() => (
          <Table.Summary.Row data-testid="namespace-total">
            <Table.Summary.Cell index={0}>
              <Typography.Text strong>{t("overview.total")}</Typography.Text>
            </Table.Summary.Cell>
            {(["vms", ...POWER_STATES] as const).map((key, index) => (
              <Table.Summary.Cell key={key} index={index + 1} align="right">
                {formatNumber(total[key])}
              </Table.Summary.Cell>
            ))}
            <Table.Summary.Cell index={8} align="right">
              {formatNumber(total.vcpuTotal)}
            </Table.Summary.Cell>
            <Table.Summary.Cell index={9} align="right">
              {formatNumber(total.vcpuAllocated)}
            </Table.Summary.Cell>
            <Table.Summary.Cell index={10} />
            <Table.Summary.Cell index={11} align="right">
              {gib(total.memoryMbTotal)}
            </Table.Summary.Cell>
            <Table.Summary.Cell index={12} align="right">
              {gib(total.memoryMbAllocated)}
            </Table.Summary.Cell>
            <Table.Summary.Cell index={13} />
          </Table.Summary.Row>
        )}
      />
      </div>
    </Card>
  );
}
