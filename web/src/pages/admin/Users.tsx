// Users (permission user:manage): create, disable or enable, reset the password, delete. Disabling and a new password
// end the user's sessions everywhere; deleting removes its sessions, API keys and role bindings too.
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import type { ListUsersResponse, User } from "@gen/novasphere/v1/admin_service_pb";
import { Alert, Button, Form, Input, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { adminClient } from "../../api/clients";
import { problem } from "../../api/errors";
import type { Session } from "../../api/session";
import { ConfirmDialog, FormDialog } from "./dialogs";
import { USERS, useEditCache, useUsers } from "./queries";
import { Refusal } from "./Refusal";

const MIN_PASSWORD = 12;

type Dialog =
  | { kind: "create" }
  | { kind: "password" | "disable" | "delete"; user: User }
  | null;

export function Users({ session }: { session: Session }) {
  const { t } = useTranslation();
  const users = useUsers();
  const editCache = useEditCache();
  const [dialog, setDialog] = useState<Dialog>(null);
  const [enableRefused, setEnableRefused] = useState<{ user: string; error: unknown } | null>(null);
  const me = session.identity.username;

  const replace = (user: User) =>
    editCache<ListUsersResponse>(USERS, (old) => ({
      ...old,
      users: [...old.users.filter((u) => u.username !== user.username), user].sort((a, b) =>
        a.username.localeCompare(b.username),
      ),
    }));
  const setDisabled = async (user: User, disabled: boolean) => {
    replace(
      await adminClient.updateUser({
        username: user.username,
        disabled,
        updateMask: create(FieldMaskSchema, { paths: ["disabled"] }),
      }),
    );
  };
  const enable = async (user: User) => {
    setEnableRefused(null);
    try {
      await setDisabled(user, false);
    } catch (error) {
      setEnableRefused({ user: user.username, error });
    }
  };

  const columns: ColumnsType<User> = [
    {
      key: "username",
      title: t("admin.users.username"),
      render: (_, u) => (
        <Space size="small">
          <Typography.Text strong>{u.username}</Typography.Text>
          {u.username === me && <Tag>{t("admin.users.you")}</Tag>}
        </Space>
      ),
    },
    {
      key: "status",
      title: t("admin.users.status"),
      render: (_, u) =>
        u.disabled ? <Tag color="red">{t("admin.users.disabled")}</Tag> : <Tag color="green">{t("admin.users.active")}</Tag>,
    },
    {
      key: "roles",
      title: t("admin.users.roles"),
      render: (_, u) =>
        u.bindings.length === 0 ? (
          <Typography.Text type="secondary">{t("admin.users.noRoles")}</Typography.Text>
        ) : (
          <Space size={[0, 4]} wrap style={{ maxWidth: 420 }}>
            {u.bindings.map((b) => (
              <Tag key={`${b.tenantId}/${b.role}`}>{t("admin.users.roleInTenant", { role: b.role, tenant: b.tenantId })}</Tag>
            ))}
          </Space>
        ),
    },
    {
      key: "actions",
      title: t("admin.actions"),
      render: (_, u) => (
        <Space size="small" wrap>
          <Button size="small" onClick={() => setDialog({ kind: "password", user: u })}>
            {t("admin.users.resetPassword")}
          </Button>
          {u.disabled ? (
            <Button size="small" onClick={() => void enable(u)}>
              {t("admin.users.enable")}
            </Button>
          ) : (
            <Button size="small" onClick={() => setDialog({ kind: "disable", user: u })}>
              {t("admin.users.disable")}
            </Button>
          )}
          <Button size="small" danger onClick={() => setDialog({ kind: "delete", user: u })}>
            {t("admin.delete")}
          </Button>
        </Space>
      ),
    },
  ];

  return (
    <>
      <div className="toolbar">
        <Typography.Paragraph type="secondary" style={{ margin: 0, flex: 1, minWidth: 240 }}>
          {t("admin.users.intro")}
        </Typography.Paragraph>
        <Button type="primary" onClick={() => setDialog({ kind: "create" })}>
          {t("admin.users.create")}
        </Button>
      </div>
      {users.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("admin.listFailed")} description={problem(users.error).message} />
      )}
      {enableRefused && (
        <Refusal title={t("admin.users.enableFailed", { user: enableRefused.user })} problem={problem(enableRefused.error)} />
      )}
      <div data-testid="users">
        <Table<User>
          rowKey="username"
          columns={columns}
          dataSource={users.data?.users ?? []}
          loading={users.isPending}
          pagination={false}
          scroll={{ x: "max-content" }}
          size="middle"
        />
      </div>
      {dialog?.kind === "create" && <CreateUser onClose={() => setDialog(null)} onCreated={replace} />}
      {dialog?.kind === "password" && (
        <ResetPassword user={dialog.user} onClose={() => setDialog(null)} onChanged={replace} />
      )}
      {dialog?.kind === "disable" && (
        <ConfirmDialog
          testId="disable-user"
          title={t("admin.users.disableTitle", { user: dialog.user.username })}
          okText={t("admin.users.disable")}
          failureTitle={t("admin.users.disableFailed", { user: dialog.user.username })}
          explained={{ SELF_LOCKOUT: t("admin.users.selfDisable") }}
          danger
          run={() => setDisabled(dialog.user, true)}
          onClose={() => setDialog(null)}
        >
          <Typography.Paragraph>{t("admin.users.disableBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
      {dialog?.kind === "delete" && (
        <ConfirmDialog
          testId="delete-user"
          title={t("admin.users.deleteTitle", { user: dialog.user.username })}
          okText={t("admin.delete")}
          failureTitle={t("admin.users.deleteFailed", { user: dialog.user.username })}
          explained={{ SELF_LOCKOUT: t("admin.users.selfDelete") }}
          danger
          run={async () => {
            await adminClient.deleteUser({ username: dialog.user.username });
            editCache<ListUsersResponse>(USERS, (old) => ({
              ...old,
              users: old.users.filter((u) => u.username !== dialog.user.username),
            }));
          }}
          onClose={() => setDialog(null)}
        >
          <Typography.Paragraph>{t("admin.users.deleteBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
    </>
  );
}

type NewUser = { username: string; password: string; repeat: string };

function CreateUser({ onClose, onCreated }: { onClose: () => void; onCreated: (user: User) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<NewUser>();
  return (
    <FormDialog<NewUser>
      testId="create-user"
      name="newUser"
      form={form}
      title={t("admin.users.createTitle")}
      okText={t("admin.create")}
      failureTitle={t("admin.users.createFailed")}
      intro={<Typography.Paragraph type="secondary">{t("admin.users.createIntro")}</Typography.Paragraph>}
      run={async ({ username, password }) => onCreated(await adminClient.createUser({ username: username.trim(), password }))}
      onClose={onClose}
    >
      <Form.Item
        label={t("admin.users.username")}
        name="username"
        extra={t("admin.users.usernameHelp")}
        rules={[{ required: true, whitespace: true, message: t("admin.users.usernameRequired") }]}
      >
        <Input autoComplete="off" autoFocus />
      </Form.Item>
      <PasswordFields />
    </FormDialog>
  );
}

function ResetPassword(props: { user: User; onClose: () => void; onChanged: (user: User) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<{ password: string; repeat: string }>();
  return (
    <FormDialog<{ password: string; repeat: string }>
      testId="reset-password"
      name="resetPassword"
      form={form}
      title={t("admin.users.passwordTitle", { user: props.user.username })}
      okText={t("admin.users.setPassword")}
      failureTitle={t("admin.users.passwordFailed", { user: props.user.username })}
      intro={<Typography.Paragraph type="secondary">{t("admin.users.passwordIntro")}</Typography.Paragraph>}
      run={async ({ password }) =>
        props.onChanged(
          await adminClient.updateUser({
            username: props.user.username,
            password,
            updateMask: create(FieldMaskSchema, { paths: ["password"] }),
          }),
        )
      }
      onClose={props.onClose}
    >
      <PasswordFields />
    </FormDialog>
  );
}

/** A new password, typed twice; the server has the last word on what it accepts. */
function PasswordFields() {
  const { t } = useTranslation();
  return (
    <>
      <Form.Item
        label={t("admin.users.password")}
        name="password"
        extra={t("admin.users.passwordHelp", { min: MIN_PASSWORD })}
        rules={[{ required: true, min: MIN_PASSWORD, message: t("admin.users.passwordHelp", { min: MIN_PASSWORD }) }]}
      >
        <Input.Password autoComplete="new-password" />
      </Form.Item>
      <Form.Item
        label={t("admin.users.repeat")}
        name="repeat"
        dependencies={["password"]}
        rules={[
          { required: true, message: t("admin.users.repeatRequired") },
          ({ getFieldValue }) => ({
            validator: (_, value) =>
              value === getFieldValue("password") ? Promise.resolve() : Promise.reject(new Error(t("admin.users.mismatch"))),
          }),
        ]}
      >
        <Input.Password autoComplete="new-password" />
      </Form.Item>
    </>
  );
}
