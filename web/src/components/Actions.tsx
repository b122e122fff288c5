// The operations a Wukong offers this caller right now (`availableActions`: valid in its state AND permitted), as
// buttons. Stop and restart ask graceful or forced; delete asks for the name and whether the disks go too.
import { Wukong_Action as Action, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { DownOutlined } from "@ant-design/icons";
import { App, Button, Checkbox, Dropdown, Flex, Input, Modal, Space, Typography } from "antd";
import { useState } from "react";
import { Trans, useTranslation } from "react-i18next";
import { problem } from "../api/errors";
import { operate, type Options } from "../api/operations";
import { operationCommand } from "../cli/vmctl";
import { CopyAsCli } from "./CopyAsCli";

// Message keys: the button's word (operations.operation.*) and the verb in a sentence (operations.verb.*).
const WORD: Partial<Record<Action, [string, string]>> = {
  [Action.START]: ["operations.operation.start", "operations.verb.start"],
  [Action.STOP]: ["operations.operation.stop", "operations.verb.stop"],
  [Action.RESTART]: ["operations.operation.restart", "operations.verb.restart"],
  [Action.PAUSE]: ["operations.operation.pause", "operations.verb.pause"],
  [Action.RESUME]: ["operations.operation.resume", "operations.verb.resume"],
  [Action.DELETE]: ["operations.operation.delete", "operations.verb.delete"],
};

const SIMPLE: Action[] = [Action.START, Action.PAUSE, Action.RESUME];

const MENU: [Action, string, Options][] = [
  [Action.START, "operations.operation.start", {}],
  [Action.STOP, "operations.operation.stop", {}],
  [Action.STOP, "operations.forceStop", { force: true }],
  [Action.RESTART, "operations.operation.restart", {}],
  [Action.RESTART, "operations.forceRestart", { force: true }],
  [Action.PAUSE, "operations.operation.pause", {}],
  [Action.RESUME, "operations.operation.resume", {}],
];

/** `menu`: one "Actions" menu (for a table row) instead of a row of buttons. */
export function Actions({ wukong, menu = false }: { wukong: Wukong; menu?: boolean }) {
  const { t } = useTranslation();
  const size = menu ? "small" : "middle";
  const word = (action: Action) => t(WORD[action]?.[0] ?? "operations.operation.unspecified");
  const verb = (action: Action) => t(WORD[action]?.[1] ?? "operations.operation.unspecified");
  const { message, modal } = App.useApp();
  const [busy, setBusy] = useState<Action | null>(null);
  const [deleting, setDeleting] = useState(false);
  const offered = new Set(wukong.availableActions);

  const run = async (action: Action, options: Options = {}) => {
    setBusy(action);
    try {
      const task = await operate(wukong, action, options);
      void message.info({
        content: t("operations.started", { operation: word(action), name: wukong.name, id: task.id }),
        key: task.id,
      });
    } catch (error) {
      const p = problem(error);
      modal.error({ title: t("errors.operationRefused", { verb: verb(action), name: wukong.name }), content: p.message });
    } finally {
      setBusy(null);
    }
  };
  const forcedOrNot = (action: Action, forceLabel: string) => (
    <Space.Compact key={action} size={size}>
      <Button loading={busy === action} onClick={() => void run(action)}>
        {word(action)}
      </Button>
      <Dropdown
        menu={{
          items: [{ key: "force", label: t(forceLabel), danger: true }],
          onClick: () => void run(action, { force: true }),
        }}
      >
        <Button aria-label={t("operations.moreOptions", { operation: word(action) })} icon={<DownOutlined />} />
      </Dropdown>
    </Space.Compact>
  );

  const deleteDialog = deleting && (
    <DeleteDialog
      wukong={wukong}
      onCancel={() => setDeleting(false)}
      onConfirm={(deleteDisks) => {
        setDeleting(false);
        void run(Action.DELETE, { deleteDisks });
      }}
    />
  );
  if (menu) {
    const items = MENU.filter(([action]) => offered.has(action)).map(([action, label, options], index) => ({
      key: String(index),
      label: t(label),
      danger: options.force === true,
      onClick: () => void run(action, options),
    }));
    if (offered.has(Action.DELETE)) {
      items.push({ key: "delete", label: t("operations.deleteMenu"), danger: true, onClick: () => void setDeleting(true) });
    }
    if (!items.length) return null;
    return (
      <span data-testid="actions">
        <Dropdown menu={{ items }} trigger={["click"]}>
          <Button size="small" loading={busy !== null} icon={<DownOutlined />} iconPlacement="end">
            {t("operations.actions")}
          </Button>
        </Dropdown>
        {deleteDialog}
      </span>
    );
  }
  return (
    <Space wrap size="small" data-testid="actions">
      {SIMPLE.filter((action) => offered.has(action)).map((action) => (
        <Button key={action} size={size} loading={busy === action} onClick={() => void run(action)}>
          {word(action)}
        </Button>
      ))}
      {offered.has(Action.STOP) && forcedOrNot(Action.STOP, "operations.forceStopLong")}
      {offered.has(Action.RESTART) && forcedOrNot(Action.RESTART, "operations.forceRestartLong")}
      {offered.has(Action.DELETE) && (
        <Button size={size} danger onClick={() => setDeleting(true)}>
          {word(Action.DELETE)}
        </Button>
      )}
      {deleteDialog}
    </Space>
  );
}

function DeleteDialog(props: { wukong: Wukong; onCancel: () => void; onConfirm: (deleteDisks: boolean) => void }) {
  const [typed, setTyped] = useState("");
  const [disks, setDisks] = useState(false);
  const { t } = useTranslation();
  return (
    <Modal
      open
      title={t("operations.deleteTitle", { name: props.wukong.name })}
      okText={t("operations.operation.delete")}
      okButtonProps={{ danger: true, disabled: typed !== props.wukong.name }}
      onOk={() => props.onConfirm(disks)}
      onCancel={props.onCancel}
      footer={(buttons) => (
        <Flex justify="space-between" wrap gap="small">
          <CopyAsCli
            command={() =>
              operationCommand("delete", { namespace: props.wukong.namespace, names: [props.wukong.name] }, { deleteDisks: disks })
            }
          />
          <Space>{buttons}</Space>
        </Flex>
      )}
    >
      <Typography.Paragraph>
        <Trans
          i18nKey="operations.deleteConfirm"
          values={{ name: props.wukong.name }}
          components={{ name: <Typography.Text code /> }}
        />
      </Typography.Paragraph>
      <Input value={typed} onChange={(e) => setTyped(e.target.value)} aria-label={t("operations.nameToConfirm")} autoFocus />
      <Checkbox checked={disks} onChange={(e) => setDisks(e.target.checked)} style={{ marginTop: 12 }}>
        {t("operations.deleteDisks")}
      </Checkbox>
    </Modal>
  );
}
