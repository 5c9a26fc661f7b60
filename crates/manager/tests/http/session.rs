//! Admin UI login: cookie flags, fresh ids, CSRF, the login limit, security headers, pages.

use crate::common::{error_code, TestServer, PASSWORD};
use reqwest::Response;
use serde_json::{json, Value};

fn session_id(r: &Response) -> String {
    let c = r.headers()["set-cookie"].to_str().unwrap();
    c.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

async fn login(s: &TestServer, cookie: Option<&str>) -> (String, String) {
    let mut rb = s
        .post("/api/auth/login")
        .json(&json!({"username": "admin", "password": PASSWORD}));
    if let Some(c) = cookie {
        rb = rb.header("cookie", format!("tokenlb_session={c}"));
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "cookie {cookie} has {flag}");
    }
    assert!(!cookie.contains("Secure"), "not Secure unless configured");
    let id = session_id(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["username"], "admin");
    (id, v["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn login_sets_a_fresh_strict_cookie_and_logout_ends_it() {
    let s = TestServer::start().await;
    let (first, _) = login(&s, None).await;
    assert_eq!(first.len(), 64);
    let (second, csrf) = login(&s, Some(&first)).await;
    assert_ne!(first, second, "a fresh session id at every login");
    let me = |id: String| {
        s.get("/api/auth/me")
            .header("cookie", format!("tokenlb_session={id}"))
            .send()
    };
    assert_eq!(
        me(first.clone()).await.unwrap().status(),
        401,
        "the old session is gone"
    );
    let r = me(second.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["csrf_token"],
        csrf.as_str()
    );

    let r = s
        .post("/api/auth/logout")
        .header("cookie", format!("tokenlb_session={second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(me(second).await.unwrap().status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn secure_cookie_when_configured() {
    let s = TestServer::start_with(|c| c.admin.cookie_secure = true).await;
    let r = s
        .post("/api/auth/login")
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    s.stop().await;
}

#[tokio::test]
async fn csrf_is_required_for_cookie_writes() {
    let s = TestServer::start().await;
    let (id, csrf) = login(&s, None).await;
    let cookie = format!("tokenlb_session={id}");
    let add = |token: &str| {
        s.post("/api/token/add")
            .header("cookie", &cookie)
            .json(&json!({"token": token, "name": "n"}))
    };
    let r = add("csrf-token-test-0001").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "csrf");
    let r = add("csrf-token-test-0001")
        .header("x-csrf-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = add("csrf-token-test-0001")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Reads need no CSRF token; the session works on client routes too.
    let r = s
        .get("/api/tokens")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.set_peer_override(Some("203.0.113.9".parse().unwrap()));
    let r = s
        .get("/api/token/stats")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A bogus session is no session.
    let r = s
        .get("/api/tokens")
        .header("cookie", "tokenlb_session=deadbeef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn failed_logins_are_limited_per_address() {
    let s = TestServer::start_with(|c| c.admin.login_max_failures = 3).await;
    let attempt = |password: &'static str| {
        s.post("/api/auth/login")
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    for _ in 0..3 {
        let r = attempt("wrong-password").await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(error_code(r).await, "bad_credentials");
    }
    let r = attempt(PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429, "even the right password waits");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(error_code(r).await, "too_many_attempts");
    // Another address is not affected.
    s.set_peer_override(Some("198.51.100.4".parse().unwrap()));
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 200);
    let r = s
        .post("/api/auth/login")
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the user name matters");
    s.stop().await;
}

#[tokio::test]
async fn security_headers_everywhere_and_no_cors() {
    let s = TestServer::start().await;
    let (id, _) = login(&s, None).await;
    let paths = [
        "/login",
        "/",
        "/assets/app.js",
        "/api/token/stats",
        "/api/tokens",
        "/nope",
        "/healthz",
    ];
    for path in paths {
        let r = s
            .get(path)
            .header("origin", "https://evil.example")
            .header("cookie", format!("tokenlb_session={id}"))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(!h.contains_key("access-control-allow-origin"), "{path}");
        if path.starts_with("/api/") {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
        let json = h
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if json {
            assert!(!h.contains_key("content-security-policy"), "{path}");
            continue;
        }
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(!h.contains_key("access-control-allow-origin"), "{path}");
        if path.starts_with("/api/") {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn pages_and_assets() {
    let s = TestServer::start().await;
    let r = s.get("/").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = s.get("/login").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let (id, _) = login(&s, None).await;
    let r = s
        .get("/")
        .header("cookie", format!("tokenlb_session={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.get("/assets/app.js").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = s
        .get("/assets/app.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s.get("/assets/style.css").send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    let r = s.get("/assets/missing.js").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    s.stop().await;
}

#[tokio::test]
async fn a_parallel_burst_of_guesses_cannot_pass_the_limit() {
    let s = TestServer::start_with(|c| c.admin.login_max_failures = 3).await;
    let tries: Vec<_> = (0..10)
        .map(|_| {
            let (http, url) = (s.http.clone(), s.u("/api/auth/login"));
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"username": "admin", "password": "guess"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut checked = 0;
    for t in tries {
        let status = t.await.unwrap();
        assert!(status == 401 || status == 429, "{status}");
        checked += u32::from(status == 401);
    }
    assert_eq!(
        checked, 3,
        "only max_failures guesses reach the password check"
    );
    s.stop().await;
}
