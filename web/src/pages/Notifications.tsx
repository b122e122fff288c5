// Notifications: where the caller's go (their devices, this browser through Web Push), what they want to hear about
// (preferences), and, for who holds notification:webhook:manage, the tenant's chat webhooks. Each part is shown only
// to who may use it; the server checks every call again.
import { useQuery } from "@tanstack/react-query";
import { Alert, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { notificationClient } from "../api/clients";
import { session as currentSession } from "../api/session";
import { holds, NOTIFICATION_SUBSCRIBE, NOTIFICATION_WEBHOOK_MANAGE } from "./admin/access";
import { DevicesCard } from "./notifications/Devices";
import { PreferencesCard } from "./notifications/PreferencesCard";
import { DEVICES, PUSH_SETTINGS } from "./notifications/shared";
import { WebhooksCard } from "./notifications/WebhooksCard";
import { WebPushCard } from "./notifications/WebPushCard";

const FRESH_EACH_VISIT = { staleTime: 0, refetchOnMount: "always" } as const;

export function Notifications() {
  const { t } = useTranslation();
  const signedIn = currentSession();
  const mayHear = signedIn !== null && holds(signedIn.identity, NOTIFICATION_SUBSCRIBE);
  const mayManageWebhooks = signedIn !== null && holds(signedIn.identity, NOTIFICATION_WEBHOOK_MANAGE);
  const devices = useQuery({
    queryKey: DEVICES,
    queryFn: ({ signal }) => notificationClient.listDevices({}, { signal }),
    enabled: mayHear,
    ...FRESH_EACH_VISIT,
  });
  const settings = useQuery({
    queryKey: PUSH_SETTINGS,
    queryFn: ({ signal }) => notificationClient.getPushSettings({}, { signal }),
    enabled: mayHear,
    ...FRESH_EACH_VISIT,
  });
  if (!signedIn) return null; // the route's guard signs in first

  return (
    <div className="detail-grid">
      <div>
        <Typography.Title level={3} style={{ marginTop: 0 }}>
          {t("notifications.title")}
        </Typography.Title>
        <Typography.Paragraph type="secondary" style={{ marginBottom: 0 }}>
          {t("notifications.intro")}
        </Typography.Paragraph>
      </div>
      {!mayHear && !mayManageWebhooks && (
        <Alert type="info" showIcon data-testid="no-notifications" title={t("notifications.notAllowed")} />
      )}
      {mayHear && <DevicesCard devices={devices} />}
      {mayHear && <WebPushCard settings={settings} devices={devices} />}
      {mayHear && <PreferencesCard />}
      {mayManageWebhooks && <WebhooksCard />}
    </div>
  );
}
