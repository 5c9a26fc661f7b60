// actions.js — what the buttons do: add, edit, delete, enable/disable, check, import, export.
//
// Secrets only ever travel from a form field to the API: the add form's secret fields are
// emptied after every submit, the import text area and file input likewise, and export is
// fetched as a Blob and handed to the browser as a download without its content ever being
// put into the document. Every result is announced in the page's aria-live status region.

import { ApiError, del, patch, post, request } from "./api.js";
import { setupDialog, showDialog } from "./dialogs.js";
import { t } from "./i18n.js";
import { isoToLocalInput, localInputToIso } from "./format.js";

/** A translated sentence for an API or validation error. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return t("err.generic", { msg: err && err.message ? err.message : String(err) });
  if (err.status === 0) return t("err.network");
  if (err.code === "duplicate") return t("err.duplicate");
  if (err.code === "no_health_check") return t("err.noHealthCheck");
  if (err.status === 400 || err.status === 422) return t("err.invalid", { msg: err.message });
  if (err.status === 404) return t("err.notFound");
  if (err.status === 403 && err.code === "csrf") return t("err.csrf");
  return t("err.generic", { msg: err.message });
}

class InputError extends Error {}

function intField(input, { min, max, required }) {
  const raw = input.value.trim();
  if (!raw) {
    if (required) throw new InputError(t("err.required", { field: input.labels[0]?.textContent || input.name }));
    return null;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
    input.focus();
    throw new InputError(input.name === "weight" ? t("err.weight") : t("err.invalid", { msg: input.labels[0]?.textContent || input.name }));
  }
  return n;
}

function describe(err) {
  return err instanceof InputError ? err.message : describeError(err);
}

const byId = (id) => document.getElementById(id);
const tokenPath = (row) => `/api/tokens/${encodeURIComponent(row.id)}`;

export function setupActions({ refresh, announce }) {
  let editing = null;
  let deleting = null;

  const addForm = byId("form-add");
  setupDialog(byId("dlg-add"), async (form) => {
    const token = form.elements.token.value.trim();
    const refreshToken = form.elements.refresh_token.value.trim();
    // The secrets leave the form now, whatever the API answers.
    form.elements.token.value = "";
    form.elements.refresh_token.value = "";
    const name = form.elements.name.value.trim();
    if (!token) throw new InputError(t("err.required", { field: t("add.token") }));
    if (!name) throw new InputError(t("err.required", { field: t("add.name") }));
    const body = { token, name, weight: intField(form.elements.weight, { min: 1, max: 1000, required: false }) ?? 100 };
    const pool = form.elements.pool.value.trim();
    if (pool) body.pool = pool;
    const exp = localInputToIso(form.elements.expires_at.value);
    if (exp) body.expires_at = exp;
    if (refreshToken) body.refresh_token = refreshToken;
    await post("/api/token/add", body);
    form.reset();
    announce(t("add.done", { name }));
    refresh();
    return true;
  }, describe);
  byId("dlg-add").addEventListener("close", () => {
    addForm.elements.token.value = "";
    addForm.elements.refresh_token.value = "";
  });
  byId("btn-add").addEventListener("click", (ev) => showDialog(byId("dlg-add"), ev.currentTarget, "#add-token"));

  setupDialog(byId("dlg-edit"), async (form) => {
    const row = editing;
    const name = form.elements.name.value.trim();
    if (!name) throw new InputError(t("err.required", { field: t("add.name") }));
    await patch(tokenPath(row), {
      name,
      weight: intField(form.elements.weight, { min: 1, max: 1000, required: true }),
      expires_at: localInputToIso(form.elements.expires_at.value),
      limits: {
        rpm: intField(form.elements.rpm, { min: 1 }),
        max_in_flight: intField(form.elements.max_in_flight, { min: 1 }),
      },
    });
    announce(t("edit.done", { name }));
    refresh();
    return true;
  }, describe);

  setupDialog(byId("dlg-delete"), async () => {
    const row = deleting;
    await del("/api/token/remove", { id: row.id });
    announce(t("delete.done", { name: row.name || row.id }));
    refresh();
    return true;
  }, describe);

  const importDlg = byId("dlg-import");
  setupDialog(importDlg, async (form) => {
    const file = form.elements.file.files[0];
    const text = file ? await file.text() : form.elements.text.value;
    form.elements.text.value = "";
    form.elements.file.value = "";
    if (!text.trim()) throw new InputError(t("import.empty"));
    const pool = form.elements.pool.value.trim();
    const json = /^\s*[[{]/.test(text);
    const res = await request("POST", `/api/tokens/import${pool ? `?pool=${encodeURIComponent(pool)}` : ""}`, {
      body: text,
      contentType: json ? "application/json" : "text/plain; charset=utf-8",
    });
    const rejected = countOf(res, "errors");
    let msg = t("import.done", { added: countOf(res, "added"), skipped: countOf(res, "skipped") });
    if (rejected) msg += ` ${t("import.rejected", { n: rejected })}`;
    const box = form.querySelector(".form-result");
    box.textContent = msg;
    box.hidden = false;
    announce(msg);
    refresh();
    return false; // stay open so the counts are visible
  }, describe);
  byId("btn-import").addEventListener("click", (ev) => showDialog(importDlg, ev.currentTarget, "#import-file"));

  byId("btn-export").addEventListener("click", async () => {
    try {
      const res = await request("GET", "/api/tokens/export", { raw: true });
      const blob = await res.blob();
      const file = fileName(res.headers.get("Content-Disposition"));
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = file;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      announce(t("export.done", { file }));
    } catch (err) {
      announce(describeError(err), true);
    }
  });

  /** Row buttons: toggle | check | edit | delete. */
  return async function onRowAction(action, row, button) {
    if (!row) return;
    const name = row.name || row.id;
    if (action === "edit") {
      editing = row;
      const f = byId("form-edit");
      byId("edit-title").textContent = t("edit.title", { name });
      f.elements.name.value = row.name || "";
      f.elements.weight.value = row.weight ?? 100;
      f.elements.expires_at.value = isoToLocalInput(row.expires_at);
      f.elements.rpm.value = row.limits?.rpm ?? "";
      f.elements.max_in_flight.value = row.limits?.max_in_flight ?? "";
      showDialog(byId("dlg-edit"), button, "#edit-name");
    } else if (action === "delete") {
      deleting = row;
      byId("delete-text").textContent = t("delete.text", { name, masked: row.token || "****", pool: row.pool || "default" });
      showDialog(byId("dlg-delete"), button, "button[data-close]");
    } else if (action === "toggle") {
      const enable = row.state === "disabled";
      await guarded(button, (msg) => msg, async () => {
        await patch(tokenPath(row), { enabled: enable });
        announce(t(enable ? "toggle.enabled" : "toggle.disabled", { name }));
      });
    } else if (action === "check") {
      button.dataset.busy = "1";
      button.textContent = t("action.checking");
      await guarded(button, (msg) => t("check.error", { name, msg }), async () => {
        const res = (await post(`${tokenPath(row)}/check`, {})) || {};
        const state = res.state ? t(`state.${res.state}`) : t("time.none");
        const ok = res.ok ?? res.healthy ?? res.state === "active";
        const msg = res.message || res.error || res.state_reason || "";
        announce(ok ? t("check.ok", { name, state }) : t("check.failed", { name, state, msg }), !ok);
      });
      delete button.dataset.busy;
      button.textContent = t("action.check");
    }
  };

  async function guarded(button, wrap, fn) {
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      announce(wrap(describeError(err)), true);
    } finally {
      button.disabled = false;
      refresh();
    }
  }
}

function countOf(res, key) {
  const v = res && res[key];
  if (typeof v === "number") return v;
  return Array.isArray(v) ? v.length : 0;
}

function fileName(disposition) {
  const m = disposition && /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = m ? decodeURIComponent(m[1]).replace(/[\\/]/g, "_") : "";
  return name || `tokens-export-${new Date().toISOString().slice(0, 10)}.json`;
}
