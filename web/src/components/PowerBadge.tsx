import { WukongStatus_PowerState as PowerState, type WukongStatus } from "@gen/novasphere/v1/wukong_pb";
import { Badge, Tooltip } from "antd";
import { useTranslation } from "react-i18next";

const LOOK: Record<PowerState, { status: "success" | "processing" | "default" | "error" | "warning"; word: string }> = {
  [PowerState.POWER_STATE_UNSPECIFIED]: { status: "default", word: "common.power.unknown" },
  [PowerState.PROVISIONING]: { status: "processing", word: "common.power.provisioning" },
  [PowerState.STARTING]: { status: "processing", word: "common.power.starting" },
  [PowerState.RUNNING]: { status: "success", word: "common.power.running" },
  [PowerState.PAUSED]: { status: "warning", word: "common.power.paused" },
  [PowerState.STOPPING]: { status: "processing", word: "common.power.stopping" },
  [PowerState.STOPPED]: { status: "default", word: "common.power.stopped" },
  [PowerState.MIGRATING]: { status: "processing", word: "common.power.migrating" },
  [PowerState.ERROR]: { status: "error", word: "common.power.error" },
  [PowerState.DELETING]: { status: "processing", word: "common.power.deleting" },
  [PowerState.UNKNOWN]: { status: "default", word: "common.power.unknown" },
};

/** The message key of a power state's word. */
export function powerStateWord(status: WukongStatus | undefined): string {
  return LOOK[status?.powerState ?? PowerState.POWER_STATE_UNSPECIFIED].word;
}

/** The power state as a coloured badge; why (the status message) on hover. */
export function PowerBadge({ status }: { status: WukongStatus | undefined }) {
  const { t } = useTranslation();
  const look = LOOK[status?.powerState ?? PowerState.POWER_STATE_UNSPECIFIED];
  const badge = <Badge status={look.status} text={t(look.word)} data-testid="power-state" />;
  return status?.message ? <Tooltip title={status.message}>{badge}</Tooltip> : badge;
}

/** Power states for the status filter, as ListWukongs and WatchWukong accept them (each is also its word's key in
 * common.power). */
export const POWER_STATE_FILTERS = [
  "provisioning",
  "starting",
  "running",
  "paused",
  "stopping",
  "stopped",
  "migrating",
  "error",
  "deleting",
];
