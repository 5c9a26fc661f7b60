// i18n.js — the two languages of the admin UI (English and 简体中文).
//
// Every visible string comes from here: static markup names its string with data-i18n*
// attributes and applyI18n() fills them in; scripts call t(key, params). The language is
// taken from localStorage (the user's switch), else from navigator.languages, and is
// remembered when switched. Dates and relative times use Intl with the same language.

const STORAGE_KEY = "tokenlb.lang";
export const LANGS = ["en", "zh-CN"];

const en = {
  "app.title": "tokenlb — token manager",
  "app.brand": "tokenlb",
  "app.subtitle": "Token load balancer",
  "app.skip": "Skip to the tokens table",
  "app.loading": "Loading…",
  "lang.label": "Language",
  "lang.en": "English",
  "lang.zh-CN": "中文",
  "header.user": "Signed in as {user}",
  "header.logout": "Log out",
  "login.title": "Sign in — tokenlb",
  "login.heading": "Sign in",
  "login.intro": "Administration of the token load balancer.",
  "login.username": "Username",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.busy": "Signing in…",
  "login.bad": "Wrong username or password.",
  "login.tooMany": "Too many failed attempts. Try again in {wait}.",
  "login.tooManyNow": "You can try again now.",
  "login.failed": "Sign-in failed: {msg}",
  "totals.label": "Totals",
  "totals.tokens": "Tokens",
  "totals.active": "Active",
  "totals.requests": "Requests",
  "totals.successRate": "Success rate",
  "tokens.heading": "Tokens",
  "tokens.caption": "Tokens in the pool, with their state and statistics",
  "tokens.empty": "No tokens yet. Add one or import a tokens.json.",
  "tokens.noMatch": "No tokens match the search and filters.",
  "tokens.range": "{from}–{to} of {total} tokens",
  "tokens.rangeOne": "1 of 1 token",
  "tokens.rangeNone": "No tokens",
  "tokens.rangePast": "Nothing on this page",
  "pager.label": "Pages of the tokens table",
  "pager.prev": "Previous page",
  "pager.next": "Next page",
  "pager.info": "Page {page} of {pages}",
  "pager.size": "Rows per page",
  "tokens.idTip": "Token id: {id}",
  "class.auth": "rejected (auth)",
  "class.rate_limited": "rate limited",
  "class.quota_exhausted": "quota used up",
  "class.transient": "transient",
  "class.client_error": "client error",
  "class.unknown": "unknown",
  "proxy.heading": "Proxy routes",
  "proxy.caption": "Proxy routes with their pools and requests by outcome since the start",
  "proxy.route": "Route",
  "proxy.upstream": "Upstream",
  "proxy.pool": "Pool",
  "proxy.inject": "Token goes in",
  "proxy.success": "success",
  "col.name": "Name",
  "col.token": "Token",
  "col.pool": "Pool",
  "col.state": "State",
  "col.success": "Successes",
  "col.failure": "Failures",
  "col.rate": "Success rate",
  "col.inFlight": "In flight",
  "col.lastUsed": "Last used",
  "col.lastError": "Last error",
  "col.expires": "Expires",
  "col.actions": "Actions",
  "sort.by": "Sort by {col}",
  "state.active": "Active",
  "state.cooling": "Cooling",
  "state.invalid": "Invalid",
  "state.disabled": "Disabled",
  "state.expired": "Expired",
  "state.halfOpen": "half-open (probing)",
  "state.until": "until {time} ({left} left)",
  "state.coolingOver": "cooling over, probing",
  "state.reason": "Reason: {reason}",
  "reason.auth_failure": "auth failure: the upstream rejected the token",
  "reason.auth_failure.status": "auth failure: the upstream rejected the token (HTTP {status})",
  "reason.rate_limited": "rate limited: cooling {seconds} s",
  "reason.quota_exhausted": "quota exhausted: cooling {seconds} s",
  "reason.consecutive_failures": "{count} consecutive failures",
  "reason.error_rate": "error rate {rate}% over {requests} requests in {window_s} s",
  "reason.probe_failed": "half-open probe failed",
  "reason.probe_succeeded": "half-open probe succeeded",
  "reason.cooling_ended": "cooling ended: half-open, one probe request at a time",
  "reason.expired": "expires_at passed",
  "reason.health_check": "health check passed",
  "reason.refreshed": "secret replaced (refresh)",
  "reason.admin.enabled": "enabled by {by}",
  "reason.admin.disabled": "disabled by {by}",
  "reason.admin.expiry_moved": "expires_at moved to the future",
  "reason.added": "added by {by}",
  "reason.removed": "removed by {by}",
  "reason.patched": "changed by {by}",
  "reason.kept_active": "kept active: {why}, but {kept_active_percent}% of the pool is already cooling (upstream-wide trouble is not a token problem)",
  "reason.cooling": "{why}: cooling {seconds} s (#{streak} in a row)",
  "reason.repeated": "{text} (repeated {repeated} more times in {repeated_in_s} s)",
  "by.admin": "the admin",
  "by.launcher": "the launcher (tokenlb up --demo)",
  "by.loopback": "a service on this machine (loopback)",
  "filter.search": "Search",
  "filter.searchPlaceholder": "Name, id or token…",
  "filter.state": "State",
  "filter.allStates": "All states",
  "filter.pool": "Pool",
  "filter.allPools": "All pools",
  "action.add": "Add token",
  "action.import": "Import",
  "action.export": "Export",
  "action.exportTip": "Downloads a JSON file with the full secrets. Keep it safe.",
  "action.enable": "Enable",
  "action.disable": "Disable",
  "action.check": "Check now",
  "action.checking": "Checking…",
  "action.edit": "Edit",
  "action.delete": "Delete",
  "action.forToken": "{action}: {name}",
  "dialog.cancel": "Cancel",
  "dialog.close": "Close",
  "dialog.save": "Save",
  "dialog.busy": "Working…",
  "add.title": "Add a token",
  "add.token": "Token (secret)",
  "add.tokenHint": "Kept only until you submit; the page never reads it back.",
  "add.name": "Name",
  "add.pool": "Pool",
  "add.poolHint": "Empty means the pool “default”.",
  "add.weight": "Weight (1–1000)",
  "add.expires": "Expires at (local time, optional)",
  "add.refresh": "Refresh token (optional, secret)",
  "add.submit": "Add",
  "add.done": "Token “{name}” added.",
  "edit.title": "Edit “{name}”",
  "edit.rpm": "Requests per minute (empty: no limit)",
  "edit.maxInFlight": "Max in flight (empty: no limit)",
  "edit.clearExpiry": "No expiry",
  "edit.done": "Changes to “{name}” saved.",
  "delete.title": "Delete this token?",
  "delete.text": "“{name}” ({masked}, pool {pool}) will be removed. This cannot be undone.",
  "delete.confirm": "Delete",
  "delete.done": "Token “{name}” deleted.",
  "toggle.enabled": "Token “{name}” enabled.",
  "toggle.disabled": "Token “{name}” disabled.",
  "check.ok": "Check of “{name}” passed. State: {state}.",
  "check.failed": "Check of “{name}” failed: {msg}. State: {state}.",
  "check.error": "Check of “{name}” not possible: {msg}",
  "import.title": "Import tokens",
  "import.file": "File: tokens.json or one token per line",
  "import.text": "Or paste tokens, one per line",
  "import.pool": "Pool for the imported tokens",
  "import.submit": "Import",
  "import.empty": "Choose a file or paste some tokens.",
  "import.done": "Import finished: {added} added, {skipped} skipped.",
  "import.rejected": "{n} entries were rejected as invalid.",
  "export.done": "Export downloaded as {file}.",
  "events.heading": "Events",
  "events.caption": "State changes, newest first",
  "events.empty": "No events yet.",
  "events.time": "Time",
  "events.token": "Token",
  "events.change": "Change",
  "events.reason": "Reason",
  "event.added": "Added",
  "event.removed": "Deleted",
  "event.patched": "Edited",
  "event.imported": "Imported",
  "event.refreshed": "Refreshed",
  "event.refresh_failed": "Refresh failed",
  "charts.heading": "Requests and failures per minute",
  "charts.window": "Window",
  "charts.1h": "Last hour",
  "charts.24h": "Last 24 hours",
  "charts.scope": "Show",
  "charts.all": "All tokens",
  "charts.poolOpt": "Pool: {name}",
  "charts.tokenOpt": "Token: {name}",
  "charts.requests": "Requests",
  "charts.failures": "Failures",
  "charts.summary": "In this window: requests {requests}, failures {failures}; at most {peak} requests in one minute.",
  "charts.bucket": "Each point of the line (requests) and each bar (failures) covers {n} minutes.",
  "charts.perMin": "Each point of the line (requests) and each bar (failures) covers one minute.",
  "charts.noData": "No requests in this window.",
  "charts.point": "{time}: {requests} requests, {failures} failures",
  "status.updated": "Updated {time}",
  "status.paused": "Auto-refresh paused while the tab is hidden.",
  "status.offline": "Cannot reach the server; retrying every 2 seconds.",
  "err.generic": "Error: {msg}",
  "err.duplicate": "This token is already in the pool.",
  "err.invalid": "Invalid input: {msg}",
  "err.notFound": "Not found (it may have been deleted).",
  "err.noHealthCheck": "the token's pool has no health check configured",
  "err.csrf": "The security check failed; reload the page.",
  "err.network": "Cannot reach the server.",
  "err.weight": "The weight must be a whole number from 1 to 1000.",
  "err.required": "{field} is required.",
  "time.never": "never",
  "time.none": "—",
  "time.noExpiry": "no expiry",
};

