// Tenants (permission tenant:manage): each a set of labelled namespaces, the first the default. Deleting one releases
// its namespaces (they and their VMs stay) and removes its role bindings; it is confirmed by typing its name.
import type { ListTenantsResponse, Tenant } from "@gen/novasphere/v1/admin_service_pb";
import { Alert, Button, Form, Input, Select, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { adminClient } from "../../api/clients";
import { problem } from "../../api/errors";
import type { Session } from "../../api/session";
import { formatNumber } from "../../i18n/format";
import { ConfirmDialog, FormDialog } from "./dialogs";
import { TENANTS, useEditCache, useTenants } from "./queries";

type Dialog = { kind: "create" } | { kind: "delete"; tenant: Tenant } | null;

export function Tenants({ session }: { session: Session }) {
  const { t } = useTranslation();
  const tenants = useTenants();
  const editCache = useEditCache();
  const [dialog, setDialog] = useState<Dialog>(null);

  const columns: ColumnsType<Tenant> = [
    {
      key: "tenant",
      title: t("admin.tenants.tenant"),
      render: (_, tenant) => (
        <Space size="small">
          <Typography.Text strong>{tenant.tenantId}</Typography.Text>
          {tenant.tenantId === session.identity.tenantId && <Tag>{t("admin.tenants.current")}</Tag>}
        </Space>
      ),
    },
    {
      key: "namespaces",
      title: t("admin.tenants.namespaces"),
      render: (_, tenant) => (
        <Space size={[0, 4]} wrap style={{ maxWidth: 480 }}>
          {tenant.namespaces.length === 0 && "—"}
          {tenant.namespaces.map((namespace) => (
            <Tag key={namespace} color={namespace === tenant.defaultNamespace ? "blue" : undefined}>
              {namespace === tenant.defaultNamespace ? t("admin.tenants.defaultNamespace", { namespace }) : namespace}
            </Tag>
          ))}
        </Space>
      ),
    },
    { key: "members", title: t("admin.tenants.members"), render: (_, tenant) => formatNumber(tenant.members) },
    {
      key: "actions",
      title: t("admin.actions"),
      render: (_, tenant) => (
        <Button size="small" danger onClick={() => setDialog({ kind: "delete", tenant })}>
          {t("admin.delete")}
        </Button>
      ),
    },
  ];

  return (
    <>
      <div className="toolbar">
        <Typography.Paragraph type="secondary" style={{ margin: 0, flex: 1, minWidth: 240 }}>
          {t("admin.tenants.intro")}
        </Typography.Paragraph>
        <Button type="primary" onClick={() => setDialog({ kind: "create" })}>
          {t("admin.tenants.create")}
        </Button>
      </div>
      {tenants.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("admin.listFailed")} description={problem(tenants.error).message} />
      )}
      <div data-testid="tenants">
        <Table<Tenant>
          rowKey="tenantId"
          columns={columns}
          dataSource={tenants.data?.tenants ?? []}
          loading={tenants.isPending}
          pagination={false}
          scroll={{ x: "max-content" }}
          size="middle"
        />
      </div>
      {dialog?.kind === "create" && (
        <CreateTenant
          onClose={() => setDialog(null)}
          onCreated={(tenant) =>
            editCache<ListTenantsResponse>(TENANTS, (old) => ({
              ...old,
              tenants: [...old.tenants.filter((x) => x.tenantId !== tenant.tenantId), tenant].sort((a, b) =>
                a.tenantId.localeCompare(b.tenantId),
              ),
            }))
          }
        />
      )}
      {dialog?.kind === "delete" && (
        <ConfirmDialog
          testId="delete-tenant"
          title={t("admin.tenants.deleteTitle", { tenant: dialog.tenant.tenantId })}
          okText={t("admin.delete")}
          failureTitle={t("admin.tenants.deleteFailed", { tenant: dialog.tenant.tenantId })}
          explained={{ SELF_LOCKOUT: t("admin.tenants.selfDelete") }}
          danger
          typeToConfirm={dialog.tenant.tenantId}
          run={async () => {
            await adminClient.deleteTenant({ tenantId: dialog.tenant.tenantId });
            editCache<ListTenantsResponse>(TENANTS, (old) => ({
              ...old,
              tenants: old.tenants.filter((x) => x.tenantId !== dialog.tenant.tenantId),
            }));
          }}
          onClose={() => setDialog(null)}
        >
          <Typography.Paragraph>
            {t("admin.tenants.deleteBody", { namespaces: dialog.tenant.namespaces.join(", ") || "—" })}
          </Typography.Paragraph>
        </ConfirmDialog>
      )}
    </>
  );
}

type NewTenant = { tenantId: string; namespaces: string[] };

function CreateTenant({ onClose, onCreated }: { onClose: () => void; onCreated: (tenant: Tenant) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<NewTenant>();
  return (
    <FormDialog<NewTenant>
      testId="create-tenant"
      name="newTenant"
      form={form}
      title={t("admin.tenants.createTitle")}
      okText={t("admin.create")}
      failureTitle={t("admin.tenants.createFailed")}
      initialValues={{ namespaces: [] }}
      // namespaces[2] is the one namespaces field
      rename={(path) => (path[0] === "namespaces" ? ["namespaces"] : path)}
      run={async ({ tenantId, namespaces }) =>
        onCreated(await adminClient.createTenant({ tenantId: tenantId.trim(), namespaces: namespaces.map((n) => n.trim()) }))
      }
      onClose={onClose}
    >
      <Form.Item
        label={t("admin.tenants.tenantId")}
        name="tenantId"
        extra={t("admin.tenants.dnsLabel")}
        rules={[{ required: true, whitespace: true, message: t("admin.tenants.tenantIdRequired") }]}
      >
        <Input autoComplete="off" autoFocus />
      </Form.Item>
      <Form.Item
        label={t("admin.tenants.namespaces")}
        name="namespaces"
        extra={t("admin.tenants.namespacesHelp")}
        rules={[{ required: true, type: "array", min: 1, message: t("admin.tenants.namespacesRequired") }]}
      >
        <Select mode="tags" open={false} tokenSeparators={[",", " "]} suffixIcon={null} />
      </Form.Item>
    </FormDialog>
  );
}
