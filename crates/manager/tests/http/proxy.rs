//! Proxy mode (DESIGN §10) against a real upstream on loopback, written here: an axum
//! server that records what it was sent and answers from a script (the first requests get
//! the scripted answers, in order, whatever token they carry; the rest get 200). The
//! script makes every retry deterministic: the first attempt fails, the second is another
//! token.

use crate::common::{TestServer, ADMIN_KEY};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokenlb_core::Strategy;
use tokenlb_manager::config::{Config, Inject, ProxyConfig, ProxyRule};
use tokenlb_test_support::logs::Logs;
use tokio::sync::Notify;

const CLIENT_KEY: &str = "proxy-client-key-0123456789";
const TOKEN_A: &str = "sk-alpha-0123456789abcdefghijkl";
const TOKEN_B: &str = "sk-bravo-0123456789abcdefghijkl";

/// What the upstream answers.
#[derive(Clone)]
enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(&'static str, String)>, &'static str),
    /// An event stream: the first event at once, the second once the test releases it.
    Stream,
}

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
struct Seen {
    token: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Upstream {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    /// Lets a streamed answer send its second event.
    release: Notify,
    /// Set when a streamed answer has sent its last byte.
    finished: AtomicBool,
}

impl Upstream {
    fn script(&self, replies: Vec<Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let from_header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_query = parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("key=").map(str::to_string))
    });
    let token = from_header.or(from_query).unwrap_or_default();
    up.seen.lock().unwrap().push(Seen {
        token: token.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let reply = up.script.lock().unwrap().pop_front();
    let mut resp = match reply {
        None => {
            let v = json!({ "ok": true, "path": parts.uri.path(), "body_len": body.len() });
            Response::new(Body::from(v.to_string()))
        }
        Some(Reply::Status(code, headers, text)) => {
            let mut r = Response::new(Body::from(text));
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            for (k, v) in headers {
                r.headers_mut()
                    .insert(k, HeaderValue::from_str(&v).unwrap());
            }
            r
        }
        Some(Reply::Stream) => {
            let up = up.clone();
            let events = futures::stream::unfold(0, move |n| {
                let up = up.clone();
                async move {
                    match n {
                        0 => Some((Ok::<_, std::io::Error>(Bytes::from("data: first\n\n")), 1)),
                        1 => {
                            up.release.notified().await;
                            up.finished.store(true, Ordering::SeqCst);
                            Some((Ok(Bytes::from("data: last\n\n")), 2))
                        }
                        _ => None,
                    }
                }
            });
            let mut r = Response::new(Body::from_stream(events));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            r
        }
    };
    // An upstream that echoes the credential it was sent: tokenlb must mask it.
    if let Ok(v) = HeaderValue::from_str(&format!("seen {token}")) {
        resp.headers_mut().insert("x-echo-token", v);
    }
    resp
}

/// Starts the upstream on 127.0.0.1:0; its base URL.
async fn upstream() -> (Arc<Upstream>, String) {
    let up = Arc::new(Upstream::default());
    let app = axum::Router::new().fallback(answer).with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (up, url)
}

fn route(upstream: &str, inject: Inject) -> ProxyConfig {
    ProxyConfig {
        strategy: Some(Strategy::RoundRobin),
        ..ProxyConfig::new("api", &format!("{upstream}/base"), "apipool", inject)
    }
}

fn bearer() -> Inject {
    Inject::header("Authorization", "Bearer {token}")
}

/// A manager with one route (`api`, pool `apipool`), a client key, and tokens A and B.
async fn start(
    proxy: ProxyConfig,
    adjust: impl FnOnce(&mut Config),
) -> (TestServer, String, String) {
    let s = TestServer::start_with(|c| {
        c.client_keys = vec![tokenlb_manager::config::ClientKey::bare(CLIENT_KEY, 1)];
        c.proxy.push(proxy);
        adjust(c);
    })
    .await;
    let a = s
        .add_json(json!({ "token": TOKEN_A, "name": "a", "pool": "apipool" }))
        .await;
    let b = s
        .add_json(json!({ "token": TOKEN_B, "name": "b", "pool": "apipool" }))
        .await;
    (s, a, b)
}

async fn row(s: &TestServer, id: &str) -> Value {
    let v: Value = s
        .admin(s.get("/api/token/stats?pool=apipool"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("row")
}

fn id_of(a: &str, b: &str, token: &str) -> String {
    if token == TOKEN_A { a } else { b }.to_string()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_token_goes_in_a_header_and_the_callers_key_stays_behind() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    let r = s
        .get("/proxy/api/v1/things?x=1&y=two")
        .bearer_auth(CLIENT_KEY)
        .header("x-custom", "kept")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "1");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let one = &seen[0];
    assert!(one.token == TOKEN_A || one.token == TOKEN_B);
    assert_eq!(header(&r, "x-tokenlb-token-id"), id_of(&a, &b, &one.token));
    assert_eq!(one.path, "/base/v1/things");
    assert_eq!(one.query.as_deref(), Some("x=1&y=two"));
    assert_eq!(
        one.headers["authorization"],
        format!("Bearer {}", one.token)
    );
    assert_eq!(one.headers["x-custom"], "kept");
    assert!(
        one.headers.get("x-hop").is_none(),
        "hop-by-hop header forwarded"
    );
    let all: String = format!("{:?}", one.headers);
    assert!(
        !all.contains(CLIENT_KEY),
        "the caller's key reached the upstream"
    );
    // The echoed token is masked.
    let echo = header(&r, "x-echo-token");
    assert!(
        echo.starts_with("seen ") && !echo.contains(&one.token),
        "{echo}"
    );
    // No key, no proxy: the client key rule applies.
    let r = s.get("/proxy/api/v1/things").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(up.seen().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn proxy_paths_served_without_the_router_answer_and_are_labelled_as_the_routers() {
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, bearer()), |_| {}).await;
    for (method, path, want, upstream_path) in [
        ("GET", "/proxy/api", 200, Some("/base")),
        ("DELETE", "/proxy/api/v1/x", 200, Some("/base/v1/x")),
        ("BREW", "/proxy/api/pot", 200, Some("/base/pot")),
        ("GET", "/proxy/nope/v1/x", 404, None),
        ("GET", "/proxy/", 404, None),
        ("GET", "/proxy//x", 404, None),
    ] {
        let before = up.seen().len();
        let r = s
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", s.url),
            )
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{method} {path}");
        match upstream_path {
            Some(p) => assert_eq!(up.seen()[before].path, p, "{method} {path}"),
            None => assert_eq!(
                up.seen().len(),
                before,
                "{method} {path} reached the upstream"
            ),
        }
    }
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    for line in [
        "tokenlb_http_requests_total{route=\"/proxy/{name}\",method=\"GET\",status=\"200\"} 1",
        "tokenlb_http_requests_total{route=\"/proxy/{name}/{*path}\",method=\"DELETE\",status=\"200\"} 1",
        "tokenlb_http_requests_total{route=\"/proxy/{name}/{*path}\",method=\"other\",status=\"200\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_token_goes_in_a_query_parameter_replacing_the_callers() {
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, Inject::query("key")), |_| {}).await;
    let r = s
        .get("/proxy/api/geo?key=mine&q=a%20b")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let one = &up.seen()[0];
    assert!(one.token == TOKEN_A || one.token == TOKEN_B, "{one:?}");
    assert_eq!(
        one.query.as_deref(),
        Some(format!("q=a%20b&key={}", one.token).as_str())
    );
    assert!(one.headers.get("authorization").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_401_makes_the_token_invalid_and_another_token_answers() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Status(401, vec![], "{\"error\":\"bad key\"}")]);
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "2");
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].token, seen[1].token, "retried on the same token");
    let (bad, good) = (id_of(&a, &b, &seen[0].token), id_of(&a, &b, &seen[1].token));
    assert_eq!(header(&r, "x-tokenlb-token-id"), good);
    let bad_row = row(&s, &bad).await;
    assert_eq!(bad_row["state"], "invalid", "{bad_row}");
    assert_eq!(bad_row["failures_by_class"]["auth"], 1);
    assert_eq!(row(&s, &good).await["success"], 1);
    // The invalid token is not tried again.
    let r = s
        .get("/proxy/api/y")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-tokenlb-token-id"), good);
    s.stop().await;
}

