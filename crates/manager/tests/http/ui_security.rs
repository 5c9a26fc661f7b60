//! The admin UI's security properties, against a real manager on 127.0.0.1:0 (issue 3):
//! the login limit (429 + Retry-After, per client address), the session cookie's flags,
//! a fresh session id at every login and a dead one after logout, the CSRF check, the
//! security headers (a CSP without 'unsafe-inline') on pages, assets and the API, and pages
//! that need no inline script or style to work under that CSP.

use crate::common::{error_code, TestServer, PASSWORD};
use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async fn login(s: &TestServer, password: &str, cookie: Option<&str>) -> Response {
    let mut rb = s
        .post("/api/auth/login")
        .json(&json!({"username": "admin", "password": password}));
    if let Some(c) = cookie {
        rb = rb.header(COOKIE, c);
    }
    rb.send().await.expect("login answers")
}

/// The `Set-Cookie` of an answer, and the `name=value` pair to send back.
fn session_cookie(r: &Response) -> (String, String) {
    let set = r
        .headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .expect("ASCII cookie")
        .to_string();
    let pair = set
        .split(';')
        .next()
        .expect("name=value")
        .trim()
        .to_string();
    assert!(pair.starts_with("tokenlb_session="), "cookie name: {set}");
    (set, pair)
}

fn attrs(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

async fn me(s: &TestServer, cookie: &str) -> StatusCode {
    s.get("/api/auth/me")
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("me")
        .status()
}

#[tokio::test]
async fn login_is_limited_per_client_address_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.admin.login_max_failures = 3;
        c.admin.login_window_s = 120;
    })
    .await;
    for _ in 0..3 {
        let r = login(&s, "wrong", None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(r).await, "bad_credentials");
    }
    for password in ["wrong", PASSWORD] {
        let r = login(&s, password, None).await;
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "refused even with the right password"
        );
        assert!(
            r.headers().get(SET_COOKIE).is_none(),
            "no session while limited"
        );
        let wait: u64 = r
            .headers()
            .get("retry-after")
            .expect("Retry-After")
            .to_str()
            .expect("ASCII")
            .parse()
            .expect("seconds");
        assert!(
            (1..=120).contains(&wait),
            "Retry-After {wait} within the window"
        );
        assert_eq!(error_code(r).await, "too_many_attempts");
    }
    // Another client address is not held back by this one's failures.
    s.set_peer_override(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
    assert_eq!(login(&s, PASSWORD, None).await.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn session_cookie_flags() {
    let s = TestServer::start().await;
    let r = login(&s, PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (set, pair) = session_cookie(&r);
    let a = attrs(&set);
    for want in ["httponly", "samesite=strict", "path=/"] {
        assert!(a.iter().any(|x| x == want), "{want} in {set}");
    }
    assert!(
        !a.iter().any(|x| x == "secure"),
        "no Secure without TLS: {set}"
    );
    assert!(
        pair.len() > "tokenlb_session=".len() + 20,
        "a long random id: {}",
        pair.len()
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["username"], "admin");
    assert!(
        body["csrf_token"].as_str().is_some_and(|t| t.len() >= 16),
        "csrf token: {body}"
    );
    s.stop().await;

    let s = TestServer::start_with(|c| c.admin.cookie_secure = true).await;
    let r = login(&s, PASSWORD, None).await;
    let (set, _) = session_cookie(&r);
    assert!(
        attrs(&set).iter().any(|x| x == "secure"),
        "Secure when configured: {set}"
    );
    s.stop().await;
}

#[tokio::test]
async fn session_id_renewed_at_login_and_dead_after_logout() {
    let s = TestServer::start().await;
    let (_, first) = session_cookie(&login(&s, PASSWORD, None).await);
    assert_eq!(me(&s, &first).await, StatusCode::OK);

    // Logging in again from the same browser (it sends its old cookie) gives a new id and
    // ends the old session, so an id planted before login is worth nothing after it.
    let (_, second) = session_cookie(&login(&s, PASSWORD, Some(&first)).await);
    assert_ne!(first, second);
    assert_eq!(me(&s, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&s, &second).await, StatusCode::OK);

    let third = session_cookie(&login(&s, PASSWORD, None).await).1;
    assert!(
        ![&first, &second].contains(&&third),
        "every login gets a fresh id"
    );

    let csrf: Value = s
        .get("/api/auth/me")
        .header(COOKIE, &second)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let csrf = csrf["csrf_token"].as_str().expect("csrf").to_string();
    let r = s
        .post("/api/auth/logout")
        .header(COOKIE, &second)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::OK);
    let (cleared, _) = session_cookie(&r);
    assert!(
        attrs(&cleared).iter().any(|x| x == "max-age=0"),
        "the cookie is cleared: {cleared}"
    );
    assert_eq!(me(&s, &second).await, StatusCode::UNAUTHORIZED);
    let r = s
        .get("/api/tokens")
        .header(COOKIE, &second)
        .send()
        .await
        .expect("tokens");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a logged-out id opens nothing"
    );
    let r = s
        .get("/")
        .header(COOKIE, &second)
        .send()
        .await
        .expect("index");
    assert!(
        r.status().is_redirection(),
        "the dashboard sends a logged-out browser away"
    );
    assert_eq!(
        r.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    assert_eq!(
        me(&s, &third).await,
        StatusCode::OK,
        "other sessions live on"
    );
    s.stop().await;
}

#[tokio::test]
async fn state_changes_with_a_session_need_the_csrf_token() {
    let s = TestServer::start().await;
    let r = login(&s, PASSWORD, None).await;
    let (_, cookie) = session_cookie(&r);
    let csrf = r.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_string();
    let body = json!({"token": "csrf-check-token-0123456789", "name": "csrf"});

    let r = s
        .post("/api/token/add")
        .header(COOKIE, &cookie)
        .json(&body)
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "csrf");
    let r = s
        .post("/api/token/add")
        .header(COOKIE, &cookie)
        .header("x-csrf-token", "forged")
        .json(&body)
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .http
        .delete(s.u("/api/token/remove"))
        .header(COOKIE, &cookie)
        .json(&json!({"id": "x"}))
        .send()
        .await
        .expect("remove");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.stats().await["total_tokens"], 0, "nothing was added");

    let r = s
        .post("/api/token/add")
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), StatusCode::CREATED);
    // Reads need no CSRF token.
    let r = s
        .get("/api/tokens")
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("tokens");
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

