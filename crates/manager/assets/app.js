// app.js — the dashboard: start-up, polling, totals, filters, charts and events.
//
// One loop polls every 2 s (setTimeout after each answer, so slow answers never pile up) and
// stops while the tab is hidden; actions ask for an immediate refresh. The table keeps its
// own sort, filters and focus across refreshes (table.js). Charts are fetched less often
// (every 10 s, or at once when their window or scope changes), as they move by the minute.

import { get, goToLogin, listOf, logout, whoAmI } from "./api.js";
import { setupActions } from "./actions.js";
import { drawChart, redrawChart } from "./charts.js";
import { setFallbackFocus } from "./dialogs.js";
import { byId, h, replaceChildren } from "./dom.js";
import { renderEvents } from "./events.js";
import { fmtNumber, fmtPercent, fmtTime, ratePercent } from "./format.js";
import { applyI18n, bindLangSelect, onLangChange, t } from "./i18n.js";
import { STATES, TokenTable, fillSelect } from "./table.js";

const POLL_MS = 2000;
const CHART_MS = 10000;

let user = null;
let stats = null;
let pools = [];
let events = [];
let chartData = null;
let lastChartAt = 0;
let timer = null;
let running = false;
let again = false;
let offline = false;
let lastUpdate = 0;

function announce(message, isError = false) {
  const el = byId("status");
  el.classList.toggle("error", isError);
  // Clear first so the same message twice is still read out.
  el.textContent = "";
  requestAnimationFrame(() => {
    el.textContent = message;
  });
}

const table = new TokenTable({
  head: byId("tokens-head"),
  body: byId("tokens-body"),
  empty: byId("tokens-empty"),
  shown: byId("shown"),
  onAction: (...args) => onRowAction(...args),
});
const onRowAction = setupActions({ refresh: () => refreshNow(), announce });

function renderTotals() {
  if (!stats) return;
  byId("total-tokens").textContent = fmtNumber(stats.total_tokens);
  byId("total-active").textContent = fmtNumber(stats.active_tokens);
  byId("total-requests").textContent = fmtNumber(stats.total_requests);
  const rows = listOf(stats, "tokens");
  const s = rows.reduce((a, r) => a + (r.success || 0), 0);
  const f = rows.reduce((a, r) => a + (r.failure || 0), 0);
  byId("total-rate").textContent = s + f === 0 && !stats.total_requests ? t("time.none") : fmtPercent(ratePercent(stats.success_rate, s, f));
}

function poolNames() {
  const names = new Set(pools.map((p) => p.name).filter(Boolean));
  for (const r of listOf(stats, "tokens")) names.add(r.pool || "default");
  return [...names].sort();
}

function renderSelects() {
  fillSelect(byId("f-state"), t("filter.allStates"), STATES, (s) => t(`state.${s}`));
  const names = poolNames();
  fillSelect(byId("f-pool"), t("filter.allPools"), names);
  table.setFilter({ state: byId("f-state").value, pool: byId("f-pool").value });
  replaceChildren(byId("pool-list"), names.map((n) => h("option", { value: n })));
  const scope = byId("c-scope");
  const current = scope.value;
  const rows = listOf(stats, "tokens");
  const options = [h("option", { value: "" }, t("charts.all"))]
    .concat(names.map((n) => h("option", { value: `pool:${n}` }, t("charts.poolOpt", { name: n }))))
    .concat(rows.map((r) => h("option", { value: `token:${r.id}` }, t("charts.tokenOpt", { name: r.name || r.id }))));
  const values = options.map((o) => o.value);
  const sig = values.join("\n") + rows.map((r) => r.name).join("\n");
  if (scope.dataset.sig !== sig || scope.dataset.lang !== document.documentElement.lang) {
    scope.dataset.sig = sig;
    scope.dataset.lang = document.documentElement.lang;
    replaceChildren(scope, options);
    scope.value = values.includes(current) ? current : "";
  }
}

