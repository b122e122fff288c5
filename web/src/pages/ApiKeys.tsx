// The caller's API keys for scripts and services (permission apikey:manage): create one (the key is shown once, with a
// copy button), list them, revoke one. A key acts in this tenant with the permissions picked, never more than its owner
// holds at the time of each call; administration permissions are never given to keys.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CopyOutlined } from "@ant-design/icons";
import type { ApiKey, ListApiKeysResponse } from "@gen/novasphere/v1/auth_service_pb";
import { useQuery } from "@tanstack/react-query";
import { Alert, App, Button, DatePicker, Form, Input, Modal, Select, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { authClient } from "../api/clients";
import { problem } from "../api/errors";
import { session as currentSession, type Session } from "../api/session";
import { formatDateTime } from "../i18n/format";
import { ADMIN, APIKEY_MANAGE, holds, NOT_FOR_API_KEYS } from "./admin/access";
import { ConfirmDialog, FormDialog } from "./admin/dialogs";
import { inPickerOrder, PermissionPicker, usePermissionWords } from "./admin/PermissionPicker";
import { useEditCache, useRoles } from "./admin/queries";

const KEYS = ["apikeys"] as const;
const DAY_MS = 86_400_000;
const EXPIRIES = { "7d": 7, "30d": 30, "90d": 90, "365d": 365 } as const;
type Expiry = keyof typeof EXPIRIES | "date" | "never";

export function ApiKeys() {
  const { t } = useTranslation();
  const signedIn = currentSession();
  const mayManage = signedIn !== null && holds(signedIn.identity, APIKEY_MANAGE);
  const keys = useQuery({
    queryKey: KEYS,
    queryFn: ({ signal }) => authClient.listApiKeys({}, { signal }),
    enabled: mayManage,
    staleTime: 0,
    refetchOnMount: "always",
  });
  const editCache = useEditCache();
  const words = usePermissionWords();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  if (!signedIn) return null; // the route's guard signs in first

  const columns: ColumnsType<ApiKey> = [
    { key: "name", title: t("apikeys.name"), render: (_, k) => <Typography.Text strong>{k.name}</Typography.Text> },
    {
      key: "permissions",
      title: t("apikeys.permissions"),
      render: (_, k) => (
        <Space size={[0, 4]} wrap style={{ maxWidth: 240 }}>
          {inPickerOrder(k.permissions).map((p) => (
            <Tag key={p} title={p}>
              {words(p)}
            </Tag>
          ))}
        </Space>
      ),
    },
    // left out on narrow screens, where name, permissions, expiry and the button fill the width
    { key: "created", title: t("apikeys.created"), render: (_, k) => formatDateTime(k.createTime), responsive: ["lg"] },
    { key: "expires", title: t("apikeys.expires"), render: (_, k) => <Expires apiKey={k} /> },
    {
      key: "actions",
      title: t("apikeys.actions"),
      render: (_, k) => (
        <Button size="small" danger onClick={() => setRevoking(k)} aria-label={t("apikeys.revokeNamed", { name: k.name })}>
          {t("apikeys.revoke")}
        </Button>
      ),
    },
  ];

  return (
    <>
      <Typography.Title level={3} style={{ marginTop: 0 }}>
        {t("apikeys.title")}
      </Typography.Title>
      <div className="toolbar">
        <Typography.Paragraph type="secondary" style={{ margin: 0, flex: 1, minWidth: 240 }}>
          {t("apikeys.intro")} <Typography.Text code>{"X-API-Key: <key>"}</Typography.Text> {/* i18n-ignore: a header */}
        </Typography.Paragraph>
        {mayManage && (
          <Button type="primary" onClick={() => setCreating(true)}>
            {t("apikeys.create")}
          </Button>
        )}
      </div>
      {!mayManage && (
        <Alert type="info" showIcon style={{ marginBottom: 16 }} data-testid="no-apikeys" title={t("apikeys.notAllowed")} />
      )}
      {mayManage && keys.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("apikeys.listFailed")} description={problem(keys.error).message} />
      )}
      {mayManage && (
        <div data-testid="apikeys">
          <Table<ApiKey>
            rowKey="id"
            columns={columns}
            dataSource={keys.data?.apiKeys ?? []}
            loading={keys.isPending}
            pagination={false}
            scroll={{ x: "max-content" }}
            size="middle"
            locale={{ emptyText: t("apikeys.empty") }}
          />
        </div>
      )}
      {creating && (
        <CreateKey
          session={signedIn}
          onClose={() => setCreating(false)}
          onCreated={(key) => {
            editCache<ListApiKeysResponse>(KEYS, (old) => ({
              ...old,
              apiKeys: [...old.apiKeys, { ...key, key: "" }], // the list never holds the key itself
            }));
            setCreated(key);
          }}
        />
      )}
      {created && <ShownOnce apiKey={created} onClose={() => setCreated(null)} />}
      {revoking && (
        <ConfirmDialog
          testId="revoke-key"
          title={t("apikeys.revokeTitle", { name: revoking.name })}
          okText={t("apikeys.revoke")}
          failureTitle={t("apikeys.revokeFailed", { name: revoking.name })}
          danger
          run={async () => {
            await authClient.revokeApiKey({ id: revoking.id });
            editCache<ListApiKeysResponse>(KEYS, (old) => ({
              ...old,
              apiKeys: old.apiKeys.filter((k) => k.id !== revoking.id),
            }));
          }}
          onClose={() => setRevoking(null)}
        >
          <Typography.Paragraph>{t("apikeys.revokeBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
    </>
  );
}

function Expires({ apiKey }: { apiKey: ApiKey }) {
  const { t } = useTranslation();
  if (!apiKey.expireTime) return <Typography.Text type="secondary">{t("apikeys.never")}</Typography.Text>;
  const expired = timestampDate(apiKey.expireTime).getTime() <= Date.now();
  return (
    <Space size="small">
      {formatDateTime(apiKey.expireTime)}
      {expired && <Tag color="red">{t("apikeys.expired")}</Tag>}
    </Space>
  );
}

type NewKey = { name: string; expiry: Expiry; date?: { toDate(): Date }; permissions: string[] };

/** The permissions a key may be given: the caller's own (every known one for `admin`) but administration. */
function useGrantable(session: Session): { permissions: string[]; loading: boolean } {
  const isAdmin = session.identity.permissions.includes(ADMIN);
  const roles = useRoles(isAdmin); // the known permissions: an administrator holds them all
  const own = isAdmin ? roles.data?.knownPermissions ?? [] : session.identity.permissions;
  return { permissions: own.filter((p) => !NOT_FOR_API_KEYS.includes(p)), loading: isAdmin && roles.isPending };
}

function CreateKey(props: { session: Session; onClose: () => void; onCreated: (key: ApiKey) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<NewKey>();
  const grantable = useGrantable(props.session);
  const expiry = Form.useWatch("expiry", form);
  if (grantable.loading) return null;
  return (
    <FormDialog<NewKey>
      testId="create-key"
      name="newKey"
      form={form}
      title={t("apikeys.createTitle")}
      okText={t("apikeys.createOk")}
      failureTitle={t("apikeys.createFailed")}
      initialValues={{ expiry: "90d", permissions: grantable.permissions }}
      rename={(path) => (path[0] === "expireTime" ? ["date"] : path)}
      run={async ({ name, expiry: chosen, date, permissions }) => {
        const expires =
          chosen === "never" ? undefined : chosen === "date" ? date?.toDate() : new Date(Date.now() + EXPIRIES[chosen] * DAY_MS);
        props.onCreated(
          await authClient.createApiKey({
            name: name.trim(),
            permissions,
            expireTime: expires ? timestampFromDate(expires) : undefined,
          }),
        );
      }}
      onClose={props.onClose}
    >
      <Form.Item
        label={t("apikeys.name")}
        name="name"
        extra={t("apikeys.nameHelp")}
        rules={[
          { required: true, whitespace: true, message: t("apikeys.nameRequired") },
          { max: 63, message: t("apikeys.nameRequired") },
        ]}
      >
        <Input autoComplete="off" autoFocus />
      </Form.Item>
      <Form.Item label={t("apikeys.expiry")} name="expiry">
        <Select<Expiry>
          options={[
            { value: "7d", label: t("apikeys.in7d") },
            { value: "30d", label: t("apikeys.in30d") },
            { value: "90d", label: t("apikeys.in90d") },
            { value: "365d", label: t("apikeys.in365d") },
            { value: "date", label: t("apikeys.onDate") },
            { value: "never", label: t("apikeys.noExpiry") },
          ]}
        />
      </Form.Item>
      {expiry === "date" && (
        <Form.Item
          label={t("apikeys.expiryDate")}
          name="date"
          rules={[{ required: true, message: t("apikeys.expiryDateRequired") }]}
        >
          <DatePicker showTime disabledDate={(day) => day.valueOf() < Date.now()} style={{ width: "100%" }} />
        </Form.Item>
      )}
      {expiry === "never" && (
        <Alert type="warning" showIcon style={{ marginBottom: 16 }} title={t("apikeys.noExpiryWarning")} />
      )}
      <Form.Item
        label={t("apikeys.permissions")}
        name="permissions"
        extra={t("apikeys.permissionsHelp")}
        rules={[{ required: true, type: "array", min: 1, message: t("apikeys.permissionsRequired") }]}
      >
        <PermissionPicker available={grantable.permissions} />
      </Form.Item>
    </FormDialog>
  );
}

/** The new key, this one time: copy it now. */
function ShownOnce({ apiKey, onClose }: { apiKey: ApiKey; onClose: () => void }) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(apiKey.key);
      void message.success(t("apikeys.copied"));
    } catch {
      void message.error(t("apikeys.copyFailed"));
    }
  };
  const example = `curl -H "X-API-Key: ${apiKey.key}" ${window.location.origin}/api/v1/wukongs`;
  return (
    <Modal
      open
      title={t("apikeys.shownOnceTitle", { name: apiKey.name })}
      closable={false}
      maskClosable={false}
      keyboard={false}
      rootClassName="dialog-key-shown-once"
      footer={
        <Button type="primary" onClick={onClose}>
          {t("apikeys.copiedDone")}
        </Button>
      }
    >
      <Alert type="warning" showIcon style={{ marginBottom: 16 }} title={t("apikeys.shownOnceWarning")} />
      <Space.Compact style={{ width: "100%" }}>
        <Input readOnly value={apiKey.key} aria-label={t("apikeys.theKey")} data-testid="new-key" onFocus={(e) => e.target.select()} />
        <Button icon={<CopyOutlined />} onClick={() => void copy()}>
          {t("apikeys.copy")}
        </Button>
      </Space.Compact>
      <Typography.Paragraph type="secondary" style={{ marginTop: 16, marginBottom: 4 }}>
        {t("apikeys.example")}
      </Typography.Paragraph>
      <Typography.Paragraph code copyable={{ text: example }} style={{ wordBreak: "break-all" }}>
        {example}
      </Typography.Paragraph>
    </Modal>
  );
}
