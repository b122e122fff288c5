// Create a VM: every spec field with its default, checked by the server as the user types (validateOnly) with the
// server's field violations shown on the matching fields, and created once however often the button is pressed or a
// lost answer retried (one request id per form). Fields vmoperator ignores say so.
import { create } from "@bufbuild/protobuf";
import { WukongSchema, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { Alert, Breadcrumb, Button, Card, Form, Input, Space, Typography } from "antd";
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useSearchParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { placeViolations } from "../api/violations";
import { createCommand, wukongYaml } from "../cli/vmctl";
import { CopyAsCli } from "../components/CopyAsCli";
import { parseKeyValues, SpecSections, specFieldName, specFieldsOf, toSpec, type SpecFields } from "../components/SpecForm";

type Fields = { namespace: string; name: string; labels: string; spec: SpecFields };

const CHECK_DELAY_MS = 600;

export function VmCreate() {
  const { t } = useTranslation();
  const [form] = Form.useForm<Fields>();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const requestId = useRef(crypto.randomUUID()); // a double click or a retry creates one VM
  const [serverErrors, setServerErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const checkTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(checkTimer.current), []);
  const namespace = (Form.useWatch("namespace", form) as string | undefined) ?? params.get("ns") ?? "";

  const submit = async (validateOnly: boolean) => {
    const fields = form.getFieldsValue(true) as Fields;
    const request = {
      namespace: fields.namespace?.trim() ?? "",
      wukong: toWukong(fields),
      requestId: requestId.current,
      validateOnly,
    };
    try {
      const made = await wukongClient.createWukong(request);
      placeViolations(form, {});
      setServerErrors([]);
      return made;
    } catch (error) {
      const p = problem(error);
      const unplaced = placeViolations(form, p.fields, specFieldName);
      setServerErrors(unplaced.length || !Object.keys(p.fields).length ? [p.message, ...unplaced] : []);
      return null;
    }
  };

  const onCreate = async () => {
    setBusy(true);
    try {
      const made = await submit(false);
      if (made) navigate(`/vms/${encodeURIComponent(made.namespace)}/${encodeURIComponent(made.name)}`);
    } finally {
      setBusy(false);
    }
  };

  const initialSpec = specFieldsOf(undefined);
  return (
    <div className="detail-grid">
      <Breadcrumb items={[{ title: <Link to="/vms">{t("shell.nav.vms")}</Link> }, { title: t("form.newVm") }]} />
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t("form.newVm")}
      </Typography.Title>
      {serverErrors.length > 0 && (
        <Alert type="error" showIcon title={t("errors.createRefused")} description={serverErrors.join(" ")} data-testid="create-error" />
      )}
      <Form<Fields>
        form={form}
        layout="vertical"
        initialValues={{
          namespace: params.get("ns") ?? "",
          name: "",
          labels: "",
          spec: { ...initialSpec, disks: [{ name: "root", size: "20Gi", storageClassName: "", image: "", boot: false }] },
        }}
        onValuesChange={() => {
          clearTimeout(checkTimer.current);
          checkTimer.current = setTimeout(() => void submit(true), CHECK_DELAY_MS);
        }}
        onFinish={() => void onCreate()}
      >
        <Card title={t("form.basics")} size="small">
          <Space wrap align="start">
            <Form.Item label={t("form.namespace")} name="namespace" rules={[{ required: true, message: t("form.namespaceRequired") }]}>
              <Input style={{ width: 220 }} />
            </Form.Item>
            <Form.Item label={t("form.name")} name="name" rules={[{ required: true, message: t("form.nameRequired") }]}>
              <Input style={{ width: 220 }} placeholder={t("form.namePlaceholder")} />
            </Form.Item>
            <Form.Item label={t("form.labels")} name="labels" extra={t("form.keyValuesHelp")}>
              <Input.TextArea rows={2} style={{ width: 320 }} />
            </Form.Item>
          </Space>
        </Card>
        <SpecSections namespace={namespace.trim()} />
        <Space style={{ marginTop: 16 }}>
          <Button type="primary" htmlType="submit" loading={busy}>
            {t("form.create")}
          </Button>
          <Button onClick={() => navigate(-1)}>{t("common.cancel")}</Button>
          <CopyAsCli
            command={() => {
              const fields = form.getFieldsValue(true) as Fields;
              return createCommand(fields.namespace?.trim() ?? "", toWukong(fields));
            }}
            yaml={() => wukongYaml(toWukong(form.getFieldsValue(true) as Fields))}
          />
        </Space>
      </Form>
    </div>
  );
}

function toWukong(fields: Fields): Wukong {
  return create(WukongSchema, { name: fields.name?.trim() ?? "", labels: parseKeyValues(fields.labels), spec: toSpec(fields.spec) });
}
