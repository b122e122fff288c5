// The i18n check (run by tests/unit/test_web_i18n.py): fails when
//   1. a message key exists in one language and not the other, or a message is empty;
//   2. the code uses a literal key (t("part.key"), i18nKey="part.key", or any string "part.key" of a known part, as
//      in a table of keys) that the messages lack;
//   3. a string a person would read is written in the code instead of the message files: JSX text, visible JSX
//      attributes (title, label, placeholder, aria-label, …), visible properties of object literals (title, content,
//      label, …) and the first argument of message.*/notification.* calls. A line that must stay literal (a product
//      name in a code sample, say) carries the comment `i18n-ignore`.
// Plural messages (t("x", { count })) are x_<category>, with exactly the categories each language has (en-US: one,
// other; zh-CN: other). Prints one line per finding (file:line: what) and exits 1 if there is any.
// Usage: node check-i18n.mjs [web directory] (default: the web/ this script is in).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const web = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const messagesRoot = join(web, "src", "i18n");
const LANGUAGES = ["en-US", "zh-CN"];
const VISIBLE_ATTRIBUTES = new Set([
  "title", "label", "placeholder", "aria-label", "alt", "okText", "cancelText", "tooltip", "content", "description",
  "message", "extra", "help", "addonBefore", "addonAfter", "emptyText", "checkedChildren", "unCheckedChildren", "tab",
  "text", "subTitle", "confirmText", "aria-description",
]);
const VISIBLE_PROPERTIES = new Set([
  "title", "content", "label", "okText", "cancelText", "description", "message", "placeholder", "emptyText", "tooltip",
  "text", "subTitle", "help", "extra",
]);
const LETTER = /\p{L}/u;
const findings = [];

function flatten(messages, prefix, into) {
  for (const [key, value] of Object.entries(messages)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "string") into.set(path, value);
    else flatten(value, path, into);
  }
  return into;
}

function messagesOf(language) {
  const directory = join(messagesRoot, language);
  const all = new Map();
  for (const file of readdirSync(directory).filter((f) => f.endsWith(".json"))) {
    const part = file.replace(/\.json$/, "");
    flatten(JSON.parse(readFileSync(join(directory, file), "utf8")), part, all);
  }
  return all;
}

const catalogs = Object.fromEntries(LANGUAGES.map((language) => [language, messagesOf(language)]));
const PLURAL = /^(.*)_(zero|one|two|few|many|other)$/;
const pluralBases = new Set(
  LANGUAGES.flatMap((language) => [...catalogs[language].keys()].map((key) => PLURAL.exec(key)?.[1]).filter(Boolean)),
);
for (const language of LANGUAGES) {
  const categories = new Intl.PluralRules(language).resolvedOptions().pluralCategories;
  for (const [key, value] of catalogs[language]) {
    if (!value.trim()) findings.push(`src/i18n/${language}: ${key} is empty`);
    if (pluralBases.has(PLURAL.exec(key)?.[1])) continue; // plural forms: checked per base below
    for (const other of LANGUAGES) {
      if (!catalogs[other].has(key)) findings.push(`src/i18n/${other}: ${key} is missing (${language} has it)`);
    }
  }
  for (const base of pluralBases) {
    for (const category of categories) {
      if (!catalogs[language].has(`${base}_${category}`)) findings.push(`src/i18n/${language}: ${base}_${category} is missing`);
    }
  }
}
// i18next plural forms: a key used as t("x", { count }) is stored as x_one / x_other
const parts = new Set(readdirSync(join(messagesRoot, "en-US")).map((file) => file.replace(/\.json$/, "")));
const looksLikeKey = (text) => /^\w+(\.\w+)+$/.test(text) && parts.has(text.split(".")[0]);
const known = (key) =>
  catalogs["en-US"].has(key) || catalogs["en-US"].has(`${key}_other`) || catalogs["en-US"].has(`${key}_one`);

function sources(directory) {
  return readdirSync(directory).flatMap((entry) => {
    const path = join(directory, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|tsx)$/.test(entry) && !entry.endsWith(".d.ts") ? [path] : [];
  });
}

function visibleLiteral(node) {
  if (ts.isStringLiteral(node) && looksLikeKey(node.text)) return false; // a message key, checked as such
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return LETTER.test(node.text);
  if (ts.isTemplateExpression(node)) {
    return LETTER.test(node.head.text) || node.templateSpans.some((span) => LETTER.test(span.literal.text));
  }
  return false;
}

function propertyName(name) {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) ? name.text : "";
}

for (const path of sources(join(web, "src"))) {
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
  const report = (node, what) => {
    const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
    if (lines[line]?.includes("i18n-ignore")) return;
    findings.push(`${relative(web, path)}:${line + 1}: ${what}`);
  };
  const visit = (node) => {
    if (ts.isStringLiteral(node) && looksLikeKey(node.text) && !known(node.text)) {
      report(node, `no message ${node.text}`);
    }
    if (ts.isJsxText(node) && LETTER.test(node.text)) {
      report(node, `text in JSX: ${JSON.stringify(node.text.trim())}`);
    } else if (ts.isJsxAttribute(node) && node.initializer) {
      const name = node.name.getText(file);
      const value = ts.isJsxExpression(node.initializer) ? node.initializer.expression : node.initializer;
      if (name === "i18nKey" && value && ts.isStringLiteral(value) && !known(value.text)) {
        report(node, `no message ${value.text}`);
      } else if (VISIBLE_ATTRIBUTES.has(name) && value && visibleLiteral(value)) {
        report(node, `literal ${name}: ${value.getText(file)}`);
      }
    } else if (ts.isJsxExpression(node) && node.expression && ts.isJsxElement(node.parent) && visibleLiteral(node.expression)) {
      report(node, `literal child: ${node.expression.getText(file)}`);
    } else if (ts.isPropertyAssignment(node) && VISIBLE_PROPERTIES.has(propertyName(node.name)) && visibleLiteral(node.initializer)) {
      report(node, `literal ${propertyName(node.name)}: ${node.initializer.getText(file)}`);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression.getText(file);
      const first = node.arguments[0];
      if ((callee === "t" || callee.endsWith(".t")) && first && ts.isStringLiteral(first) && !known(first.text)) {
        report(node, `no message ${first.text}`);
      } else if (/^(message|notification|modal)\.\w+$/.test(callee) && first && visibleLiteral(first)) {
        report(node, `literal ${callee}: ${first.getText(file)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
}

const distinct = [...new Set(findings)]; // a key in t("…") is also a key-like string
for (const finding of distinct) console.log(finding);
if (distinct.length) {
  console.log(`${distinct.length} i18n finding(s)`);
  process.exit(1);
}
console.log(`i18n: ${catalogs["en-US"].size} messages in ${LANGUAGES.join(", ")}, no literal visible string`);
