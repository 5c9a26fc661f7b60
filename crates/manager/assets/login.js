// login.js — the sign-in form.
//
// POST /api/auth/login with JSON; the session cookie is HttpOnly so this script never sees
// it. 401 shows a translated "wrong username or password"; 429 shows the wait from
// Retry-After as a live countdown and keeps the button disabled until it runs out.

import { applyI18n, bindLangSelect, onLangChange, t } from "./i18n.js";
import { fmtWait } from "./format.js";

const form = document.getElementById("login-form");
const user = document.getElementById("username");
const pass = document.getElementById("password");
const submit = document.getElementById("login-submit");
const errorBox = document.getElementById("login-error");
const status = document.getElementById("login-status");

let lastError = null; // {key, params} so a language switch re-translates it
let lockedUntil = 0;
let timer = null;

function showError(key, params = {}) {
  lastError = { key, params };
  renderError();
}

function renderError() {
  if (!lastError) {
    errorBox.hidden = true;
    errorBox.textContent = "";
    return;
  }
  const params = { ...lastError.params };
  if (lastError.key === "login.tooMany") params.wait = fmtWait((lockedUntil - Date.now()) / 1000);
  errorBox.textContent = t(lastError.key, params);
  errorBox.hidden = false;
}

function lockFor(seconds) {
  lockedUntil = Date.now() + seconds * 1000;
  submit.disabled = true;
  clearInterval(timer);
  timer = setInterval(() => {
    if (Date.now() >= lockedUntil) {
      clearInterval(timer);
      submit.disabled = false;
      showError("login.tooManyNow");
      return;
    }
    renderError();
  }, 1000);
  showError("login.tooMany");
}

async function onSubmit(ev) {
  ev.preventDefault();
  if (submit.disabled) return;
  if (!user.value.trim() || !pass.value) {
    showError("err.required", { field: t(!user.value.trim() ? "login.username" : "login.password") });
    (!user.value.trim() ? user : pass).focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = t("login.busy");
  status.textContent = t("login.busy");
  let res;
  try {
    res = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: user.value.trim(), password: pass.value }),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    submit.disabled = false;
    submit.textContent = t("login.submit");
    showError("err.network");
    return;
  }
  submit.textContent = t("login.submit");
  if (res.ok) {
    pass.value = "";
    location.assign("/");
    return;
  }
  pass.value = "";
  if (res.status === 429) {
    const ra = Number.parseInt(res.headers.get("Retry-After") || "", 10);
    lockFor(Number.isFinite(ra) && ra > 0 ? ra : 60);
  } else {
    submit.disabled = false;
    if (res.status === 401) showError("login.bad");
    else showError("login.failed", { msg: `HTTP ${res.status}` });
  }
  pass.focus();
}

async function redirectIfSignedIn() {
  try {
    const res = await fetch("/api/auth/me", { credentials: "same-origin", cache: "no-store" });
    if (res.ok) location.replace("/");
  } catch {
    // server unreachable: the form shows the error when used
  }
}

applyI18n(document);
bindLangSelect(document.getElementById("lang"));
onLangChange(() => {
  if (!submit.disabled || lockedUntil > Date.now()) submit.textContent = t("login.submit");
  renderError();
});
form.addEventListener("submit", onSubmit);
(user.value ? pass : user).focus();
redirectIfSignedIn();
