// A Wukong's spec as form sections, shared by the create and edit pages: every field of the CRD, with real choices
// from the API (the namespace's StorageClasses, network attachments and SSH keys, an upload for a new key) and the
// fields vmoperator ignores marked as such. The form's field names follow the proto (camelCase), so the server's
// field violations land on them (api/violations.ts).
import { create } from "@bufbuild/protobuf";
import type { StorageClass } from "@gen/novasphere/v1/catalog_service_pb";
import { WukongSpecSchema, type WukongSpec } from "@gen/novasphere/v1/wukong_pb";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import {
  Alert,
  Button,
  Card,
  Checkbox,
  Form,
  Input,
  InputNumber,
  Modal,
  Select,
  Space,
  Tag,
  Typography,
} from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { catalogClient, sshKeyClient } from "../api/clients";
import { problem } from "../api/errors";
import { placeViolations } from "../api/violations";

type Disk = { name: string; size: string; storageClassName: string; image: string; boot: boolean };
type Network = {
  name: string;
  type: string;
  nadName: string;
  vlanId: number | null;
  bridgeName: string;
  ipConfig: { mode: string; address: string; gateway: string; dnsServers: string };
};
type Toleration = { key: string; operator: string; value: string; effect: string };

export type SpecFields = {
  cpu: number;
  memory: string;
  osImage: string;
  sshKeySecret: string;
  cloudInitUser: { name: string; password: string; sudo: string; shell: string; groups: string; lockPasswd: boolean };
  disks: Disk[];
  networks: Network[];
  highAvailability: { nodeSelector: string; tolerations: Toleration[]; restartPolicy: string; antiAffinity: boolean };
  startStrategy: { autoStart: boolean; runStrategy: string };
};

const NEW_DISK: Disk = { name: "", size: "10Gi", storageClassName: "", image: "", boot: false };
const NEW_NETWORK: Network = {
  name: "",
  type: "bridge",
  nadName: "",
  vlanId: null,
  bridgeName: "",
  ipConfig: { mode: "", address: "", gateway: "", dnsServers: "" },
};

/** `key=value` lines → a map (labels, node selectors). */
export function parseKeyValues(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const line of (text ?? "").split("\n")) {
    const [key, ...value] = line.split("=");
    if (key?.trim()) map[key.trim()] = value.join("=").trim();
  }
  return map;
}

