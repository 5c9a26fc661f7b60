// table.js — the tokens table: one page of rows, server-side sort, row actions.
//
// The server filters, searches, sorts and pages (GET /api/tokens?offset&limit&sort&state&pool&q),
// so this module draws only the rows of the page it is given. Rows are keyed by token id and
// updated in place on every refresh, so the focused button survives the 2-second polling; a
// row is only moved when the order really changed, and focus is put back if a move took it
// away. Sorting is done with real <button>s in the headers (Enter/Space), reported with
// aria-sort, and asked of the server through onSort. Secrets never reach this module: the API
// only returns masked tokens.

import { h, replaceChildren } from "./dom.js";
import { reasonText, t } from "./i18n.js";
import { fmtAgo, fmtCountdown, fmtFullTime, fmtNumber, fmtPercent, fmtTime, parseTime, ratePercent } from "./format.js";

export const STATES = ["active", "cooling", "invalid", "disabled", "expired"];

// `sort`: the server's sort field for the column (none: not sortable).
const COLUMNS = [
  { key: "name", label: "col.name", sort: "name" },
  { key: "token", label: "col.token" },
  { key: "pool", label: "col.pool", sort: "pool" },
  { key: "state", label: "col.state", sort: "state" },
  { key: "success", label: "col.success", sort: "success", numeric: true },
  { key: "failure", label: "col.failure", sort: "failure", numeric: true },
  { key: "rate", label: "col.rate", sort: "success_rate", numeric: true },
  { key: "in_flight", label: "col.inFlight", sort: "in_flight", numeric: true },
  { key: "last_used", label: "col.lastUsed", sort: "last_used" },
  { key: "last_error", label: "col.lastError", sort: "last_error_at" },
  { key: "expires_at", label: "col.expires", sort: "expires_at" },
];

/** "name" / "-success_rate" for the server, from a column key and a direction. */
export function sortParam(sort) {
  const col = COLUMNS.find((c) => c.key === sort.key && c.sort) || COLUMNS[0];
  return (sort.dir < 0 ? "-" : "") + col.sort;
}

export class TokenTable {
  constructor({ head, body, empty, shown, onAction, onSort }) {
    this.head = head;
    this.body = body;
    this.empty = empty;
    this.shown = shown;
    this.onAction = onAction;
    this.onSort = onSort || (() => {});
    this.rows = [];
    this.page = { total: 0, offset: 0, limit: 0, anyTokens: false };
    this.trs = new Map();
    this.sort = { key: "name", dir: 1 };
    this.renderHead();
  }

  /** One page of rows, in the server's order; page: {total, offset, limit, anyTokens,
   * checked: the names of the pools that have a health check}. */
  setRows(rows, page) {
    this.rows = rows;
    if (page) this.page = page;
    this.render();
  }

  toggleSort(key) {
    this.sort = this.sort.key === key ? { key, dir: -this.sort.dir } : { key, dir: 1 };
    this.renderHead(key);
    this.onSort(this.sort);
  }

  /** Rebuilds header and rows after a language switch. */
  relabel() {
    this.renderHead();
    for (const tr of this.trs.values()) tr.remove();
    this.trs.clear();
    this.render();
  }

  renderHead(focusKey) {
    const cells = COLUMNS.map((c) => {
      const label = t(c.label);
      if (!c.sort) return h("th", { scope: "col", class: c.numeric ? "num" : null }, label);
      const sorted = this.sort.key === c.key;
      const btn = h("button", {
        type: "button",
        class: "sort",
        "data-sort": c.key,
        title: t("sort.by", { col: label }),
        onclick: () => this.toggleSort(c.key),
      }, label, h("span", { class: "sort-icon", "aria-hidden": "true" }, sorted ? (this.sort.dir > 0 ? "▲" : "▼") : "↕"));
      return h("th", { scope: "col", class: c.numeric ? "num" : null, "aria-sort": sorted ? (this.sort.dir > 0 ? "ascending" : "descending") : "none" }, btn);
    });
    cells.push(h("th", { scope: "col" }, t("col.actions")));
    replaceChildren(this.head, cells);
    if (focusKey) this.head.querySelector(`[data-sort="${focusKey}"]`)?.focus();
  }

  render() {
    const active = document.activeElement;
    const rows = this.rows;
    const keep = new Set(rows.map((r) => String(r.id)));
    for (const [id, tr] of this.trs) {
      if (!keep.has(id)) {
        tr.remove();
        this.trs.delete(id);
      }
    }
    rows.forEach((r, i) => {
      const id = String(r.id);
      let tr = this.trs.get(id);
      if (!tr) {
        tr = this.createRow(id);
        this.trs.set(id, tr);
      }
      this.fillRow(tr, r);
      if (this.body.children[i] !== tr) this.body.insertBefore(tr, this.body.children[i] || null);
    });
    if (active && active.isConnected && document.activeElement !== active) active.focus({ preventScroll: true });
    this.empty.hidden = rows.length > 0;
    this.empty.textContent = this.page.anyTokens ? t("tokens.noMatch") : t("tokens.empty");
    this.shown.textContent = shownText(rows.length, this.page);
    this.tick();
  }

  createRow(id) {
    const tr = h("tr", { "data-id": id });
    for (const c of COLUMNS) tr.append(h("td", { class: c.numeric ? `num c-${c.key}` : `c-${c.key}`, "data-label": t(c.label) }));
    const act = (name) => h("button", { type: "button", class: `btn small act-${name}`, "data-action": name, onclick: (ev) => this.onAction(name, this.rowById(id), ev.currentTarget) });
    tr.append(h("td", { class: "c-actions", "data-label": t("col.actions") }, h("div", { class: "row-actions" }, act("toggle"), act("check"), act("edit"), act("delete"))));
    return tr;
  }

