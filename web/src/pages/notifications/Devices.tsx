// The caller's devices: where their notifications go (phones, browsers), what became of the last one sent to each,
// forgetting one, and a test notification to all of them now, with what became of each send.
import {
  DevicePlatform,
  type Device,
  type ListDevicesResponse,
  type TestDelivery,
} from "@gen/novasphere/v1/notification_service_pb";
import type { UseQueryResult } from "@tanstack/react-query";
import { Alert, Button, Card, Empty, List, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { notificationClient } from "../../api/clients";
import { problem, type Problem } from "../../api/errors";
import { ConfirmDialog } from "../admin/dialogs";
import { useEditCache } from "../admin/queries";
import { DEVICES, LastDelivery, languageName, OutcomeTag } from "./shared";

const PLATFORM_KEYS: Record<DevicePlatform, string> = {
  [DevicePlatform.DEVICE_PLATFORM_UNSPECIFIED]: "notifications.platform.unknown",
  [DevicePlatform.ANDROID]: "notifications.platform.android",
  [DevicePlatform.IOS]: "notifications.platform.ios",
  [DevicePlatform.WEB]: "notifications.platform.web",
};

export function PlatformTag({ platform }: { platform: DevicePlatform }) {
  const { t } = useTranslation();
  return <Tag data-platform={DevicePlatform[platform]}>{t(PLATFORM_KEYS[platform] ?? PLATFORM_KEYS[0])}</Tag>;
}

type Tested = { deliveries: TestDelivery[]; names: Map<string, string> } | { problem: Problem };

export function DevicesCard({ devices }: { devices: UseQueryResult<ListDevicesResponse> }) {
  const { t } = useTranslation();
  const editCache = useEditCache();
  const [deleting, setDeleting] = useState<Device | null>(null);
  const [testing, setTesting] = useState(false);
  const [tested, setTested] = useState<Tested | null>(null);
  const listed = devices.data?.devices ?? [];
  const deviceName = (d: Device) => d.name || t(PLATFORM_KEYS[d.platform] ?? PLATFORM_KEYS[0]);

  const sendTest = async () => {
    setTesting(true);
    setTested(null);
    try {
      const answer = await notificationClient.sendTestNotification({});
      setTested({ deliveries: answer.deliveries, names: new Map(listed.map((d) => [d.id, deviceName(d)])) });
      void devices.refetch(); // each device's last delivery is now the test's
    } catch (error) {
      setTested({ problem: problem(error) });
    } finally {
      setTesting(false);
    }
  };

  const columns: ColumnsType<Device> = [
    { key: "platform", title: t("notifications.devices.platform"), render: (_, d) => <PlatformTag platform={d.platform} /> },
    {
      key: "name",
      title: t("notifications.devices.name"),
      render: (_, d) =>
        d.name ? <Typography.Text strong>{d.name}</Typography.Text> : <Typography.Text type="secondary">{t("notifications.devices.unnamed")}</Typography.Text>,
    },
    { key: "appVersion", title: t("notifications.devices.appVersion"), render: (_, d) => d.appVersion || "—" },
    {
      key: "locale",
      title: t("notifications.devices.locale"),
      render: (_, d) => (d.locale ? languageName(d.locale) : t("notifications.devices.localeDefault")),
    },
    { key: "pushService", title: t("notifications.devices.pushService"), render: (_, d) => d.pushService || "—" },
    { key: "last", title: t("notifications.devices.lastDelivery"), render: (_, d) => <LastDelivery last={d.lastDelivery} /> },
    {
      key: "actions",
      title: t("notifications.actions"),
      render: (_, d) => (
        <Button size="small" danger autoInsertSpace={false} onClick={() => setDeleting(d)} aria-label={t("notifications.devices.deleteNamed", { name: deviceName(d) })}>
          {t("notifications.delete")}
        </Button>
      ),
    },
  ];

  return (
    <Card
      title={t("notifications.devices.title")}
      size="small"
      style={{ minWidth: 0 }}
      data-testid="devices"
      extra={
        <Button size="small" onClick={() => void sendTest()} loading={testing} disabled={listed.length === 0} data-testid="send-test">
          {t("notifications.devices.sendTest")}
        </Button>
      }
    >
      <Typography.Paragraph type="secondary">{t("notifications.devices.intro")}</Typography.Paragraph>
      {tested && <TestResults tested={tested} onClose={() => setTested(null)} />}
      {devices.error && (
        <Alert type="error" showIcon style={{ marginBottom: 16 }} title={t("notifications.devices.listFailed")} description={problem(devices.error).message} />
      )}
      <Table<Device>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={listed}
        loading={devices.isPending}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: <Empty description={t("notifications.devices.empty")} /> }}
      />
      {deleting && (
        <ConfirmDialog
          testId="delete-device"
          title={t("notifications.devices.deleteTitle", { name: deviceName(deleting) })}
          okText={t("notifications.delete")}
          failureTitle={t("notifications.devices.deleteFailed", { name: deviceName(deleting) })}
          explained={{ DEVICE_NOT_FOUND: t("notifications.devices.notFound") }}
          danger
          run={async () => {
            await notificationClient.deleteDevice({ id: deleting.id, requestId: crypto.randomUUID() });
            editCache<ListDevicesResponse>(DEVICES, (old) => ({ ...old, devices: old.devices.filter((d) => d.id !== deleting.id) }));
          }}
          onClose={() => setDeleting(null)}
        >
          <Typography.Paragraph>{t("notifications.devices.deleteBody")}</Typography.Paragraph>
        </ConfirmDialog>
      )}
    </Card>
  );
}

/** What became of each device's test send. */
function TestResults({ tested, onClose }: { tested: Tested; onClose: () => void }) {
  const { t } = useTranslation();
  if ("problem" in tested) {
    return (
      <Alert
        type="error"
        showIcon
        closable={{ onClose }}
        style={{ marginBottom: 16 }}
        data-testid="test-results"
        title={t("notifications.devices.testFailed")}
        description={tested.problem.message}
      />
    );
  }
  const delivered = tested.deliveries.filter((d) => d.outcome === "delivered").length;
  const all = tested.deliveries.length;
  return (
    <Alert
      type={delivered === all ? "success" : delivered === 0 ? "error" : "warning"}
      showIcon
      closable={{ onClose }}
      style={{ marginBottom: 16 }}
      data-testid="test-results"
      title={t("notifications.devices.testSummary", { delivered, count: all })}
      description={
        <List
          size="small"
          split={false}
          dataSource={tested.deliveries}
          renderItem={(d) => (
            <List.Item style={{ paddingInline: 0 }} data-device-id={d.deviceId}>
              <Space size="small" wrap>
                <Typography.Text strong>{tested.names.get(d.deviceId) ?? d.deviceId}</Typography.Text>
                <OutcomeTag outcome={d.outcome} />
                {d.detail && <Typography.Text type="secondary">{d.detail}</Typography.Text>}
              </Space>
            </List.Item>
          )}
        />
      }
    />
  );
}
