// dialogs.js — modal dialogs that work from the keyboard.
//
// Built on <dialog>.showModal(): the rest of the page becomes inert, Escape cancels. On top
// of that, Tab and Shift+Tab wrap inside the dialog (a focus trap that does not depend on
// the browser's chrome), focus moves to the first field on open and back to the button that
// opened it on close (or to a fallback when that button has gone, e.g. its row was deleted).
// Submit handlers are async; the dialog stays open with the error shown when they fail.

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
const openers = new WeakMap();
let fallbackFocus = null;

export function setFallbackFocus(el) {
  fallbackFocus = el;
}

function trap(ev) {
  if (ev.key !== "Tab") return;
  const dlg = ev.currentTarget;
  const items = [...dlg.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (ev.shiftKey && document.activeElement === first) {
    ev.preventDefault();
    last.focus();
  } else if (!ev.shiftKey && document.activeElement === last) {
    ev.preventDefault();
    first.focus();
  }
}

export function formError(form, message) {
  const box = form.querySelector(".form-error");
  if (!box) return;
  box.textContent = message || "";
  box.hidden = !message;
}

function setBusy(form, busy) {
  for (const el of form.querySelectorAll("button, input, select, textarea")) {
    if (busy) {
      el.dataset.wasDisabled = el.disabled ? "1" : "";
      el.disabled = true;
    } else {
      el.disabled = el.dataset.wasDisabled === "1";
    }
  }
  const submit = form.querySelector("button[type=submit]");
  if (submit) submit.setAttribute("aria-busy", busy ? "true" : "false");
}

/**
 * Wires a dialog once. onSubmit(form) → true closes it; throwing keeps it open and shows
 * the message returned by describeError(err).
 */
export function setupDialog(dlg, onSubmit, describeError) {
  const form = dlg.querySelector("form");
  dlg.addEventListener("keydown", trap);
  for (const b of dlg.querySelectorAll("[data-close]")) b.addEventListener("click", () => dlg.close("cancel"));
  dlg.addEventListener("close", () => {
    const opener = openers.get(dlg);
    const target = opener && opener.isConnected && !opener.disabled ? opener : fallbackFocus;
    if (target) target.focus();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, "");
    setBusy(form, true);
    let close = false;
    try {
      close = await onSubmit(form);
    } catch (err) {
      formError(form, describeError(err));
    } finally {
      setBusy(form, false);
    }
    if (close) dlg.close("done");
  });
}

/** Opens a wired dialog; `opener` gets focus back when it closes. */
export function showDialog(dlg, opener, focusSelector) {
  openers.set(dlg, opener || document.activeElement);
  const form = dlg.querySelector("form");
  formError(form, "");
  const result = form.querySelector(".form-result");
  if (result) result.hidden = true;
  dlg.showModal();
  const first = focusSelector ? dlg.querySelector(focusSelector) : dlg.querySelector(FOCUSABLE);
  if (first) first.focus();
}
