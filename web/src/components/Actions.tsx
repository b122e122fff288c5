// The operations a Wukong offers this caller right now (`availableActions`: valid in its state AND permitted), as
// buttons. Stop and restart ask graceful or forced; delete asks for the name and whether the disks go too.
import { Wukong_Action as Action, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { DownOutlined } from "@ant-design/icons";
import { App, Button, Checkbox, Dropdown, Input, Modal, Space, Typography } from "antd";
import { useState } from "react";
import { problem } from "../api/errors";
import { operate, type Options } from "../api/operations";

const SIMPLE: [Action, string][] = [
  [Action.START, "Start"],
  [Action.PAUSE, "Pause"],
  [Action.RESUME, "Resume"],
];

const MENU: [Action, string, Options][] = [
  [Action.START, "Start", {}],
  [Action.STOP, "Stop", {}],
  [Action.STOP, "Force stop", { force: true }],
  [Action.RESTART, "Restart", {}],
  [Action.RESTART, "Force restart", { force: true }],
  [Action.PAUSE, "Pause", {}],
  [Action.RESUME, "Resume", {}],
];

/** `menu`: one "Actions" menu (for a table row) instead of a row of buttons. */
export function Actions({ wukong, menu = false }: { wukong: Wukong; menu?: boolean }) {
  const size = menu ? "small" : "middle";
  const { message, modal } = App.useApp();
  const [busy, setBusy] = useState<Action | null>(null);
  const [deleting, setDeleting] = useState(false);
  const offered = new Set(wukong.availableActions);

  const run = async (action: Action, options: Options = {}) => {
    setBusy(action);
    try {
      const task = await operate(wukong, action, options);
      void message.info({ content: `${Action[action].toLowerCase()} ${wukong.name}: task ${task.id}`, key: task.id });
    } catch (error) {
      const p = problem(error);
      modal.error({ title: `Could not ${Action[action].toLowerCase()} ${wukong.name}`, content: p.message });
    } finally {
      setBusy(null);
    }
  };
  const forcedOrNot = (action: Action, label: string) => (
    <Space.Compact key={action} size={size}>
      <Button loading={busy === action} onClick={() => void run(action)}>
        {label}
      </Button>
      <Dropdown
        menu={{
          items: [{ key: "force", label: `Force ${label.toLowerCase()} (no graceful shutdown)`, danger: true }],
          onClick: () => void run(action, { force: true }),
        }}
      >
        <Button aria-label={`${label} options`} icon={<DownOutlined />} />
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
      label,
      danger: options.force === true,
      onClick: () => void run(action, options),
    }));
    if (offered.has(Action.DELETE)) {
      items.push({ key: "delete", label: "Delete…", danger: true, onClick: () => void setDeleting(true) });
    }
    if (!items.length) return null;
    return (
      <span data-testid="actions">
        <Dropdown menu={{ items }} trigger={["click"]}>
          <Button size="small" loading={busy !== null} icon={<DownOutlined />} iconPlacement="end">
            Actions
          </Button>
        </Dropdown>
        {deleteDialog}
      </span>
    );
  }
  return (
    <Space wrap size="small" data-testid="actions">
      {SIMPLE.filter(([action]) => offered.has(action)).map(([action, label]) => (
        <Button key={action} size={size} loading={busy === action} onClick={() => void run(action)}>
          {label}
        </Button>
      ))}
      {offered.has(Action.STOP) && forcedOrNot(Action.STOP, "Stop")}
      {offered.has(Action.RESTART) && forcedOrNot(Action.RESTART, "Restart")}
      {offered.has(Action.DELETE) && (
        <Button size={size} danger onClick={() => setDeleting(true)}>
          Delete
        </Button>
      )}
      {deleteDialog}
    </Space>
  );
}

function DeleteDialog(props: { wukong: Wukong; onCancel: () => void; onConfirm: (deleteDisks: boolean) => void }) {
  const [typed, setTyped] = useState("");
  const [disks, setDisks] = useState(false);
  return (
    <Modal
      open
      title={`Delete ${props.wukong.name}?`}
      okText="Delete"
      okButtonProps={{ danger: true, disabled: typed !== props.wukong.name }}
      onOk={() => props.onConfirm(disks)}
      onCancel={props.onCancel}
    >
      <Typography.Paragraph>
        The VM stops and its Wukong is deleted. Type <Typography.Text code>{props.wukong.name}</Typography.Text> to
        confirm.
      </Typography.Paragraph>
      <Input value={typed} onChange={(e) => setTyped(e.target.value)} aria-label="Name to confirm" autoFocus />
      <Checkbox checked={disks} onChange={(e) => setDisks(e.target.checked)} style={{ marginTop: 12 }}>
        Delete its disks too (their data is lost)
      </Checkbox>
    </Modal>
  );
}
