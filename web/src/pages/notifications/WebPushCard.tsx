// This browser: Web Push where the browser and the installation allow it, else why not in words.
import type { ListDevicesResponse, PushSettings } from "@gen/novasphere/v1/notification_service_pb";
import { useQuery, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { Alert, App, Button, Card, Space, Spin, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { problem, type Problem } from "../../api/errors";
import { Refusal } from "../admin/Refusal";
import { DEVICES } from "./shared";
import { browserAndSystem, disableWebPush, enableWebPush, webPushState, type WebPushState } from "./webPush";

type Why = { type: "info" | "warning"; title: string; detail: string };
const EXPLANATIONS: Record<Exclude<WebPushState, "available" | "enabled">, Why> = {
  unconfigured: {
    type: "info",
    title: "notifications.webPush.unconfigured",
    detail: "notifications.webPush.unconfiguredDetail",
  },
  insecure: { type: "warning", title: "notifications.webPush.insecure", detail: "notifications.webPush.insecureDetail" },
  unsupported: {
    type: "warning",
    title: "notifications.webPush.unsupported",
    detail: "notifications.webPush.unsupportedDetail",
  },
  denied: { type: "warning", title: "notifications.webPush.denied", detail: "notifications.webPush.deniedDetail" },
};

export function WebPushCard({
  settings,
  devices,
}: {
  settings: UseQueryResult<PushSettings>;
  devices: UseQueryResult<ListDevicesResponse>;
}) {
  const { t, i18n } = useTranslation();
  const { message } = App.useApp();
  const queries = useQueryClient();
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<Problem | null>(null);
  const state = useQuery({
    // what the state depends on, as text (messages hold bigints, which a query key cannot)
    queryKey: [
      "notifications",
      "web-push-state",
      settings.data?.vapidPublicKey,
      settings.data?.platforms.join(","),
      devices.data?.devices.map((d) => d.id).join(","),
    ],
    queryFn: () => webPushState(settings.data!, devices.data?.devices ?? []),
    enabled: settings.data !== undefined && devices.data !== undefined,
    staleTime: 0,
    gcTime: 0,
  });

  const describe = () => {
    const { browser, system } = browserAndSystem();
    const named = browser || t("notifications.webPush.aBrowser");
    return system ? t("notifications.webPush.browserOn", { browser: named, system }) : named;
  };
  const act = async (run: () => Promise<unknown>) => {
    setBusy(true);
    setRefused(null);
    try {
      await run();
    } catch (error) {
      setRefused(problem(error));
    } finally {
      setBusy(false);
      await queries.invalidateQueries({ queryKey: DEVICES });
      void state.refetch();
    }
  };
  const enable = () =>
    act(async () => {
      const done = await enableWebPush(settings.data!, { name: describe().slice(0, 64), locale: i18n.language });
      if (done === "denied") {
        void message.warning(t("notifications.webPush.notGranted"));
        return;
      }
      void message.success(t("notifications.webPush.enabled"));
    });
  const disable = () =>
    act(async () => {
      await disableWebPush();
      void message.success(t("notifications.webPush.disabled"));
    });

  let body;
  if (settings.error) {
    body = <Alert type="error" showIcon title={t("notifications.webPush.settingsFailed")} description={problem(settings.error).message} />;
  } else if (!state.data) {
    body = <Spin aria-label={t("common.loading")} />;
  } else if (state.data === "available") {
    body = (
      <Space vertical>
        <Typography.Text>{t("notifications.webPush.available")}</Typography.Text>
        <Button type="primary" onClick={() => void enable()} loading={busy} data-testid="enable-web-push">
          {t("notifications.webPush.enable")}
        </Button>
      </Space>
    );
  } else if (state.data === "enabled") {
    body = (
      <Space vertical>
        <Alert type="success" showIcon title={t("notifications.webPush.on")} />
        <Button onClick={() => void disable()} loading={busy} data-testid="disable-web-push">
          {t("notifications.webPush.disable")}
        </Button>
      </Space>
    );
  } else {
    const why = EXPLANATIONS[state.data];
    body = <Alert type={why.type} showIcon data-state={state.data} title={t(why.title)} description={t(why.detail)} />;
  }
  return (
    <Card title={t("notifications.webPush.title")} size="small" style={{ minWidth: 0 }} data-testid="web-push">
      {refused && <Refusal title={t("notifications.webPush.failed")} problem={refused} />}
      {body}
    </Card>
  );
}
