// The detail page's console card: which consoles the VM offers and the way into them.
import type { Wukong } from "@gen/novasphere/v1/wukong_pb";

export function ConsoleCard(_: { wukong: Wukong }) {
  return null; // filled in by the consoles work (web console part 2)
}