#[tokio::test]
async fn a_429_cools_the_token_for_its_retry_after() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Status(
        429,
        vec![("retry-after", "120".into())],
        "slow down",
    )]);
    let before = chrono::Utc::now();
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cooled = id_of(&a, &b, &up.seen()[0].token);
    let v = row(&s, &cooled).await;
    assert_eq!(v["state"], "cooling", "{v}");
    assert_eq!(v["failures_by_class"]["rate_limited"], 1);
    let until = chrono::DateTime::parse_from_rfc3339(v["state_until"].as_str().unwrap()).unwrap();
    let secs = (until.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!(
        (119..=122).contains(&secs),
        "cooling for {secs} s, not the 120 s asked"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_5xx_is_transient_and_retried() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Status(503, vec![], "upstream hiccup")]);
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "2");
    let failed = id_of(&a, &b, &up.seen()[0].token);
    let v = row(&s, &failed).await;
    assert_eq!(v["failures_by_class"]["transient"], 1, "{v}");
    // One transient failure does not cool a token (5 in a row do).
    assert_eq!(v["state"], "active");
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tokenlb_proxy_requests_total{proxy=\"api\",class=\"transient\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tokenlb_proxy_requests_total{proxy=\"api\",class=\"success\"} 1"));
    s.stop().await;
}