function chartQuery() {
  const q = new URLSearchParams({ window: byId("c-window").value });
  const scope = byId("c-scope").value;
  if (scope.startsWith("pool:")) q.set("pool", scope.slice(5));
  if (scope.startsWith("token:")) q.set("token", scope.slice(6));
  return q.toString();
}

async function loadChart() {
  lastChartAt = Date.now();
  chartData = await get(`/api/stats/minutes?${chartQuery()}`);
  drawChart(byId("chart"), byId("chart-note"), byId("chart-summary"), chartData);
}

function renderUpdated() {
  const el = byId("updated");
  if (document.hidden) el.textContent = t("status.paused");
  else if (offline) el.textContent = t("status.offline");
  else if (lastUpdate) el.textContent = t("status.updated", { time: fmtTime(lastUpdate) });
}

async function load() {
  const [s, p, e] = await Promise.all([
    get("/api/token/stats"),
    get("/api/pools").catch(() => pools),
    get("/api/events?limit=50").catch(() => events),
  ]);
  stats = s || {};
  pools = listOf(p, "pools");
  events = listOf(e, "events");
  renderTotals();
  renderSelects();
  table.setRows(listOf(stats, "tokens"));
  renderEvents(byId("events-body"), byId("events-empty"), events);
  if (Date.now() - lastChartAt >= CHART_MS) await loadChart().catch(() => {});
  lastUpdate = Date.now();
}

async function cycle() {
  clearTimeout(timer);
  timer = null;
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    await load();
    if (offline) announce(t("status.updated", { time: fmtTime(Date.now()) }));
    offline = false;
  } catch (err) {
    if (!offline && err && err.status === 0) announce(t("status.offline"), true);
    else if (err && err.status !== 0 && err.status !== 401) announce(t("err.generic", { msg: err.message }), true);
    offline = Boolean(err && err.status === 0);
  } finally {
    running = false;
  }
  renderUpdated();
  if (again) {
    again = false;
    return cycle();
  }
  if (!document.hidden) timer = setTimeout(cycle, POLL_MS);
}

function refreshNow() {
  cycle();
}

function relabel() {
  byId("status").textContent = ""; // an old message would stay in the other language
  byId("whoami").textContent = user ? t("header.user", { user: user.username }) : "";
  table.relabel();
  renderTotals();
  renderSelects();
  renderEvents(byId("events-body"), byId("events-empty"), events, true);
  if (chartData) drawChart(byId("chart"), byId("chart-note"), byId("chart-summary"), chartData);
  renderUpdated();
}

async function start() {
  applyI18n(document);
  bindLangSelect(byId("lang"));
  onLangChange(relabel);
  setFallbackFocus(byId("tokens-heading"));
  user = await whoAmI().catch(() => null);
  if (!user) {
    goToLogin();
    return;
  }
  byId("whoami").textContent = t("header.user", { user: user.username });
  byId("logout").addEventListener("click", () => logout());
  byId("f-search").addEventListener("input", (ev) => table.setFilter({ search: ev.target.value }));
  byId("f-state").addEventListener("change", (ev) => table.setFilter({ state: ev.target.value }));
  byId("f-pool").addEventListener("change", (ev) => table.setFilter({ pool: ev.target.value }));
  for (const id of ["c-window", "c-scope"]) byId(id).addEventListener("change", () => loadChart().catch((err) => announce(t("err.generic", { msg: err.message }), true)));
  document.addEventListener("visibilitychange", () => {
    renderUpdated();
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else {
      refreshNow();
    }
  });
  setInterval(() => table.tick(), 1000);
  let width = 0;
  new ResizeObserver(([entry]) => {
    const w = Math.round(entry.contentRect.width);
    if (w !== width) {
      width = w;
      redrawChart();
    }
  }).observe(byId("chart"));
  renderSelects();
  await cycle();
}

start();
