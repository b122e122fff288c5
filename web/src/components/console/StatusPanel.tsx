// The console's status from GetConsoleStatus: connected or not, since when, from where, by whom, until when.
import { type ConsoleProtocol } from "@gen/novasphere/v1/console_service_pb";
import { useQuery } from "@tanstack/react-query";
import { Card, Descriptions } from "antd";
import { useTranslation } from "react-i18next";
import { consoleClient } from "../../console/client";
import { formatAgo, formatDateTime } from "../../i18n/format";

const REFRESH_MS = 5_000;

export function StatusPanel({ namespace, name, protocol, revision }: { namespace: string; name: string; protocol: ConsoleProtocol; revision: string }) {
  const { t } = useTranslation();
  const status = useQuery({
    queryKey: ["console-status", namespace, name, protocol, revision],
    queryFn: ({ signal }) => consoleClient.getConsoleStatus({ namespace, name, protocol }, { signal }),
    refetchInterval: REFRESH_MS,
  });
  const s = status.data;
  return (
    <Card size="small" title={t("console.status.title")} data-testid="console-status">
      <Descriptions size="small" column={1}>
        <Descriptions.Item label={t("console.status.connected")}>
          <span data-testid="status-connected">{s?.connected ? t("console.status.yes") : t("console.status.no")}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t("console.status.who")}>
          <span data-testid="status-user">{s?.user || "—"}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t("console.status.from")}>
          <span data-testid="status-client">{s?.clientIp || "—"}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t("console.status.since")}>
          {s?.connectTime ? `${formatDateTime(s.connectTime)} (${formatAgo(s.connectTime)})` : "—"}
        </Descriptions.Item>
        <Descriptions.Item label={t("console.status.until")}>{s?.expireTime ? formatDateTime(s.expireTime) : "—"}</Descriptions.Item>
      </Descriptions>
    </Card>
  );
}
