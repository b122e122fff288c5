// Exposes ports of a VM: a NodePort or LoadBalancer service with one row per port. The server's refusals land on
// the row and field they name (`ports[1].node_port` on the second row's node port); the rest above the form.
import type { AccessServiceInfo, Wukong } from "@gen/novasphere/v1/wukong_pb";
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { Alert, Button, Flex, Form, Input, InputNumber, Modal, Radio, Select, Space } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { accessClient } from "../../api/clients";
import { problem } from "../../api/errors";
import { placeViolations } from "../../api/violations";
import { exposeCommand } from "../../cli/vmctl";
import { CopyAsCli } from "../CopyAsCli";

type ServiceType = "NodePort" | "LoadBalancer";
type PortRow = { port: number | null; targetPort: number | null; nodePort: number | null; protocol: string };
type Fields = { serviceType: ServiceType; serviceName: string; ports: PortRow[] };

const FORM = "access-create";
// Empty numbers are null, not absent: a server violation can only be placed on a field whose key exists.
const NEW_PORT: PortRow = { port: null, targetPort: null, nodePort: null, protocol: "TCP" };
const PORT_RANGE = { min: 1, max: 65535, precision: 0, style: { width: "100%" } };
// The row's fields share its width: a long error under one field wraps within it instead of pushing the next
// field to a line of its own.
const FIELD = { style: { flex: "1 1 100px", minWidth: 0 } };

export function CreateAccessServiceDialog(props: {
  wukong: Wukong;
  onClose: () => void;
  onCreated: (service: AccessServiceInfo) => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Fields>();
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<string[]>([]);
  const serviceType = (Form.useWatch("serviceType", form) as ServiceType | undefined) ?? "NodePort";

  const create = async (fields: Fields) => {
    setBusy(true);
    try {
      const created = await accessClient.createAccessService({
        namespace: props.wukong.namespace,
        name: props.wukong.name,
        serviceType: fields.serviceType,
        serviceName: fields.serviceName.trim(),
        ports: fields.ports.map((row) => ({
          port: row.port ?? 0,
          targetPort: row.targetPort ?? 0,
          nodePort: fields.serviceType === "NodePort" ? (row.nodePort ?? 0) : 0,
          protocol: row.protocol,
        })),
      });
      props.onCreated(created);
    } catch (error) {
      const p = problem(error);
      const unplaced = placeViolations(form, p.fields);
      setErrors(unplaced.length || !Object.keys(p.fields).length ? [p.message, ...unplaced] : []);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      width={760}
      title={t("access.form.title", { name: props.wukong.name })}
      okText={t("access.form.submit")}
      cancelText={t("access.cancel")}
      okButtonProps={{ loading: busy, htmlType: "submit", form: FORM }}
      onCancel={props.onClose}
      footer={(buttons) => (
        <Flex justify="space-between" wrap gap="small">
          <CopyAsCli
            command={() => {
              const fields = form.getFieldsValue(true) as Fields;
              return exposeCommand(props.wukong, fields.serviceType, fields.serviceName ?? "", fields.ports ?? []);
            }}
          />
          <Space>{buttons}</Space>
        </Flex>
      )}
    >
      {errors.length > 0 && (
        <Alert type="error" showIcon title={t("access.form.failed")} description={errors.join(" ")} data-testid="access-create-error" />
      )}
      <Form<Fields>
        form={form}
        name={FORM}
        layout="vertical"
        initialValues={{ serviceType: "NodePort", serviceName: "", ports: [NEW_PORT] }}
        onFinish={(fields) => void create(fields)}
      >
        <Form.Item
          label={t("access.form.type")}
          name="serviceType"
          extra={t(serviceType === "NodePort" ? "access.form.nodePortType" : "access.form.loadBalancerType")}
        >
          <Radio.Group
            optionType="button"
            options={[
              { value: "NodePort", label: t("access.form.nodePortLabel") },
              { value: "LoadBalancer", label: t("access.form.loadBalancerLabel") },
            ]}
          />
        </Form.Item>
        <Form.Item label={t("access.form.serviceName")} name="serviceName" extra={t("access.form.serviceNameHelp")}>
          <Input maxLength={63} />
        </Form.Item>
        <Form.List name="ports">
          {(rows, { add, remove }, { errors: listErrors }) => (
            <>
              {rows.map((row, index) => (
                <Flex
                  key={row.key}
                  wrap
                  gap="small"
                  align="start"
                  role="group"
                  aria-label={t("access.form.row", { row: index + 1 })}
                  data-testid={`port-row-${index}`}
                >
                  <Form.Item
                    {...FIELD}
                    label={t("access.form.port")}
                    name={[row.name, "port"]}
                    rules={[{ required: true, message: t("access.form.portRequired") }]}
                  >
                    <InputNumber {...PORT_RANGE} />
                  </Form.Item>
                  <Form.Item {...FIELD} label={t("access.form.targetPort")} name={[row.name, "targetPort"]}>
                    <InputNumber {...PORT_RANGE} placeholder={t("access.form.samePort")} />
                  </Form.Item>
                  {serviceType === "NodePort" && (
                    <Form.Item {...FIELD} label={t("access.form.nodePort")} name={[row.name, "nodePort"]}>
                      <InputNumber {...PORT_RANGE} placeholder={t("access.form.anyNodePort")} />
                    </Form.Item>
                  )}
                  <Form.Item {...FIELD} label={t("access.form.protocol")} name={[row.name, "protocol"]}>
                    <Select
                      popupMatchSelectWidth={false}
                      options={[
                        { value: "TCP", label: "TCP" }, // i18n-ignore: protocol names
                        { value: "UDP", label: "UDP" }, // i18n-ignore
                      ]}
                    />
                  </Form.Item>
                  {rows.length > 1 && (
                    <Form.Item label=" ">
                      <Button
                        icon={<DeleteOutlined />}
                        aria-label={t("access.form.removePort", { row: index + 1 })}
                        onClick={() => remove(row.name)}
                      />
                    </Form.Item>
                  )}
                </Flex>
              ))}
              <Form.ErrorList errors={listErrors} />
              <Button icon={<PlusOutlined />} onClick={() => add({ ...NEW_PORT })}>
                {t("access.form.addPort")}
              </Button>
            </>
          )}
        </Form.List>
      </Form>
    </Modal>
  );
}
