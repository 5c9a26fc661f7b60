//! Access (RELIABILITY.md §6): a table test generated at run time from the manager's own
//! `/api/openapi.json`. Every documented operation is called with no credentials, with a
//! client key, with the admin key, and with an admin UI session (with and without its CSRF
//! token), and each answer is checked against DESIGN §3:
//! - operations whose `security` names only `adminKey`/`session` refuse anything else (401);
//! - operations that accept `clientKey` refuse anonymous callers once client keys are
//!   configured (401) and accept the client key, the admin key and a session;
//! - operations with no security requirement never answer 401/403 for lack of credentials
//!   (the `auth` routes excepted: "who am I" is 401 without a session by definition);
//! - a session without the CSRF header is refused (403) on unsafe methods;
//! - every answer is a status the document lists for that operation, never a 5xx.
//!
//! Plus the login limit (429 + Retry-After after `login_max_failures`, even for the right
//! password), and CORS closed by default (no Access-Control-Allow-Origin for a foreign origin,
//! preflight refused).

use crate::support::{http, start_manager, Scratch, ADMIN_KEY, CLIENT_KEY};
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "reliability-ui-password-3e8a";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cred {
    None,
    Client,
    Admin,
    Session,
    SessionNoCsrf,
}

struct Session {
    cookie: String,
    csrf: String,
}

async fn login(client: &reqwest::Client, url: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("login")
}

fn request(
    client: &reqwest::Client,
    url: &str,
    method: &Method,
    path: &str,
    cred: Cred,
    session: &Session,
) -> reqwest::RequestBuilder {
    let mut rb = client.request(method.clone(), format!("{url}{path}"));
    rb = match cred {
        Cred::None => rb,
        Cred::Client => rb.bearer_auth(CLIENT_KEY),
        Cred::Admin => rb.bearer_auth(ADMIN_KEY),
        Cred::Session => rb
            .header("cookie", &session.cookie)
            .header("x-csrf-token", &session.csrf),
        Cred::SessionNoCsrf => rb.header("cookie", &session.cookie),
    };
    if [Method::POST, Method::PATCH, Method::DELETE].contains(method) {
        // A body that passes parsing where possible and is refused by validation otherwise:
        // access is decided before either.
        rb = rb.json(&json!({}));
    }
    rb
}

fn schemes(op: &Value) -> Vec<String> {
    op["security"]
        .as_array()
        .map(|alts| {
            alts.iter()
                .map(|alt| {
                    alt.as_object()
                        .and_then(|o| o.keys().next().cloned())
                        .unwrap_or_else(|| "anonymous".to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_enforces_the_access_rules() {
    let scratch = Scratch::new("access");
    let dir = scratch.path();
    let mut cmd = crate::support::manager_cmd(dir, &[]);
    cmd.env("TOKENLB_CLIENT_KEYS", CLIENT_KEY)
        .env("TOKENLB_ADMIN_PASSWORD", PASSWORD);
    let m = crate::support::Proc::spawn(cmd, dir.join("access.log")).expect("manager");
    let client = http();
    let r = client
        .post(format!("{}/api/token/add", m.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"token": "access-table-secret-0a1b2c3d4e5f", "name": "t"}))
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = login(&client, &m.url, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string();
    let csrf = r.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_string();
    let session = Session { cookie, csrf };

    let doc: Value = client
        .get(format!("{}/api/openapi.json", m.url))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi json");
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (template, ops) in paths {
        let path = template.replace("{id}", &id).replace("{file}", "app.js");
        for (method, op) in ops.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if template == "/api/auth/logout" {
                continue; // would end the session the table uses; it is open and always 200
            }
            let schemes = schemes(op);
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            let admin_only =
                !schemes.is_empty() && schemes.iter().all(|s| s == "adminKey" || s == "session");
            let client_route = schemes.iter().any(|s| s == "clientKey");
            let unsafe_method = method != Method::GET;
            let mut row = format!("{method} {template}:");
            for cred in [
                Cred::None,
                Cred::Client,
                Cred::Admin,
                Cred::Session,
                Cred::SessionNoCsrf,
            ] {
                let r = request(&client, &m.url, &method, &path, cred, &session)
                    .send()
                    .await
                    .expect("request");
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let what = format!("{method} {template} with {cred:?} → {status} {body:.200}");
                if status >= 500 {
                    problems.push(format!("5xx: {what}"));
                }
                if !documented.contains(&status) {
                    problems.push(format!("undocumented status: {what}"));
                }
                let refused = status == 401 || status == 403;
                let csrf_refused = cred == Cred::SessionNoCsrf && unsafe_method;
                if admin_only {
                    let allowed = matches!(cred, Cred::Admin | Cred::Session)
                        || (cred == Cred::SessionNoCsrf && !unsafe_method);
                    if refused == allowed {
                        problems.push(format!("admin route: {what}"));
                    }
                } else if client_route {
                    let allowed = cred != Cred::None && !csrf_refused;
                    if refused == allowed {
                        problems.push(format!("client route: {what}"));
                    }
                } else if !template.starts_with("/api/auth/") && refused {
                    problems.push(format!("open route: {what}"));
                }
                if csrf_refused && (admin_only || client_route) && status != 403 {
                    problems.push(format!("a session without CSRF: {what}"));
                }
                row.push_str(&format!(" {cred:?}={status}"));
                checked += 1;
            }
            rows.push(row);
        }
    }
    for row in &rows {
        println!("{row}");
    }
    assert!(rows.len() >= 20, "the document lists every route");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!(
        "RELIABILITY access: {} operations × 5 credentials = {checked} calls",
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_limited_even_for_the_right_password() {
    let scratch = Scratch::new("login");
    let dir = scratch.path();
    let mut cmd = crate::support::manager_cmd(dir, &[]);
    cmd.env("TOKENLB_ADMIN_PASSWORD", PASSWORD);
    let m = crate::support::Proc::spawn(cmd, dir.join("login.log")).expect("manager");
    let client = http();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = login(&client, &m.url, &format!("wrong-password-{i}")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = login(&client, &m.url, PASSWORD).await;
    assert_eq!(
        r.status(),
        429,
        "the right password is refused while limited"
    );
    assert!(!m.log_text().contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_is_closed_by_default() {
    let scratch = Scratch::new("cors");
    let m = start_manager(scratch.path(), "cors", &[]);
    let client = http();
    for (method, path) in [
        (Method::GET, "/api/token/stats"),
        (Method::GET, "/api/token/get"),
        (Method::GET, "/healthz"),
        (Method::POST, "/api/auth/login"),
    ] {
        let r = client
            .request(method.clone(), format!("{}{path}", m.url))
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("request");
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{method} {path} allows a foreign origin"
        );
        let pre = client
            .request(Method::OPTIONS, format!("{}{path}", m.url))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("preflight");
        assert!(
            !pre.status().is_success(),
            "preflight {path}: {}",
            pre.status()
        );
        assert!(!pre.headers().contains_key("access-control-allow-origin"));
        assert!(!pre.headers().contains_key("access-control-allow-methods"));
    }
}