export function formatKeyValues(map: Record<string, string>): string {
  return Object.entries(map)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

const words = (text: string) =>
  (text ?? "")
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter(Boolean);

export function specFieldsOf(spec: WukongSpec | undefined): SpecFields {
  const user = spec?.cloudInitUser;
  const ha = spec?.highAvailability;
  return {
    cpu: spec?.cpu ?? 2,
    memory: spec?.memory ?? "2Gi",
    osImage: spec?.osImage ?? "",
    sshKeySecret: spec?.sshKeySecret ?? "",
    cloudInitUser: {
      name: user?.name ?? "",
      password: "", // never returned: empty keeps the stored hash
      sudo: user?.sudo ?? "",
      shell: user?.shell ?? "",
      groups: (user?.groups ?? []).join(", "),
      lockPasswd: user?.lockPasswd ?? false,
    },
    disks: (spec?.disks ?? []).map((d) => ({
      name: d.name,
      size: d.size,
      storageClassName: d.storageClassName,
      image: d.image,
      boot: d.boot,
    })),
    networks: (spec?.networks ?? []).map((n) => ({
      name: n.name,
      type: n.type,
      nadName: n.nadName,
      vlanId: n.vlanId || null,
      bridgeName: n.bridgeName,
      ipConfig: {
        mode: n.ipConfig?.mode ?? "",
        address: n.ipConfig?.address ?? "",
        gateway: n.ipConfig?.gateway ?? "",
        dnsServers: (n.ipConfig?.dnsServers ?? []).join(", "),
      },
    })),
    highAvailability: {
      nodeSelector: formatKeyValues(ha?.nodeSelector ?? {}),
      tolerations: (ha?.tolerations ?? []).map((t) => ({ key: t.key, operator: t.operator, value: t.value, effect: t.effect })),
      restartPolicy: ha?.restartPolicy ?? "",
      antiAffinity: ha?.antiAffinity ?? false,
    },
    startStrategy: { autoStart: spec?.startStrategy?.autoStart ?? true, runStrategy: spec?.startStrategy?.runStrategy ?? "" },
  };
}

export function toSpec(f: SpecFields): WukongSpec {
  const user = f.cloudInitUser;
  const ha = f.highAvailability;
  const nodeSelector = parseKeyValues(ha.nodeSelector);
  const hasHa = Object.keys(nodeSelector).length || ha.tolerations.length || ha.restartPolicy || ha.antiAffinity;
  return create(WukongSpecSchema, {
    cpu: f.cpu ?? 0,
    memory: f.memory?.trim() ?? "",
    osImage: f.osImage?.trim() ?? "",
    sshKeySecret: f.sshKeySecret ?? "",
    cloudInitUser: user.name?.trim()
      ? {
          name: user.name.trim(),
          password: user.password || undefined, // unset, not "": the field has presence
          sudo: user.sudo?.trim() ?? "",
          shell: user.shell?.trim() ?? "",
          groups: words(user.groups),
          lockPasswd: user.lockPasswd ?? false,
        }
      : undefined,
    disks: f.disks.map((d) => ({
      name: d.name?.trim() ?? "",
      size: d.size?.trim() ?? "",
      storageClassName: d.storageClassName ?? "",
      image: d.image?.trim() ?? "",
      boot: d.boot ?? false,
    })),
    networks: f.networks.map((n) => ({
      name: n.name?.trim() ?? "",
      type: n.type ?? "",
      nadName: n.nadName ?? "",
      vlanId: n.vlanId ?? 0,
      bridgeName: n.bridgeName?.trim() ?? "",
      ipConfig: n.ipConfig.mode
        ? {
            mode: n.ipConfig.mode,
            address: n.ipConfig.address?.trim() ?? "",
            gateway: n.ipConfig.gateway?.trim() ?? "",
            dnsServers: words(n.ipConfig.dnsServers),
          }
        : undefined,
    })),
    highAvailability: hasHa
      ? {
          nodeSelector,
          tolerations: ha.tolerations.map((t) => ({ key: t.key?.trim() ?? "", operator: t.operator ?? "", value: t.value?.trim() ?? "", effect: t.effect ?? "" })),
          restartPolicy: ha.restartPolicy ?? "",
          antiAffinity: ha.antiAffinity ?? false,
        }
      : undefined,
    startStrategy: { autoStart: f.startStrategy.autoStart, runStrategy: f.startStrategy.runStrategy ?? "" },
  });
}

/** A violation on a list-of-words field (`dns_servers[1]`, `groups[0]`) belongs to its one text field. */
export function specFieldName(path: (string | number)[]): (string | number)[] {
  const at = path.findIndex((p) => p === "dnsServers" || p === "groups");
  return at >= 0 ? path.slice(0, at + 1) : path;
}

/** The spec's sections; `existing` (edit) locks what cannot change on a disk that exists and leaves out start/stop,
 * which operations do. */
export function SpecSections({ namespace, existing }: { namespace: string; existing?: WukongSpec }) {
  const { t } = useTranslation();
  const ignored = t("form.ignored");
  const form = Form.useFormInstance();
  const disks = (Form.useWatch(["spec", "disks"], form) as Disk[] | undefined) ?? [];
  const classes = useQuery({
    queryKey: ["storage-classes", namespace],
    queryFn: () => catalogClient.listStorageClasses({ namespace }),
    enabled: Boolean(namespace),
    retry: false,
  });
  const attachments = useQuery({
    queryKey: ["network-attachments", namespace],
    queryFn: () => catalogClient.listNetworkAttachments({ namespace }),
    enabled: Boolean(namespace),
    retry: false,
  });
  const existingDisks = new Set((existing?.disks ?? []).map((d) => d.name));
  const classOf = new Map((classes.data?.storageClasses ?? []).map((c) => [c.name, c]));
  const defaultClass = classes.data?.storageClasses.find((c) => c.isDefault)?.name ?? classes.data?.storageClasses[0]?.name ?? "";
  useEffect(() => {
    // A new disk without a class gets the namespace's default once the choices are known.
    const current = (form.getFieldValue(["spec", "disks"]) as Disk[] | undefined) ?? [];
    current.forEach((disk, index) => {
      if (defaultClass && !disk?.storageClassName && !existingDisks.has(disk?.name ?? "")) {
        form.setFieldValue(["spec", "disks", index, "storageClassName"], defaultClass);
      }
    });
  }, [defaultClass]); // only a newly known default fills the empty ones

  return (
    <>
      <Card title={t("form.resources")} size="small" style={{ marginTop: 16 }}>
        <Space wrap align="start">
          <Form.Item label={t("form.cpu")} name={["spec", "cpu"]} extra={existing ? t("form.cpuAtNextStart") : undefined}>
            <InputNumber min={1} max={64} />
          </Form.Item>
          <Form.Item label={t("form.memory")} name={["spec", "memory"]} extra={t("form.memoryHelp")}>
            <Input style={{ width: 140 }} />
          </Form.Item>
          {!existing && (
            <Form.Item label=" " name={["spec", "startStrategy", "autoStart"]} valuePropName="checked">
              <Checkbox>{t("form.autoStart")}</Checkbox>
            </Form.Item>
          )}
          <Form.Item label={t("form.runStrategy")} name={["spec", "startStrategy", "runStrategy"]} extra={ignored}>
            <Select style={{ width: 170 }} options={choices(["", "Always", "RerunOnFailure", "Manual"])} />
          </Form.Item>
        </Space>
      </Card>
      <Card title={t("form.disksTitle")} size="small" style={{ marginTop: 16 }}>
        {classes.error && (
          <Alert type="warning" showIcon title={t("errors.storageClassesUnavailable", { message: problem(classes.error).message })} />
        )}
        <Form.List name={["spec", "disks"]}>
          {(rows, { add, remove }) => (
            <>
              {rows.map((row) => {
                const disk = disks[row.name];
                const locked = existingDisks.has(disk?.name ?? "") && Boolean(existing);
                const sc = classOf.get(disk?.storageClassName ?? "");
                return (
                  <Space key={row.key} wrap align="start" data-testid={`disk-${row.name}`}>
                    <Form.Item label={t("form.name")} name={[row.name, "name"]}>
                      <Input style={{ width: 110 }} disabled={locked} />
                    </Form.Item>
                    <Form.Item
                      label={t("form.size")}
                      name={[row.name, "size"]}
                      extra={locked ? t(sc?.allowVolumeExpansion ? "form.growsOnly" : "form.cannotGrow") : undefined}
                    >
                      <Input style={{ width: 100 }} />
                    </Form.Item>
                    <Form.Item label={t("form.storageClass")} name={[row.name, "storageClassName"]}>
                      <StorageClassSelect classes={classes.data?.storageClasses ?? []} loading={classes.isLoading} disabled={locked} />
                    </Form.Item>
                    <Form.Item label={t("form.diskImage")} name={[row.name, "image"]}>
                      <Input style={{ width: 280 }} placeholder={t("form.diskImagePlaceholder")} disabled={locked} />
                    </Form.Item>
                    <Form.Item label=" " name={[row.name, "boot"]} valuePropName="checked" extra={ignored}>
                      <Checkbox>{t("form.boot")}</Checkbox>
                    </Form.Item>
                    {!locked && (
                      <Button onClick={() => remove(row.name)} style={{ marginTop: 30 }} autoInsertSpace={false} aria-label={t("form.removeDisk")}>
                        {t("form.remove")}
                      </Button>
                    )}
                  </Space>
                );
              })}
              <Button onClick={() => add({ ...NEW_DISK, storageClassName: defaultClass })}>{t("form.addDisk")}</Button>
            </>
          )}
        </Form.List>
      </Card>
      <Card title={t("form.networksTitle")} size="small" style={{ marginTop: 16 }}>
        <Form.List name={["spec", "networks"]}>
          {(rows, { add, remove }) => (
            <>
              {rows.map((row) => (
                <div key={row.key} data-testid={`network-${row.name}`}>
                  <Space wrap align="start">
                    <Form.Item label={t("form.name")} name={[row.name, "name"]}>
                      <Input style={{ width: 110 }} />
                    </Form.Item>
                    <Form.Item label={t("form.type")} name={[row.name, "type"]}>
                      <Select style={{ width: 110 }} options={choices(["bridge", "macvlan", "sriov", "ovs"])} />
                    </Form.Item>
                    <Form.Item
                      label={t("form.attachment")}
                      name={[row.name, "nadName"]}
                      extra={t("form.attachmentHelp")}
                    >
                      <Select
                        style={{ width: 220 }}
                        allowClear
                        loading={attachments.isLoading}
                        options={[
                          { value: "", label: t("form.createAttachment") },
                          ...(attachments.data?.networkAttachments ?? []).map((n) => ({
                            value: n.name,
                            label: n.cniType ? `${n.name} (${n.cniType})` : n.name,
                          })),
                        ]}
                      />
                    </Form.Item>
                    <Form.Item label={t("form.vlan")} name={[row.name, "vlanId"]} extra={t("form.vlanHelp")}>
                      <InputNumber min={1} max={4094} style={{ width: 90 }} />
                    </Form.Item>
                    <Form.Item label={t("form.bridge")} name={[row.name, "bridgeName"]} extra={t("form.bridgeHelp")}>
                      <Input style={{ width: 120 }} />
                    </Form.Item>
                    <Button onClick={() => remove(row.name)} style={{ marginTop: 30 }} autoInsertSpace={false} aria-label={t("form.removeNetwork")}>
                      {t("form.remove")}
                    </Button>
                  </Space>
                  <Space wrap align="start">
                    <Form.Item label={t("form.addresses")} name={[row.name, "ipConfig", "mode"]}>
                      <Select
                        style={{ width: 120 }}
                        options={[
                          { value: "", label: t("form.noAddresses") },
                          { value: "dhcp", label: t("form.dhcp") },
                          { value: "static", label: t("form.staticAddress") },
                        ]}
                      />
                    </Form.Item>
                    <Form.Item label={t("form.address")} name={[row.name, "ipConfig", "address"]}>
                      <Input style={{ width: 160 }} placeholder="192.168.1.10/24" />
                    </Form.Item>
                    <Form.Item label={t("form.gateway")} name={[row.name, "ipConfig", "gateway"]}>
                      <Input style={{ width: 140 }} />
                    </Form.Item>
                    <Form.Item label={t("form.dnsServers")} name={[row.name, "ipConfig", "dnsServers"]}>
                      <Input style={{ width: 200 }} placeholder="1.1.1.1, 8.8.8.8" />
                    </Form.Item>
                  </Space>
                </div>
              ))}
              <Button onClick={() => add(NEW_NETWORK)}>{t("form.addNetwork")}</Button>
            </>
          )}
        </Form.List>
      </Card>
      <Card title={t("form.guest")} size="small" style={{ marginTop: 16 }}>
        <Space wrap align="start">
          <Form.Item label={t("form.user")} name={["spec", "cloudInitUser", "name"]} extra={t("form.userHelp")}>
            <Input style={{ width: 140 }} />
          </Form.Item>
          <Form.Item
            label={t("form.password")}
            name={["spec", "cloudInitUser", "password"]}
            extra={t(existing ? "form.passwordKeep" : "form.passwordRules")}
          >
            <Input.Password style={{ width: 200 }} autoComplete="new-password" />
          </Form.Item>
          <Form.Item label={t("form.groups")} name={["spec", "cloudInitUser", "groups"]} extra={t("form.groupsHelp")}>
            <Input style={{ width: 180 }} />
          </Form.Item>
          <Form.Item label={t("form.sudo")} name={["spec", "cloudInitUser", "sudo"]} extra={t("form.sudoHelp")}>
            <Input style={{ width: 180 }} />
          </Form.Item>
          <Form.Item label={t("form.shell")} name={["spec", "cloudInitUser", "shell"]} extra={t("form.shellHelp")}>
            <Input style={{ width: 120 }} />
          </Form.Item>
          <Form.Item label=" " name={["spec", "cloudInitUser", "lockPasswd"]} valuePropName="checked">
            <Checkbox>{t("form.lockPassword")}</Checkbox>
          </Form.Item>
        </Space>
        <Space wrap align="start">
          <Form.Item label={t("form.sshKey")} name={["spec", "sshKeySecret"]} extra={t("form.sshKeyHelp")}>
            <SshKeyPicker namespace={namespace} />
          </Form.Item>
          <Form.Item label={t("form.osImage")} name={["spec", "osImage"]} extra={t("form.osImageHelp")}>
            <Input style={{ width: 200 }} />
          </Form.Item>
        </Space>
      </Card>
      <Card title={t("form.scheduling")} size="small" style={{ marginTop: 16 }}>
        <Space wrap align="start">
          <Form.Item label={t("form.nodeSelector")} name={["spec", "highAvailability", "nodeSelector"]} extra={t("form.keyValuesHelp")}>
            <Input.TextArea rows={2} style={{ width: 260 }} />
          </Form.Item>
          <Form.Item label={t("form.restartPolicy")} name={["spec", "highAvailability", "restartPolicy"]} extra={ignored}>
            <Select style={{ width: 140 }} options={choices(["", "Always", "OnFailure", "Never"])} />
          </Form.Item>
          <Form.Item label=" " name={["spec", "highAvailability", "antiAffinity"]} valuePropName="checked" extra={ignored}>
            <Checkbox>{t("form.antiAffinity")}</Checkbox>
          </Form.Item>
        </Space>
        <Form.List name={["spec", "highAvailability", "tolerations"]}>
          {(rows, { add, remove }) => (
            <>
              {rows.map((row) => (
                <Space key={row.key} wrap align="start">
                  <Form.Item label={t("form.taintKey")} name={[row.name, "key"]}>
                    <Input style={{ width: 200 }} />
                  </Form.Item>
                  <Form.Item label={t("form.operator")} name={[row.name, "operator"]}>
                    <Select style={{ width: 110 }} options={choices(["Equal", "Exists"])} />
                  </Form.Item>
                  <Form.Item label={t("form.value")} name={[row.name, "value"]}>
                    <Input style={{ width: 140 }} />
                  </Form.Item>
                  <Form.Item label={t("form.effect")} name={[row.name, "effect"]}>
                    <Select
                      style={{ width: 170 }}
                      options={[{ value: "", label: t("form.anyEffect") }, ...choices(["NoSchedule", "PreferNoSchedule", "NoExecute"])]}
                    />
                  </Form.Item>
                  <Button onClick={() => remove(row.name)} style={{ marginTop: 30 }} autoInsertSpace={false} aria-label={t("form.removeToleration")}>
                    {t("form.remove")}
                  </Button>
                </Space>
              ))}
              <Button onClick={() => add({ key: "", operator: "Equal", value: "", effect: "" })}>{t("form.tolerate")}</Button>
            </>
          )}
        </Form.List>
      </Card>
    </>
  );
}

function choices(values: string[]) {
  return values.map((value) => ({ value, label: value || "—" }));
}

// `id` comes from the Form.Item, whose label names the control by it (a screen reader's name for the select).
function StorageClassSelect({
  id,
  value,
  onChange,
  classes,
  loading,
  disabled,
}: {
  id?: string;
  value?: string;
  onChange?: (value: string) => void;
  classes: StorageClass[];
  loading: boolean;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  return (
    <Select
      id={id}
      style={{ width: 260 }}
      value={value}
      onChange={onChange}
      loading={loading}
      disabled={disabled}
      data-testid="storage-class"
      options={classes.map((c) => ({
        value: c.name,
        label: (
          <Space size={4}>
            {c.name}
            {c.isDefault && <Tag>{t("form.defaultClass")}</Tag>}
            <Tag color={c.allowVolumeExpansion ? "green" : undefined}>
              {t(c.allowVolumeExpansion ? "form.canGrow" : "form.fixedSize")}
            </Tag>
          </Space>
        ),
      }))}
    />
  );
}

/** Choose one of the namespace's SSH keys, or upload a new one (which is then chosen). */
function SshKeyPicker({
  id,
  namespace,
  value,
  onChange,
}: {
  id?: string;
  namespace: string;
  value?: string;
  onChange?: (value: string) => void;
}) {
  const { t } = useTranslation();
  const queries = useQueryClient();
  const [uploading, setUploading] = useState(false);
  const keys = useQuery({
    queryKey: ["ssh-keys", namespace],
    queryFn: () => sshKeyClient.listSshKeys({ namespace }),
    enabled: Boolean(namespace),
    retry: false,
  });
  return (
    <Space>
      <Select
        id={id}
        style={{ width: 240 }}
        value={value}
        onChange={onChange}
        loading={keys.isLoading}
        data-testid="ssh-key"
        options={[
          { value: "", label: t("form.noSshKey") },
          ...(keys.data?.sshKeys ?? []).map((k) => ({
            value: k.name,
            label: t("form.sshKeyOption", { name: k.name, count: k.fingerprints.length }),
          })),
        ]}
      />
      <Button onClick={() => setUploading(true)} disabled={!namespace}>
        {t("form.uploadKey")}
      </Button>
      {uploading && (
        <SshKeyUpload
          namespace={namespace}
          onClose={() => setUploading(false)}
          onUploaded={(name) => {
            setUploading(false);
            void queries.invalidateQueries({ queryKey: ["ssh-keys", namespace] });
            onChange?.(name);
          }}
        />
      )}
    </Space>
  );
}

type Upload = { name: string; publicKey: string };

function SshKeyUpload({ namespace, onClose, onUploaded }: { namespace: string; onClose: () => void; onUploaded: (name: string) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Upload>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const upload = async (fields: Upload) => {
    setBusy(true);
    try {
      const created = await sshKeyClient.createSshKey({ namespace, name: fields.name?.trim() ?? "", publicKey: fields.publicKey ?? "" });
      onUploaded(created.name);
    } catch (caught) {
      const p = problem(caught);
      const unplaced = placeViolations(form, p.fields);
      setError(unplaced.length || !Object.keys(p.fields).length ? [p.message, ...unplaced].join(" ") : null);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={t("form.uploadTitle", { namespace })}
      onCancel={onClose}
      okText={t("form.upload")}
      okButtonProps={{ loading: busy, htmlType: "submit", form: "ssh-key-upload" }}
      data-testid="ssh-key-upload"
    >
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} />}
      <Form<Upload> form={form} name="ssh-key-upload" layout="vertical" onFinish={(fields) => void upload(fields)} initialValues={{ name: "", publicKey: "" }}>
        <Form.Item label={t("form.keyName")} name="name" rules={[{ required: true, message: t("form.keyNameRequired") }]}>
          <Input placeholder={t("form.keyNamePlaceholder")} />
        </Form.Item>
        <Form.Item label={t("form.publicKey")} name="publicKey" extra={t("form.publicKeyHelp")}>
          <Input.TextArea rows={4} placeholder={t("form.publicKeyPlaceholder")} />
        </Form.Item>
        <Typography.Text type="secondary">
          {t("form.readFile")}{" "}
          <input
            type="file"
            accept=".pub,text/plain"
            aria-label={t("form.publicKeyFile")}
            onChange={(event) => {
              const file = event.target.files?.[0];
              if (file) void file.text().then((text) => form.setFieldValue("publicKey", text));
            }}
          />
        </Typography.Text>
      </Form>
    </Modal>
  );
}
