//! The drive's writes through the web API (DESIGN §11), on the whole system on loopback
//! (emulator, real manager with the demo tokens, web API): the story of one file from folder
//! to deletion with the cache checked after every step, the clear 4xx answers, the key, the
//! quota, an upload rate limited half-way, and the OpenAPI document.

use crate::support::Stack;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_wopan::emulator::DEMO_TOKENS;

const KEY: &str = "webapi-test-write-key-0123456789";

async fn stack() -> Stack {
    Stack::start_with(|c| c.api_key = Some(Secret::new(KEY))).await
}

async fn send(s: &Stack, method: &str, path: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = s
        .http
        .request(m, format!("{}{path}", s.web_url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Deterministic content, generated chunk by chunk.
fn content(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn upload(s: &Stack, path: &str, data: Vec<u8>) -> (u16, Value) {
    let len = data.len();
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(256 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let r = s
        .http
        .put(format!("{}/api/upload?path={path}", s.web_url))
        .bearer_auth(KEY)
        .header("content-length", len)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn names(listing: &Value) -> Vec<String> {
    let arr = listing["files"]
        .as_array()
        .or(listing["folders"].as_array());
    let mut n: Vec<String> = arr
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// The listing of `folder` from the cache alone (no upstream call), asserting it is cached.
async fn cached(s: &Stack, folder: &str) -> Value {
    let before = s.upstream_calls().await;
    let (status, body) = s
        .get(&format!("/api/files?folder={folder}&realtime=false"))
        .await;
    assert_eq!(status, 200, "{folder}: {body}");
    assert_eq!(body["source"], "cache");
    assert_eq!(
        s.upstream_calls().await,
        before,
        "a cache-only read made no upstream call"
    );
    body
}

async fn cached_root(s: &Stack) -> Vec<String> {
    let (status, body) = s.get("/api/folders?realtime=false").await;
    assert_eq!(status, 200, "{body}");
    names(&body)
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn usage(s: &Stack) -> u64 {
    let (status, body) = s.get("/api/usage?realtime=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "realtime");
    assert_eq!(body["total_bytes"], 10_737_418_240u64);
    body["used_bytes"].as_u64().unwrap()
}

#[tokio::test]
async fn story_mkdir_upload_list_download_rename_move_copy_delete() {
    story(stack().await, true).await;
}

#[tokio::test]
async fn story_in_family_space() {
    let s = Stack::start_with(|c| {
        c.api_key = Some(Secret::new(KEY));
        c.space = tokenlb_wopan::Space::Family {
            family_id: tokenlb_wopan::emulator::DEMO_FAMILY_ID.to_string(),
        };
    })
    .await;
    let (_, root) = s.get("/api/folders?realtime=true").await;
    assert!(names(&root).contains(&"家庭相册".to_string()), "{root}");
    story(s, false).await;
}

/// The story of one file; `personal`: the quota (the account's, personal space) grows.
async fn story(s: Stack, personal: bool) {
    let size = 20 * 1024 * 1024;
    let data = content(size);
    let used0 = usage(&s).await;

    // mkdir
    let (st, b) = send(&s, "POST", "/api/folders", json!({"path": "Story"})).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(
        (b["path"].as_str(), b["entry"]["type"].as_str()),
        (Some("Story"), Some("folder"))
    );
    assert_eq!(b["entry"]["id"].as_str().unwrap().len(), 32);
    assert!(cached_root(&s).await.contains(&"Story".to_string()));
    // A new folder is known to be empty: its listing is cached at once.
    assert!(names(&cached(&s, "Story").await).is_empty());

    // upload 20 MiB
    let (st, b) = upload(&s, "Story/big.bin", data.clone()).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["entry"]["size"], size as u64);
    assert_eq!(b["entry"]["name"], "big.bin");
    assert_eq!(s.calls("upload2C").await, 2, "8 MiB, then the remainder");
    // listed with its size, from the cache and from Wopan
    let l = cached(&s, "Story").await;
    assert_eq!(names(&l), ["big.bin"]);
    assert_eq!(l["files"][0]["size"], size as u64);
    let (_, rt) = s.get("/api/files?folder=Story&realtime=true").await;
    assert_eq!(rt["files"][0]["size"], size as u64);
    let grew = if personal { size as u64 } else { 0 };
    assert_eq!(
        usage(&s).await - used0,
        grew,
        "the quota (personal space) follows the upload"
    );

    // download: the same bytes, and a Range
    let r = s
        .get_raw("/api/download/?url=Story/big.bin&proxy=true", None)
        .await;
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.unwrap();
    assert_eq!(sha(&got), sha(&data));
    let r = s
        .get_raw(
            "/api/download/?url=Story/big.bin&proxy=true",
            Some("bytes=9000000-9999999"),
        )
        .await;
    assert_eq!(r.status(), 206);
    let part = r.bytes().await.unwrap();
    assert_eq!(sha(&part), sha(&data[9_000_000..10_000_000]));

    // rename
    let (st, b) = send(
        &s,
        "POST",
        "/api/rename",
        json!({"path": "Story/big.bin", "name": "renamed.bin"}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["path"], "Story/renamed.bin");
    assert_eq!(names(&cached(&s, "Story").await), ["renamed.bin"]);
    let (st, _) = s.get("/api/download/?url=Story/big.bin").await;
    assert_eq!(st, 404, "the old name is gone");

    // move into a new subfolder
    let (st, _) = send(&s, "POST", "/api/folders", json!({"path": "Story/sub"})).await;
    assert_eq!(st, 201);
    assert_eq!(names(&cached(&s, "Story").await), ["renamed.bin", "sub"]);
    let (st, b) = send(
        &s,
        "POST",
        "/api/move",
        json!({"paths": ["Story/renamed.bin"], "to": "Story/sub"}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["moved"],
        json!([{"from": "Story/renamed.bin", "to": "Story/sub/renamed.bin"}])
    );
    assert_eq!(names(&cached(&s, "Story").await), ["sub"]);
    assert_eq!(names(&cached(&s, "Story/sub").await), ["renamed.bin"]);

    // copy back up
    let (st, b) = send(
        &s,
        "POST",
        "/api/copy",
        json!({"paths": ["Story/sub/renamed.bin"], "to": "Story"}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["copied"][0]["to"], "Story/renamed.bin");
    assert_eq!(names(&cached(&s, "Story").await), ["renamed.bin", "sub"]);
    assert_eq!(names(&cached(&s, "Story/sub").await), ["renamed.bin"]);
    let r = s
        .get_raw("/api/download/?url=Story/renamed.bin&proxy=true", None)
        .await;
    assert_eq!(
        sha(&r.bytes().await.unwrap()),
        sha(&data),
        "the copy has the same bytes"
    );

    // delete both
    let (st, b) = send(
        &s,
        "DELETE",
        "/api/files",
        json!({"paths": ["Story/renamed.bin", "Story/sub/renamed.bin"]}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["deleted"],
        json!(["Story/renamed.bin", "Story/sub/renamed.bin"])
    );
    assert_eq!(names(&cached(&s, "Story").await), ["sub"]);
    assert!(names(&cached(&s, "Story/sub").await).is_empty());
    let (_, rt) = s.get("/api/files?folder=Story/sub&realtime=true").await;
    assert!(names(&rt).is_empty());
    let (st, _) = s.get("/api/download/?url=Story/renamed.bin").await;
    assert_eq!(st, 404);

    // deleting a folder drops its cached listings
    let (st, _) = send(&s, "DELETE", "/api/files", json!({"paths": ["Story"]})).await;
    assert_eq!(st, 200);
    assert!(!cached_root(&s).await.contains(&"Story".to_string()));
    let (st, _) = s.get("/api/files?folder=Story/sub&realtime=false").await;
    assert_eq!(st, 404, "the deleted folder's listing is no longer served");
}

#[tokio::test]
async fn writes_need_the_key_and_reads_do_not() {
    let s = stack().await;
    let url = format!("{}/api/folders", s.web_url);
    let r = s
        .http
        .post(&url)
        .json(&json!({"path": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = s
        .http
        .post(&url)
        .bearer_auth("wrong-key-0123456789")
        .json(&json!({"path": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .post(&url)
        .header("x-api-key", KEY)
        .json(&json!({"path": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for (m, p) in [
        ("PUT", "/api/upload?path=a.bin"),
        ("DELETE", "/api/files"),
        ("POST", "/api/move"),
        ("POST", "/api/copy"),
        ("POST", "/api/rename"),
    ] {
        let r = s
            .http
            .request(
                reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                format!("{}{p}", s.web_url),
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {p}");
    }
    assert_eq!(
        s.calls("CreateDirectory").await,
        1,
        "refused writes cost no upstream call"
    );
    let (st, _) = s.get("/api/usage").await;
    assert_eq!(st, 200, "reads stay open");
}

#[tokio::test]
async fn bad_requests_are_clear_4xx() {
    let s = stack().await;
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "POST",
            "/api/folders",
            json!({"path": "../x"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": ""}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": "A//B"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/folders",
            json!({"folder": "A"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": "No-such/New"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": "welcome.txt/New"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": "BD-another"}),
            409,
            "name_taken",
        ),
        (
            "POST",
            "/api/folders",
            json!({"path": "welcome.txt"}),
            409,
            "name_taken",
        ),
        (
            "POST",
            "/api/rename",
            json!({"path": "BD-another/01.mp4", "name": "02.mp4"}),
            409,
            "name_taken",
        ),
        (
            "POST",
            "/api/rename",
            json!({"path": "BD-another/01.mp4", "name": "a/b"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/rename",
            json!({"path": "BD-another/01.mp4", "name": ".."}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/rename",
            json!({"path": "BD-another/nope.mp4", "name": "x"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/rename",
            json!({"path": "/", "name": "x"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/move",
            json!({"paths": ["BD-another"], "to": "BD-another/extras"}),
            400,
            "into_itself",
        ),
        (
            "POST",
            "/api/move",
            json!({"paths": ["BD-another"], "to": "BD-another"}),
            400,
            "into_itself",
        ),
        (
            "POST",
            "/api/move",
            json!({"paths": ["BD-another/01.mp4"], "to": "Nowhere"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/move",
            json!({"paths": ["BD-another/01.mp4"], "to": "welcome.txt"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/copy",
            json!({"paths": [], "to": ""}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/copy",
            json!({"paths": ["welcome.txt", "welcome.txt"], "to": "Docs"}),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/copy",
            json!({"paths": ["BD-another/01.mp4"], "to": "BD-another"}),
            409,
            "name_taken",
        ),
        (
            "POST",
            "/api/copy",
            json!({"paths": ["../etc/passwd"], "to": ""}),
            400,
            "bad_request",
        ),
        (
            "DELETE",
            "/api/files",
            json!({"paths": ["BD-another/none.mp4"]}),
            404,
            "not_found",
        ),
        (
            "DELETE",
            "/api/files",
            json!({"paths": ["/"]}),
            400,
            "bad_request",
        ),
    ];
    for (m, p, body, status, code) in cases {
        let (st, b) = send(&s, m, p, body.clone()).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{m} {p} {body}: {b}"
        );
        assert!(!b["error"]["message"].as_str().unwrap().is_empty());
    }
    // Not JSON at all.
    let r = s
        .http
        .post(format!("{}/api/folders", s.web_url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Uploads: a taken name, a missing parent, no length, a path outside the drive.
    let (st, b) = upload(&s, "welcome.txt", vec![1; 10]).await;
    assert_eq!((st, b["error"]["code"].as_str()), (409, Some("name_taken")));
    let (st, _) = upload(&s, "Nope/a.bin", vec![1; 10]).await;
    assert_eq!(st, 404);
    let (st, _) = upload(&s, "../a.bin", vec![1; 10]).await;
    assert_eq!(st, 400);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"abc"))];
    let r = s
        .http
        .put(format!("{}/api/upload?path=chunked.bin", s.web_url))
        .bearer_auth(KEY)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 411);
    // None of these reached Wopan's write operations.
    for op in [
        "CreateDirectory",
        "RenameFileOrDirectory",
        "MoveFile",
        "CopyFile",
        "DeleteFile",
        "upload2C",
    ] {
        assert_eq!(s.calls(op).await, 0, "{op}");
    }
}

#[tokio::test]
async fn an_upload_rate_limited_half_way_finishes_on_the_same_token() {
    // Renewals every 200 ms while the upload waits out the limit (the manager may or may not
    // know the renew route yet: either way the upload goes on).
    let s = Stack::start_with(|c| {
        c.api_key = Some(Secret::new(KEY));
        c.lease_renew_every = Duration::from_millis(200);
        c.lease_extend = Duration::from_secs(5);
    })
    .await;
    let size = 16 * 1024 * 1024 + 5000;
    let data = content(size);
    // The body stops after the first part until the test says go.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let head = Bytes::copy_from_slice(&data[..8 * 1024 * 1024]);
    let tail = Bytes::copy_from_slice(&data[8 * 1024 * 1024..]);
    let stream = futures::stream::iter(vec![Ok::<Bytes, std::io::Error>(head)]).chain(
        futures::stream::once(async move {
            let _ = go_rx.await;
            Ok(tail)
        }),
    );
    use futures::StreamExt;
    let web = s.web_url.clone();
    let http = s.http.clone();
    let put = tokio::spawn(async move {
        let r = http
            .put(format!("{web}/api/upload?path=Docs/limited.bin"))
            .bearer_auth(KEY)
            .header("content-length", size)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json::<Value>().await.unwrap_or(Value::Null))
    });
    // Part 1 in: now every token is rate limited (Retry-After 1 s) …
    while s.calls("upload2C").await < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all: serde_json::Map<String, Value> = DEMO_TOKENS
        .iter()
        .map(|t| (t.access_token.to_string(), json!("rate_limited")))
        .collect();
    s.control(json!({"tokens": all, "retry_after_s": 1})).await;
    let _ = go_tx.send(());
    // … until part 2 has been refused once; then they recover.
    while s.calls("upload2C").await < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok: serde_json::Map<String, Value> = DEMO_TOKENS
        .iter()
        .map(|t| (t.access_token.to_string(), json!("ok")))
        .collect();
    s.control(json!({"tokens": ok})).await;
    let (st, b) = put.await.unwrap();
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["entry"]["size"], size as u64);
    assert_eq!(
        s.calls("upload2C").await,
        3,
        "part 1, part 2 refused, part 2 again"
    );
    let r = s
        .get_raw("/api/download/?url=Docs/limited.bin&proxy=true", None)
        .await;
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&data));
}

#[tokio::test]
async fn an_upload_rate_limited_for_too_long_fails_clearly() {
    let s = stack().await;
    let all: serde_json::Map<String, Value> = DEMO_TOKENS
        .iter()
        .map(|t| (t.access_token.to_string(), json!("rate_limited")))
        .collect();
    // Longer than the upload's two-minute wait: the first refusal already says so.
    s.control(json!({"retry_after_s": 600})).await;
    // GetZoneInfo must pass first: limit the tokens only once the zone was asked for.
    let (st, _) = send(&s, "POST", "/api/folders", json!({"path": "L"})).await;
    assert_eq!(st, 201);
    let web = s.web_url.clone();
    let http = s.http.clone();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let stream = futures::stream::once(async move {
        let _ = go_rx.await;
        Ok::<Bytes, std::io::Error>(Bytes::from_static(b"0123456789"))
    });
    let put = tokio::spawn(async move {
        let r = http
            .put(format!("{web}/api/upload?path=L/x.bin"))
            .bearer_auth(KEY)
            .header("content-length", 10)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (
            r.status().as_u16(),
            retry,
            r.json::<Value>().await.unwrap_or(Value::Null),
        )
    });
    while s.calls("GetZoneInfo").await < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.control(json!({"tokens": all})).await;
    let _ = go_tx.send(());
    let (st, retry, b) = put.await.unwrap();
    assert_eq!(st, 503, "{b}");
    assert_eq!(b["error"]["code"], "upstream_rate_limited");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not moved to another"),
        "{b}"
    );
    assert_eq!(retry.as_deref(), Some("600"));
    assert_eq!(s.calls("upload2C").await, 1);
}

#[tokio::test]
async fn usage_is_a_cached_read() {
    let s = stack().await;
    let (st, b) = s.get("/api/usage?realtime=false").await;
    assert_eq!((st, b["error"]["code"].as_str()), (404, Some("not_cached")));
    let used = usage(&s).await;
    let before = s.upstream_calls().await;
    let (st, b) = s.get("/api/usage").await;
    assert_eq!(st, 200);
    assert_eq!(
        (b["source"].as_str(), b["used_bytes"].as_u64()),
        (Some("cache"), Some(used))
    );
    assert!(b["cached_at"].as_str().is_some());
    assert_eq!(s.upstream_calls().await, before);
    // Wopan down: the cached answer, marked stale.
    s.control(json!({"down": true})).await;
    let (st, b) = s.get("/api/usage?realtime=true").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (b["source"].as_str(), b["stale"].as_bool()),
        (Some("cache"), Some(true))
    );
}

#[tokio::test]
async fn a_failed_write_says_so_and_leaves_the_cache_alone() {
    let s = stack().await;
    let (_, l) = s.get("/api/files?folder=Docs&realtime=true").await;
    let before = names(&l);
    s.control(json!({"error_rate": 1.0})).await;
    let (st, b) = send(&s, "POST", "/api/folders", json!({"path": "Docs/new"})).await;
    assert_eq!(st, 502, "{b}");
    s.control(json!({"error_rate": 0.0})).await;
    assert_eq!(names(&cached(&s, "Docs").await), before);
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let s = stack().await;
    let (st, doc) = s.get("/api/openapi.json").await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = tokenlb_webapi::openapi::documented_routes();
    for (m, p) in [
        ("GET", "/api/folders"),
        ("POST", "/api/folders"),
        ("GET", "/api/files"),
        ("DELETE", "/api/files"),
        ("GET", "/api/download/"),
        ("POST", "/api/rename"),
        ("POST", "/api/move"),
        ("POST", "/api/copy"),
        ("PUT", "/api/upload"),
        ("GET", "/api/usage"),
        ("GET", "/api/openapi.json"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ] {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} documented"
        );
    }
    // Every documented route is served (not the fallback's no_route).
    for (m, p) in &documented {
        let r = s
            .http
            .request(
                reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                format!("{}{p}", s.web_url),
            )
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_ne!(body["error"]["code"], "no_route", "{m} {p}");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name}"
        );
    }
}

/// An upload keeps its token: while it runs, the lease is renewed at the real manager
/// (`POST /api/token/renew`), so a slow upload does not lose its token at the lease's
/// deadline.
#[tokio::test]
async fn an_upload_renews_its_lease_at_the_manager_while_it_runs() {
    let s = Stack::start_with(|c| {
        c.api_key = Some(Secret::new(KEY));
        c.lease_renew_every = Duration::from_millis(100);
        c.lease_extend = Duration::from_secs(5);
    })
    .await;
    // Every upstream call takes 300 ms: the upload lasts several renewal periods.
    s.control(json!({"latency_ms": 300})).await;
    let (status, body) = upload(&s, "BD-another/slow.bin", content(1024 * 1024)).await;
    assert_eq!(status, 201, "{body}");
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.manager_url).await;
    let series =
        r#"tokenlb_http_requests_total{route="/api/token/renew",method="POST",status="200"}"#;
    let renewed = tokenlb_test_support::metrics::value(&text, series).unwrap_or(0.0);
    assert!(
        renewed >= 1.0,
        "the upload's lease was never renewed:\n{text}"
    );
    let expired = tokenlb_test_support::metrics::value(
        &text,
        r#"tokenlb_lease_expiries_total{pool="default"}"#,
    );
    assert_eq!(expired.unwrap_or(0.0), 0.0, "no lease expired");
}
