// "Copy as vmctl" and "View YAML" beside an action: the command (or document) that does the same from a terminal,
// shown in full and copied with one click.
import { CheckOutlined, CodeOutlined, CopyOutlined, FileTextOutlined } from "@ant-design/icons";
import { Button, Flex, Modal, Space, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";

type Shown = { title: string; text: string; testId: string } | null;

/** `command` (a function: built when asked, from the form's values at that moment) and/or `yaml`. */
export function CopyAsCli(props: { command?: () => string; yaml?: () => string; size?: "small" | "middle" }) {
  const { t } = useTranslation();
  const [shown, setShown] = useState<Shown>(null);
  return (
    <Space size="small" wrap>
      {props.command && (
        <Button
          size={props.size}
          icon={<CodeOutlined />}
          data-testid="copy-as-vmctl"
          onClick={() => setShown({ title: t("cli.commandTitle"), text: props.command?.() ?? "", testId: "vmctl-command" })}
        >
          {t("cli.copyCommand")}
        </Button>
      )}
      {props.yaml && (
        <Button
          size={props.size}
          icon={<FileTextOutlined />}
          data-testid="view-yaml"
          onClick={() => setShown({ title: t("cli.yamlTitle"), text: props.yaml?.() ?? "", testId: "yaml" })}
        >
          {t("cli.viewYaml")}
        </Button>
      )}
      <Modal
        open={shown !== null}
        title={shown?.title}
        footer={null}
        width={760}
        onCancel={() => setShown(null)}
        destroyOnHidden
      >
        <Flex justify="space-between" align="center" gap="small" style={{ marginBottom: 12 }}>
          <Typography.Text type="secondary">{t("cli.hint")}</Typography.Text>
          <CopyButton text={shown?.text ?? ""} />
        </Flex>
        <pre className="cli-text" data-testid={shown?.testId}>
          {shown?.text}
        </pre>
      </Modal>
    </Space>
  );
}

function CopyButton({ text }: { text: string }) {
  const { t } = useTranslation();
  const [copied, setCopied] = useState(false);
  return (
    <Button
      icon={copied ? <CheckOutlined /> : <CopyOutlined />}
      onClick={() => void navigator.clipboard.writeText(text).then(() => setCopied(true))}
    >
      {copied ? t("cli.copied") : t("cli.copy")}
    </Button>
  );
}