const zh = {
  "app.title": "tokenlb — Token 管理器",
  "app.brand": "tokenlb",
  "app.subtitle": "Token 负载均衡",
  "app.skip": "跳到 Token 表格",
  "app.loading": "加载中…",
  "lang.label": "语言",
  "lang.en": "English",
  "lang.zh-CN": "中文",
  "header.user": "当前用户：{user}",
  "header.logout": "退出登录",
  "login.title": "登录 — tokenlb",
  "login.heading": "登录",
  "login.intro": "Token 负载均衡系统管理后台。",
  "login.username": "用户名",
  "login.password": "密码",
  "login.submit": "登录",
  "login.busy": "正在登录…",
  "login.bad": "用户名或密码错误。",
  "login.tooMany": "失败次数过多，请在 {wait} 后重试。",
  "login.tooManyNow": "现在可以重新登录了。",
  "login.failed": "登录失败：{msg}",
  "totals.label": "总览",
  "totals.tokens": "Token 总数",
  "totals.active": "活跃",
  "totals.requests": "总请求数",
  "totals.successRate": "整体成功率",
  "tokens.heading": "Token 列表",
  "tokens.caption": "池中的 Token 及其状态和统计",
  "tokens.empty": "还没有 Token。请添加或导入 tokens.json。",
  "tokens.noMatch": "没有符合搜索和筛选条件的 Token。",
  "tokens.range": "第 {from}–{to} 个，共 {total} 个 Token",
  "tokens.rangeOne": "共 1 个 Token",
  "tokens.rangeNone": "没有 Token",
  "tokens.rangePast": "本页没有内容",
  "pager.label": "Token 表格分页",
  "pager.prev": "上一页",
  "pager.next": "下一页",
  "pager.info": "第 {page} 页，共 {pages} 页",
  "pager.size": "每页行数",
  "tokens.idTip": "Token ID：{id}",
  "class.auth": "认证被拒",
  "class.rate_limited": "被限流",
  "class.quota_exhausted": "配额用尽",
  "class.transient": "临时故障",
  "class.client_error": "客户端错误",
  "class.unknown": "未知",
  "proxy.heading": "代理路由",
  "proxy.caption": "代理路由、所用的池，以及启动以来按结果分类的请求数",
  "proxy.route": "路由",
  "proxy.upstream": "上游",
  "proxy.pool": "池",
  "proxy.inject": "Token 位置",
  "proxy.success": "成功",
  "col.name": "名称",
  "col.token": "Token",
  "col.pool": "池",
  "col.state": "状态",
  "col.success": "成功",
  "col.failure": "失败",
  "col.rate": "成功率",
  "col.inFlight": "进行中",
  "col.lastUsed": "最后使用",
  "col.lastError": "最后错误",
  "col.expires": "过期时间",
  "col.actions": "操作",
  "sort.by": "按{col}排序",
  "state.active": "活跃",
  "state.cooling": "冷却中",
  "state.invalid": "已失效",
  "state.disabled": "已禁用",
  "state.expired": "已过期",
  "state.halfOpen": "半开（试探中）",
  "state.until": "直到 {time}（剩余 {left}）",
  "state.coolingOver": "冷却结束，试探中",
  "state.reason": "原因：{reason}",
  "reason.auth_failure": "认证失败：上游拒绝了该 Token",
  "reason.auth_failure.status": "认证失败：上游拒绝了该 Token（HTTP {status}）",
  "reason.rate_limited": "被限流：冷却 {seconds} 秒",
  "reason.quota_exhausted": "配额用尽：冷却 {seconds} 秒",
  "reason.consecutive_failures": "连续 {count} 次失败",
  "reason.error_rate": "{window_s} 秒内 {requests} 次请求的错误率为 {rate}%",
  "reason.probe_failed": "半开探测失败",
  "reason.probe_succeeded": "半开探测成功",
  "reason.cooling_ended": "冷却结束：进入半开状态，每次只放行一个探测请求",
  "reason.expired": "已过期（expires_at 已到）",
  "reason.health_check": "健康检查通过",
  "reason.refreshed": "已通过刷新更换 Token",
  "reason.admin.enabled": "由{by}启用",
  "reason.admin.disabled": "由{by}禁用",
  "reason.admin.expiry_moved": "过期时间已推后",
  "reason.added": "由{by}添加",
  "reason.removed": "由{by}删除",
  "reason.patched": "由{by}修改",
  "reason.kept_active": "保持可用：{why}，但池中已有 {kept_active_percent}% 的 Token 在冷却（上游整体故障不算 Token 的问题）",
  "reason.cooling": "{why}：冷却 {seconds} 秒（连续第 {streak} 次）",
  "reason.repeated": "{text}（{repeated_in_s} 秒内又重复 {repeated} 次）",
  "by.admin": "管理员",
  "by.launcher": "启动器（tokenlb up --demo）",
  "by.loopback": "本机服务（回环地址）",
  "filter.search": "搜索",
  "filter.searchPlaceholder": "名称、ID 或 Token…",
  "filter.state": "状态",
  "filter.allStates": "全部状态",
  "filter.pool": "池",
  "filter.allPools": "全部池",
  "action.add": "添加 Token",
  "action.import": "导入",
  "action.export": "导出",
  "action.exportTip": "下载包含完整密钥的 JSON 文件，请妥善保管。",
  "action.enable": "启用",
  "action.disable": "禁用",
  "action.check": "立即检查",
  "action.checking": "检查中…",
  "action.edit": "编辑",
  "action.delete": "删除",
  "action.forToken": "{action}：{name}",
  "dialog.cancel": "取消",
  "dialog.close": "关闭",
  "dialog.save": "保存",
  "dialog.busy": "处理中…",
  "add.title": "添加 Token",
  "add.token": "Token（密钥）",
  "add.tokenHint": "仅保留到提交为止；页面之后不会再读取它。",
  "add.name": "名称",
  "add.pool": "池",
  "add.poolHint": "留空表示池“default”。",
  "add.weight": "权重（1–1000）",
  "add.expires": "过期时间（本地时间，可选）",
  "add.refresh": "刷新 Token（可选，密钥）",
  "add.submit": "添加",
  "add.done": "已添加 Token“{name}”。",
  "edit.title": "编辑“{name}”",
  "edit.rpm": "每分钟请求数（留空：不限）",
  "edit.maxInFlight": "最大并发数（留空：不限）",
  "edit.clearExpiry": "不过期",
  "edit.done": "“{name}”的修改已保存。",
  "delete.title": "删除此 Token？",
  "delete.text": "“{name}”（{masked}，池 {pool}）将被删除，且无法恢复。",
  "delete.confirm": "确认删除",
  "delete.done": "已删除 Token“{name}”。",
  "toggle.enabled": "已启用 Token“{name}”。",
  "toggle.disabled": "已禁用 Token“{name}”。",
  "check.ok": "“{name}”检查通过。状态：{state}。",
  "check.failed": "“{name}”检查未通过：{msg}。状态：{state}。",
  "check.error": "无法检查“{name}”：{msg}",
  "import.title": "导入 Token",
  "import.file": "文件：tokens.json 或每行一个 Token",
  "import.text": "或粘贴 Token，每行一个",
  "import.pool": "导入到的池",
  "import.submit": "导入",
  "import.empty": "请选择文件或粘贴 Token。",
  "import.done": "导入完成：新增 {added} 个，跳过 {skipped} 个。",
  "import.rejected": "{n} 条记录无效，已拒绝。",
  "export.done": "导出文件已下载：{file}。",
  "events.heading": "事件",
  "events.caption": "状态变化，最新的在前",
  "events.empty": "暂无事件。",
  "events.time": "时间",
  "events.token": "Token",
  "events.change": "变化",
  "events.reason": "原因",
  "event.added": "已添加",
  "event.removed": "已删除",
  "event.patched": "已修改",
  "event.imported": "已导入",
  "event.refreshed": "已刷新",
  "event.refresh_failed": "刷新失败",
  "charts.heading": "每分钟请求数与失败数",
  "charts.window": "时间范围",
  "charts.1h": "最近 1 小时",
  "charts.24h": "最近 24 小时",
  "charts.scope": "显示",
  "charts.all": "全部 Token",
  "charts.poolOpt": "池：{name}",
  "charts.tokenOpt": "Token：{name}",
  "charts.requests": "请求",
  "charts.failures": "失败",
  "charts.summary": "该时间段内：请求 {requests} 次，失败 {failures} 次；单分钟最多 {peak} 次请求。",
  "charts.bucket": "折线（请求）的每个点和每根柱（失败）代表 {n} 分钟。",
  "charts.perMin": "折线（请求）的每个点和每根柱（失败）代表 1 分钟。",
  "charts.noData": "该时间段内没有请求。",
  "charts.point": "{time}：{requests} 次请求，{failures} 次失败",
  "status.updated": "更新于 {time}",
  "status.paused": "标签页隐藏时自动刷新已暂停。",
  "status.offline": "无法连接服务器，每 2 秒重试一次。",
  "err.generic": "错误：{msg}",
  "err.duplicate": "该 Token 已在池中。",
  "err.invalid": "输入无效：{msg}",
  "err.notFound": "未找到（可能已被删除）。",
  "err.noHealthCheck": "该 Token 所在的池未配置健康检查",
  "err.csrf": "安全校验失败，请刷新页面。",
  "err.network": "无法连接服务器。",
  "err.weight": "权重必须是 1 到 1000 之间的整数。",
  "err.required": "请填写{field}。",
  "time.never": "从未",
  "time.none": "—",
  "time.noExpiry": "不过期",
};

