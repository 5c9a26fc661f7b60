// format.js — numbers, percentages, times and countdowns in the chosen language.
//
// The API speaks RFC 3339 UTC; people read local time. Absolute times use Intl.DateTimeFormat,
// relative ones Intl.RelativeTimeFormat, both in the UI language, so the two dictionaries in
// i18n.js need no date words.

import { getLang, t } from "./i18n.js";

export function parseTime(v) {
  if (v === null || v === undefined || v === "") return null;
  const ms = typeof v === "number" ? v : Date.parse(v);
  return Number.isFinite(ms) ? ms : null;
}

export function fmtNumber(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return t("time.none");
  return new Intl.NumberFormat(getLang()).format(n);
}

/**
 * success_rate may be a fraction (0..1) or a percentage; shown as a percentage. Nothing
 * (null) when the counts say there has been no request yet.
 */
export function ratePercent(rate, success, failure) {
  const n = (success || 0) + (failure || 0);
  if (n === 0 && (success !== undefined || failure !== undefined)) return null;
  if (typeof rate === "number" && Number.isFinite(rate)) return rate > 1 ? rate : rate * 100;
  return n > 0 ? (100 * (success || 0)) / n : null;
}

export function fmtPercent(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return t("time.none");
  return new Intl.NumberFormat(getLang(), { maximumFractionDigits: 1 }).format(p) + "%";
}

/** Local date and time, with seconds when the time is within a day of now. */
export function fmtTime(v, now = Date.now()) {
  const ms = parseTime(v);
  if (ms === null) return t("time.none");
  const near = Math.abs(ms - now) < 86_400_000;
  const opts = near
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(getLang(), opts).format(new Date(ms));
}

export function fmtFullTime(v) {
  const ms = parseTime(v);
  if (ms === null) return "";
  return new Intl.DateTimeFormat(getLang(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(ms));
}

/** "3 minutes ago" / "3 分钟前". */
export function fmtAgo(v, now = Date.now()) {
  const ms = parseTime(v);
  if (ms === null) return t("time.never");
  const diff = Math.round((ms - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(getLang(), { numeric: "auto" });
  const a = Math.abs(diff);
  if (a < 60) return rtf.format(diff, "second");
  if (a < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (a < 86400) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}

/** A countdown such as "1:05" or "2:03:04" (hours:minutes:seconds). */
export function fmtCountdown(untilMs, now = Date.now()) {
  let left = Math.max(0, Math.ceil((untilMs - now) / 1000));
  const hh = Math.floor(left / 3600);
  left -= hh * 3600;
  const mm = Math.floor(left / 60);
  const ss = left - mm * 60;
  const two = (x) => String(x).padStart(2, "0");
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/** A wait in seconds as words: "45 s" / "45 秒", "2 min 5 s" / "2 分 5 秒". */
export function fmtWait(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const unit = (value, u) => new Intl.NumberFormat(getLang(), { style: "unit", unit: u, unitDisplay: "short" }).format(value);
  if (s < 60) return unit(s, "second");
  const m = Math.floor(s / 60);
  const r = s % 60;
  return r ? `${unit(m, "minute")} ${unit(r, "second")}` : unit(m, "minute");
}

/** <input type="datetime-local"> value ↔ RFC 3339 UTC. */
export function localInputToIso(value) {
  if (!value) return null;
  const ms = Date.parse(value); // parsed as local time
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

export function isoToLocalInput(v) {
  const ms = parseTime(v);
  if (ms === null) return "";
  const d = new Date(ms);
  const two = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}
