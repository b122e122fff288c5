// The VM list: server-side paging, sort and filters, all in the URL; kept live by one WatchWukong stream with the
// same filter (no polling).
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ListWukongsResponse } from "@gen/novasphere/v1/wukong_service_pb";
import { type Wukong, Wukong_Action } from "@gen/novasphere/v1/wukong_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListWukongsRequestSchema } from "@gen/novasphere/v1/wukong_service_pb";
import { Alert, Button, Checkbox, Input, Popover, Select, Space, Table, Typography } from "antd";
import type { ColumnsType, SorterResult } from "antd/es/table/interface";
import type { TFunction } from "i18next";
import { useCallback, useEffect, useMemo, useRef, useState, type Key } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { COLUMNS, PAGE_SIZES, readListState, writeListState, type Column, type ListState, type SortField } from "../api/listState";
import { useLiveList } from "../api/liveList";
import { OPERATION_KEYS } from "../api/operations";
import { AccessAddresses } from "../components/access/AccessAddresses";
import { Actions } from "../components/Actions";
import { BATCH_ACTIONS, BatchDialog } from "../components/Batch";
import { LiveTag } from "../components/LiveTag";
import { holds, type Session } from "../api/session";
import { POWER_STATE_FILTERS, PowerBadge } from "../components/PowerBadge";
import { formatDateTime, formatNumber } from "../i18n/format";

type ListRequest = MessageInitShape<typeof ListWukongsRequestSchema>;

const COLUMN_TITLES: Record<Column, string> = {
  name: "vms.column.name",
  namespace: "vms.column.namespace",
  status: "vms.column.status",
  cpu: "vms.column.cpu",
  memory: "vms.column.memory",
  image: "vms.column.image",
  node: "vms.column.node",
  ip: "vms.column.ip",
  access: "vms.column.access",
  created: "vms.column.created",
};
const OPERATING = ["vm:start", "vm:stop", "vm:restart", "vm:pause", "vm:delete"];
const SORT_KEYS: Partial<Record<Column, SortField>> = {
  name: "name",
  status: "status",
  cpu: "cpu",
  memory: "memory",
  created: "createTime",
};

