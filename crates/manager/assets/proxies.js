// proxies.js — the proxy routes (DESIGN §10): each route, its upstream and pool, where the
// token goes, and its requests by outcome class since the manager started.
//
// The section stays hidden when no [[proxy]] route is configured. Rendered as text only;
// rows are rebuilt only when the list changed.

import { h, replaceChildren } from "./dom.js";
import { fmtNumber } from "./format.js";
import { t } from "./i18n.js";

const CLASSES = ["success", "auth", "rate_limited", "quota_exhausted", "transient", "client_error", "unknown"];
let lastSig = "";

function className(c) {
  return c === "success" ? t("proxy.success") : t(`class.${c}`);
}

/** Renders `routes` (GET /api/proxies); `force` re-renders after a language switch. */
export function renderProxies(section, head, body, routes, force = false) {
  section.hidden = routes.length === 0;
  const sig = JSON.stringify(routes);
  if (sig === lastSig && !force) return;
  lastSig = sig;
  replaceChildren(
    head,
    [h("tr", {},
      ...["proxy.route", "proxy.upstream", "proxy.pool", "proxy.inject"].map((k) => h("th", { scope: "col" }, t(k))),
      ...CLASSES.map((c) => h("th", { scope: "col", class: "num" }, className(c))),
    )],
  );
  replaceChildren(
    body,
    routes.map((r) =>
      h("tr", {},
        h("td", { title: r.path || null }, r.name),
        h("td", {}, r.upstream),
        h("td", {}, r.pool),
        h("td", {}, r.inject || ""),
        ...CLASSES.map((c) => h("td", { class: "num" }, fmtNumber(r.counts?.[c] ?? 0))),
      ),
    ),
  );
}
