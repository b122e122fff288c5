// Role bindings in the caller's own tenant (permission binding:manage): who holds which role here. Only roles within
// the caller's own permissions can be given or taken (the server refuses the rest, and the form warns before).
import type { Identity } from "@gen/novasphere/v1/auth_service_pb";
import type { ListRoleBindingsResponse, RoleBinding } from "@gen/novasphere/v1/admin_service_pb";
import { Alert, AutoComplete, Button, Form, Select, Table, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import type { TFunction } from "i18next";
import { useTranslation } from "react-i18next";
import { adminClient } from "../../api/clients";
import { problem } from "../../api/errors";
import type { Session } from "../../api/session";
import { beyondCaller, holds, USER_MANAGE } from "./access";
import { ConfirmDialog, FormDialog } from "./dialogs";
import { inPickerOrder, usePermissionWords } from "./PermissionPicker";
import { BINDINGS, useBindings, useEditCache, useRoles, useUsers } from "./queries";

type Dialog = { kind: "create" } | { kind: "delete"; binding: RoleBinding } | null;

const key = (b: RoleBinding) => `${b.username}/${b.role}`;

export function Bindings({ session }: { session: Session }) {
  const { t } = useTranslation();
  const bindings = useBindings();
  const roles = useRoles();
  const permissionsOf = (role: string) => roles.data?.roles.find((r) => r.name === role)?.permissions ?? [];
  const editCache = useEditCache();
  const [dialog, setDialog] = useState<Dialog>(null);
  const { identity } = session;

  const columns: ColumnsType<RoleBinding> = [
    { key: "user", title: t("admin.bindings.user"), render: (_, b) => <Typography.Text strong>{b.username}</Typography.Text> },
    { key: "role", title: t("admin.bindings.role"), render: (_, b) => b.role },
    {
      key: "actions",
      title: t("admin.actions"),
      render: (_, b) => (
        <Button size="small" danger onClick={() => setDialog({ kind: "delete", binding: b })}>
          {t("admin.delete")}
        </Button>
      ),
    },
  ];
  const mine = dialog?.kind === "delete" && dialog.binding.username === identity.username;
  return (
    <>
      <div className="toolbar">
        <Typography.Paragraph type="secondary" style={{ margin: 0, flex: 1, minWidth: 240 }}>
          {t("admin.bindings.intro", { tenant: identity.tenantId })}
        </Typography.Paragraph>
        <Button type="primary" onClick={() => setDialog({ kind: "create" })}>
          {t("admin.bindings.create")}
        </Button>
      </div>
      {bindings.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("admin.listFailed")} description={problem(bindings.error).message} />
      )}
      <div data-testid="bindings">
        <Table<RoleBinding>
          rowKey={key}
          columns={columns}
          dataSource={bindings.data?.roleBindings ?? []}
          loading={bindings.isPending}
          pagination={false}
          scroll={{ x: "max-content" }}
          size="middle"
        />
      </div>
      {dialog?.kind === "create" && (
        <CreateBinding
          session={session}
          onClose={() => setDialog(null)}
          onCreated={(binding) => {
            editCache<ListRoleBindingsResponse>(BINDINGS, (old) => ({
              ...old,
              roleBindings: [...old.roleBindings.filter((b) => key(b) !== key(binding)), binding].sort((a, b) =>
                key(a).localeCompare(key(b)),
              ),
            }));
          }}
        />
      )}
      {dialog?.kind === "delete" && (
        <ConfirmDialog
          testId="delete-binding"
          title={t("admin.bindings.deleteTitle", { user: dialog.binding.username, role: dialog.binding.role })}
          okText={t("admin.bindings.take")}
          failureTitle={t("admin.bindings.deleteFailed", { user: dialog.binding.username, role: dialog.binding.role })}
          explained={{ PERMISSION_DENIED: beyondWords(t, identity, dialog.binding.role, permissionsOf(dialog.binding.role)) }}
          danger
          run={async () => {
            const { username, role } = dialog.binding;
            await adminClient.deleteRoleBinding({ username, role });
            editCache<ListRoleBindingsResponse>(BINDINGS, (old) => ({
              ...old,
              roleBindings: old.roleBindings.filter((b) => key(b) !== key(dialog.binding)),
            }));
          }}
          onClose={() => setDialog(null)}
        >
          <Typography.Paragraph>{t("admin.bindings.deleteBody")}</Typography.Paragraph>
          {mine && <Alert type="warning" showIcon title={t("admin.bindings.deleteMine")} />}
        </ConfirmDialog>
      )}
    </>
  );
}

/** Why the server refused to give or take `role`: the permissions of it the caller lacks. */
function beyondWords(t: TFunction, identity: Identity, role: string, permissions: readonly string[]): string {
  const beyond = beyondCaller(identity, permissions);
  return beyond.length
    ? t("admin.bindings.beyond", { role, permissions: beyond.join(", ") })
    : t("admin.refusal.PERMISSION_DENIED");
}

type NewBinding = { username: string; role: string };

function CreateBinding(props: { session: Session; onClose: () => void; onCreated: (binding: RoleBinding) => void }) {
  const { t } = useTranslation();
  const { identity } = props.session;
  const [form] = Form.useForm<NewBinding>();
  const words = usePermissionWords();
  const roles = useRoles();
  // Known users to pick from, for who may list them; anyone else types the name.
  const users = useUsers(holds(identity, USER_MANAGE));
  const chosenRole = Form.useWatch("role", form);
  const permissionsOf = (role: string) => roles.data?.roles.find((r) => r.name === role)?.permissions ?? [];
  const beyond = chosenRole ? beyondCaller(identity, permissionsOf(chosenRole)) : [];
  return (
    <FormDialog<NewBinding>
      testId="create-binding"
      name="newBinding"
      form={form}
      title={t("admin.bindings.createTitle", { tenant: identity.tenantId })}
      okText={t("admin.bindings.grant")}
      failureTitle={t("admin.bindings.createFailed")}
      explained={{ PERMISSION_DENIED: beyondWords(t, identity, chosenRole ?? "", permissionsOf(chosenRole ?? "")) }}
      run={async ({ username, role }) => props.onCreated(await adminClient.createRoleBinding({ username: username.trim(), role }))}
      onClose={props.onClose}
    >
      <Form.Item
        label={t("admin.bindings.user")}
        name="username"
        rules={[{ required: true, whitespace: true, message: t("admin.bindings.userRequired") }]}
      >
        <AutoComplete
          options={(users.data?.users ?? []).map((u) => ({ value: u.username }))}
          filterOption={(typed, option) => (option?.value ?? "").includes(typed.trim())}
          autoFocus
        />
      </Form.Item>
      <Form.Item
        label={t("admin.bindings.role")}
        name="role"
        rules={[{ required: true, message: t("admin.bindings.roleRequired") }]}
        extra={
          chosenRole && (
            <Typography.Text type="secondary">{inPickerOrder(permissionsOf(chosenRole)).map(words).join(", ")}</Typography.Text>
          )
        }
      >
        <Select
          loading={roles.isPending}
          options={(roles.data?.roles ?? []).map((r) => ({ value: r.name, label: r.name }))}
        />
      </Form.Item>
      {beyond.length > 0 && (
        <Alert
          type="warning"
          showIcon
          data-testid="beyond-warning"
          title={t("admin.bindings.beyondWarning", { permissions: beyond.join(", ") })}
        />
      )}
    </FormDialog>
  );
}
