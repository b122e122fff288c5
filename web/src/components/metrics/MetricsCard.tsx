// The detail page's live metrics: CPU, memory, network and disk over the last minutes (WatchWukongMetrics).
import type { Wukong } from "@gen/novasphere/v1/wukong_pb";

export function MetricsCard(_: { wukong: Wukong }) {
  return null; // filled in by the metrics work (web console part 2)
}
