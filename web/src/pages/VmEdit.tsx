// Edit a VM: only the fields the user changed are sent (`updateMask`), with the etag of what the form was opened
// from, so a change someone else made meanwhile is never overwritten: the server answers ABORTED, and the dialog shows
// what changed and lets the user reapply theirs on top of it.
import { Code } from "@connectrpc/connect";
import { clone } from "@bufbuild/protobuf";
import { WukongSchema, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Breadcrumb, Button, Card, Form, Input, InputNumber, Modal, Space, Typography } from "antd";
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";

type Fields = { labels: string; cpu: number; memory: string; disks: { name: string; size: string }[] };

function fieldsOf(w: Wukong): Fields {
  return {
    labels: Object.entries(w.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    cpu: w.spec?.cpu ?? 1,
    memory: w.spec?.memory ?? "",
    disks: (w.spec?.disks ?? []).map((d) => ({ name: d.name, size: d.size })),
  };
}

const WORDS: Record<string, string> = { labels: "Labels", "spec.cpu": "vCPU", "spec.memory": "Memory", "spec.disks": "Disk sizes" };

/** The update mask paths whose values differ between two forms. */
function changedPaths(a: Fields, b: Fields): string[] {
  const paths: string[] = [];
  if (a.labels.trim() !== b.labels.trim()) paths.push("labels");
  if (a.cpu !== b.cpu) paths.push("spec.cpu");
  if (a.memory.trim() !== b.memory.trim()) paths.push("spec.memory");
  if (JSON.stringify(a.disks) !== JSON.stringify(b.disks)) paths.push("spec.disks");
  return paths;
}

function apply(base: Wukong, fields: Fields): Wukong {
  const labels: Record<string, string> = {};
  for (const line of fields.labels.split("\n")) {
    const [key, ...value] = line.split("=");
    if (key?.trim()) labels[key.trim()] = value.join("=").trim();
  }
  const sizes = new Map(fields.disks.map((d) => [d.name, d.size.trim()]));
  const changed = clone(WukongSchema, base);
  changed.labels = labels;
  if (changed.spec) {
    changed.spec.cpu = fields.cpu;
    changed.spec.memory = fields.memory.trim();
    for (const disk of changed.spec.disks) disk.size = sizes.get(disk.name) ?? disk.size;
  }
  return changed;
}

export function VmEdit() {
  const { namespace = "", name = "" } = useParams();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const [form] = Form.useForm<Fields>();
  const [base, setBase] = useState<Wukong | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [conflict, setConflict] = useState<{ current: Wukong; theirs: string[] } | null>(null);
  const [saving, setSaving] = useState(false);
  const loaded = useQuery({
    queryKey: ["wukong-edit", namespace, name],
    queryFn: () => wukongClient.getWukong({ namespace, name }),
    gcTime: 0,
  });
  useEffect(() => {
    if (loaded.data && !base) {
      setBase(loaded.data);
      form.setFieldsValue(fieldsOf(loaded.data));
    }
  }, [loaded.data, base, form]);

  const save = async (from: Wukong, fields: Fields) => {
    const paths = changedPaths(fieldsOf(from), fields);
    if (!paths.length) {
      navigate(`/vms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
      return;
    }
    setSaving(true);
    setError(null);
    try {
      await wukongClient.updateWukong({ wukong: apply(from, fields), updateMask: { paths } });
      void queries.invalidateQueries({ queryKey: ["wukong", namespace, name] });
      navigate(`/vms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    } catch (caught) {
      const p = problem(caught);
      if (p.code === Code.Aborted) {
        const current = await wukongClient.getWukong({ namespace, name });
        setConflict({ current, theirs: changedPaths(fieldsOf(from), fieldsOf(current)) });
      } else {
        setError(p.message);
        for (const [path, description] of Object.entries(p.fields)) {
          const field = path.endsWith("memory") ? "memory" : path.endsWith("cpu") ? "cpu" : path.includes("disks") ? "disks" : "labels";
          form.setFields([{ name: field as never, errors: [description] }]);
        }
      }
    } finally {
      setSaving(false);
    }
  };

  const crumbs = (
    <Breadcrumb
      items={[
        { title: <Link to="/vms">Virtual machines</Link> },
        { title: <Link to={`/vms/${namespace}/${name}`}>{`${namespace}/${name}`}</Link> },
        { title: "Edit" },
      ]}
    />
  );
  if (loaded.error) return <>{crumbs}<Alert type="error" showIcon title={problem(loaded.error).message} /></>;
  return (
    <div className="detail-grid">
      {crumbs}
      <Typography.Title level={3} style={{ margin: 0 }}>
        Edit {name}
      </Typography.Title>
      {error && <Alert type="error" showIcon title="The server refused the change" description={error} />}
      <Form<Fields> form={form} layout="vertical" onFinish={(fields) => base && void save(base, fields)}>
        <Card size="small" title="Resources (a running VM applies them at its next start)">
          <Space wrap align="start">
            <Form.Item label="vCPU" name="cpu">
              <InputNumber min={1} max={64} />
            </Form.Item>
            <Form.Item label="Memory" name="memory">
              <Input style={{ width: 140 }} />
            </Form.Item>
          </Space>
          <Form.List name="disks">
            {(disks) =>
              disks.map((disk) => (
                <Form.Item key={disk.key} label={`Disk ${base?.spec?.disks[disk.name]?.name ?? ""} size (grows only)`} name={[disk.name, "size"]}>
                  <Input style={{ width: 140 }} />
                </Form.Item>
              ))
            }
          </Form.List>
          <Form.Item label="Labels" name="labels" extra="One key=value per line">
            <Input.TextArea rows={3} />
          </Form.Item>
        </Card>
        <Space style={{ marginTop: 16 }}>
          <Button type="primary" htmlType="submit" loading={saving} disabled={!base}>
            Save
          </Button>
          <Button onClick={() => navigate(-1)}>Cancel</Button>
        </Space>
      </Form>
      {conflict && (
        <Modal
          open
          title="Someone else changed this VM"
          data-testid="conflict"
          onCancel={() => setConflict(null)}
          footer={
            <Space>
              <Button
                onClick={() => {
                  setBase(conflict.current);
                  form.setFieldsValue(fieldsOf(conflict.current));
                  setConflict(null);
                }}
              >
                Discard mine
              </Button>
              <Button
                type="primary"
                onClick={() => {
                  // my changes (against what I opened) on top of the current state
                  const mine = form.getFieldsValue(true) as Fields;
                  const opened = base ? fieldsOf(base) : mine;
                  const merged = { ...fieldsOf(conflict.current) };
                  for (const path of changedPaths(opened, mine)) {
                    if (path === "labels") merged.labels = mine.labels;
                    if (path === "spec.cpu") merged.cpu = mine.cpu;
                    if (path === "spec.memory") merged.memory = mine.memory;
                    if (path === "spec.disks") merged.disks = mine.disks;
                  }
                  setBase(conflict.current);
                  setConflict(null);
                  form.setFieldsValue(merged);
                  void save(conflict.current, merged);
                }}
              >
                Reapply my changes
              </Button>
            </Space>
          }
        >
          <Typography.Paragraph>Since you opened it, these changed:</Typography.Paragraph>
          <ul>
            {conflict.theirs.map((path) => (
              <li key={path}>
                {WORDS[path] ?? path}: {describe(base, path)} → {describe(conflict.current, path)}
              </li>
            ))}
          </ul>
        </Modal>
      )}
    </div>
  );
}

function describe(w: Wukong | null, path: string): string {
  if (!w) return "";
  const f = fieldsOf(w);
  if (path === "labels") return f.labels.replaceAll("\n", ", ") || "none";
  if (path === "spec.cpu") return String(f.cpu);
  if (path === "spec.memory") return f.memory;
  return f.disks.map((d) => `${d.name} ${d.size}`).join(", ");
}
