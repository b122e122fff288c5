// Drives Debian's chromium with playwright-core for Python tests (tests/web_browser.py), one browser per test
// session and a fresh context (its own cookies and storage) per test.
//
//   node driver.mjs serve --accept-spki <base64 SHA-256 of a server key>
//       launches chromium, prints {"wsEndpoint": ...}, and keeps it running until standard input closes;
//   node driver.mjs drive --endpoint <wsEndpoint> [--locale <BCP 47 tag, default en-US>]
//       connects, opens a context (its navigator.language and Accept-Language are the locale), then answers one JSON command per line of standard input with one JSON line:
//       {"op": "open"} -> {"tab": n}; {"op": "goto"|"reload"|"fill"|"click"|"press"|"wait"|"text"|"count"|"url"|
//       "screenshot"|"evaluate"|"problems"|"axe"|"key"|"type"|"focused"|"viewport"|"hover"|"permit", "tab": n, ...} -> {"ok": true, "value": ...}
//       or {"ok": false, "error"}.
// Selectors are playwright's (CSS, text=, role=, data-testid via [data-testid=...]).
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    "accept-spki": { type: "string", default: "" },
    endpoint: { type: "string", default: "" },
    locale: { type: "string", default: "en-US" },
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
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: options.locale });
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
    viewport: async (tab, { width, height }) => void (await tab.setViewportSize({ width, height })),
    problems: async () => problems.splice(0),
    // axe-core's WCAG 2.1 A/AA rules on the page as it is now (open dialogs included): the serious and critical
    // violations, each with the elements it found.
    axe: async (tab) => {
      const { violations } = await new AxeBuilder({ page: tab })
        .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
        .analyze();
      return violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(" ")) }));
    },
    // The keyboard alone: a key pressed wherever the focus is, and a description of what has the focus.
    key: async (tab, { key }) => void (await tab.keyboard.press(key)),
    focused: async (tab) =>
      await tab.evaluate(() => {
        const e = document.activeElement;
        if (!e || e === document.body) return "";
        const name = e.getAttribute("aria-label") || e.textContent?.trim().slice(0, 60) || "";
        return `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""} ${name}`.trim();
      }),
    hover: async (tab, { selector, x, y }) =>
      void (await tab.locator(selector).first().hover(x === undefined ? {} : { position: { x, y } })),
    permit: async (_tab, { permissions }) => void (await context.grantPermissions(permissions)),
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
