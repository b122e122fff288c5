// noVNC (@novnc/novnc) in Debian's chromium, driven by playwright-core: connects to a VNC websocket URL, waits for
// the first frame, reads the simulated screen's marker (one coloured cell per byte of the VM name, see
// sim/kubevirt/rfb.py) from the canvas, saves a screenshot and prints {"connected", "desktopName", "marker"} as JSON.
//
//   node novnc.mjs --url ws://127.0.0.1:PORT/apis/subresources.kubevirt.io/v1/.../vnc --screenshot out.png
//   node novnc.mjs --url - ...   (prints {"ready": true} once chromium runs, then reads {"url", "protocols"} from stdin)
//   node novnc.mjs --url <consoleUrl> --protocols ticket.novasphere.dev.<ticket>,binary \
//       --page-origin https://console-page.test --accept-spki <base64 SHA-256 of the server's public key>
// (--protocols: the WebSocket subprotocols noVNC offers, default plain.kubevirt.io; --page-origin: the origin the page
// is served from, by request interception, so no port is taken and its Origin is one the server allows;
// --accept-spki: a wss:// server key chromium accepts though its CA is not in the browser's trust store.)
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: options } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    timeout: { type: "string", default: "60000" },
    protocols: { type: "string", default: "plain.kubevirt.io" },
    "page-origin": { type: "string", default: "http://localhost" },
    "accept-spki": { type: "string", default: "" },
  },
});
const timeout = Number(options.timeout);
const novncRoot = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "@novnc", "novnc");
const MARKER_CELL = 8;

const pageFor = (url, protocols) => `<!doctype html>
<html><body style="margin:0"><div id="screen" style="width:720px;height:400px"></div>
<script>
// set before the module loads, so a failed import is reported rather than awaited
window.result = { connected: false, desktopName: "", error: "" };
window.addEventListener("error", (e) => { window.result.error = String(e.message || e); });
</script>
<script type="module">
import RFB from "/novnc/core/rfb.js";
// KubeVirt speaks one subprotocol; offering only noVNC's default "binary" would fail the handshake (kubevirt.md §2.2).
const rfb = new RFB(document.getElementById("screen"), ${JSON.stringify(url)}, { wsProtocols: ${JSON.stringify(protocols)} });
rfb.addEventListener("connect", () => { window.result.connected = true; });
rfb.addEventListener("desktopname", (e) => { window.result.desktopName = e.detail.name; });
rfb.addEventListener("disconnect", (e) => { if (!window.result.connected) window.result.error = "disconnected: clean=" + e.detail.clean; });
window.rfb = rfb;
</script></body></html>`;

let page = "";
const types = { ".js": "text/javascript", ".html": "text/html" };
async function serve(route) {
  const path = new URL(route.request().url()).pathname;
  if (path === "/") {
    await route.fulfill({ status: 200, contentType: "text/html", body: page });
    return;
  }
  const relative = normalize(path.replace(/^\/novnc\//, ""));
  if (!path.startsWith("/novnc/") || relative.startsWith("..")) {
    await route.fulfill({ status: 404, body: "" });
    return;
  }
  try {
    const body = await readFile(join(novncRoot, relative));
    const contentType = types[relative.slice(relative.lastIndexOf("."))] ?? "application/octet-stream";
    await route.fulfill({ status: 200, contentType, body });
  } catch {
    await route.fulfill({ status: 404, body: "" });
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    ...(options["accept-spki"] ? [`--ignore-certificate-errors-spki-list=${options["accept-spki"]}`] : []),
  ],
});
let exitCode = 1;
try {
  // The page is served by interception, so chromium cannot place it on loopback: it asks for the permission a person
  // would give a page that talks to a server on this machine.
  const tab = await browser.newPage({ viewport: { width: 800, height: 480 }, permissions: ["local-network-access"] });
  // What the page saw, for the error message when it does not connect
  const seen = [];
  tab.on("console", (message) => seen.push(`console.${message.type()}: ${message.text()}`));
  tab.on("websocket", (socket) => {
    seen.push(`websocket ${socket.url()}`);
    socket.on("socketerror", (error) => seen.push(`websocket error: ${error}`));
    socket.on("close", () => seen.push("websocket closed"));
  });
  let { url, protocols } = options;
  if (url === "-") {
    // `--url -`: the browser is up; now the link (a console ticket lives a few seconds, shorter than a cold start
    // of chromium on a busy machine), as one JSON line {"url", "protocols"} on standard input
    console.log(JSON.stringify({ ready: true }));
    const [line] = await once(createInterface({ input: process.stdin }), "line");
    ({ url, protocols } = JSON.parse(line));
  }
  page = pageFor(url, protocols.split(","));
  await tab.route(`${options["page-origin"]}/**`, serve);
  await tab.goto(`${options["page-origin"]}/`);
  await tab.waitForFunction(() => window.result.connected || window.result.error, null, { timeout });
  const early = await tab.evaluate(() => window.result);
  if (!early.connected) throw new Error(`noVNC did not connect: ${early.error}\n${seen.join("\n")}`);
  // the first frame: the marker's first cell is drawn (not the background)
  const marker = await tab.waitForFunction(
    (cell) => {
      const canvas = document.querySelector("#screen canvas");
      if (!canvas || canvas.width < 720) return null;
      const context = canvas.getContext("2d");
      const bytes = [];
      for (let index = 0; index < canvas.width / cell; index++) {
        const [r, g, b] = context.getImageData(index * cell + cell / 2, cell / 2, 1, 1).data;
        if (r + g !== 255 || b !== 0x5a) break;
        bytes.push(r);
      }
      return bytes.length ? String.fromCharCode(...bytes) : null;
    },
    MARKER_CELL,
    { timeout },
  );
  if (options.screenshot) await tab.screenshot({ path: options.screenshot });
  const result = await tab.evaluate(() => window.result);
  console.log(JSON.stringify({ ...result, marker: await marker.jsonValue() }));
  exitCode = result.connected ? 0 : 1;
} catch (error) {
  console.error(String(error));
} finally {
  await browser.close();
}
process.exit(exitCode);
