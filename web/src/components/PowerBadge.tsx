import { WukongStatus_PowerState as PowerState, type WukongStatus } from "@gen/novasphere/v1/wukong_pb";
import { Badge, Tooltip } from "antd";

const LOOK: Record<PowerState, { status: "success" | "processing" | "default" | "error" | "warning"; text: string }> = {
  [PowerState.POWER_STATE_UNSPECIFIED]: { status: "default", text: "Unknown" },
  [PowerState.PROVISIONING]: { status: "processing", text: "Provisioning" },
  [PowerState.STARTING]: { status: "processing", text: "Starting" },
  [PowerState.RUNNING]: { status: "success", text: "Running" },
  [PowerState.PAUSED]: { status: "warning", text: "Paused" },
  [PowerState.STOPPING]: { status: "processing", text: "Stopping" },
  [PowerState.STOPPED]: { status: "default", text: "Stopped" },
  [PowerState.MIGRATING]: { status: "processing", text: "Migrating" },
  [PowerState.ERROR]: { status: "error", text: "Error" },
  [PowerState.DELETING]: { status: "processing", text: "Deleting" },
  [PowerState.UNKNOWN]: { status: "default", text: "Unknown" },
};

/** The power state as a coloured badge; why (the status message) on hover. */
export function PowerBadge({ status }: { status: WukongStatus | undefined }) {
  const look = LOOK[status?.powerState ?? PowerState.POWER_STATE_UNSPECIFIED];
  const badge = <Badge status={look.status} text={look.text} data-testid="power-state" />;
  return status?.message ? <Tooltip title={status.message}>{badge}</Tooltip> : badge;
}

/** Power states for the status filter, as ListWukongs and WatchWukong accept them. */
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
