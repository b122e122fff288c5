// The one i18n layer: every string a person reads comes from the message files beside this one (one JSON file per
// part of the app, the same files in each language: `<language>/<part>.json`, keys `part.key`). The browser's language
// picks the first choice; the switcher's choice is remembered in this browser.
import i18next from "i18next";
import { initReactI18next } from "react-i18next";

export const LANGUAGES = ["en-US", "zh-CN"] as const;
export type Language = (typeof LANGUAGES)[number];
const REMEMBERED = "novasphere.language";

type Messages = { [key: string]: string | Messages };
const files = import.meta.glob<Messages>("./*/*.json", { eager: true, import: "default" });

/** { "en-US": { vms: {...}, console: {...} }, ... } from ./en-US/vms.json and the rest. */
function resources(): Record<string, { translation: Messages }> {
  const byLanguage: Record<string, { translation: Messages }> = {};
  for (const [path, messages] of Object.entries(files)) {
    const [, language = "", part = ""] = /^\.\/([^/]+)\/([^/]+)\.json$/.exec(path) ?? [];
    (byLanguage[language] ??= { translation: {} }).translation[part] = messages;
  }
  return byLanguage;
}

/** The remembered choice, else the first of the browser's languages we have (any Chinese → zh-CN), else English. */
export function preferredLanguage(): Language {
  const remembered = localStorage.getItem(REMEMBERED);
  if (remembered && (LANGUAGES as readonly string[]).includes(remembered)) return remembered as Language;
  for (const wanted of navigator.languages ?? [navigator.language]) {
    const lower = wanted.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en-US";
  }
  return "en-US";
}

export function chooseLanguage(language: Language): void {
  localStorage.setItem(REMEMBERED, language);
  void i18next.changeLanguage(language);
}

void i18next.use(initReactI18next).init({
  resources: resources(),
  lng: preferredLanguage(),
  fallbackLng: false, // a missing message shows its key (and the check in tests/unit fails), never the other language
  interpolation: { escapeValue: false }, // React escapes
  returnNull: false,
});
document.documentElement.lang = i18next.language;
i18next.on("languageChanged", (language) => {
  document.documentElement.lang = language;
});

export { i18next };
