// app.js — the dashboard: start-up, polling, totals, filters, charts and events.
//
// One loop polls every 2 s (setTimeout after each answer, so slow answers never pile up) and
// stops while the tab is hidden; actions ask for an immediate refresh. Each poll asks only
// for what is on screen: the visible page of the table (the server filters, searches, sorts
// and pages: /api/tokens?offset&limit&sort&state&pool&q), the totals without rows
// (/api/token/stats?limit=0), the pools and the latest events, so 100,000 tokens cost no more
// than 100. Paging, sort, filters and the (debounced) search change the query and refresh at
// once; the table keeps focus across refreshes (table.js). Charts are fetched less often
// (every 10 s, or at once when their window or scope changes), as they move by the minute.

import { get, goToLogin, listOf, logout, whoAmI } from "./api.js";
import { setupActions } from "./actions.js";
import { drawChart, redrawChart } from "./charts.js";
import { setFallbackFocus } from "./dialogs.js";
import { byId, h, replaceChildren } from "./dom.js";
import { renderEvents } from "./events.js";
import { renderProxies } from "./proxies.js";
import { fmtNumber, fmtPercent, fmtTime, ratePercent } from "./format.js";
import { applyI18n, bindLangSelect, onLangChange, t } from "./i18n.js";
import { STATES, TokenTable, fillSelect, sortParam } from "./table.js";

const POLL_MS = 2000;
const CHART_MS = 10000;
const SEARCH_DEBOUNCE_MS = 300;

let user = null;
let stats = null;
let page = { tokens: [], total: 0, offset: 0, limit: 50 };
// What the table asks the server for; `gen` counts changes, so an answer to an older query
// is not drawn over a newer one.
const query = { offset: 0, limit: 50, sort: "name", state: "", pool: "", q: "", gen: 0 };
const tokenNames = new Map(); // token id → name, for the chart's scope of a token off the page
let pools = [];
let events = [];
let proxies = [];
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
  onSort: (sort) => changeQuery({ sort: sortParam(sort), offset: 0 }),
});
const onRowAction = setupActions({ refresh: () => refreshNow(), announce });

function renderTotals() {
  if (!stats) return;
  byId("total-tokens").textContent = fmtNumber(stats.total_tokens);
  byId("total-active").textContent = fmtNumber(stats.active_tokens);
  byId("total-requests").textContent = fmtNumber(stats.total_requests);
  // null: nothing counted yet, shown as "—" like a row's.
  byId("total-rate").textContent = fmtPercent(ratePercent(stats.success_rate));
}

function poolNames() {
  const names = new Set(pools.map((p) => p.name).filter(Boolean));
  for (const r of page.tokens) names.add(r.pool || "default");
  return [...names].sort();
}

function tokenQuery() {
  const q = new URLSearchParams({ offset: String(query.offset), limit: String(query.limit), sort: query.sort });
  for (const k of ["state", "pool", "q"]) if (query[k]) q.set(k, query[k]);
  return q.toString();
}

/** Changes what the table shows and fetches it at once. */
function changeQuery(part) {
  Object.assign(query, part);
  query.gen += 1;
  renderPager();
  refreshNow();
}

function renderPager() {
  const pages = Math.max(1, Math.ceil(page.total / query.limit));
  const current = Math.min(pages, Math.floor(query.offset / query.limit) + 1);
  byId("pg-info").textContent = t("pager.info", { page: fmtNumber(current), pages: fmtNumber(pages) });
  byId("pg-prev").disabled = query.offset <= 0;
  byId("pg-next").disabled = query.offset + query.limit >= page.total;
}

function renderSelects() {
  fillSelect(byId("f-state"), t("filter.allStates"), STATES, (s) => t(`state.${s}`));
  const names = poolNames();
  fillSelect(byId("f-pool"), t("filter.allPools"), names);
  if (byId("f-state").value !== query.state || byId("f-pool").value !== query.pool) {
    // A pool that went away: the select fell back to "all"; follow it.
    changeQuery({ state: byId("f-state").value, pool: byId("f-pool").value, offset: 0 });
  }
  replaceChildren(byId("pool-list"), names.map((n) => h("option", { value: n })));
  const scope = byId("c-scope");
  const current = scope.value;
  // The tokens of the visible page (not all of them), and the chosen one if it left the page.
  const rows = page.tokens.map((r) => ({ id: r.id, name: r.name }));
  const chosen = current.startsWith("token:") ? current.slice(6) : null;
  if (chosen && !rows.some((r) => r.id === chosen)) rows.push({ id: chosen, name: tokenNames.get(chosen) });
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
  const gen = query.gen;
  const [tp, s, p, e, x] = await Promise.all([
    get(`/api/tokens?${tokenQuery()}`),
    get("/api/token/stats?limit=0"),
    get("/api/pools").catch(() => pools),
    get("/api/events?limit=50").catch(() => events),
    get("/api/proxies").catch(() => ({ proxies })),
  ]);
  proxies = listOf(x, "proxies");
  stats = s || {};
  pools = listOf(p, "pools");
  events = listOf(e, "events");
  renderTotals();
  if (gen === query.gen) {
    page = { tokens: listOf(tp, "tokens"), total: Number(tp?.total) || 0, offset: query.offset, limit: query.limit };
    for (const r of page.tokens) tokenNames.set(r.id, r.name);
    if (page.tokens.length === 0 && page.total > 0 && query.offset > 0) {
      // The page emptied (tokens removed or filtered away): go to the last one that has rows.
      changeQuery({ offset: Math.max(0, Math.floor((page.total - 1) / query.limit) * query.limit) });
      return;
    }
    renderSelects();
    // "Check now" only where the pool has a health check (issue 14: it was offered and 409'd).
    const checked = new Set(pools.filter((p) => p.health && p.health !== "none").map((p) => p.name));
    table.setRows(page.tokens, { total: page.total, offset: page.offset, limit: page.limit, anyTokens: (stats.total_tokens || 0) > 0, checked });
    renderPager();
  }
  renderEvents(byId("events-body"), byId("events-empty"), events);
  renderProxies(byId("proxies"), byId("proxies-head"), byId("proxies-body"), proxies);
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
  renderPager();
  renderEvents(byId("events-body"), byId("events-empty"), events, true);
  renderProxies(byId("proxies"), byId("proxies-head"), byId("proxies-body"), proxies, true);
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
  let searchTimer = null;
  byId("f-search").addEventListener("input", (ev) => {
    clearTimeout(searchTimer);
    const value = ev.target.value.trim();
    searchTimer = setTimeout(() => {
      if (value !== query.q) changeQuery({ q: value, offset: 0 });
    }, SEARCH_DEBOUNCE_MS);
  });
  byId("f-state").addEventListener("change", (ev) => changeQuery({ state: ev.target.value, offset: 0 }));
  byId("f-pool").addEventListener("change", (ev) => changeQuery({ pool: ev.target.value, offset: 0 }));
  byId("pg-prev").addEventListener("click", () => changeQuery({ offset: Math.max(0, query.offset - query.limit) }));
  byId("pg-next").addEventListener("click", () => {
    if (query.offset + query.limit < page.total) changeQuery({ offset: query.offset + query.limit });
  });
  byId("pg-size").value = String(query.limit);
  byId("pg-size").addEventListener("change", (ev) => {
    const limit = Number(ev.target.value) || 50;
    changeQuery({ limit, offset: Math.floor(query.offset / limit) * limit });
  });
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
  renderPager();
  await cycle();
}

start();