  rowById(id) {
    return this.rows.find((r) => String(r.id) === id);
  }

  fillRow(tr, r) {
    const cells = tr.children;
    const set = (i, ...content) => {
      const td = cells[i];
      const sig = JSON.stringify(content.map((c) => (c instanceof Node ? c.outerHTML : c)));
      if (td.dataset.sig === sig) return; // unchanged: leave the DOM alone
      td.dataset.sig = sig;
      replaceChildren(td, h("div", { class: "cell" }, ...content)); // one box: the phone layout is label | value
    };
    set(0, h("span", { class: "name", title: t("tokens.idTip", { id: r.id }) }, r.name || r.id));
    set(1, h("code", { class: "masked" }, r.token || "****"));
    set(2, r.pool || "default");
    set(3, ...stateCell(r));
    set(4, fmtNumber(r.success));
    set(5, h("span", { title: classBreakdown(r.failures_by_class) || null }, fmtNumber(r.failure)));
    set(6, fmtPercent(ratePercent(r.success_rate, r.success, r.failure)));
    set(7, fmtNumber(r.in_flight));
    set(8, h("span", { title: fmtFullTime(r.last_used) || null }, fmtAgo(r.last_used)));
    set(9, r.last_error ? h("span", { class: "error-text", title: [r.last_error, fmtFullTime(r.last_error_at)].filter(Boolean).join(" — ") }, lastError(r.last_error)) : t("time.none"));
    const exp = parseTime(r.expires_at);
    set(10, exp === null ? h("span", { class: "muted" }, t("time.noExpiry")) : h("span", { class: exp < Date.now() ? "bad" : null, title: fmtFullTime(r.expires_at) }, fmtTime(r.expires_at)));
    const name = r.name || r.id;
    const label = (key) => t("action.forToken", { action: t(key), name });
    const [toggle, check, edit, del] = cells[11].querySelectorAll("button");
    const enabled = r.state !== "disabled";
    setBtn(toggle, t(enabled ? "action.disable" : "action.enable"), label(enabled ? "action.disable" : "action.enable"));
    if (!check.dataset.busy) setBtn(check, t("action.check"), label("action.check"));
    // No health check in this pool: nothing to run, so no button (the server would say 409).
    const checkable = !this.page.checked || this.page.checked.has(r.pool);
    if (check.hidden === checkable) check.hidden = !checkable;
    setBtn(edit, t("action.edit"), label("action.edit"));
    setBtn(del, t("action.delete"), label("action.delete"));
  }

  /** Updates the cooling countdowns (called every second). */
  tick(now = Date.now()) {
    for (const el of this.body.querySelectorAll(".countdown[data-until]")) {
      const until = Number(el.dataset.until);
      el.textContent = until > now
        ? t("state.until", { time: fmtTime(until, now), left: fmtCountdown(until, now) })
        : t("state.coolingOver");
    }
  }
}

/** "1–50 of 1,234 tokens" / "1 of 1 token" / "no tokens" (English singular and plural). */
function shownText(n, page) {
  const total = page.total || 0;
  if (n === 0) return t(total ? "tokens.rangePast" : "tokens.rangeNone", { total: fmtNumber(total) });
  const from = page.offset + 1;
  const to = page.offset + n;
  const key = total === 1 ? "tokens.rangeOne" : "tokens.range";
  return t(key, { from: fmtNumber(from), to: fmtNumber(to), total: fmtNumber(total) });
}

function setBtn(btn, text, aria) {
  if (btn.textContent !== text) btn.textContent = text;
  if (btn.getAttribute("aria-label") !== aria) btn.setAttribute("aria-label", aria);
}

function stateCell(r) {
  const state = STATES.includes(r.state) ? r.state : "active";
  const out = [h("span", { class: `badge state-${state}` }, t(`state.${state}`))];
  if (r.half_open) out.push(" ", h("span", { class: "badge half-open" }, t("state.halfOpen")));
  const until = parseTime(r.state_until);
  if (state === "cooling" && until !== null) out.push(h("span", { class: "reason countdown", "data-until": String(until) }));
  if (r.state_reason && state !== "active") {
    const reason = reasonText(r.state_reason_code, r.state_reason_params, r.state_reason);
    out.push(h("span", { class: "reason", title: r.state_reason_code ? r.state_reason : null }, t("state.reason", { reason })));
  }
  return out;
}

const CLASSES = ["auth", "rate_limited", "quota_exhausted", "transient", "client_error", "unknown"];

/** "transient: HTTP 503" with its class in the current language (the upstream's own text
 * after it stays as the upstream said it). */
function lastError(text) {
  const i = text.indexOf(": ");
  const cls = i > 0 ? text.slice(0, i) : text;
  if (!CLASSES.includes(cls)) return text;
  return i > 0 ? `${t(`class.${cls}`)}: ${text.slice(i + 2)}` : t(`class.${cls}`);
}

function classBreakdown(byClass) {
  if (!byClass || typeof byClass !== "object") return "";
  return Object.entries(byClass)
    .filter(([, n]) => n)
    .map(([k, n]) => `${t(`class.${k}`)}: ${n}`)
    .join(", ");
}

/** Fills a <select> with "all" + values, keeping the current choice. */
export function fillSelect(select, allLabel, values, labelOf = (v) => v) {
  const current = select.value;
  replaceChildren(select, h("option", { value: "" }, allLabel), values.map((v) => h("option", { value: v }, labelOf(v))));
  select.value = values.includes(current) ? current : "";
}
