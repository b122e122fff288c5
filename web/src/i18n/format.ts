// Dates, numbers and sizes in the reader's language and time zone (the browser's), following the language switcher.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { i18next } from "./index";

export function formatDateTime(value: Timestamp | Date | undefined): string {
  if (!value) return "";
  const date = value instanceof Date ? value : timestampDate(value);
  return new Intl.DateTimeFormat(i18next.language, { dateStyle: "medium", timeStyle: "medium" }).format(date);
}

export function formatTime(value: Timestamp | Date | undefined): string {
  if (!value) return "";
  const date = value instanceof Date ? value : timestampDate(value);
  return new Intl.DateTimeFormat(i18next.language, { timeStyle: "medium" }).format(date);
}

export function formatNumber(value: number | bigint, options?: Intl.NumberFormatOptions): string {
  return new Intl.NumberFormat(i18next.language, options).format(value);
}

/** "3 minutes ago" / "3 分钟前". */
export function formatAgo(value: Timestamp | Date | undefined, now: number = Date.now()): string {
  if (!value) return "";
  const date = value instanceof Date ? value : timestampDate(value);
  const seconds = Math.round((date.getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(i18next.language, { numeric: "auto" });
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(seconds, "second");
}