export function VmList({ session }: { session: Session }) {
  const { t, i18n } = useTranslation();
  const [params, setParams] = useSearchParams();
  const view = readListState(params);
  const update = (change: Partial<ListState>) =>
    setParams(writeListState({ ...view, ...change }), { replace: false });
  const queries = useQueryClient();
  const atLeast = useRef("");

  const request: ListRequest = {
    namespace: view.namespace,
    page: view.page,
    pageSize: view.size,
    sortBy: view.sort,
    sortOrder: view.order,
    status: view.status.join(","),
    nameLike: view.name,
    labelSelector: view.labels,
  };
  const queryKey = ["wukongs", session.identity.tenantId, request];
  const list = useQuery({
    queryKey,
    queryFn: ({ signal }) => wukongClient.listWukongs({ ...request, cursor: atLeast.current }, { signal }),
    placeholderData: keepPreviousData,
  });

  const changed = useCallback(
    (wukong: Wukong) => {
      const same = (row: Wukong) => row.namespace === wukong.namespace && row.name === wukong.name;
      const shown = queries.getQueryData<ListWukongsResponse>(queryKey)?.wukongs.some(same) ?? false;
      if (shown) {
        queries.setQueryData<ListWukongsResponse>(queryKey, (old) =>
          old ? { ...old, wukongs: old.wukongs.map((row) => (same(row) ? wukong : row)) } : old,
        );
      }
      return shown;
    },
    // the key's content, not its identity (a new array each render)
    [queries, JSON.stringify(queryKey)],
  );
  const reread = useCallback(
    (cursor: string) => {
      atLeast.current = cursor;
      void queries.invalidateQueries({ queryKey: ["wukongs"] });
    },
    [queries],
  );
  // Changes of the page's own rows only; Wukongs coming and going (counts, membership) whatever page they are on.
  const shown = useMemo(
    () => (list.data?.wukongs ?? []).map((w) => `${w.namespace}/${w.name}`).sort(),
    [list.data?.wukongs],
  );
  const live = useLiveList(
    { namespace: view.namespace, status: request.status ?? "", nameLike: view.name, labelSelector: view.labels, names: shown },
    list.data && !list.isPlaceholderData ? { cursor: list.data.cursor, readAt: list.dataUpdatedAt } : undefined,
    { changed, reread },
  );

  // Several VMs at once: offered to callers who may operate at all, for the rows of this page.
  const mayOperate = OPERATING.some((p) => holds(session.identity, p));
  const [selectedKeys, setSelectedKeys] = useState<Key[]>([]);
  const [batch, setBatch] = useState<Wukong_Action | null>(null);
  const viewKey = params.toString();
  useEffect(() => setSelectedKeys([]), [viewKey]);
  const rows = list.data?.wukongs ?? [];
  const selected = rows.filter((w) => selectedKeys.includes(`${w.namespace}/${w.name}`));

  const columns = useMemo(
    () => tableColumns(view, t),
    [view.sort, view.order, view.columns.join(","), i18n.language],
  );
  const failure = list.error ? problem(list.error) : null;

  return (
    <>
      <div className="toolbar">
        <Typography.Title level={3} style={{ margin: 0, marginRight: 16 }}>
          {t("vms.title")}
        </Typography.Title>
        <Input.Search
          placeholder={t("vms.nameContains")}
          allowClear
          defaultValue={view.name}
          key={`q-${view.name}`}
          onSearch={(name) => update({ name, page: 1 })}
          style={{ width: 200 }}
          aria-label={t("vms.nameContains")}
        />
        <Input.Search
          placeholder={t("vms.namespace")}
          allowClear
          defaultValue={view.namespace}
          key={`ns-${view.namespace}`}
          onSearch={(namespace) => update({ namespace: namespace.trim(), page: 1 })}
          style={{ width: 180 }}
          aria-label={t("vms.namespace")}
        />
        <Select
          mode="multiple"
          allowClear
          placeholder={t("vms.status")}
          value={view.status}
          onChange={(status: string[]) => update({ status, page: 1 })}
          options={POWER_STATE_FILTERS.map((s) => ({ value: s, label: t(`common.power.${s}`) }))}
          style={{ minWidth: 180 }}
          aria-label={t("vms.status")}
        />
        <Input.Search
          placeholder={t("vms.labelsPlaceholder")}
          allowClear
          defaultValue={view.labels}
          key={`labels-${view.labels}`}
          onSearch={(labels) => update({ labels: labels.trim(), page: 1 })}
          style={{ width: 220 }}
          aria-label={t("vms.labels")}
        />
        <Popover
          trigger="click"
          content={
            <Checkbox.Group
              value={view.columns}
              onChange={(chosen) => update({ columns: COLUMNS.filter((c) => chosen.includes(c)) })}
              options={COLUMNS.filter((c) => c !== "name").map((c) => ({ value: c, label: t(COLUMN_TITLES[c]) }))}
              style={{ display: "grid", gap: 4 }}
            />
          }
        >
          <Button>{t("vms.columns")}</Button>
        </Popover>
        <LiveTag state={live} />
        {holds(session.identity, "vm:create") && (
          <Link to={`/vms/new${view.namespace ? `?ns=${encodeURIComponent(view.namespace)}` : ""}`}>
            <Button type="primary">{t("vms.newVm")}</Button>
          </Link>
        )}
      </div>
      {selected.length > 0 && (
        <div className="toolbar" data-testid="selection">
          <Typography.Text strong>{t("vms.selected", { n: formatNumber(selected.length) })}</Typography.Text>
          <Space wrap size="small">
            {BATCH_ACTIONS.map(([action, operation]) => (
              <Button
                key={action}
                danger={action === Wukong_Action.DELETE}
                disabled={!selected.some((w) => w.availableActions.includes(action))}
                onClick={() => setBatch(action)}
              >
                {t("vms.batchAction", { action: t(OPERATION_KEYS[operation]) })}
              </Button>
            ))}
          </Space>
          <Button type="link" onClick={() => setSelectedKeys([])}>
            {t("vms.clearSelection")}
          </Button>
        </div>
      )}
      {batch !== null && (
        <BatchDialog
          action={batch}
          selected={selected}
          onClose={(ran) => {
            setBatch(null);
            if (ran) setSelectedKeys([]);
          }}
        />
      )}
      {failure && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("errors.listUnreadable")} description={failure.message} />
      )}
      <Table<Wukong>
        rowKey={(w) => `${w.namespace}/${w.name}`}
        columns={columns}
        dataSource={rows}
        rowSelection={
          mayOperate ? { selectedRowKeys: selectedKeys, onChange: (keys) => setSelectedKeys(keys) } : undefined
        }
        loading={list.isPending}
        size="middle"
        onChange={(pagination, _filters, sorter) => {
          const sort = Array.isArray(sorter) ? sorter[0] : sorter;
          const next = sortFrom(sort);
          const resorted = next.sort !== view.sort || next.order !== view.order;
          update({
            ...next,
            page: resorted ? 1 : pagination.current ?? 1,
            size: pagination.pageSize ?? view.size,
          });
        }}
        pagination={{
          current: view.page,
          pageSize: view.size,
          total: list.data?.total ?? 0,
          pageSizeOptions: PAGE_SIZES,
          showSizeChanger: true,
          showTotal: (total) => (
            <span data-testid="total">{t("vms.total", { count: total, total: formatNumber(total) })}</span>
          ),
        }}
      />
    </>
  );
}

