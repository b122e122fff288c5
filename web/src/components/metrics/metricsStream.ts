// The detail page's live metrics: one WatchWukongMetrics stream, resumed with back-off after a drop, turned into the
// points of the last minutes. A sample without values (NOT_RUNNING, COLLECTING, UNAVAILABLE) is a point whose values
// are null, which the charts draw as a gap: a VM that is not measured is never shown as idle.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MetricsState, type WukongMetrics } from "@gen/novasphere/v1/metrics_service_pb";
import type { TFunction } from "i18next";
import { useEffect, useState } from "react";
import { metricsClient } from "../../api/clients";
import { refresh } from "../../api/session";

/** How much history the charts show. */
export const WINDOW_MINUTES = 5;
const WINDOW_MS = WINDOW_MINUTES * 60_000;
/** How often the server looks for a new sample (metrics-server takes one every 15 s). */
const INTERVAL_SECONDS = 5;
const MAX_BACKOFF_MS = 15_000;

export type MetricsPoint = {
  time: number;
  cpuPercent: number | null;
  memoryPercent: number | null;
  receivedBytes: number | null;
  sentBytes: number | null;
  readBytes: number | null;
  writtenBytes: number | null;
};

export type Connection = "connecting" | "live" | "reconnecting" | "gone";

export type MetricsView = { latest: WukongMetrics | null; points: MetricsPoint[]; connection: Connection };

export function useMetricsStream(namespace: string, name: string): MetricsView {
  const [view, setView] = useState<MetricsView>({ latest: null, points: [], connection: "connecting" });

  useEffect(() => {
    const abort = new AbortController();
    setView({ latest: null, points: [], connection: "connecting" });
    const received = (sample: WukongMetrics) =>
      setView((old) => ({ latest: sample, points: withPoint(old.points, pointOf(sample)), connection: "live" }));
    // while the stream is down nothing is known: a gap, not a line from the last sample to the next
    const connection = (state: Connection) =>
      setView((old) => ({ ...old, points: withPoint(old.points, gapAt(Date.now())), connection: state }));
    void follow(namespace, name, abort.signal, received, connection);
    return () => abort.abort();
  }, [namespace, name]);

  return view;
}

async function follow(
  namespace: string,
  name: string,
  signal: AbortSignal,
  onSample: (sample: WukongMetrics) => void,
  onConnection: (state: Connection) => void,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const stream = metricsClient.watchWukongMetrics({ namespace, name, intervalSeconds: INTERVAL_SECONDS }, { signal });
      for await (const sample of stream) {
        failures = 0;
        onSample(sample);
      }
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.NotFound) {
        onConnection("gone"); // the Wukong was deleted: the stream will not come back
        return;
      }
      // an access token that expired while the tab slept: refresh it before resuming
      if (code === Code.Unauthenticated) await refresh().catch(() => undefined);
    }
    if (signal.aborted) return;
    onConnection("reconnecting");
    failures += 1;
    const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, backoff));
  }
}

function gapAt(time: number): MetricsPoint {
  return { time, cpuPercent: null, memoryPercent: null, receivedBytes: null, sentBytes: null, readBytes: null, writtenBytes: null };
}

function pointOf(sample: WukongMetrics): MetricsPoint {
  const measured = sample.state === MetricsState.AVAILABLE;
  const network = sample.network?.state === MetricsState.AVAILABLE ? sample.network : undefined;
  const disk = sample.disk?.state === MetricsState.AVAILABLE ? sample.disk : undefined;
  return {
    time: measured && sample.sampleTime ? timestampMs(sample.sampleTime) : Date.now(),
    cpuPercent: measured ? (sample.cpu?.percent ?? null) : null,
    memoryPercent: measured ? (sample.memory?.percent ?? null) : null,
    receivedBytes: network?.receiveBytesPerSecond ?? null,
    sentBytes: network?.transmitBytesPerSecond ?? null,
    readBytes: disk?.readBytesPerSecond ?? null,
    writtenBytes: disk?.writeBytesPerSecond ?? null,
  };
}

/** The points of the window with `point` in time order; a sample sent again (the stream's keep-alive) replaces its
 * point rather than adding one. */
function withPoint(points: MetricsPoint[], point: MetricsPoint): MetricsPoint[] {
  const since = point.time - WINDOW_MS;
  const kept = points.filter((p) => p.time >= since && p.time !== point.time);
  return [...kept, point].sort((a, b) => a.time - b.time);
}

/** A state in words, `short` or in a sentence; an unavailable source with the server's reason (which names it). */
export function stateWords(t: TFunction, state: MetricsState, message: string | undefined, short = true): string {
  if (state === MetricsState.UNAVAILABLE && message) return t("metrics.unavailableBecause", { reason: message });
  return t(`metrics.${short ? "short" : "state"}.${MetricsState[state]}`);
}
