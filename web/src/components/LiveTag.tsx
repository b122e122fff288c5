import { Tag } from "antd";
import { useTranslation } from "react-i18next";
import type { LiveState } from "../api/liveList";

/** Whether the view's stream is live, or reconnecting after a drop. */
export function LiveTag({ state }: { state: LiveState }) {
  const { t } = useTranslation();
  if (state === "live") return <Tag color="green" data-testid="live">{t("common.live.live")}</Tag>;
  if (state === "reconnecting") return <Tag color="orange" data-testid="live">{t("common.live.reconnecting")}</Tag>;
  return <Tag data-testid="live">{t("common.live.connecting")}</Tag>;
}
