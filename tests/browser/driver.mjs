// Drives Debian's chromium with playwright-core for Python tests (tests/web_browser.py), one browser per test
// session and a fresh context (its own cookies and storage) per test.
//
//   node driver.mjs serve --accept-spki <base64 SHA-256 of a server key>
//       launches chromium, prints {"wsEndpoint": ...}, and keeps it running until standard input closes;
//   node driver.mjs drive --endpoint <wsEndpoint>
//       connects, opens a context, then answers one JSON command per line of standard input with one JSON line:
//       {"op": "open"} -> {"tab": n}; {"op": "goto"|"reload"|"fill"|"click"|"press"|"wait"|"text"|"count"|"url"|
//       "screenshot"|"evaluate"|"problems", "tab": n, ...} -> {"ok": true, "value": ...} or {"ok": false, "error"}.
// Selectors are playwright's (CSS, text=, role=, data-testid via [data-testid=...]).
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    "accept-spki": { type: "string", default: "" },
    endpoint: { type: "string", default: "" },
  },
});

if (positionals[0] === "serve") {
  const server = await chromium.launchServer({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--lang=en-US",
      ...(options["accept-spki"] ? [`--ignore-certificate-errors-spki-list=${options["accept-spki"]}`] : []),
    ],
  });
  console.log(JSON.stringify({ wsEndpoint: server.wsEndpoint() }));
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await server.close();
    process.exit(0);
  });
} else if (positionals[0] === "drive") {
  const browser = await chromium.connect(options.endpoint);
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US" });
  // A CSP violation reported with where it came from (chromium's console message does not say).
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP ${e.effectiveDirective} blocked at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} ${e.sample}`);
    });
  });
  const tabs = [];
  const problems = [];
  const timeout = 15_000;

  const commands = {
    async open() {
      const tab = await context.newPage();
      tab.setDefaultTimeout(timeout);
      tab.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      tab.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      tabs.push(tab);
      return tabs.length - 1;
    },
    goto: async (tab, { url }) => void (await tab.goto(url)),
    reload: async (tab) => void (await tab.reload()),
    fill: async (tab, { selector, value }) => void (await tab.locator(selector).fill(value)),
    click: async (tab, { selector }) => void (await tab.locator(selector).first().click()),
    press: async (tab, { selector, key }) => void (await tab.locator(selector).press(key)),
    wait: async (tab, { selector, state = "visible", ms = timeout }) =>
      void (await tab.locator(selector).first().waitFor({ state, timeout: ms })),
    text: async (tab, { selector }) => await tab.locator(selector).first().innerText(),
    texts: async (tab, { selector }) => await tab.locator(selector).allInnerTexts(),
    count: async (tab, { selector }) => await tab.locator(selector).count(),
    url: async (tab) => tab.url(),
    screenshot: async (tab, { path }) => void (await tab.screenshot({ path, fullPage: true })),
    evaluate: async (tab, { expression }) => await tab.evaluate(expression),
    problems: async () => problems.splice(0),
    // types into the focused element key by key, as a person would (a terminal has no value to fill)
    type: async (tab, { selector, text, delay = 0 }) => void (await tab.locator(selector).pressSequentially(text, { delay })),
  };

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const command = JSON.parse(line);
    try {
      const handler = commands[command.op];
      if (!handler) throw new Error(`unknown op ${command.op}`);
      const value = command.op === "open" ? await handler() : await handler(tabs[command.tab], command);
      console.log(JSON.stringify({ ok: true, value: value ?? null }));
    } catch (error) {
      console.log(JSON.stringify({ ok: false, error: String(error?.message ?? error) }));
    }
  }
  await context.close();
  await browser.close();
  process.exit(0);
} else {
  console.error("usage: node driver.mjs serve|drive ...");
  process.exit(2);
}