function sortFrom(sorter: SorterResult<Wukong> | undefined): { sort: SortField; order: "asc" | "desc" } {
  const key = sorter?.order ? (sorter.columnKey as Column | undefined) : undefined;
  const sort = key ? SORT_KEYS[key] : undefined;
  if (!sort) return { sort: "name", order: "asc" };
  return { sort, order: sorter?.order === "descend" ? "desc" : "asc" };
}

function tableColumns(view: ListState, t: TFunction): ColumnsType<Wukong> {
  const sortOrder = (column: Column) =>
    SORT_KEYS[column] === view.sort ? (view.order === "desc" ? "descend" : "ascend") : null;
  const all: Record<Column, ColumnsType<Wukong>[number]> = {
    name: {
      render: (_, w) => (
        <Link to={`/vms/${encodeURIComponent(w.namespace)}/${encodeURIComponent(w.name)}`}>
          <Typography.Text strong>{w.name}</Typography.Text>
        </Link>
      ),
    },
    namespace: { render: (_, w) => w.namespace },
    status: { render: (_, w) => <PowerBadge status={w.status} /> },
    cpu: { render: (_, w) => w.status?.cpu ?? w.spec?.cpu ?? "" },
    memory: {
      render: (_, w) =>
        w.status ? t("common.mebibytes", { value: formatNumber(w.status.memoryMb) }) : w.spec?.memory,
    },
    image: { render: (_, w) => w.status?.image ?? "", ellipsis: true },
    node: { render: (_, w) => w.status?.node || "—" },
    ip: { render: (_, w) => w.status?.interfaces.find((i) => i.ipAddress)?.ipAddress || "—" },
    access: { render: (_, w) => <AccessAddresses services={w.serviceInfo} /> },
    created: {
      render: (_, w) => formatDateTime(w.createTime),
    },
  };
  const shown: ColumnsType<Wukong> = view.columns.map((column) => ({
    ...all[column],
    key: column,
    title: t(COLUMN_TITLES[column]),
    sorter: SORT_KEYS[column] !== undefined,
    sortOrder: sortOrder(column),
    sortDirections: ["ascend", "descend"],
  }));
  return [...shown, { key: "actions", title: t("vms.actions"), render: (_, w) => <Actions wukong={w} menu /> }];
}

