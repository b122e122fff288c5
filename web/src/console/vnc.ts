// The VNC screen: noVNC's RFB on the console socket, and the ways the toolbar types into it.
import RFB from "@novnc/novnc";
import type { KeyEvent } from "./keyboard";

export type Scaling = "fit" | "native";

/** Pause between typed characters: a guest's keyboard buffer is small. */
const TYPING_PAUSE_MS = 8;

export class VncScreen {
  private rfb: RFB | null = null;
  private scaling: Scaling = "fit";

  constructor(private readonly container: HTMLElement) {}

  attach(socket: WebSocket): () => void {
    const rfb = new RFB(this.container, socket, { shared: true });
    rfb.background = "#000";
    this.rfb = rfb;
    this.applyScaling();
    return () => {
      if (this.rfb === rfb) this.rfb = null;
      // a socket closed by the server has already ended noVNC's connection; one we close, it ends itself
      this.container.replaceChildren();
    };
  }

  setScaling(scaling: Scaling): void {
    this.scaling = scaling;
    this.applyScaling();
  }

  private applyScaling(): void {
    if (!this.rfb) return;
    this.rfb.scaleViewport = this.scaling === "fit";
    this.rfb.clipViewport = false;
  }

  focus(): void {
    this.rfb?.focus();
  }

  /** Sends the key events in order; the characters of a paste a little apart. Resolves when all are sent. */
  async send(events: KeyEvent[], paced = false): Promise<void> {
    let held = 0;
    for (const { keysym, down } of events) {
      if (!this.rfb) return;
      this.rfb.sendKey(keysym, null, down);
      held += down ? 1 : -1;
      if (paced && held === 0) await new Promise((resolve) => setTimeout(resolve, TYPING_PAUSE_MS));
    }
    this.focus();
  }
}
