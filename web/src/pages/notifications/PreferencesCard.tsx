// What the caller wants to hear about: event kinds, which VMs, quiet hours and the language of their notifications.
// Saving writes them back whole; the server's field violations go on the fields they name.
import type { NotificationPreferences } from "@gen/novasphere/v1/notification_service_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, App, AutoComplete, Button, Card, Checkbox, Form, Input, Radio, Select, Space, Switch, Typography } from "antd";
import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { notificationClient } from "../../api/clients";
import { problem as problemOf, type Problem } from "../../api/errors";
import { placeViolations } from "../../api/violations";
import { LANGUAGE_NAMES } from "../../components/LanguageSwitch";
import { LANGUAGES } from "../../i18n";
import { Refusal } from "../admin/Refusal";
import { EVENT_KINDS, PREFERENCES, useEventWords } from "./shared";

type Scope = "all" | "names" | "labels";
type Fields = {
  events: string[];
  scope: Scope;
  vmNames: string[];
  vmLabels: string;
  quiet: boolean;
  quietStart: string;
  quietEnd: string;
  timeZone: string;
  locale: string;
};

const CLOCK_TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

/** The browser's own time zone (what quiet hours default to). */
function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function parseKeyValues(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const line of (text ?? "").split("\n")) {
    const [key, ...value] = line.split("=");
    if (key?.trim()) map[key.trim()] = value.join("=").trim();
  }
  return map;
}

function fieldsOf(p: NotificationPreferences): Fields {
  const labels = Object.entries(p.vmLabels);
  return {
    events: [...p.events],
    scope: p.vmNames.length ? "names" : labels.length ? "labels" : "all",
    vmNames: [...p.vmNames],
    vmLabels: labels.map(([k, v]) => `${k}=${v}`).join("\n"),
    quiet: p.quietHours !== undefined,
    quietStart: p.quietHours?.start ?? "22:00",
    quietEnd: p.quietHours?.end ?? "07:00",
    timeZone: p.quietHours?.timeZone || browserTimeZone(),
    locale: p.locale || "en-US",
  };
}

function preferencesOf(f: Fields) {
  return {
    events: f.events,
    vmNames: f.scope === "names" ? f.vmNames.map((n) => n.trim()).filter(Boolean) : [],
    vmLabels: f.scope === "labels" ? parseKeyValues(f.vmLabels) : {},
    quietHours: f.quiet ? { start: f.quietStart.trim(), end: f.quietEnd.trim(), timeZone: f.timeZone.trim() } : undefined,
    locale: f.locale,
  };
}

/** A violated field of the request (`preferences.quiet_hours.time_zone`, `preferences.vm_names[3]`) → the form's. */
function fieldOfViolation(path: (string | number)[]): (string | number)[] {
  const [first, second] = path[0] === "preferences" ? path.slice(1) : path;
  switch (first) {
    case "vmNames":
    case "vmLabels":
    case "events":
    case "locale":
      return [first];
    case "quietHours":
      return second === "start" ? ["quietStart"] : second === "end" ? ["quietEnd"] : second === "timeZone" ? ["timeZone"] : ["quiet"];
    default:
      return path;
  }
}

export function PreferencesCard() {
  const { t } = useTranslation();
  const loaded = useQuery({
    queryKey: PREFERENCES,
    queryFn: ({ signal }) => notificationClient.getNotificationPreferences({}, { signal }),
    staleTime: 0,
    refetchOnMount: "always",
  });
  return (
    <Card title={t("notifications.preferences.title")} size="small" style={{ minWidth: 0 }} data-testid="preferences">
      {loaded.error && (
        <Alert type="error" showIcon title={t("notifications.preferences.readFailed")} description={problemOf(loaded.error).message} />
      )}
      {/* the form starts from what the server holds: made once it has been read */}
      {loaded.data && <PreferencesForm initial={loaded.data} />}
    </Card>
  );
}

