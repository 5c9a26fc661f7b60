// charts.js — hand-drawn SVG chart of requests (line) and failures (bars) per minute.
//
// Data comes from GET /api/stats/minutes (one zero-filled entry per minute). The last hour
// is drawn minute by minute; 24 hours are grouped into 10-minute buckets so bars stay
// readable on a phone. No library: a few <path>/<rect>/<text> elements sized by a viewBox,
// so the chart scales with its box. The SVG is role="img" with a summary as its label; each
// bucket has a <title> for a mouse tooltip. The viewBox is as wide as the box in CSS pixels
// (redrawn on resize), so text keeps its size from phone to wide screen.

import { s, replaceChildren } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { fmtNumber } from "./format.js";

const H = 220;
const PAD = { left: 44, right: 10, top: 12, bottom: 26 };

let lastDraw = null;

/** Redraws the last chart at the box's new width (for a ResizeObserver). */
export function redrawChart() {
  if (lastDraw) drawChart(...lastDraw);
}

/** Groups per-minute points into buckets of `size` minutes (sums). */
export function bucketize(minutes, size) {
  if (size <= 1) return minutes.map((m) => ({ t: m.t, requests: m.requests || 0, failures: m.failures || 0 }));
  const out = [];
  for (let i = 0; i < minutes.length; i += size) {
    const part = minutes.slice(i, i + size);
    out.push({
      t: part[0].t,
      requests: part.reduce((a, m) => a + (m.requests || 0), 0),
      failures: part.reduce((a, m) => a + (m.failures || 0), 0),
    });
  }
  return out;
}

/** A round upper bound for the y axis: 1, 2, 5 × 10^n. */
export function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function timeLabel(ms) {
  return new Intl.DateTimeFormat(getLang(), { hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
}

/**
 * Draws into `box`; `note` gets the bucket size, `summary` the totals in words.
 * `data` is the API answer {window, minutes:[{t,requests,failures}]}.
 */
export function drawChart(box, note, summary, data) {
  lastDraw = [box, note, summary, data];
  const minutes = Array.isArray(data && data.minutes) ? data.minutes.filter((m) => m && Number.isFinite(Number(m.t))) : [];
  const is24h = data && data.window === "24h";
  const size = is24h ? 10 : 1;
  const buckets = bucketize(minutes, size);
  const totalReq = minutes.reduce((a, m) => a + (m.requests || 0), 0);
  const totalFail = minutes.reduce((a, m) => a + (m.failures || 0), 0);
  const peak = minutes.reduce((a, m) => Math.max(a, m.requests || 0), 0);
  const text = totalReq || totalFail
    ? t("charts.summary", { requests: fmtNumber(totalReq), failures: fmtNumber(totalFail), peak: fmtNumber(peak) })
    : t("charts.noData");
  summary.textContent = text;
  note.textContent = size > 1 ? t("charts.bucket", { n: size }) : t("charts.perMin");

  const W = Math.max(280, Math.round(box.clientWidth || 720));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${t("charts.heading")}. ${text}`, class: "chart-svg" });
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const maxV = niceMax(buckets.reduce((a, b) => Math.max(a, b.requests, b.failures), 0));
  const y = (v) => PAD.top + innerH - (v / maxV) * innerH;
  const n = Math.max(buckets.length, 1);
  const step = innerW / n;

  for (const v of maxV >= 2 ? [0, maxV / 2, maxV] : [0, maxV]) {
    svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(s("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmtNumber(v)));
  }

  // An x label every 10 min (1 h) or 4 h (24 h), fewer when the box is narrow.
  const labelEvery = (is24h ? 24 : 10) * (W < 500 ? 2 : 1);
  buckets.forEach((b, i) => {
    const x = PAD.left + i * step;
    const g = s("g", { class: "bucket" });
    g.append(s("title", {}, t("charts.point", { time: timeLabel(b.t), requests: fmtNumber(b.requests), failures: fmtNumber(b.failures) })));
    g.append(s("rect", { x, y: PAD.top, width: step, height: innerH, class: "hit" }));
    if (b.failures > 0) {
      const top = y(b.failures);
      g.append(s("rect", { x: x + step * 0.15, y: top, width: Math.max(step * 0.7, 1), height: PAD.top + innerH - top, class: "bar-fail" }));
    }
    svg.append(g);
    if (i % labelEvery === 0) {
      svg.append(s("text", { x: x + step / 2, y: H - 8, class: "axis", "text-anchor": "middle" }, timeLabel(b.t)));
    }
  });

  if (buckets.length) {
    const pts = buckets.map((b, i) => `${(PAD.left + i * step + step / 2).toFixed(1)},${y(b.requests).toFixed(1)}`);
    const base = (PAD.top + innerH).toFixed(1);
    const first = pts[0].split(",")[0];
    const last = pts[pts.length - 1].split(",")[0];
    svg.append(s("path", { d: `M${first},${base} L${pts.join(" L")} L${last},${base} Z`, class: "area-req" }));
    svg.append(s("path", { d: `M${pts.join(" L")}`, class: "line-req" }));
  }
  svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: PAD.top + innerH, y2: PAD.top + innerH, class: "axis-line" }));
  replaceChildren(box, svg);
}