const DICTS = { en, "zh-CN": zh };

function detect() {
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  if (LANGS.includes(saved)) return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const p of prefs) {
    const l = String(p).toLowerCase();
    if (l.startsWith("zh")) return "zh-CN";
    if (l.startsWith("en")) return "en";
  }
  return "en";
}

let lang = detect();
const listeners = new Set();

export function getLang() {
  return lang;
}

/** Switches the language, remembers it and re-renders everything that listens. */
export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // private mode: the switch still works for this page
  }
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** Looks up a string and fills {placeholders}; a missing key shows itself, never crashes. */
export function t(key, params = {}) {
  const s = DICTS[lang][key] ?? en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Who did something, in the current language ("admin" → "the admin" / "管理员"). */
function byName(by) {
  if (by === "admin") return t("by.admin");
  if (String(by).startsWith("the launcher")) return t("by.launcher");
  if (String(by).startsWith("a service on this machine")) return t("by.loopback");
  return by;
}

const COOLING_CAUSES = new Set(["consecutive_failures", "error_rate", "probe_failed"]);

/**
 * A reason in the current language from its code and parameters (issue 14: reasons, events
 * and notes were English only); `fallback` (the server's English words) when the code is
 * unknown or missing, e.g. for a reason restored from before codes were kept.
 */
export function reasonText(code, params, fallback) {
  const p = params && typeof params === "object" ? params : {};
  const has = (key) => key in en;
  let key = `reason.${code}`;
  if (code === "admin" && p.action) key = `reason.admin.${p.action}`;
  if (code === "auth_failure" && p.status) key = "reason.auth_failure.status";
  if (!code || !has(key)) return fallback || "";
  const args = { ...p, by: p.by ? byName(p.by) : t("by.admin") };
  let text = t(key, args);
  if (p.kept_active_percent) text = t("reason.kept_active", { ...args, why: text });
  else if (COOLING_CAUSES.has(code) && p.seconds) text = t("reason.cooling", { ...args, why: text });
  if (p.repeated) text = t("reason.repeated", { ...args, text });
  return text;
}

/** Fills data-i18n (text), data-i18n-placeholder, data-i18n-title and data-i18n-aria-label. */
export function applyI18n(root) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  const title = root.querySelector ? root.querySelector("title[data-i18n]") : null;
  if (title) document.title = title.textContent;
}

/** Wires a <select> as the language switch. */
export function bindLangSelect(select) {
  select.value = lang;
  select.addEventListener("change", () => setLang(select.value));
  onLangChange((l) => {
    select.value = l;
  });
}

/** Exposed for a consistency check: both dictionaries have the same keys. */
export function missingKeys() {
  const a = Object.keys(en).filter((k) => !(k in zh));
  const b = Object.keys(zh).filter((k) => !(k in en));
  return [...a, ...b];
}
