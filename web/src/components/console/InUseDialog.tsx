// CONSOLE_IN_USE: who holds the console, since when and from where; "take over" only for those who may (their own
// session, or vm:console:manage).
import type { ConsoleSession } from "@gen/novasphere/v1/console_service_pb";
import { Button, Modal, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { formatAgo, formatDateTime } from "../../i18n/format";

type Props = {
  holder: ConsoleSession | undefined;
  mayTakeOver: boolean;
  onTakeOver: () => void;
  onLeave: () => void;
};

export function InUseDialog({ holder, mayTakeOver, onTakeOver, onLeave }: Props) {
  const { t } = useTranslation();
  const since = holder?.connectTime ?? holder?.createTime;
  return (
    <Modal
      open
      title={t("console.inUse.title")}
      onCancel={onLeave}
      footer={[
        <Button key="leave" onClick={onLeave} data-testid="leave-console">
          {t("console.inUse.leave")}
        </Button>,
        // offered only to those the server lets take it over
        mayTakeOver && (
          <Button key="take-over" type="primary" danger onClick={onTakeOver} data-testid="take-over">
            {t("console.inUse.takeOver")}
          </Button>
        ),
      ]}
      closable={false}
      maskClosable={false}
    >
      <Typography.Paragraph data-testid="in-use-holder">
        {holder
          ? t("console.inUse.heldBy", { who: holder.user, since: formatDateTime(since), ago: formatAgo(since) })
          : t("console.inUse.heldBySomeone")}
        {holder?.clientIp ? ` ${t("console.inUse.from", { address: holder.clientIp })}` : ""}
      </Typography.Paragraph>
      <Typography.Paragraph type="secondary" data-testid="in-use-hint">
        {mayTakeOver ? t("console.inUse.takeOverHint") : t("console.inUse.notAllowed")}
      </Typography.Paragraph>
    </Modal>
  );
}
