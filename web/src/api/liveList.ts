// Live views from WatchWukong. `watchWukongs` is the loop: one stream, resumed from its last cursor after a network
// drop or a replica going away (with jittered back-off), started over when the server says the cursor is too old
// (RESYNC_REQUIRED) or the client too slow (SLOW_CONSUMER).
//
// `useLiveList` keeps a list page current with the page's own filter (filtered on the server), started at the list's
// cursor so nothing between the list and the watch is missed: a row that changes is replaced in place; a Wukong that
// appears or goes changes the page's membership and counts, so the page is read again (at least at the event's
// cursor: read-your-writes). Resuming reads the list again only if the membership changed meanwhile.
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "@gen/google/rpc/error_details_pb";
import type { Status } from "@gen/google/rpc/status_pb";
import { type Wukong, type WukongEvent, WukongEvent_Type } from "@gen/novasphere/v1/wukong_pb";
import { useEffect, useRef, useState } from "react";
import { wukongClient } from "./clients";
import { refresh } from "./session";

export type LiveState = "connecting" | "live" | "reconnecting";

export type WatchFilter = {
  namespace: string;
  status?: string;
  nameLike?: string;
  labelSelector?: string;
  name?: string;
  names?: string[];
};

const REREAD_DELAY_MS = 200;
const MAX_BACKOFF_MS = 15_000;
const MUST_START_OVER = new Set(["RESYNC_REQUIRED", "SLOW_CONSUMER"]);

type Loop = {
  filter: WatchFilter;
  cursor: string;
  signal: AbortSignal;
  onEvent: (event: WukongEvent) => void;
  onState: (state: LiveState) => void;
};

/** Runs until aborted (returns "aborted") or until the server says to start over (returns "start-over"). */
export async function watchWukongs({ filter, cursor, signal, onEvent, onState }: Loop): Promise<"aborted" | "start-over"> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const event of wukongClient.watchWukong({ ...filter, cursor }, { signal })) {
        failures = 0;
        onState("live");
        if (event.cursor) cursor = event.cursor;
        if (event.type === WukongEvent_Type.ERROR && MUST_START_OVER.has(reasonOf(event.error))) return "start-over";
        onEvent(event);
      }
    } catch (error) {
      // a network drop or a replica going away: resume from the cursor; an access token that expired while the tab
      // slept (its refresh timer did not run): refresh it first
      if (ConnectError.from(error).code === Code.Unauthenticated) await refresh().catch(() => undefined);
    }
    if (signal.aborted) break;
    onState("reconnecting");
    failures += 1;
    const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, backoff));
  }
  return "aborted";
}

type Handlers = {
  /** A Wukong changed: replace its row if the page shows it; whether it did. */
  changed: (wukong: Wukong) => boolean;
  /** Membership changed, or the stream starts over: read the page again, at least at `cursor`. */
  reread: (cursor: string) => void;
};

/** `list`: the page's latest read (its cursor, and when it arrived). */
export function useLiveList(
  filter: WatchFilter,
  list: { cursor: string; readAt: number } | undefined,
  handlers: Handlers,
): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  const latest = useRef(handlers);
  latest.current = handlers;
  const key = JSON.stringify(filter);
  // The watch starts at the list's cursor when the filter (or a start-over) begins it; later reads do not restart it.
  const startedAt = useRef<{ key: string; cursor: string; generation: number } | null>(null);
  const [generation, setGeneration] = useState(0);
  const startedOverAt = useRef(0); // a start-over waits for a read of the page made after it
  const usable = list !== undefined && list.readAt > startedOverAt.current;
  if (usable && (startedAt.current?.key !== key || startedAt.current.generation !== generation)) {
    startedAt.current = { key, cursor: list.cursor, generation };
  }
  const current = startedAt.current;
  const start = current?.key === key && current.generation === generation ? current.cursor : undefined;

  useEffect(() => {
    if (!start) return;
    const abort = new AbortController();
    let rereadTimer: ReturnType<typeof setTimeout> | undefined;
    setState((previous) => (previous === "live" ? previous : "connecting"));
    void watchWukongs({
      filter,
      cursor: start,
      signal: abort.signal,
      onState: setState,
      onEvent: (event) => {
        const added = event.type === WukongEvent_Type.ADDED;
        if ((event.type === WukongEvent_Type.MODIFIED || added) && event.wukong && latest.current.changed(event.wukong)) {
          // in place: a resumed stream may report rows the page already shows as ADDED
        } else if (added || event.type === WukongEvent_Type.DELETED) {
          clearTimeout(rereadTimer);
          rereadTimer = setTimeout(() => latest.current.reread(event.cursor), REREAD_DELAY_MS);
        }
      },
    }).then((ended) => {
      if (ended === "start-over") {
        startedOverAt.current = Date.now();
        latest.current.reread("");
        setGeneration((g) => g + 1);
      }
    });
    return () => {
      abort.abort();
      clearTimeout(rereadTimer);
    };
    // only a new filter, or a start-over, restarts the stream
  }, [key, start, generation]);

  return state;
}

function reasonOf(status: Status | undefined): string {
  for (const detail of status?.details ?? []) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info) return info.reason;
  }
  return "";
}