function PreferencesForm({ initial }: { initial: NotificationPreferences }) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const queries = useQueryClient();
  const words = useEventWords();
  const [form] = Form.useForm<Fields>();
  const [saving, setSaving] = useState(false);
  const [refused, setRefused] = useState<{ problem: Problem; unplaced: string[] } | null>(null);
  const scope = Form.useWatch("scope", form);
  const quiet = Form.useWatch("quiet", form);
  const zones = useMemo(() => Intl.supportedValuesOf("timeZone").map((zone) => ({ value: zone })), []);

  const save = async () => {
    setSaving(true);
    setRefused(null);
    try {
      const fields = form.getFieldsValue(true) as Fields;
      const saved = await notificationClient.updateNotificationPreferences({
        preferences: preferencesOf(fields),
        requestId: crypto.randomUUID(),
      });
      placeViolations(form, {}); // clears the server's marks of an earlier try
      queries.setQueryData(PREFERENCES, saved);
      form.setFieldsValue(fieldsOf(saved));
      void message.success(t("notifications.preferences.saved"));
    } catch (error) {
      const problem = problemOf(error);
      setRefused({ problem, unplaced: placeViolations(form, problem.fields, fieldOfViolation) });
    } finally {
      setSaving(false);
    }
  };

  return (
    <Form<Fields>
      form={form}
      name="preferences"
      layout="vertical"
      requiredMark={false}
      initialValues={fieldsOf(initial)}
      onFinish={() => void save()}
      style={{ maxWidth: 720 }}
    >
      {refused && <Refusal title={t("notifications.preferences.saveFailed")} problem={refused.problem} unplaced={refused.unplaced} />}
      <Form.Item label={t("notifications.preferences.events")} name="events" extra={t("notifications.preferences.eventsHelp")}>
        <Checkbox.Group style={{ display: "grid", gap: 4 }}>
          {EVENT_KINDS.map((kind) => (
            <Checkbox key={kind} value={kind}>
              {words(kind)}
              {kind === "QUOTA_NEARLY_USED" && (
                <Typography.Text type="secondary"> {t("notifications.preferences.adminsOnly")}</Typography.Text>
              )}
            </Checkbox>
          ))}
        </Checkbox.Group>
      </Form.Item>

      <Form.Item label={t("notifications.preferences.scope")} name="scope">
        <Radio.Group
          options={[
            { value: "all", label: t("notifications.preferences.scopeAll") },
            { value: "names", label: t("notifications.preferences.scopeNames") },
            { value: "labels", label: t("notifications.preferences.scopeLabels") },
          ]}
        />
      </Form.Item>
      {scope === "names" && (
        <Form.Item
          name="vmNames"
          extra={t("notifications.preferences.vmNamesHelp")}
          rules={[{ required: true, type: "array", min: 1, message: t("notifications.preferences.vmNamesRequired") }]}
        >
          <Select
            mode="tags"
            open={false}
            suffixIcon={null}
            tokenSeparators={[",", " "]}
            aria-label={t("notifications.preferences.vmNames")}
            placeholder={t("notifications.preferences.vmNamesPlaceholder")}
          />
        </Form.Item>
      )}
      {scope === "labels" && (
        <Form.Item
          name="vmLabels"
          extra={t("notifications.preferences.vmLabelsHelp")}
          rules={[{ required: true, whitespace: true, message: t("notifications.preferences.vmLabelsRequired") }]}
        >
          <Input.TextArea rows={3} aria-label={t("notifications.preferences.vmLabels")} placeholder={t("notifications.preferences.vmLabelsPlaceholder")} />
        </Form.Item>
      )}

      <Form.Item
        label={t("notifications.preferences.quietHours")}
        name="quiet"
        valuePropName="checked"
        extra={t("notifications.preferences.quietHoursHelp")}
      >
        <Switch aria-label={t("notifications.preferences.quietHours")} />
      </Form.Item>
      {quiet && (
        <Space wrap align="start" size="middle">
          <Form.Item
            label={t("notifications.preferences.quietStart")}
            name="quietStart"
            rules={[{ pattern: CLOCK_TIME, message: t("notifications.preferences.timeInvalid") }]}
          >
            <Input style={{ width: 110 }} maxLength={5} placeholder={t("notifications.preferences.startPlaceholder")} />
          </Form.Item>
          <Form.Item
            label={t("notifications.preferences.quietEnd")}
            name="quietEnd"
            rules={[{ pattern: CLOCK_TIME, message: t("notifications.preferences.timeInvalid") }]}
          >
            <Input style={{ width: 110 }} maxLength={5} placeholder={t("notifications.preferences.endPlaceholder")} />
          </Form.Item>
          <Form.Item
            label={t("notifications.preferences.timeZone")}
            name="timeZone"
            rules={[{ required: true, whitespace: true, message: t("notifications.preferences.timeZoneRequired") }]}
          >
            <AutoComplete
              options={zones}
              style={{ width: 260 }}
              showSearch={{
                filterOption: (typed, option) => (option?.value ?? "").toLowerCase().includes(typed.toLowerCase()),
              }}
            />
          </Form.Item>
        </Space>
      )}

      <Form.Item label={t("notifications.preferences.locale")} name="locale" extra={t("notifications.preferences.localeHelp")}>
        <Select
          style={{ width: 200 }}
          options={LANGUAGES.map((language) => ({ value: language, label: LANGUAGE_NAMES[language] }))}
        />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={saving} data-testid="save-preferences">
        {t("notifications.preferences.save")}
      </Button>
    </Form>
  );
}