#[tokio::test]
async fn a_client_error_reaches_the_caller_and_does_not_count_against_the_token() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Status(404, vec![], "no such thing")]);
    let r = s
        .get("/proxy/api/missing")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "1");
    assert_eq!(r.text().await.unwrap(), "no such thing");
    let id = id_of(&a, &b, &up.seen()[0].token);
    let v = row(&s, &id).await;
    assert_eq!(v["failure"], 0, "{v}");
    assert_eq!(v["state"], "active");
    assert_eq!(v["failures_by_class"]["client_error"], 1);
    assert_eq!(up.seen().len(), 1, "a client error is not retried");
    s.stop().await;
}

#[tokio::test]
async fn rules_on_body_and_header_come_before_the_defaults() {
    let (up, url) = upstream().await;
    let mut p = route(&url, bearer());
    p.rules = vec![ProxyRule {
        status: Some("200".into()),
        body_contains: Some("quota exceeded".into()),
        header: None,
        header_contains: None,
        outcome: tokenlb_core::OutcomeClass::QuotaExhausted,
    }];
    let (s, a, b) = start(p, |_| {}).await;
    up.script(vec![Reply::Status(
        200,
        vec![("x-ratelimit-reset", "300".into())],
        "{\"error\":\"quota exceeded for today\"}",
    )]);
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "2");
    let v = row(&s, &id_of(&a, &b, &up.seen()[0].token)).await;
    assert_eq!(v["state"], "cooling", "{v}");
    assert_eq!(v["failures_by_class"]["quota_exhausted"], 1);
    s.stop().await;
}

#[tokio::test]
async fn a_streamed_answer_reaches_the_caller_before_the_upstream_has_finished() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Stream]);
    // The upstream holds its last event back until the test releases it, so a proxy that
    // buffered the answer would deliver nothing here (bounded, so it fails, not hangs).
    let send = s.get("/proxy/api/events").bearer_auth(CLIENT_KEY).send();
    let mut r = tokio::time::timeout(std::time::Duration::from_secs(10), send)
        .await
        .expect("the answer's head came before the upstream finished")
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
        .await
        .expect("the first chunk came before the upstream finished")
        .unwrap()
        .expect("a first chunk");
    assert_eq!(&first[..], b"data: first\n\n");
    // The upstream cannot have finished: it waits for this test to let it go on.
    assert!(!up.finished.load(Ordering::SeqCst));
    let id = id_of(&a, &b, &up.seen()[0].token);
    assert_eq!(
        row(&s, &id).await["in_flight"],
        1,
        "the lease is held while it streams"
    );
    up.release.notify_one();
    let rest = r.bytes().await.unwrap();
    assert_eq!(&rest[..], b"data: last\n\n");
    assert!(up.finished.load(Ordering::SeqCst));
    let v = wait_for(&s, &id, |v| v["in_flight"] == 0 && v["success"] == 1).await;
    assert_eq!(v["failure"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_caller_that_hangs_up_mid_stream_frees_the_lease() {
    let (up, url) = upstream().await;
    let (s, a, b) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Stream]);
    let mut r = s
        .get("/proxy/api/events")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    let _ = r.chunk().await.unwrap().expect("a first chunk");
    let id = id_of(&a, &b, &up.seen()[0].token);
    assert_eq!(row(&s, &id).await["in_flight"], 1);
    drop(r);
    // The upstream never finishes; the lease is freed all the same, and not as a failure.
    let v = wait_for(&s, &id, |v| v["in_flight"] == 0).await;
    assert_eq!(v["failure"], 0, "{v}");
    assert_eq!(v["state"], "active");
    assert!(!up.finished.load(Ordering::SeqCst));
    s.stop().await;
}

/// Polls the token's row until `done` holds (at most 10 s: a deadline, not a measurement).
async fn wait_for(s: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let v = row(s, id).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "the token never reached the expected state: {}",
        row(s, id).await
    );
}

#[tokio::test]
async fn a_post_body_is_replayed_on_retry_and_one_over_1_mib_is_not() {
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, bearer()), |_| {}).await;
    let small: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    up.script(vec![Reply::Status(401, vec![], "no")]);
    let r = s
        .post("/proxy/api/upload")
        .bearer_auth(CLIENT_KEY)
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "2");
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(&seen[0].body[..], &small[..]);
    assert_eq!(&seen[1].body[..], &small[..], "the replay differs");

    // Over 1 MiB: streamed once, never retried; the caller gets the upstream's answer.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 241) as u8).collect();
    up.script(vec![Reply::Status(503, vec![], "busy")]);
    let r = s
        .post("/proxy/api/upload")
        .bearer_auth(CLIENT_KEY)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "1");
    let seen = up.seen();
    assert_eq!(seen.len(), 3, "a body over 1 MiB was retried");
    assert_eq!(seen[2].body.len(), big.len());
    assert_eq!(&seen[2].body[..], &big[..]);
    s.stop().await;
}

