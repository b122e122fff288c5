// What the end of a console socket means, in words, and whether to connect again by ourselves. The close codes are
// the API's (proto/novasphere/v1/console_service.proto); 1006 is the browser's own for a connection that dropped
// without a close frame (network, Envoy or a replica going away).
import type { TFunction } from "i18next";

export const CLOSE = {
  NORMAL: 1000,
  DROPPED: 1006,
  INTERNAL: 1011,
  DISCONNECTED: 4000,
  TAKEN_OVER: 4001,
  EXPIRED: 4002,
  VM_STOPPED: 4003,
  BACKEND_CLOSED: 4004,
  SHUTDOWN: 4005,
  SIGNED_OUT: 4006,
  ACCESS_REVOKED: 4007,
  SESSION_LIMIT: 4008,
} as const;

/** A dropped connection and a replica shutting down are not anyone's decision: reconnect with a fresh ticket. A
 * take-over, a disconnect (someone's or the user's own), the end of its lifetime or of the user's rights are: stay
 * closed. A stopped VM is followed instead, and reconnected to when it runs again. */
export function reconnectsAfter(code: number): boolean {
  return code === CLOSE.DROPPED || code === CLOSE.SHUTDOWN;
}

/** Who the close reason names, e.g. "taken over by alice" → "alice" (the server writes "<what> by <user>"). */
export function namedIn(reason: string): string {
  const match = / by (\S+)$/.exec(reason.trim());
  return match?.[1] ?? "";
}

export function closeMessage(t: TFunction, code: number, reason: string): string {
  const who = namedIn(reason);
  switch (code) {
    case CLOSE.TAKEN_OVER:
      return who ? t("console.closed.takenOverBy", { who }) : t("console.closed.takenOver");
    case CLOSE.DISCONNECTED:
      return who ? t("console.closed.disconnectedBy", { who }) : t("console.closed.disconnected");
    case CLOSE.EXPIRED:
      return t("console.closed.expired");
    case CLOSE.VM_STOPPED:
      return t("console.closed.vmStopped");
    case CLOSE.BACKEND_CLOSED:
      return t("console.closed.backendClosed");
    case CLOSE.SHUTDOWN:
      return t("console.closed.shutdown");
    case CLOSE.SIGNED_OUT:
      return t("console.closed.signedOut");
    case CLOSE.ACCESS_REVOKED:
      return t("console.closed.accessRevoked");
    case CLOSE.SESSION_LIMIT:
      return t("console.closed.sessionLimit");
    case CLOSE.INTERNAL:
      return t("console.closed.internal");
    case CLOSE.DROPPED:
      return t("console.closed.dropped");
    default:
      return t("console.closed.ended", { code });
  }
}

/** Bounded exponential back-off for reconnecting: 1, 2, 4, 8, 16 s, then 30 s, with a little jitter; after
 * `MAX_ATTEMPTS` the page stops and offers to connect again. Each attempt asks for a new console link, of which a user
 * gets 5 a minute (a refusal with a retry delay waits that long). */
export const MAX_ATTEMPTS = 8;
const FIRST_DELAY_S = 1;
const LONGEST_DELAY_S = 30;

export function reconnectDelaySeconds(attempt: number): number {
  const base = Math.min(LONGEST_DELAY_S, FIRST_DELAY_S * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}
