// Create a VM: every spec field with its default, checked by the server as the user types (validateOnly) with the
// server's field violations shown on the matching fields, and created once however often the button is pressed or a
// lost answer retried (one request id per form). Fields vmoperator ignores say so.
import { create } from "@bufbuild/protobuf";
import { WukongSchema, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { Alert, Breadcrumb, Button, Card, Checkbox, Form, Input, InputNumber, Space, Typography } from "antd";
import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";

type Fields = {
  namespace: string;
  name: string;
  labels: string;
  spec: {
    cpu: number;
    memory: string;
    osImage: string;
    sshKeySecret: string;
    disks: { name: string; size: string; storageClassName: string; image: string }[];
    cloudInitUser: { name: string; password: string };
    autoStart: boolean;
  };
};

const CHECK_DELAY_MS = 600;

export function VmCreate() {
  const [form] = Form.useForm<Fields>();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const requestId = useRef(crypto.randomUUID()); // a double click or a retry creates one VM
  const [serverErrors, setServerErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const checkTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(checkTimer.current), []);

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
      showViolations(form, {}, fields);
      setServerErrors([]);
      return made;
    } catch (error) {
      const p = problem(error);
      const unplaced = showViolations(form, p.fields, fields);
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

  return (
    <div className="detail-grid">
      <Breadcrumb items={[{ title: <Link to="/vms">Virtual machines</Link> }, { title: "New VM" }]} />
      <Typography.Title level={3} style={{ margin: 0 }}>
        New VM
      </Typography.Title>
      {serverErrors.length > 0 && (
        <Alert type="error" showIcon title="The server refused this VM" description={serverErrors.join(" ")} data-testid="create-error" />
      )}
      <Form<Fields>
        form={form}
        layout="vertical"
        initialValues={{
          namespace: params.get("ns") ?? "",
          labels: "",
          spec: {
            cpu: 2,
            memory: "2Gi",
            osImage: "",
            sshKeySecret: "",
            disks: [{ name: "root", size: "20Gi", storageClassName: "local-path", image: "" }],
            cloudInitUser: { name: "", password: "" },
            autoStart: true,
          },
        }}
        onValuesChange={() => {
          clearTimeout(checkTimer.current);
          checkTimer.current = setTimeout(() => void submit(true), CHECK_DELAY_MS);
        }}
        onFinish={() => void onCreate()}
      >
        <Card title="Basics" size="small">
          <Space wrap align="start">
            <Form.Item label="Namespace" name="namespace" rules={[{ required: true, message: "Choose a namespace" }]}>
              <Input style={{ width: 220 }} />
            </Form.Item>
            <Form.Item label="Name" name="name" rules={[{ required: true, message: "Give the VM a name" }]}>
              <Input style={{ width: 220 }} placeholder="web-1" />
            </Form.Item>
            <Form.Item label="vCPU" name={["spec", "cpu"]}>
              <InputNumber min={1} max={64} />
            </Form.Item>
            <Form.Item label="Memory" name={["spec", "memory"]} extra="A Kubernetes quantity, e.g. 2Gi or 1536Mi">
              <Input style={{ width: 140 }} />
            </Form.Item>
          </Space>
          <Form.Item label="Labels" name="labels" extra="One key=value per line">
            <Input.TextArea rows={2} />
          </Form.Item>
          <Form.Item name={["spec", "autoStart"]} valuePropName="checked">
            <Checkbox>Start it once created</Checkbox>
          </Form.Item>
        </Card>
        <Card title="Disks (the first one boots)" size="small" style={{ marginTop: 16 }}>
          <Form.List name={["spec", "disks"]}>
            {(disks, { add, remove }) => (
              <>
                {disks.map((disk) => (
                  <Space key={disk.key} wrap align="start">
                    <Form.Item label="Name" name={[disk.name, "name"]}>
                      <Input style={{ width: 120 }} />
                    </Form.Item>
                    <Form.Item label="Size" name={[disk.name, "size"]}>
                      <Input style={{ width: 100 }} />
                    </Form.Item>
                    <Form.Item label="Storage class" name={[disk.name, "storageClassName"]}>
                      <Input style={{ width: 160 }} />
                    </Form.Item>
                    <Form.Item label="Image (empty: blank disk)" name={[disk.name, "image"]}>
                      <Input style={{ width: 320 }} placeholder="https://… or a registry image" />
                    </Form.Item>
                    <Button onClick={() => remove(disk.name)} style={{ marginTop: 30 }} aria-label="Remove disk">
                      Remove
                    </Button>
                  </Space>
                ))}
                <Button onClick={() => add({ name: "", size: "10Gi", storageClassName: "local-path", image: "" })}>
                  Add a disk
                </Button>
              </>
            )}
          </Form.List>
        </Card>
        <Card title="Guest" size="small" style={{ marginTop: 16 }}>
          <Space wrap align="start">
            <Form.Item label="User" name={["spec", "cloudInitUser", "name"]} extra="Created by cloud-init; empty: none">
              <Input style={{ width: 160 }} />
            </Form.Item>
            <Form.Item label="Password" name={["spec", "cloudInitUser", "password"]} extra="8 to 128 characters; stored hashed">
              <Input.Password style={{ width: 220 }} autoComplete="new-password" />
            </Form.Item>
            <Form.Item label="SSH key Secret" name={["spec", "sshKeySecret"]} extra="A Secret in the namespace">
              <Input style={{ width: 200 }} />
            </Form.Item>
            <Form.Item
              label="OS image name"
              name={["spec", "osImage"]}
              extra="Ignored by vmoperator, except that a value adds a cloud-init disk"
            >
              <Input style={{ width: 220 }} />
            </Form.Item>
          </Space>
        </Card>
        <Space style={{ marginTop: 16 }}>
          <Button type="primary" htmlType="submit" loading={busy}>
            Create
          </Button>
          <Button onClick={() => navigate(-1)}>Cancel</Button>
        </Space>
      </Form>
    </div>
  );
}

function toWukong(fields: Fields): Wukong {
  const labels: Record<string, string> = {};
  for (const line of (fields.labels ?? "").split("\n")) {
    const [key, ...value] = line.split("=");
    if (key?.trim()) labels[key.trim()] = value.join("=").trim();
  }
  const user = fields.spec.cloudInitUser;
  return create(WukongSchema, {
    name: fields.name?.trim() ?? "",
    labels,
    spec: {
      cpu: fields.spec.cpu ?? 0,
      memory: fields.spec.memory?.trim() ?? "",
      osImage: fields.spec.osImage?.trim() ?? "",
      sshKeySecret: fields.spec.sshKeySecret?.trim() ?? "",
      cloudInitUser: user?.name?.trim() ? { name: user.name.trim(), password: user.password ?? "" } : undefined,
      disks: (fields.spec.disks ?? []).map((d) => ({
        name: d.name?.trim() ?? "",
        size: d.size?.trim() ?? "",
        storageClassName: d.storageClassName?.trim() ?? "",
        image: d.image?.trim() ?? "",
      })),
      startStrategy: { autoStart: fields.spec.autoStart },
    },
  });
}

/** Puts the server's field violations (`wukong.spec.disks[0].storage_class_name`) on the form's fields; returns the
 * ones no field shows. */
function showViolations(
  form: ReturnType<typeof Form.useForm<Fields>>[0],
  violations: Record<string, string>,
  fields: Fields,
): string[] {
  const unplaced: string[] = [];
  const placed = new Map<string, string>();
  for (const [path, description] of Object.entries(violations)) {
    const name = formPath(path);
    if (name && hasField(fields, name)) placed.set(JSON.stringify(name), description);
    else unplaced.push(`${path}: ${description}`);
  }
  form.setFields(
    allPaths(fields).map((name) => ({ name: name as never, errors: placed.has(JSON.stringify(name)) ? [placed.get(JSON.stringify(name))!] : [] })),
  );
  return unplaced;
}

/** `wukong.spec.disks[0].storage_class_name` → ["spec", "disks", 0, "storageClassName"]; "namespace" stays. */
function formPath(path: string): (string | number)[] | null {
  const trimmed = path.startsWith("wukong.") ? path.slice("wukong.".length) : path;
  if (trimmed.startsWith("labels")) return ["labels"];
  const parts: (string | number)[] = [];
  for (const segment of trimmed.split(".")) {
    const match = /^([a-z_]+)(?:\[(\d+)\])?$/.exec(segment);
    if (!match) return null;
    parts.push(match[1]!.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
    if (match[2] !== undefined) parts.push(Number(match[2]));
  }
  if (parts[0] === "spec" && parts[1] === "startStrategy") return ["spec", "autoStart"];
  return parts;
}

function hasField(fields: Fields, name: (string | number)[]): boolean {
  return allPaths(fields).some((p) => JSON.stringify(p) === JSON.stringify(name));
}

function allPaths(fields: Fields): (string | number)[][] {
  const paths: (string | number)[][] = [
    ["namespace"],
    ["name"],
    ["labels"],
    ["spec", "cpu"],
    ["spec", "memory"],
    ["spec", "osImage"],
    ["spec", "sshKeySecret"],
    ["spec", "autoStart"],
    ["spec", "cloudInitUser", "name"],
    ["spec", "cloudInitUser", "password"],
  ];
  (fields.spec?.disks ?? []).forEach((_, i) => {
    for (const key of ["name", "size", "storageClassName", "image"]) paths.push(["spec", "disks", i, key]);
  });
  return paths;
}
