// One VM: what it is and does now, its networks, disks, console, access services, recent events and operations.
// Live like the list: a WatchWukong stream for this one Wukong updates the summary in place, and the detail (events,
// tasks, disks) is read again shortly after a change.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type Wukong, Wukong_Action, WukongEvent_Type } from "@gen/novasphere/v1/wukong_pb";
import { TaskState } from "@gen/novasphere/v1/task_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Breadcrumb, Button, Card, Descriptions, Empty, Progress, Table, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { type LiveState, watchWukongs } from "../api/liveList";
import { OPERATION_KEYS, TASK_STATE_KEYS } from "../api/operations";
import { AccessServicesCard } from "../components/access/AccessServicesCard";
import { Actions } from "../components/Actions";
import { ConsoleCard } from "../components/console/ConsoleCard";
import { MetricsCard } from "../components/metrics/MetricsCard";
import { LiveTag } from "../components/LiveTag";
import { PowerBadge } from "../components/PowerBadge";
import { formatDateTime, formatNumber } from "../i18n/format";
import { getCommand, wukongYaml } from "../cli/vmctl";
import { CopyAsCli } from "../components/CopyAsCli";

const DETAIL_REREAD_MS = 1_000;

export function VmDetail() {
  const { t } = useTranslation();
  const { namespace = "", name = "" } = useParams();
  const queries = useQueryClient();
  const key = ["wukong", namespace, name];
  const wukong = useQuery({ queryKey: key, queryFn: ({ signal }) => wukongClient.getWukong({ namespace, name }, { signal }) });
  const [live, setLive] = useState<LiveState>("connecting");
  const [gone, setGone] = useState(false);
  const cursor = wukong.data?.cursor;

  useEffect(() => {
    if (!cursor) return;
    const abort = new AbortController();
    let reread: ReturnType<typeof setTimeout> | undefined;
    void watchWukongs({
      filter: { namespace, name },
      cursor,
      signal: abort.signal,
      onState: setLive,
      onEvent: (event) => {
        if (event.type === WukongEvent_Type.DELETED) setGone(true);
        if (!event.wukong || event.type === WukongEvent_Type.DELETED) return;
        const changed = event.wukong;
        setGone(false);
        queries.setQueryData<Wukong>(key, (old) => (old ? { ...changed, detail: old.detail } : changed));
        clearTimeout(reread);
        reread = setTimeout(() => void queries.invalidateQueries({ queryKey: key }), DETAIL_REREAD_MS);
      },
    }).then((ended) => {
      if (ended === "start-over") void queries.invalidateQueries({ queryKey: key });
    });
    return () => {
      abort.abort();
      clearTimeout(reread);
    };
    // the stream starts once, from the first read's cursor; later reads do not restart it
  }, [namespace, name, cursor === undefined]);

  const header = (
    <Breadcrumb items={[{ title: <Link to="/vms">{t("shell.nav.vms")}</Link> }, { title: `${namespace}/${name}` }]} />
  );
  if (wukong.error) {
    return (
      <>
        {header}
        <Alert type="error" showIcon title={t("errors.vmUnreadable")} description={problem(wukong.error).message} />
      </>
    );
  }
  const w = wukong.data;
  if (!w) return header;
  const status = w.status;
  const detail = w.detail;
  return (
    <div className="detail-grid">
      {header}
      <div className="toolbar">
        <Typography.Title level={3} style={{ margin: 0 }} data-testid="vm-name">
          {w.name}
        </Typography.Title>
        <PowerBadge status={status} />
        <LiveTag state={live} />
        <Actions wukong={w} />
        {w.availableActions.includes(Wukong_Action.UPDATE) && (
          <Link to={`/vms/${encodeURIComponent(w.namespace)}/${encodeURIComponent(w.name)}/edit`}>
            <Button>{t("detail.edit")}</Button>
          </Link>
        )}
        <CopyAsCli command={() => getCommand(w)} yaml={() => wukongYaml(w)} />
      </div>
      {gone && <Alert type="warning" showIcon title={t("detail.deleted")} />}
      {status?.restartRequired && (
        <Alert
          type="info"
          showIcon
          title={t("detail.restartRequired")}
          description={t("detail.restartRequiredWhy")}
        />
      )}
      <Card title={t("detail.overview")} size="small">
        <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }}>
          <Descriptions.Item label={t("detail.namespace")}>{w.namespace}</Descriptions.Item>
          <Descriptions.Item label={t("detail.status")}>
            {status?.printableStatus || "—"}
            {status?.message ? ` · ${status.message}` : ""}
          </Descriptions.Item>
          <Descriptions.Item label={t("detail.node")}>{status?.node || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("detail.cpu")}>{status?.cpu ?? w.spec?.cpu}</Descriptions.Item>
          <Descriptions.Item label={t("detail.memory")}>
            {status ? t("common.mebibytes", { value: formatNumber(status.memoryMb) }) : w.spec?.memory}
          </Descriptions.Item>
          <Descriptions.Item label={t("detail.image")}>{status?.image || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("detail.guestOs")}>{status?.guestOs || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("detail.created")}>{when(w.createTime)}</Descriptions.Item>
          <Descriptions.Item label={t("detail.started")}>{when(status?.startTime)}</Descriptions.Item>
          <Descriptions.Item label={t("detail.labels")}>
            {Object.entries(w.labels).map(([k, v]) => (
              <Tag key={k}>
                {k}={v}
              </Tag>
            ))}
          </Descriptions.Item>
          <Descriptions.Item label={t("detail.uid")}>
            <Typography.Text copyable>{w.uid}</Typography.Text>
          </Descriptions.Item>
        </Descriptions>
      </Card>
      <Card title={t("detail.networks")} size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="name"
          dataSource={detail?.networks ?? []}
          columns={[
            { title: t("detail.name"), dataIndex: "name" },
            { title: t("detail.type"), dataIndex: "type" },
            { title: t("detail.attachment"), dataIndex: "nadName", render: (v: string) => v || "—" },
            { title: t("detail.ip"), dataIndex: "ipAddress", render: (v: string) => v || "—" },
            { title: t("detail.mac"), dataIndex: "mac", render: (v: string) => v || "—" },
          ]}
        />
      </Card>
      <Card title={t("detail.disks")} size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="name"
          dataSource={detail?.disks ?? []}
          columns={[
            { title: t("detail.name"), dataIndex: "name" },
            { title: t("detail.size"), dataIndex: "requestedSize" },
            { title: t("detail.capacity"), dataIndex: "capacity", render: (v: string) => v || "—" },
            { title: t("detail.storageClass"), dataIndex: "storageClassName" },
            { title: t("detail.claim"), render: (_, d) => `${d.claimName} (${d.claimPhase || "—"})` },
            { title: t("detail.image"), dataIndex: "image", render: (v: string) => v || "—" },
            { title: t("detail.expandable"), dataIndex: "expandable", render: (v: boolean) => t(v ? "common.yes" : "common.no") },
          ]}
        />
      </Card>
      <MetricsCard wukong={w} />
      <ConsoleCard wukong={w} />
      <AccessServicesCard wukong={w} />
      <Card title={t("detail.recentOperations")} size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="id"
          dataSource={detail?.recentTasks ?? []}
          locale={{ emptyText: <Empty description={t("detail.noOperations")} /> }}
          columns={[
            {
              title: t("detail.operation"),
              render: (_, task) =>
                task.force
                  ? t("detail.forced", { operation: t(OPERATION_KEYS[task.operation]) })
                  : t(OPERATION_KEYS[task.operation]),
            },
            { title: t("detail.by"), dataIndex: "requestedBy" },
            { title: t("detail.asked"), render: (_, task) => when(task.createTime) },
            {
              title: t("detail.result"),
              render: (_, task) =>
                task.state === TaskState.FAILED ? (
                  <Typography.Text type="danger">{task.error?.message || t(TASK_STATE_KEYS[task.state])}</Typography.Text>
                ) : task.state === TaskState.SUCCEEDED ? (
                  t(TASK_STATE_KEYS[task.state])
                ) : (
                  <Progress percent={task.progress} size="small" style={{ width: 160 }} />
                ),
            },
            { title: t("detail.ended"), render: (_, task) => when(task.endTime) },
          ]}
        />
      </Card>
      <Card title={t("detail.recentEvents")} size="small">
        <Table
          size="small"
          pagination={false}
          rowKey={(e) => `${e.objectKind}/${e.objectName}/${e.reason}/${e.message}`}
          dataSource={detail?.events ?? []}
          locale={{ emptyText: <Empty description={t("detail.noEvents")} /> }}
          columns={[
            {
              title: t("detail.type"),
              dataIndex: "type",
              // Kubernetes' event types; another (none today) shows as it came
              render: (v: string) => (
                <Tag color={v === "Warning" ? "orange" : "default"}>{t(`detail.eventType.${v}`, { defaultValue: v })}</Tag>
              ),
            },
            { title: t("detail.reason"), dataIndex: "reason" },
            { title: t("detail.object"), render: (_, e) => `${e.objectKind}/${e.objectName}` },
            { title: t("detail.message"), dataIndex: "message" },
            { title: t("detail.count"), dataIndex: "count", render: (v: number) => formatNumber(v) },
            { title: t("detail.lastSeen"), render: (_, e) => when(e.lastTime) },
          ]}
        />
      </Card>
    </div>
  );
}

function when(time: Timestamp | undefined): string {
  return time ? formatDateTime(time) : "—";
}
