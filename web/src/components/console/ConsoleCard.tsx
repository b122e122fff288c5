// The detail page's console card: which consoles the VM offers (or why none), the way into them, and its recent
// console sessions (who, from where, since when, how they ended). What the caller may not do is not shown.
import { ConsoleProtocol, ConsoleSession_State, type ConsoleSession } from "@gen/novasphere/v1/console_service_pb";
import { type Wukong, Wukong_Action, WukongStatus_PowerState as PowerState } from "@gen/novasphere/v1/wukong_pb";
import { useQuery } from "@tanstack/react-query";
import { Button, Card, Space, Table, Tag, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { consoleCommand } from "../../cli/vmctl";
import { ACCESS_CONSOLES, consoleClient, may } from "../../console/client";
import { closeMessage } from "../../console/closeCodes";
import { formatAgo, formatDateTime } from "../../i18n/format";
import { CopyAsCli } from "../CopyAsCli";

const REFRESH_MS = 10_000;

export function ConsoleCard({ wukong }: { wukong: Wukong }) {
  const { t } = useTranslation();
  const allowed = may(ACCESS_CONSOLES);
  const available = wukong.availableActions.includes(Wukong_Action.CONSOLE);
  const { namespace, name } = wukong;
  const sessions = useQuery({
    queryKey: ["console-sessions", namespace, name],
    queryFn: ({ signal }) => consoleClient.listConsoleSessions({ namespace, name }, { signal }),
    refetchInterval: REFRESH_MS,
    enabled: allowed,
  });
  if (!allowed) return null;
  const base = `/vms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/console`;
  const running = wukong.status?.powerState === PowerState.RUNNING;
  return (
    <Card title={t("console.card.title")} size="small" data-testid="console-card">
      <Space direction="vertical" style={{ width: "100%" }}>
        {available ? (
          <Space wrap>
            <Link to={`${base}/vnc`}>
              <Button type="primary" data-testid="open-vnc">
                {t("console.card.openVnc")}
              </Button>
            </Link>
            <Link to={`${base}/serial`}>
              <Button data-testid="open-serial">{t("console.card.openSerial")}</Button>
            </Link>
            <CopyAsCli command={() => `${consoleCommand(wukong, "serial")}\n${consoleCommand(wukong, "vnc")}`} />
          </Space>
        ) : (
          <Typography.Text type="secondary" data-testid="console-unavailable">
            {running ? t("console.card.unavailable") : t("console.card.notRunning")}
          </Typography.Text>
        )}
        <Table<ConsoleSession>
          size="small"
          pagination={false}
          rowKey="sessionId"
          loading={sessions.isLoading}
          dataSource={(sessions.data?.sessions ?? []).slice(0, 10)}
          locale={{ emptyText: t("console.card.noSessions") }}
          columns={[
            {
              title: t("console.card.protocol"),
              dataIndex: "protocol",
              render: (p: ConsoleProtocol) => (p === ConsoleProtocol.SERIAL ? t("console.card.serial") : t("console.card.vnc")),
            },
            { title: t("console.card.user"), dataIndex: "user" },
            { title: t("console.card.from"), dataIndex: "clientIp", render: (ip: string) => ip || "—" },
            {
              title: t("console.card.since"),
              key: "since",
              render: (_, s) => {
                const since = s.connectTime ?? s.createTime;
                return since ? <span title={formatDateTime(since)}>{formatAgo(since)}</span> : "—";
              },
            },
            {
              title: t("console.card.state"),
              key: "state",
              render: (_, s) =>
                s.state === ConsoleSession_State.CLOSED ? (
                  <Typography.Text type="secondary">{closeMessage(t, s.closeCode, s.closeReason)}</Typography.Text>
                ) : (
                  <Tag color={s.connected ? "success" : "processing"}>
                    {s.connected ? t("console.card.connected") : t("console.card.issued")}
                  </Tag>
                ),
            },
          ]}
        />
      </Space>
    </Card>
  );
}
