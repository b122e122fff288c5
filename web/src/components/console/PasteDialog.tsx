// Paste into the guest: the text (from the clipboard when the browser allows reading it, else typed or pasted into
// the box), for VNC typed as keystrokes through the guest's keyboard layout, with the characters it cannot type
// listed before anything is sent.
import { Alert, Form, Input, Modal, Select, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { LAYOUT_NAMES, planTyping, type KeyEvent } from "../../console/keyboard";

const REMEMBERED_LAYOUT = "novasphere.console.layout";

export function rememberedLayout(): string {
  const saved = localStorage.getItem(REMEMBERED_LAYOUT) ?? "";
  return LAYOUT_NAMES.includes(saved) ? saved : "en-US";
}

type Props = {
  open: boolean;
  /** VNC: typed through a keyboard layout; serial: the text goes as it is. */
  keystrokes: boolean;
  onCancel: () => void;
  onPasteText: (text: string) => void;
  onPasteKeys: (events: KeyEvent[]) => void;
};

export function PasteDialog({ open, keystrokes, onCancel, onPasteText, onPasteKeys }: Props) {
  const { t } = useTranslation();
  const [text, setText] = useState("");
  const [layout, setLayout] = useState(rememberedLayout);
  const plan = useMemo(() => planTyping(text, layout), [text, layout]);

  useEffect(() => {
    if (!open) return;
    // the clipboard, if the browser lets this page read it; the box otherwise
    void navigator.clipboard
      ?.readText()
      .then((clipboard) => setText((current) => current || clipboard))
      .catch(() => undefined);
  }, [open]);

  const submit = () => {
    if (keystrokes) onPasteKeys(plan.events);
    else onPasteText(text);
    setText("");
  };
  return (
    <Modal
      open={open}
      title={t("console.paste.title")}
      okText={keystrokes ? t("console.paste.type") : t("console.paste.paste")}
      cancelText={t("console.paste.cancel")}
      okButtonProps={{ disabled: !text || (keystrokes && plan.events.length === 0), "data-testid": "paste-send" }}
      onOk={submit}
      onCancel={onCancel}
      destroyOnHidden
    >
      <Form layout="vertical">
        <Form.Item label={t("console.paste.text")} htmlFor="paste-text">
          <Input.TextArea
            id="paste-text"
            data-testid="paste-text"
            rows={6}
            value={text}
            onChange={(event) => setText(event.target.value)}
          />
        </Form.Item>
        {keystrokes && (
          <Form.Item label={t("console.paste.layout")} htmlFor="paste-layout" extra={t("console.paste.layoutHelp")}>
            <Select
              id="paste-layout"
              data-testid="paste-layout"
              value={layout}
              onChange={(value: string) => {
                setLayout(value);
                localStorage.setItem(REMEMBERED_LAYOUT, value);
              }}
              options={LAYOUT_NAMES.map((name) => ({ value: name, label: t(`console.layouts.${name}`) }))}
            />
          </Form.Item>
        )}
      </Form>
      {keystrokes && plan.untypable.length > 0 && (
        <Alert
          type="warning"
          showIcon
          data-testid="paste-warning"
          title={t("console.paste.untypable", { count: plan.untypable.length })}
          description={
            <>
              <Typography.Text code data-testid="paste-untypable">
                {plan.untypable.join(" ")}
              </Typography.Text>
              <div>{t("console.paste.untypableHelp")}</div>
            </>
          }
        />
      )}
    </Modal>
  );
}
