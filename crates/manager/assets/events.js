// events.js — the events list: token state changes with their reasons, newest first.
//
// Accepts the event shape DESIGN §2 names (time, token, from, to, reason, sample error)
// under the field names the API may use, and renders as text only. Rows are rebuilt only
// when the list changed, so a screen reader is not flooded every 2 seconds.

import { h, replaceChildren } from "./dom.js";
import { reasonText, t } from "./i18n.js";
import { fmtFullTime, fmtTime, parseTime } from "./format.js";

const STATES = new Set(["active", "cooling", "invalid", "disabled", "expired"]);
let lastSig = "";

function stateName(s) {
  return s && STATES.has(s) ? t(`state.${s}`) : s || t("time.none");
}

const KINDS = new Set(["added", "removed", "patched", "imported", "refreshed", "refresh_failed"]);

/** "active → cooling" as two badges, or what an admin did ("Added", "Edited", …). */
function change(e) {
  if (e.from || e.to) {
    // Cooling that turned half-open is "cooling → half-open", not "cooling → cooling".
    const halfOpen = e.code === "cooling_ended";
    return [
      h("span", { class: `badge state-${STATES.has(e.from) ? e.from : "none"}` }, stateName(e.from)),
      " → ",
      halfOpen
        ? h("span", { class: "badge half-open" }, t("state.halfOpen"))
        : h("span", { class: `badge state-${STATES.has(e.to) ? e.to : "none"}` }, stateName(e.to)),
    ];
  }
  return h("span", { class: "badge state-none" }, KINDS.has(e.kind) ? t(`event.${e.kind}`) : e.kind || t("time.none"));
}

function normalise(e) {
  return {
    at: e.at ?? e.time ?? e.ts ?? e.created_at ?? null,
    token: e.token_name ?? e.name ?? e.token_id ?? e.token ?? "",
    tokenId: e.token_id ?? e.token ?? "",
    from: e.from ?? e.from_state ?? null,
    to: e.to ?? e.to_state ?? e.state ?? null,
    kind: e.kind ?? "",
    code: e.reason_code ?? null,
    params: e.reason_params ?? {},
    reason: e.reason ?? "",
    error: e.error ?? e.sample_error ?? "",
  };
}

/** Renders events newest first; `force` re-renders after a language switch. */
export function renderEvents(body, empty, events, force = false) {
  const list = events.map(normalise).sort((a, b) => (parseTime(b.at) ?? 0) - (parseTime(a.at) ?? 0));
  const sig = JSON.stringify(list);
  if (sig === lastSig && !force) return;
  lastSig = sig;
  empty.hidden = list.length > 0;
  replaceChildren(
    body,
    list.map((e) =>
      h("tr", {},
        h("td", { title: fmtFullTime(e.at) || null }, fmtTime(e.at)),
        h("td", { title: e.tokenId ? t("tokens.idTip", { id: e.tokenId }) : null }, e.token),
        h("td", {}, change(e)),
        h("td", { title: e.code ? e.reason : null }, reasonText(e.code, e.params, e.reason), e.error ? h("span", { class: "muted error-sample" }, ` (${e.error})`) : null),
      ),
    ),
  );
}
