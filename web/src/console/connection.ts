// One console of one VM, kept open: asks for a console link (CreateConsoleSession), opens its WebSocket with the
// ticket as subprotocol, hands the socket to the view (noVNC or xterm.js), and when the socket ends decides what
// next (closeCodes.ts): reconnect with a fresh link after a drop or a replica shutting down (bounded back-off, counted
// down on screen), follow a stopped VM and reconnect when it runs again, or stay closed and say why.
import { Code } from "@connectrpc/connect";
import { type ConsoleProtocol, type ConsoleSession, ConsoleSession_State } from "@gen/novasphere/v1/console_service_pb";
import { WukongStatus_PowerState as PowerState, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { WukongView } from "@gen/novasphere/v1/wukong_service_pb";
import { wukongClient } from "../api/clients";
import { problem, type Problem } from "../api/errors";
import { watchWukongs } from "../api/liveList";
import { session } from "../api/session";
import { BINARY_PROTOCOL, consoleClient, MANAGE_CONSOLES, may, TICKET_PROTOCOL } from "./client";
import { CLOSE, MAX_ATTEMPTS, reconnectDelaySeconds, reconnectsAfter } from "./closeCodes";

export type ConsoleState =
  | { phase: "connecting" }
  | { phase: "connected"; session: ConsoleSession }
  | { phase: "reconnecting"; attempt: number; seconds: number; code: number; reason: string }
  | { phase: "in-use"; holder: ConsoleSession | undefined; mayTakeOver: boolean }
  | { phase: "vm-stopped" }
  /** Closed for good: by a close code (`code`, `reason`), by the user (`byUser`), or a refused link (`problem`). */
  | { phase: "closed"; code?: number; reason?: string; byUser?: boolean; problem?: Problem; gaveUp?: boolean };

export type Target = { namespace: string; name: string; protocol: ConsoleProtocol };

/** The view's side: take the socket (not yet open) and return how to let go of it. */
export type Attach = (socket: WebSocket) => () => void;

export class ConsoleConnection {
  private socket: WebSocket | null = null;
  private detach: (() => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private following: AbortController | null = null;
  private attempt = 0;
  private lastSessionId = "";
  private disposed = false;

  constructor(
    private readonly target: Target,
    private readonly attach: Attach,
    private readonly onState: (state: ConsoleState) => void,
  ) {}

  /** Connects (or again, after a close); `takeOver`: take the console from whoever holds it. */
  connect(takeOver = false): void {
    this.stopWaiting();
    this.attempt = 0;
    void this.open(takeOver);
  }

  /** The user's own Disconnect: close and stay closed. */
  disconnect(): void {
    this.stopWaiting();
    this.release(1000, "disconnected by the user");
    this.onState({ phase: "closed", byUser: true });
  }

  dispose(): void {
    this.disposed = true;
    this.stopWaiting();
    this.release(1000, "the page closed");
  }

  private async open(takeOver: boolean): Promise<void> {
    this.onState(this.attempt > 0 ? this.reconnecting(0) : { phase: "connecting" });
    let link: ConsoleSession;
    try {
      link = await consoleClient.createConsoleSession({ ...this.target, takeOver });
    } catch (error) {
      if (!this.disposed) await this.refused(problem(error));
      return;
    }
    if (this.disposed) return;
    this.lastSessionId = link.sessionId;
    const socket = new WebSocket(link.consoleUrl, [TICKET_PROTOCOL + link.ticket, BINARY_PROTOCOL]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.onState({ phase: "connected", session: link });
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return; // let go of on purpose
      this.socket = null;
      this.detach?.();
      this.detach = null;
      this.closed(event.code, event.reason);
    });
    this.detach = this.attach(socket);
  }

  private closed(code: number, reason: string): void {
    if (this.disposed) return;
    if (code === CLOSE.VM_STOPPED) {
      this.followVm();
    } else if (reconnectsAfter(code)) {
      this.retry(code, reason);
    } else {
      this.onState({ phase: "closed", code, reason });
    }
  }

  private async refused(p: Problem): Promise<void> {
    const reconnecting = this.attempt > 0;
    if (p.reason === "CONSOLE_IN_USE") {
      const holder = await this.holder();
      // our own socket that dropped is still the holder until the server notices: take it back
      if (reconnecting && holder?.sessionId === this.lastSessionId) {
        void this.open(true);
        return;
      }
      const mayTakeOver = holder?.user === session()?.identity.username || may(MANAGE_CONSOLES);
      this.onState({ phase: "in-use", holder, mayTakeOver });
    } else if (p.reason === "VM_NOT_RUNNING") {
      this.followVm();
    } else if (reconnecting && (p.code === Code.Unavailable || p.code === Code.Unknown || p.code === Code.Internal)) {
      this.retry(CLOSE.DROPPED, ""); // the API is not back yet
    } else if (reconnecting && p.code === Code.ResourceExhausted && p.retryAfterSeconds !== null) {
      this.wait(p.retryAfterSeconds, CLOSE.DROPPED, "");
    } else {
      this.onState({ phase: "closed", problem: p });
    }
  }

  private async holder(): Promise<ConsoleSession | undefined> {
    try {
      const current = await consoleClient.getConsoleStatus(this.target);
      return current.state !== ConsoleSession_State.CLOSED ? current : undefined;
    } catch {
      return undefined;
    }
  }

  private retry(code: number, reason: string): void {
    this.attempt += 1;
    if (this.attempt > MAX_ATTEMPTS) {
      this.onState({ phase: "closed", code, reason, gaveUp: true });
      return;
    }
    this.wait(reconnectDelaySeconds(this.attempt), code, reason);
  }

  /** Counts down `seconds` on screen, then asks for a fresh link. */
  private wait(seconds: number, code: number, reason: string): void {
    clearTimeout(this.timer);
    const tick = (left: number) => {
      if (this.disposed) return;
      if (left <= 0) {
        void this.open(false);
        return;
      }
      this.onState(this.reconnecting(left, code, reason));
      this.timer = setTimeout(() => tick(left - 1), 1000);
    };
    tick(seconds);
  }

  private reconnecting(seconds: number, code: number = CLOSE.DROPPED, reason = ""): ConsoleState {
    return { phase: "reconnecting", attempt: Math.max(1, this.attempt), seconds, code, reason };
  }

  /** The VM stopped: watch it, and connect again once it runs. */
  private followVm(): void {
    this.onState({ phase: "vm-stopped" });
    this.following?.abort();
    const abort = new AbortController();
    this.following = abort;
    const { namespace, name } = this.target;
    const running = (wukong: Wukong | undefined) => wukong?.status?.powerState === PowerState.RUNNING;
    const resume = () => {
      if (abort.signal.aborted) return;
      abort.abort();
      this.connect();
    };
    const follow = async () => {
      while (!abort.signal.aborted) {
        try {
          const request = { namespace, name, view: WukongView.BASIC }; // its state only: the server's cache answers
          const current = await wukongClient.getWukong(request, { signal: abort.signal });
          if (running(current)) return resume();
          await watchWukongs({
            filter: { namespace, name },
            cursor: current.cursor,
            signal: abort.signal,
            onState: () => undefined,
            onEvent: (event) => {
              if (running(event.wukong)) resume();
            },
          });
        } catch {
          if (!abort.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      }
    };
    void follow();
  }

  private stopWaiting(): void {
    clearTimeout(this.timer);
    this.following?.abort();
    this.following = null;
  }

  private release(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    this.detach?.();
    this.detach = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
  }
}