#[tokio::test]
async fn no_eligible_token_is_a_503_with_retry_after() {
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![
        Reply::Status(429, vec![("retry-after", "90".into())], ""),
        Reply::Status(429, vec![("retry-after", "40".into())], ""),
    ]);
    // Both tokens cool: the last answer goes to the caller.
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-tokenlb-attempts"), "2");
    let r = s
        .get("/proxy/api/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!(
        (39..=41).contains(&retry),
        "Retry-After {retry}, the earliest recovery is 40 s"
    );
    assert_eq!(up.seen().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn a_route_name_is_a_pool_scope_for_scoped_keys() {
    let (up, url) = upstream().await;
    let scoped = |key: &str, name: &str, pools: &[&str]| tokenlb_manager::config::ClientKey {
        pools: Some(pools.iter().map(|p| p.to_string()).collect()),
        name: name.to_string(),
        ..tokenlb_manager::config::ClientKey::bare(key, 9)
    };
    let (s, _, _) = start(route(&url, bearer()), |c| {
        c.client_keys
            .push(scoped("route-scoped-key-0123456789", "route", &["api"]));
        c.client_keys.push(scoped(
            "other-scoped-key-0123456789",
            "other",
            &["elsewhere"],
        ));
    })
    .await;
    let r = s
        .get("/proxy/api/x")
        .bearer_auth("route-scoped-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .get("/proxy/api/x")
        .bearer_auth("other-scoped-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .get("/proxy/nope/x")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(up.seen().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn check_says_how_a_request_was_classified_and_the_ui_lists_the_route() {
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, bearer()), |_| {}).await;
    up.script(vec![Reply::Status(
        429,
        vec![("retry-after", "30".into())],
        "",
    )]);
    let v: Value = s
        .admin(s.post("/api/proxy/api/check?path=/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["class"], "rate_limited", "{v}");
    assert_eq!(v["status"], 429);
    assert_eq!(v["retry_after_s"], 30);
    assert_eq!(up.seen()[0].path, "/base/v1/models");
    let list: Value = s
        .admin(s.get("/api/proxies"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one = &list["proxies"][0];
    assert_eq!(one["name"], "api");
    assert_eq!(one["pool"], "apipool");
    assert_eq!(one["counts"]["rate_limited"], 1, "{list}");
    // Not for clients.
    let r = s
        .post("/api/proxy/api/check")
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn the_secret_is_in_no_answer_log_line_metric_or_event() {
    let logs = Logs::global(tracing::Level::DEBUG);
    let (up, url) = upstream().await;
    let (s, _, _) = start(route(&url, Inject::query("key")), |c| {
        c.metrics.per_token = true;
    })
    .await;
    up.script(vec![
        Reply::Status(
            401,
            vec![("location", format!("{url}/x?key={TOKEN_A}"))],
            "no",
        ),
        Reply::Status(
            503,
            vec![("www-authenticate", format!("Bearer {TOKEN_B}"))],
            "busy",
        ),
    ]);
    let mut answers = String::new();
    for path in ["/proxy/api/a", "/proxy/api/b", "/proxy/api/c"] {
        let r = s.get(path).bearer_auth(CLIENT_KEY).send().await.unwrap();
        answers.push_str(&format!("{:?}", r.headers()));
        answers.push_str(&r.text().await.unwrap());
    }
    // The check's answer too.
    let v: Value = s
        .admin(s.post("/api/proxy/api/check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answers.push_str(&v.to_string());
    assert!(
        up.seen().iter().any(|x| x.token == TOKEN_A),
        "the test did not use the tokens"
    );
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = s
        .get("/api/events")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stats = s
        .admin(s.get("/api/token/stats?pool=apipool"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    s.stop().await;
    let text = logs.text();
    assert!(
        text.contains("proxy: trying another token"),
        "the proxy's logs were not captured"
    );
    for secret in [TOKEN_A, TOKEN_B] {
        assert!(
            !answers.contains(secret),
            "an answer carries the token: {answers}"
        );
        assert!(!metrics.contains(secret), "a metric carries the token");
        assert!(
            !events.contains(secret),
            "an event carries the token: {events}"
        );
        assert!(!stats.contains(secret), "the stats carry the token");
        assert!(!text.contains(secret), "a log line carries the token");
    }
}
