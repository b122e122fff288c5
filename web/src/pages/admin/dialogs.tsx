// The two dialogs every change here goes through: a confirmation (optionally by typing a name) and a form. A refusal
// of the server stays in the dialog that caused it, explained (Refusal), and the dialog stays open to correct or
// cancel; field violations go on their fields.
import { Form, Input, Modal, Typography, type FormInstance } from "antd";
import { useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { problem as problemOf, type Problem } from "../../api/errors";
import { placeViolations } from "../../api/violations";
import { Refusal } from "./Refusal";

type Common = {
  title: string;
  okText: string;
  /** The refusal's heading, e.g. "Could not delete ada". */
  failureTitle: string;
  explained?: Partial<Record<string, string>>;
  onClose: () => void;
  testId: string;
};

export function ConfirmDialog(
  props: Common & {
    children: ReactNode;
    run: () => Promise<void>;
    danger?: boolean;
    /** The name to type before the button works (for what cannot be undone). */
    typeToConfirm?: string;
  },
) {
  const { t } = useTranslation();
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<Problem | null>(null);
  const [typed, setTyped] = useState("");
  const confirm = async () => {
    setBusy(true);
    setRefused(null);
    try {
      await props.run();
      props.onClose();
    } catch (error) {
      setRefused(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={<DialogTitle text={props.title} />}
      okText={props.okText}
      cancelText={t("admin.cancel")}
      okButtonProps={{
        danger: props.danger,
        loading: busy,
        disabled: props.typeToConfirm !== undefined && typed !== props.typeToConfirm,
      }}
      onOk={() => void confirm()}
      onCancel={props.onClose}
      rootClassName={`dialog-${props.testId}`}
    >
      {refused && <Refusal title={props.failureTitle} problem={refused} explained={props.explained} />}
      {props.children}
      {props.typeToConfirm !== undefined && (
        <>
          <Typography.Paragraph>
            {t("admin.typeToConfirm")} <Typography.Text code>{props.typeToConfirm}</Typography.Text>
          </Typography.Paragraph>
          <Input
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            aria-label={t("admin.typeToConfirmLabel")}
            data-testid="type-to-confirm"
            autoFocus
          />
        </>
      )}
    </Modal>
  );
}

export function FormDialog<Values extends object>(
  props: Common & {
    form: FormInstance<Values>;
    /** The form's name: its fields' ids are `<name>_<field>`. */
    name: string;
    children: ReactNode;
    run: (values: Values) => Promise<void>;
    initialValues?: Partial<Values>;
    /** Maps a violated request field to the form field that shows it (e.g. namespaces[1] → namespaces). */
    rename?: (path: (string | number)[]) => (string | number)[];
    /** Shown above the fields, e.g. what the change does. */
    intro?: ReactNode;
  },
) {
  const { t } = useTranslation();
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<{ problem: Problem; unplaced: string[] } | null>(null);
  const submit = async (values: Values) => {
    setBusy(true);
    setRefused(null);
    try {
      await props.run(values);
      props.onClose();
    } catch (error) {
      const problem = problemOf(error);
      setRefused({ problem, unplaced: placeViolations(props.form, problem.fields, props.rename) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={<DialogTitle text={props.title} />}
      okText={props.okText}
      cancelText={t("admin.cancel")}
      okButtonProps={{ loading: busy, htmlType: "submit", form: props.name }}
      onCancel={props.onClose}
      rootClassName={`dialog-${props.testId}`}
    >
      {props.intro}
      {refused && (
        <Refusal
          title={props.failureTitle}
          problem={refused.problem}
          explained={props.explained}
          unplaced={refused.unplaced}
        />
      )}
      <Form<Values>
        form={props.form}
        name={props.name}
        layout="vertical"
        requiredMark={false}
        initialValues={props.initialValues}
        onFinish={(values) => void submit(values)}
      >
        {props.children}
      </Form>
    </Modal>
  );
}

/** Clear of the close button, however long the names in it. */
function DialogTitle({ text }: { text: string }) {
  return <span style={{ display: "block", paddingInlineEnd: 24, overflowWrap: "anywhere" }}>{text}</span>;
}
