// The tenant's chat webhooks (permission notification:webhook:manage): DingTalk, Feishu/Lark and WeCom robots, or any
// receiver of a signed JSON POST. A webhook's URL and secret are credentials: sent once, when it is added, and never
// shown again (the list shows the host).
import { WebhookKind, type ListWebhooksResponse, type Webhook } from "@gen/novasphere/v1/notification_service_pb";
import { useQuery } from "@tanstack/react-query";
import { Alert, App, Button, Card, Checkbox, Empty, Form, Input, Select, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { notificationClient } from "../../api/clients";
import { problem } from "../../api/errors";
import { LANGUAGE_NAMES } from "../../components/LanguageSwitch";
import { LANGUAGES } from "../../i18n";
import { formatDateTime } from "../../i18n/format";
import { ConfirmDialog, FormDialog } from "../admin/dialogs";
import { useEditCache } from "../admin/queries";
import { inEventOrder, languageName, LastDelivery, useEventWords, WEBHOOK_EVENT_KINDS, WEBHOOKS } from "./shared";

const KINDS: { kind: WebhookKind; key: string }[] = [
  { kind: WebhookKind.DINGTALK, key: "dingtalk" },
  { kind: WebhookKind.FEISHU, key: "feishu" },
  { kind: WebhookKind.WECOM, key: "wecom" },
  { kind: WebhookKind.GENERIC, key: "generic" },
];
const kindKey = (kind: WebhookKind) => KINDS.find((k) => k.kind === kind)?.key ?? "unknown";

const EXPLAINED = (t: (key: string) => string) => ({
  WEBHOOK_ALREADY_EXISTS: t("notifications.webhooks.alreadyExists"),
  TOO_MANY_WEBHOOKS: t("notifications.webhooks.tooMany"),
  WEBHOOK_NOT_FOUND: t("notifications.webhooks.notFound"),
});

export function WebhooksCard() {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const words = useEventWords();
  const editCache = useEditCache();
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const listed = useQuery({
    queryKey: WEBHOOKS,
    queryFn: ({ signal }) => notificationClient.listWebhooks({}, { signal }),
    staleTime: 0,
    refetchOnMount: "always",
  });

  const columns: ColumnsType<Webhook> = [
    { key: "name", title: t("notifications.webhooks.name"), render: (_, w) => <Typography.Text strong>{w.name}</Typography.Text> },
    { key: "kind", title: t("notifications.webhooks.kind"), render: (_, w) => t(`notifications.webhooks.kinds.${kindKey(w.kind)}`) },
    { key: "host", title: t("notifications.webhooks.host"), render: (_, w) => <Typography.Text code>{w.host}</Typography.Text> },
    {
      key: "signed",
      title: t("notifications.webhooks.signed"),
      render: (_, w) =>
        w.signed ? <Tag color="green">{t("notifications.webhooks.isSigned")}</Tag> : <Tag>{t("notifications.webhooks.notSigned")}</Tag>,
    },
    {
      key: "events",
      title: t("notifications.webhooks.events"),
      render: (_, w) => (
        <Space size={[0, 4]} wrap style={{ maxWidth: 260 }}>
          {inEventOrder(w.events).map((kind) => (
            <Tag key={kind} title={kind}>
              {words(kind)}
            </Tag>
          ))}
        </Space>
      ),
    },
    { key: "locale", title: t("notifications.webhooks.locale"), render: (_, w) => languageName(w.locale) },
    {
      key: "created",
      title: t("notifications.webhooks.createdBy"),
      render: (_, w) => (
        <Space vertical size={0}>
          <Typography.Text>{w.createdBy}</Typography.Text>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {formatDateTime(w.createTime)}
          </Typography.Text>
        </Space>
      ),
    },
    { key: "last", title: t("notifications.webhooks.lastDelivery"), render: (_, w) => <LastDelivery last={w.lastDelivery} /> },
    {
      key: "actions",
      title: t("notifications.actions"),
      render: (_, w) => (
        <Button size="small" danger autoInsertSpace={false} onClick={() => setDeleting(w)} aria-label={t("notifications.webhooks.deleteNamed", { name: w.name })}>
          {t("notifications.delete")}
        </Button>
      ),
    },
  ];

  return (
    <Card
      title={t("notifications.webhooks.title")}
      size="small"
      style={{ minWidth: 0 }}
      data-testid="webhooks"
      extra={
        <Button size="small" type="primary" onClick={() => setCreating(true)}>
          {t("notifications.webhooks.create")}
        </Button>
      }
    >
      <Typography.Paragraph type="secondary">{t("notifications.webhooks.intro")}</Typography.Paragraph>
      {listed.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("notifications.webhooks.listFailed")} description={problem(listed.error).message} />
      )}
      <Table<Webhook>
        rowKey="name"
        size="small"
        columns={columns}
        dataSource={listed.data?.webhooks ?? []}
        loading={listed.isPending}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: <Empty description={t("notifications.webhooks.empty")} /> }}
      />
      {creating && (
        <CreateWebhook
          onClose={() => setCreating(false)}
          onCreated={(webhook) => {
            editCache<ListWebhooksResponse>(WEBHOOKS, (old) => ({
              ...old,
              webhooks: [...old.webhooks.filter((w) => w.name !== webhook.name), webhook].sort((a, b) => a.name.localeCompare(b.name)),
            }));
            void message.success(t("notifications.webhooks.created", { name: webhook.name }));
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          testId="delete-webhook"
          title={t("notifications.webhooks.deleteTitle", { name: deleting.name })}
          okText={t("notifications.delete")}
          failureTitle={t("notifications.webhooks.deleteFailed", { name: deleting.name })}
          explained={EXPLAINED(t)}
          danger
          run={async () => {
            await notificationClient.deleteWebhook({ name: deleting.name, requestId: crypto.randomUUID() });
            editCache<ListWebhooksResponse>(WEBHOOKS, (old) => ({ ...old, webhooks: old.webhooks.filter((w) => w.name !== deleting.name) }));
          }}
          onClose={() => setDeleting(null)}
        >
          <Typography.Paragraph>{t("notifications.webhooks.deleteBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
    </Card>
  );
}

type NewWebhook = { kind: WebhookKind; name: string; url: string; secret: string; events: string[]; locale: string };

function CreateWebhook({ onClose, onCreated }: { onClose: () => void; onCreated: (webhook: Webhook) => void }) {
  const { t, i18n } = useTranslation();
  const words = useEventWords();
  const [form] = Form.useForm<NewWebhook>();
  const kind = Form.useWatch("kind", form) ?? WebhookKind.DINGTALK;
  const key = kindKey(kind);
  return (
    <FormDialog<NewWebhook>
      testId="create-webhook"
      name="newWebhook"
      form={form}
      title={t("notifications.webhooks.createTitle")}
      okText={t("notifications.webhooks.createOk")}
      failureTitle={t("notifications.webhooks.createFailed")}
      explained={EXPLAINED(t)}
      initialValues={{
        kind: WebhookKind.DINGTALK,
        name: "",
        url: "",
        secret: "",
        events: [...WEBHOOK_EVENT_KINDS],
        locale: i18n.language,
      }}
      rename={(path) => (path[0] === "events" ? ["events"] : path)}
      intro={<Alert type="warning" showIcon style={{ marginBottom: 16 }} title={t("notifications.webhooks.shownOnce")} />}
      run={async (values) => {
        onCreated(
          await notificationClient.createWebhook({
            kind: values.kind,
            name: values.name.trim(),
            url: values.url.trim(),
            secret: values.kind === WebhookKind.WECOM ? "" : values.secret,
            events: values.events,
            locale: values.locale,
            requestId: crypto.randomUUID(),
          }),
        );
      }}
      onClose={onClose}
    >
      <Form.Item label={t("notifications.webhooks.kind")} name="kind">
        <Select<WebhookKind> options={KINDS.map((k) => ({ value: k.kind, label: t(`notifications.webhooks.kinds.${k.key}`) }))} />
      </Form.Item>
      <Form.Item
        label={t("notifications.webhooks.name")}
        name="name"
        extra={t("notifications.webhooks.nameHelp")}
        rules={[
          { required: true, message: t("notifications.webhooks.nameInvalid") },
          { pattern: /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/, message: t("notifications.webhooks.nameInvalid") },
        ]}
      >
        <Input autoComplete="off" autoFocus />
      </Form.Item>
      <Form.Item
        label={t("notifications.webhooks.url")}
        name="url"
        extra={t(`notifications.webhooks.urlHelp.${key}`)}
        rules={[{ required: true, whitespace: true, message: t("notifications.webhooks.urlRequired") }]}
      >
        <Input autoComplete="off" spellCheck={false} />
      </Form.Item>
      {kind !== WebhookKind.WECOM && (
        <Form.Item
          label={t("notifications.webhooks.secret")}
          name="secret"
          extra={t(`notifications.webhooks.secretHelp.${key}`)}
          rules={
            kind === WebhookKind.GENERIC
              ? [{ required: true, min: 16, message: t("notifications.webhooks.secretTooShort") }]
              : []
          }
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
      )}
      <Form.Item
        label={t("notifications.webhooks.events")}
        name="events"
        extra={t("notifications.webhooks.eventsHelp")}
        rules={[{ required: true, type: "array", min: 1, message: t("notifications.webhooks.eventsRequired") }]}
      >
        <Checkbox.Group style={{ display: "grid", gap: 4 }} options={WEBHOOK_EVENT_KINDS.map((k) => ({ value: k, label: words(k) }))} />
      </Form.Item>
      <Form.Item label={t("notifications.webhooks.locale")} name="locale" extra={t("notifications.webhooks.localeHelp")}>
        <Select options={LANGUAGES.map((language) => ({ value: language, label: LANGUAGE_NAMES[language] }))} />
      </Form.Item>
    </FormDialog>
  );
}
