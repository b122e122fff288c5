// Edit a VM: the same sections as create, with only the fields the user changed sent (`updateMask`) and the etag of
// what the form was opened from, so a change someone else made meanwhile is never overwritten: the server answers
// ABORTED, and the dialog shows what changed and lets the user reapply theirs on top of it.
import { Code } from "@connectrpc/connect";
import { clone } from "@bufbuild/protobuf";
import { WukongSchema, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { WukongView } from "@gen/novasphere/v1/wukong_service_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Breadcrumb, Button, Card, Form, Input, Modal, Space, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";
import { wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { placeViolations } from "../api/violations";
import {
  formatKeyValues,
  parseKeyValues,
  SpecSections,
  specFieldName,
  specFieldsOf,
  toSpec,
  type SpecFields,
} from "../components/SpecForm";
import { editCommand } from "../cli/vmctl";
import { CopyAsCli } from "../components/CopyAsCli";

type Fields = { labels: string; spec: SpecFields };

function fieldsOf(w: Wukong): Fields {
  return { labels: formatKeyValues(w.labels), spec: specFieldsOf(w.spec) };
}

/** Each update-mask path: its words' message key, and where the form keeps it. */
const PARTS: { path: string; words: string; key: (f: Fields) => unknown; copy: (to: Fields, from: Fields) => void }[] = [
  { path: "labels", words: "form.part.labels", key: (f) => f.labels.trim(), copy: (to, from) => void (to.labels = from.labels) },
  ...(
    [
      ["spec.cpu", "form.part.cpu", "cpu"],
      ["spec.memory", "form.part.memory", "memory"],
      ["spec.os_image", "form.part.osImage", "osImage"],
      ["spec.ssh_key_secret", "form.part.sshKey", "sshKeySecret"],
      ["spec.cloud_init_user", "form.part.guestUser", "cloudInitUser"],
      ["spec.networks", "form.part.networks", "networks"],
      ["spec.disks", "form.part.disks", "disks"],
      ["spec.high_availability", "form.part.scheduling", "highAvailability"],
      ["spec.start_strategy", "form.part.runStrategy", "startStrategy"],
    ] as const
  ).map(([path, words, field]) => ({
    path,
    words,
    key: (f: Fields) => f.spec[field],
    copy: (to: Fields, from: Fields) => void Object.assign(to.spec, { [field]: from.spec[field] }),
  })),
];

/** The update mask paths whose values differ between two forms. */
function changedPaths(a: Fields, b: Fields): string[] {
  return PARTS.filter((part) => JSON.stringify(part.key(a)) !== JSON.stringify(part.key(b))).map((part) => part.path);
}

function apply(base: Wukong, fields: Fields): Wukong {
  const changed = clone(WukongSchema, base);
  changed.labels = parseKeyValues(fields.labels);
  changed.spec = toSpec(fields.spec);
  return changed;
}

export function VmEdit() {
  const { t } = useTranslation();
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
    queryFn: () => wukongClient.getWukong({ namespace, name, view: WukongView.BASIC }),
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
        const current = await wukongClient.getWukong({ namespace, name, view: WukongView.BASIC });
        setConflict({ current, theirs: changedPaths(fieldsOf(from), fieldsOf(current)) });
      } else {
        const unplaced = placeViolations(form, p.fields, specFieldName);
        setError(unplaced.length || !Object.keys(p.fields).length ? [p.message, ...unplaced].join(" ") : null);
      }
    } finally {
      setSaving(false);
    }
  };

  const crumbs = (
    <Breadcrumb
      items={[
        { title: <Link to="/vms">{t("shell.nav.vms")}</Link> },
        { title: <Link to={`/vms/${namespace}/${name}`}>{`${namespace}/${name}`}</Link> },
        { title: t("form.edit") },
      ]}
    />
  );
  if (loaded.error) return <>{crumbs}<Alert type="error" showIcon title={problem(loaded.error).message} /></>;
  return (
    <div className="detail-grid">
      {crumbs}
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t("form.editTitle", { name })}
      </Typography.Title>
      {error && <Alert type="error" showIcon title={t("errors.editRefused")} description={error} />}
      <Form<Fields> form={form} layout="vertical" onFinish={() => base && void save(base, form.getFieldsValue(true) as Fields)}>
        <Card size="small" title={t("form.labels")}>
          <Form.Item name="labels" extra={t("form.keyValuesHelp")}>
            <Input.TextArea rows={3} aria-label={t("form.labels")} />
          </Form.Item>
        </Card>
        {base && <SpecSections namespace={namespace} existing={base.spec} />}
        <Space style={{ marginTop: 16 }}>
          <Button type="primary" htmlType="submit" loading={saving} disabled={!base}>
            {t("form.save")}
          </Button>
          <Button onClick={() => navigate(-1)}>{t("common.cancel")}</Button>
          {base && (
            <CopyAsCli
              command={() => {
                const fields = form.getFieldsValue(true) as Fields;
                return editCommand(apply(base, fields), changedPaths(fieldsOf(base), fields));
              }}
            />
          )}
        </Space>
      </Form>
      {conflict && (
        <Modal
          open
          title={t("form.conflictTitle")}
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
                {t("form.discardMine")}
              </Button>
              <Button
                type="primary"
                onClick={() => {
                  // my changes (against what I opened) on top of the current state
                  const mine = form.getFieldsValue(true) as Fields;
                  const opened = base ? fieldsOf(base) : mine;
                  const merged = fieldsOf(conflict.current);
                  for (const path of changedPaths(opened, mine)) PARTS.find((p) => p.path === path)?.copy(merged, mine);
                  setBase(conflict.current);
                  setConflict(null);
                  form.setFieldsValue(merged);
                  void save(conflict.current, merged);
                }}
              >
                {t("form.reapplyMine")}
              </Button>
            </Space>
          }
        >
          <Typography.Paragraph>{t("form.conflictIntro")}</Typography.Paragraph>
          <ul>
            {conflict.theirs.map((path) => {
              const words = PARTS.find((p) => p.path === path)?.words;
              return (
                <li key={path}>
                  {words ? t(words) : path}: {describe(base, path) || t("form.nothing")} →{" "}
                  {describe(conflict.current, path) || t("form.nothing")}
                </li>
              );
            })}
          </ul>
        </Modal>
      )}
    </div>
  );
}

function describe(w: Wukong | null, path: string): string {
  if (!w) return "";
  const f = fieldsOf(w);
  if (path === "labels") return f.labels.replaceAll("\n", ", ");
  if (path === "spec.disks") return f.spec.disks.map((d) => `${d.name} ${d.size}`).join(", ");
  const value = PARTS.find((p) => p.path === path)?.key(f);
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
