// The serial console: xterm.js on the console socket, with a long scrollback, search and copy on select.
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";

export const SCROLLBACK_LINES = 10_000;

export class SerialScreen {
  readonly terminal = new Terminal({
    scrollback: SCROLLBACK_LINES,
    convertEol: false,
    cursorBlink: true,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 14,
    theme: { background: "#101828" },
  });
  private readonly fit = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly resize = new ResizeObserver(() => this.fit.fit());
  private readonly encoder = new TextEncoder();

  constructor(container: HTMLElement) {
    this.terminal.loadAddon(this.fit);
    this.terminal.loadAddon(this.search);
    this.terminal.open(container);
    this.fit.fit();
    this.resize.observe(container);
    // copy on select, as terminals do (the clipboard may refuse without a user gesture: then Ctrl+C still works)
    this.terminal.onSelectionChange(() => {
      const selected = this.terminal.getSelection();
      if (selected) void navigator.clipboard?.writeText(selected).catch(() => undefined);
    });
  }

  attach(socket: WebSocket): () => void {
    const decoder = new TextDecoder();
    const received = (event: MessageEvent) => {
      this.terminal.write(
        typeof event.data === "string" ? event.data : decoder.decode(new Uint8Array(event.data as ArrayBuffer), { stream: true }),
      );
    };
    socket.addEventListener("message", received);
    const typed = this.terminal.onData((data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(this.encoder.encode(data));
    });
    this.terminal.focus();
    return () => {
      socket.removeEventListener("message", received);
      typed.dispose();
    };
  }

  /** Pastes as typed (bracketed if the guest's shell asked for it). */
  paste(text: string): void {
    this.terminal.paste(text);
    this.terminal.focus();
  }

  find(text: string, backwards = false): boolean {
    return backwards ? this.search.findPrevious(text) : this.search.findNext(text);
  }

  clearSearch(): void {
    this.search.clearDecorations();
  }

  dispose(): void {
    this.resize.disconnect();
    this.terminal.dispose();
  }
}
