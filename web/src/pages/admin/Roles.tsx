// Roles: names for sets of permissions, picked from the server's list of known permissions (listing needs
// binding:manage, defining and deleting role:manage). A change applies at once to everyone holding the role.
import type { ListRolesResponse, Role } from "@gen/novasphere/v1/admin_service_pb";
import { Alert, Button, Form, Input, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { adminClient } from "../../api/clients";
import { problem } from "../../api/errors";
import type { Session } from "../../api/session";
import { holds, ROLE_MANAGE } from "./access";
import { ConfirmDialog, FormDialog } from "./dialogs";
import { groupByResource, PermissionPicker, usePermissionWords, useResourceWords } from "./PermissionPicker";
import { ROLES, useEditCache, useRoles } from "./queries";

type Dialog = { kind: "create" } | { kind: "edit" | "delete"; role: Role } | null;

export function Roles({ session }: { session: Session }) {
  const { t } = useTranslation();
  const roles = useRoles();
  const editCache = useEditCache();
  const words = usePermissionWords();
  const resourceWords = useResourceWords();
  const [dialog, setDialog] = useState<Dialog>(null);
  const mayEdit = holds(session.identity, ROLE_MANAGE);

  const columns: ColumnsType<Role> = [
    { key: "name", title: t("admin.roles.name"), render: (_, r) => <Typography.Text strong>{r.name}</Typography.Text> },
    {
      key: "permissions",
      title: t("admin.roles.permissions"),
      render: (_, r) => (
        <Space direction="vertical" size={2} style={{ maxWidth: 560 }}>
          {groupByResource(r.permissions).map(([resource, permissions]) => (
            <span key={resource}>
              <Typography.Text type="secondary">{resourceWords(resource)}: </Typography.Text>
              <Space size={[0, 4]} wrap style={{ display: "inline-flex" }}>
                {permissions.map((p) => (
                  <Tag key={p} title={p}>
                    {words(p)}
                  </Tag>
                ))}
              </Space>
            </span>
          ))}
        </Space>
      ),
    },
    ...(mayEdit
      ? [
          {
            key: "actions",
            title: t("admin.actions"),
            render: (_: unknown, r: Role) => (
              <Space size="small">
                <Button size="small" onClick={() => setDialog({ kind: "edit", role: r })}>
                  {t("admin.roles.edit")}
                </Button>
                <Button size="small" danger onClick={() => setDialog({ kind: "delete", role: r })}>
                  {t("admin.delete")}
                </Button>
              </Space>
            ),
          },
        ]
      : []),
  ];
  const saved = (role: Role) =>
    editCache<ListRolesResponse>(ROLES, (old) => ({
      ...old,
      roles: [...old.roles.filter((r) => r.name !== role.name), role].sort((a, b) => a.name.localeCompare(b.name)),
    }));

  return (
    <>
      <div className="toolbar">
        <Typography.Paragraph type="secondary" style={{ margin: 0, flex: 1, minWidth: 240 }}>
          {t("admin.roles.intro")}
        </Typography.Paragraph>
        {mayEdit && (
          <Button type="primary" onClick={() => setDialog({ kind: "create" })}>
            {t("admin.roles.create")}
          </Button>
        )}
      </div>
      {roles.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("admin.listFailed")} description={problem(roles.error).message} />
      )}
      <div data-testid="roles">
        <Table<Role>
          rowKey="name"
          columns={columns}
          dataSource={roles.data?.roles ?? []}
          loading={roles.isPending}
          pagination={false}
          scroll={{ x: "max-content" }}
          size="middle"
        />
      </div>
      {(dialog?.kind === "create" || dialog?.kind === "edit") && (
        <RoleEditor
          role={dialog.kind === "edit" ? dialog.role : null}
          known={roles.data?.knownPermissions ?? []}
          onClose={() => setDialog(null)}
          onSaved={saved}
        />
      )}
      {dialog?.kind === "delete" && (
        <ConfirmDialog
          testId="delete-role"
          title={t("admin.roles.deleteTitle", { role: dialog.role.name })}
          okText={t("admin.delete")}
          failureTitle={t("admin.roles.deleteFailed", { role: dialog.role.name })}
          danger
          run={async () => {
            await adminClient.deleteRole({ name: dialog.role.name });
            editCache<ListRolesResponse>(ROLES, (old) => ({
              ...old,
              roles: old.roles.filter((r) => r.name !== dialog.role.name),
            }));
          }}
          onClose={() => setDialog(null)}
        >
          <Typography.Paragraph>{t("admin.roles.deleteBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
    </>
  );
}

type RoleFields = { name: string; permissions: string[] };

function RoleEditor(props: {
  role: Role | null;
  known: readonly string[];
  onClose: () => void;
  onSaved: (role: Role) => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<RoleFields>();
  const editing = props.role !== null;
  return (
    <FormDialog<RoleFields>
      testId="role-editor"
      name="role"
      form={form}
      title={editing ? t("admin.roles.editTitle", { role: props.role?.name }) : t("admin.roles.createTitle")}
      okText={t("admin.save")}
      failureTitle={t("admin.roles.saveFailed")}
      initialValues={{ name: props.role?.name ?? "", permissions: props.role?.permissions ?? [] }}
      intro={editing && <Alert type="info" showIcon style={{ marginBottom: 16 }} title={t("admin.roles.editApplies")} />}
      run={async ({ name, permissions }) => props.onSaved(await adminClient.putRole({ name: name.trim(), permissions }))}
      onClose={props.onClose}
    >
      <Form.Item
        label={t("admin.roles.name")}
        name="name"
        extra={editing ? undefined : t("admin.roles.nameHelp")}
        rules={[{ required: true, whitespace: true, message: t("admin.roles.nameRequired") }]}
      >
        <Input disabled={editing} autoComplete="off" autoFocus={!editing} />
      </Form.Item>
      <Form.Item
        label={t("admin.roles.permissions")}
        name="permissions"
        rules={[{ required: true, type: "array", min: 1, message: t("admin.roles.permissionsRequired") }]}
      >
        <PermissionPicker available={props.known} />
      </Form.Item>
    </FormDialog>
  );
}
