// One VM: what it is and does now, its networks, disks, console, access services, recent events and operations.
// Live like the list: a WatchWukong stream for this one Wukong updates the summary in place, and the detail (events,
// tasks, disks) is read again shortly after a change.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { type Wukong, Wukong_Action, WukongEvent_Type } from "@gen/novasphere/v1/wukong_pb";
import { TaskState } from "@gen/novasphere/v1/task_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Breadcrumb, Button, Card, Descriptions, Empty, Progress, Table, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { type LiveState, watchWukongs } from "../api/liveList";
import { OPERATION_WORDS } from "../api/operations";
import { AccessServicesCard } from "../components/access/AccessServicesCard";
import { Actions } from "../components/Actions";
import { ConsoleCard } from "../components/console/ConsoleCard";
import { MetricsCard } from "../components/metrics/MetricsCard";
import { LiveTag } from "../components/LiveTag";
import { PowerBadge } from "../components/PowerBadge";

const DETAIL_REREAD_MS = 1_000;

export function VmDetail() {
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
    <Breadcrumb items={[{ title: <Link to="/vms">Virtual machines</Link> }, { title: `${namespace}/${name}` }]} />
  );
  if (wukong.error) {
    return (
      <>
        {header}
        <Alert type="error" showIcon title="This VM could not be read" description={problem(wukong.error).message} />
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
            <Button>Edit</Button>
          </Link>
        )}
      </div>
      {gone && <Alert type="warning" showIcon title="This VM has been deleted." />}
      {status?.restartRequired && (
        <Alert
          type="info"
          showIcon
          title="Restart required"
          description="The spec changed while the VM runs; the change applies at the next start (restart it to apply now)."
        />
      )}
      <Card title="Overview" size="small">
        <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }}>
          <Descriptions.Item label="Namespace">{w.namespace}</Descriptions.Item>
          <Descriptions.Item label="Status">
            {status?.printableStatus || "—"}
            {status?.message ? ` · ${status.message}` : ""}
          </Descriptions.Item>
          <Descriptions.Item label="Node">{status?.node || "—"}</Descriptions.Item>
          <Descriptions.Item label="vCPU">{status?.cpu ?? w.spec?.cpu}</Descriptions.Item>
          <Descriptions.Item label="Memory">
            {status ? `${Number(status.memoryMb)} MiB` : w.spec?.memory}
          </Descriptions.Item>
          <Descriptions.Item label="Image">{status?.image || "—"}</Descriptions.Item>
          <Descriptions.Item label="Guest OS">{status?.guestOs || "—"}</Descriptions.Item>
          <Descriptions.Item label="Created">{when(w.createTime)}</Descriptions.Item>
          <Descriptions.Item label="Started">{when(status?.startTime)}</Descriptions.Item>
          <Descriptions.Item label="Labels">
            {Object.entries(w.labels).map(([k, v]) => (
              <Tag key={k}>
                {k}={v}
              </Tag>
            ))}
          </Descriptions.Item>
          <Descriptions.Item label="UID">
            <Typography.Text copyable>{w.uid}</Typography.Text>
          </Descriptions.Item>
        </Descriptions>
      </Card>
      <Card title="Networks" size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="name"
          dataSource={detail?.networks ?? []}
          columns={[
            { title: "Name", dataIndex: "name" },
            { title: "Type", dataIndex: "type" },
            { title: "Attachment", dataIndex: "nadName", render: (v: string) => v || "—" },
            { title: "IP", dataIndex: "ipAddress", render: (v: string) => v || "—" },
            { title: "MAC", dataIndex: "mac", render: (v: string) => v || "—" },
          ]}
        />
      </Card>
      <Card title="Disks" size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="name"
          dataSource={detail?.disks ?? []}
          columns={[
            { title: "Name", dataIndex: "name" },
            { title: "Size", dataIndex: "requestedSize" },
            { title: "Capacity", dataIndex: "capacity", render: (v: string) => v || "—" },
            { title: "Storage class", dataIndex: "storageClassName" },
            { title: "Claim", render: (_, d) => `${d.claimName} (${d.claimPhase || "—"})` },
            { title: "Image", dataIndex: "image", render: (v: string) => v || "—" },
            { title: "Expandable", dataIndex: "expandable", render: (v: boolean) => (v ? "yes" : "no") },
          ]}
        />
      </Card>
      <MetricsCard wukong={w} />
      <ConsoleCard wukong={w} />
      <AccessServicesCard wukong={w} />
      <Card title="Recent operations" size="small">
        <Table
          size="small"
          pagination={false}
          rowKey="id"
          dataSource={detail?.recentTasks ?? []}
          locale={{ emptyText: <Empty description="No operations in the last 7 days" /> }}
          columns={[
            { title: "Operation", render: (_, t) => OPERATION_WORDS[t.operation] + (t.force ? " (forced)" : "") },
            { title: "By", dataIndex: "requestedBy" },
            { title: "Asked", render: (_, t) => when(t.createTime) },
            {
              title: "Result",
              render: (_, t) =>
                t.state === TaskState.FAILED ? (
                  <Typography.Text type="danger">{t.error?.message || "failed"}</Typography.Text>
                ) : t.state === TaskState.SUCCEEDED ? (
                  "succeeded"
                ) : (
                  <Progress percent={t.progress} size="small" style={{ width: 160 }} />
                ),
            },
            { title: "Ended", render: (_, t) => when(t.endTime) },
          ]}
        />
      </Card>
      <Card title="Recent events" size="small">
        <Table
          size="small"
          pagination={false}
          rowKey={(e) => `${e.objectKind}/${e.objectName}/${e.reason}/${e.message}`}
          dataSource={detail?.events ?? []}
          locale={{ emptyText: <Empty description="No events in the last hour" /> }}
          columns={[
            { title: "Type", dataIndex: "type", render: (v: string) => <Tag color={v === "Warning" ? "orange" : "default"}>{v}</Tag> },
            { title: "Reason", dataIndex: "reason" },
            { title: "Object", render: (_, e) => `${e.objectKind}/${e.objectName}` },
            { title: "Message", dataIndex: "message" },
            { title: "Count", dataIndex: "count" },
            { title: "Last seen", render: (_, e) => when(e.lastTime) },
          ]}
        />
      </Card>
    </div>
  );
}

function when(time: Timestamp | undefined): string {
  return time ? timestampDate(time).toLocaleString() : "—";
}
