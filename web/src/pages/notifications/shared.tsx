// What the notifications page's parts share: the event kinds in words, what became of a send, and the cache keys.
import type { DeliveryOutcome } from "@gen/novasphere/v1/notification_service_pb";
import { Space, Tag, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { LANGUAGE_NAMES } from "../../components/LanguageSwitch";
import type { Language } from "../../i18n";
import { formatDateTime } from "../../i18n/format";

export const DEVICES = ["notifications", "devices"] as const;
export const PREFERENCES = ["notifications", "preferences"] as const;
export const PUSH_SETTINGS = ["notifications", "push-settings"] as const;
export const WEBHOOKS = ["notifications", "webhooks"] as const;

/** Every event kind a person may hear about, in the order the preferences list them. */
export const EVENT_KINDS = [
  "VM_STOPPED_UNEXPECTEDLY",
  "VM_FAILED",
  "TASK_ENDED",
  "TASK_FAILED",
  "CONSOLE_TAKEN_OVER",
  "QUOTA_NEARLY_USED",
] as const;

/** What a tenant's webhooks may hear: the tenant's VMs and quotas, never one person's tasks or consoles. */
export const WEBHOOK_EVENT_KINDS = ["VM_STOPPED_UNEXPECTEDLY", "VM_FAILED", "QUOTA_NEARLY_USED"] as const;

/** Event kinds as the preferences list them (the server sorts them by name); unknown ones last. */
export function inEventOrder(kinds: readonly string[]): string[] {
  const rank = (kind: string) => {
    const index = (EVENT_KINDS as readonly string[]).indexOf(kind);
    return index === -1 ? EVENT_KINDS.length : index;
  };
  return [...kinds].sort((a, b) => rank(a) - rank(b));
}

/** A language tag by its name in its own language (`zh-CN` → 简体中文), or as it is when the console has no name for it. */
export function languageName(tag: string): string {
  return LANGUAGE_NAMES[tag as Language] ?? tag;
}

/** An event kind in words; one this console does not know yet, as the server names it. */
export function useEventWords(): (kind: string) => string {
  const { t } = useTranslation();
  return (kind) => t(`notifications.event.${kind}`, { defaultValue: kind });
}

const OUTCOME_COLOURS: Record<string, string> = { delivered: "green", retry: "orange", failed: "red", gone: "default" };

/** `delivered`, `retry`, `failed` or `gone`, in words and colour. */
export function OutcomeTag({ outcome }: { outcome: string }) {
  const { t } = useTranslation();
  return (
    <Tag color={OUTCOME_COLOURS[outcome] ?? "default"} data-outcome={outcome}>
      {t(`notifications.outcome.${outcome}`, { defaultValue: outcome })}
    </Tag>
  );
}

/** When the last notification went, what became of it and the provider's answer; "never" before the first. */
export function LastDelivery({ last }: { last: DeliveryOutcome | undefined }) {
  const { t } = useTranslation();
  if (!last?.outcome) return <Typography.Text type="secondary">{t("notifications.neverSent")}</Typography.Text>;
  return (
    <Space vertical size={0} style={{ maxWidth: 360 }} data-testid="last-delivery">
      <Space size="small" wrap>
        <OutcomeTag outcome={last.outcome} />
        <Typography.Text>{formatDateTime(last.time)}</Typography.Text>
      </Space>
      {last.detail && (
        <Typography.Text type="secondary" style={{ fontSize: 12, overflowWrap: "anywhere" }}>
          {last.detail}
        </Typography.Text>
      )}
    </Space>
  );
}