fn assert_security_headers(path: &str, h: &HeaderMap) {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
    if path.starts_with("/api/") {
        assert_eq!(
            h.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
    }
    if get("content-type").starts_with("application/json") {
        // A JSON answer is never rendered: the page policies stay off it (issue 15).
        for name in [
            "content-security-policy",
            "x-frame-options",
            "referrer-policy",
        ] {
            assert!(h.get(name).is_none(), "{name} on the JSON answer of {path}");
        }
        return;
    }
    let csp = get("content-security-policy");
    assert_eq!(csp, CSP, "CSP on {path}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{path}: {csp}"
    );
    assert_eq!(get("x-frame-options"), "DENY", "{path}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
}

#[tokio::test]
async fn security_headers_on_pages_assets_and_api() {
    let s = TestServer::start().await;
    let (_, cookie) = session_cookie(&login(&s, PASSWORD, None).await);
    let cases: &[(&str, bool, u16)] = &[
        ("/", true, 200),
        ("/", false, 303),
        ("/login", false, 200),
        ("/assets/app.js", false, 200),
        ("/assets/style.css", false, 200),
        ("/assets/no-such-file.js", false, 404),
        ("/api/auth/me", true, 200),
        ("/api/auth/me", false, 401),
        ("/api/token/stats", true, 200),
        ("/api/tokens", true, 200),
        ("/api/tokens", false, 401),
        ("/api/events", true, 200),
        ("/api/no-such-route", true, 404),
    ];
    for &(path, with_session, status) in cases {
        let mut rb = s.get(path);
        if with_session {
            rb = rb.header(COOKIE, &cookie);
        }
        let r = rb.send().await.expect("answer");
        let got = r.status().as_u16();
        let redirect_ok = status == 303 && r.status().is_redirection();
        assert!(
            got == status || redirect_ok,
            "{path} (session: {with_session}) answered {got}, wanted {status}"
        );
        assert_security_headers(path, r.headers());
    }
    let r = login(&s, "wrong", None).await;
    assert_security_headers("/api/auth/login", r.headers());
    s.stop().await;
}

/// Every script and stylesheet a page names, served with its type; no inline script,
/// inline style or event-handler attribute anywhere, so the CSP above loses nothing.
#[tokio::test]
async fn pages_work_under_the_csp() {
    let s = TestServer::start().await;
    let (_, cookie) = session_cookie(&login(&s, PASSWORD, None).await);
    for page in ["/", "/login"] {
        let r = s
            .get(page)
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        let html = r.text().await.expect("html");
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains(" style="), "{page}: inline style attribute");
        assert!(!lower.contains("<style"), "{page}: inline <style>");
        assert!(!lower.contains("javascript:"), "{page}: javascript: URL");
        for tag in lower.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or_default();
            assert!(
                open.contains(" src=\"/assets/"),
                "{page}: inline <script{open}>"
            );
        }
        let handlers: Vec<&str> = lower
            .split_whitespace()
            .filter(|w| w.starts_with("on") && w.contains('='))
            .collect();
        assert!(
            handlers.is_empty(),
            "{page}: event-handler attributes {handlers:?}"
        );
        let mut refs: Vec<String> = Vec::new();
        for part in html.split("\"/assets/").skip(1) {
            refs.push(part.split('"').next().unwrap_or_default().to_string());
        }
        assert!(
            refs.iter().any(|r| r.ends_with(".js")) && refs.iter().any(|r| r.ends_with(".css")),
            "{page}: {refs:?}"
        );
        // The pages' files and, through their `import … from "./x.js"`, every module.
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = refs.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let r = s
                .get(&format!("/assets/{name}"))
                .send()
                .await
                .expect("asset");
            assert_eq!(r.status(), StatusCode::OK, "/assets/{name}");
            let ct = r
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let want = match name.rsplit('.').next() {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("svg") => "image/svg+xml",
                _ => "",
            };
            assert!(ct.starts_with(want), "/assets/{name}: {ct}");
            if name.ends_with(".js") {
                let js = r.text().await.expect("js");
                for bad in [
                    "eval(",
                    "new Function(",
                    ".innerHTML",
                    ".outerHTML =",
                    ".insertAdjacentHTML(",
                    "document.write(",
                ] {
                    assert!(!js.contains(bad), "/assets/{name} uses {bad}");
                }
                for part in js.split("from \"./").skip(1) {
                    refs.push(part.split('"').next().unwrap_or_default().to_string());
                }
            }
        }
        assert!(seen.contains("i18n.js"), "{page}: modules found: {seen:?}");
    }
    s.stop().await;
}
