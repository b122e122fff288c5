// Sizes, rates and shares in the reader's language for the metrics and the overview: rates in decimal units (kB/s,
// MB/s, as network and disk rates are usually given), memory in binary ones (GiB, as the VM's memory is given).
import { formatNumber } from "../../i18n/format";
import { i18next } from "../../i18n";

const RATE_UNITS = ["byte", "kilobyte", "megabyte", "gigabyte"] as const;

/** 1234567 → "1.2 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  let value = bytesPerSecond;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < RATE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return formatNumber(value, { style: "unit", unit: `${RATE_UNITS[unit]}-per-second`, maximumFractionDigits: 1 });
}

/** 1.5 × 2^30 → "1.5 GiB". */
export function formatGiB(bytes: number): string {
  return i18next.t("metrics.gib", { value: formatNumber(bytes / 2 ** 30, { maximumFractionDigits: 2 }) });
}

/** 12.345 (percent) → "12.3%". */
export function formatPercent(percent: number): string {
  return formatNumber(percent / 100, { style: "percent", maximumFractionDigits: 1 });
}
