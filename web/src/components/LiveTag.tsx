import { Tag } from "antd";
import type { LiveState } from "../api/liveList";

/** Whether the view's stream is live, or reconnecting after a drop. */
export function LiveTag({ state }: { state: LiveState }) {
  if (state === "live") return <Tag color="green" data-testid="live">Live</Tag>;
  if (state === "reconnecting") return <Tag color="orange" data-testid="live">Reconnecting…</Tag>;
  return <Tag data-testid="live">Connecting…</Tag>;
}
