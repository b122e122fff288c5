// The detail page's access services: the VM's NodePort / LoadBalancer services, their addresses, create and delete.
// Creating and deleting are offered only to callers with `vm:access-service:manage`; a LoadBalancer whose address is
// not assigned yet is read again until it is.
import type { AccessServiceInfo, Wukong } from "@gen/novasphere/v1/wukong_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, App, Button, Card, Empty, Space, Table, Typography } from "antd";
import { lazy, Suspense, useState } from "react";
import { useTranslation } from "react-i18next";
import { accessClient } from "../../api/clients";
import { problem } from "../../api/errors";
import { holds, session } from "../../api/session";
import { formatDateTime } from "../../i18n/format";
import { AccessAddress } from "./AccessAddresses";

// The dialog (and the form controls only it uses) loads when first opened.
const CreateAccessServiceDialog = lazy(() =>
  import("./CreateAccessServiceDialog").then((m) => ({ default: m.CreateAccessServiceDialog })),
);
const MANAGE = "vm:access-service:manage";
/** How often a pending load balancer's address is looked for. */
const PENDING_REREAD_MS = 2_000;

export function AccessServicesCard({ wukong }: { wukong: Wukong }) {
  const { t } = useTranslation();
  const { message, modal } = App.useApp();
  const queries = useQueryClient();
  const [creating, setCreating] = useState(false);
  const current = session();
  const mayManage = current !== null && holds(current.identity, MANAGE);
  const { namespace, name } = wukong;
  const key = ["access-services", namespace, name];
  const listed = useQuery({
    queryKey: key,
    queryFn: ({ signal }) => accessClient.listAccessServices({ namespace, name }, { signal }),
    refetchInterval: (query) => (query.state.data?.services.some((s) => s.pending) ? PENDING_REREAD_MS : false),
  });
  const reread = () => queries.invalidateQueries({ queryKey: key });

  const confirmDelete = (service: AccessServiceInfo) =>
    modal.confirm({
      title: t("access.deleteTitle", { name: service.name }),
      content: t("access.deleteContent"),
      okText: t("access.delete"),
      okButtonProps: { danger: true },
      cancelText: t("access.cancel"),
      onOk: async () => {
        try {
          await accessClient.deleteAccessService({ namespace, name, serviceName: service.name });
          void message.success(t("access.deleted", { name: service.name }));
        } catch (error) {
          modal.error({ title: t("access.deleteFailed", { name: service.name }), content: problem(error).message });
        } finally {
          await reread();
        }
      },
    });

  return (
    <Card
      title={t("access.title")}
      size="small"
      data-testid="access-services"
      style={{ minWidth: 0 }} // the detail page's grid would otherwise widen to the table's full width
      extra={
        mayManage && (
          <Button size="small" type="primary" onClick={() => setCreating(true)}>
            {t("access.expose")}
          </Button>
        )
      }
    >
      {listed.error && <Alert type="error" showIcon title={t("access.readFailed")} description={problem(listed.error).message} />}
      <Table<AccessServiceInfo>
        size="small"
        pagination={false}
        rowKey="name"
        loading={listed.isLoading}
        dataSource={listed.data?.services ?? []}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: <Empty description={t("access.empty")} /> }}
        columns={[
          { key: "name", title: t("access.columns.name"), dataIndex: "name" },
          { key: "type", title: t("access.columns.type"), dataIndex: "serviceType" },
          {
            key: "ports",
            title: t("access.columns.ports"),
            render: (_, service) => (
              <Space vertical size={0}>
                {service.ports.map((port) => (
                  <Typography.Text key={port.name}>
                    {t(port.nodePort ? "access.portWithNodePort" : "access.port", {
                      port: port.port,
                      target: port.targetPort,
                      protocol: port.protocol,
                      nodePort: port.nodePort,
                    })}
                  </Typography.Text>
                ))}
              </Space>
            ),
          },
          {
            key: "address",
            title: t("access.columns.address"),
            render: (_, service) => (
              <Space vertical size={0}>
                {service.ports.map((port) => (
                  <AccessAddress key={port.name} port={port} />
                ))}
              </Space>
            ),
          },
          { key: "created", title: t("access.columns.created"), render: (_, service) => formatDateTime(service.createTime) },
          ...(mayManage
            ? [
                {
                  key: "actions",
                  title: t("access.columns.actions"),
                  render: (_: unknown, service: AccessServiceInfo) => (
                    <Button
                      size="small"
                      danger
                      aria-label={t("access.deleteLabel", { name: service.name })}
                      onClick={() => confirmDelete(service)}
                    >
                      {t("access.delete")}
                    </Button>
                  ),
                },
              ]
            : []),
        ]}
      />
      {creating && (
        <Suspense>
          <CreateAccessServiceDialog
            wukong={wukong}
            onClose={() => setCreating(false)}
            onCreated={(service) => {
              setCreating(false);
              void message.success(t("access.created", { name: service.name }));
              void reread();
            }}
          />
        </Suspense>
      )}
    </Card>
  );
}
