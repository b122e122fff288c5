// Keeps a list page current from one WatchWukong stream with the page's own filter (filtered on the server), started
// at the list's cursor so nothing between the list and the watch is missed. A row that changes is replaced in place;
// a Wukong that appears or goes changes the page's membership and counts, so the page is read again (with the
// event's cursor: read-your-writes). A dropped stream resumes from its last cursor without reading the list again;
// RESYNC_REQUIRED or SLOW_CONSUMER read it again and start over.
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "@gen/google/rpc/error_details_pb";
import type { Status } from "@gen/google/rpc/status_pb";
import { type Wukong, WukongEvent_Type } from "@gen/novasphere/v1/wukong_pb";
import { useEffect, useRef, useState } from "react";
import { wukongClient } from "./clients";

export type LiveState = "connecting" | "live" | "reconnecting";

export type WatchFilter = { namespace: string; status: string; nameLike: string; labelSelector: string };

type Handlers = {
  /** A Wukong changed: replace its row if the page shows it. */
  changed: (wukong: Wukong) => void;
  /** Membership changed, or the stream must start over: read the page again, at least at `cursor`. */
  reread: (cursor: string) => void;
};

const REREAD_DELAY_MS = 200;
const MUST_START_OVER = new Set(["RESYNC_REQUIRED", "SLOW_CONSUMER"]);
const MAX_BACKOFF_MS = 15_000;

export function useLiveList(filter: WatchFilter, listCursor: string | undefined, handlers: Handlers): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  const latest = useRef(handlers);
  latest.current = handlers;
  const key = JSON.stringify(filter);
  const start = useRef<string | undefined>(undefined);
  // The watch starts at the first list's cursor for this filter; later list reads do not restart it.
  if (start.current === undefined && listCursor) start.current = listCursor;
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    start.current = undefined;
  }, [key]);

  useEffect(() => {
    if (!listCursor) return;
    const abort = new AbortController();
    let cursor = start.current ?? listCursor;
    let rereadTimer: ReturnType<typeof setTimeout> | undefined;
    const rereadSoon = (at: string) => {
      clearTimeout(rereadTimer);
      rereadTimer = setTimeout(() => latest.current.reread(at), REREAD_DELAY_MS);
    };
    const run = async () => {
      let failures = 0;
      while (!abort.signal.aborted) {
        try {
          const stream = wukongClient.watchWukong({ ...filter, cursor }, { signal: abort.signal });
          for await (const event of stream) {
            failures = 0;
            setState("live");
            if (event.cursor) cursor = event.cursor;
            switch (event.type) {
              case WukongEvent_Type.MODIFIED:
                if (event.wukong) latest.current.changed(event.wukong);
                break;
              case WukongEvent_Type.ADDED:
              case WukongEvent_Type.DELETED:
                rereadSoon(cursor);
                break;
              case WukongEvent_Type.ERROR:
                if (MUST_START_OVER.has(reasonOf(event.error))) {
                  latest.current.reread("");
                  start.current = undefined;
                  setGeneration((g) => g + 1); // start over from the fresh list's cursor
                  return;
                }
                break; // e.g. the replica is shutting down: the stream ends, and resumes elsewhere from the cursor
              default:
                break; // BOOKMARK: the cursor moved on
            }
          }
        } catch {
          // a network drop or a replica going away: resume from the cursor below
        }
        if (abort.signal.aborted) return;
        setState("reconnecting");
        failures += 1;
        const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
        await new Promise((resolve) => setTimeout(resolve, backoff));
      }
    };
    setState((previous) => (previous === "live" ? previous : "connecting"));
    void run();
    return () => {
      abort.abort();
      clearTimeout(rereadTimer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- restarts on a new filter or a resync only
  }, [key, generation, listCursor === undefined]);

  return state;
}

function reasonOf(status: Status | undefined): string {
  for (const detail of status?.details ?? []) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info) return info.reason;
  }
  return "";
}
