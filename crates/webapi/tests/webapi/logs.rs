//! What the web API logs: token names and ids, files found, fallbacks — and never a token.
//!
//! In its own test binary because it installs a thread-local log subscriber: tests running on
//! other threads of the same process without one could otherwise leave tracing's per-callsite
//! interest cache disabled for an event this test looks for.

use crate::support::Stack;
use serde_json::json;
use tokenlb_wopan::emulator::DEMO_TOKENS;

#[tokio::test]
async fn logs_name_tokens_and_files_but_never_show_a_token() {
    let (logs, _guard) = crate::support::Logs::install();
    let s = Stack::start().await;
    s.control(json!({"tokens": {DEMO_TOKENS[0].access_token: "expired"}}))
        .await;
    for q in [
        "/api/folders?realtime=true",
        "/api/files?folder=BD-another&realtime=true",
        "/api/download/?url=BD-another/01.mp4&proxy=true",
    ] {
        let status = s.get_raw(q, Some("bytes=0-9")).await.status();
        assert!(status.is_success(), "{q}: {status}");
    }
    s.control(json!({"down": true})).await;
    let (_, v) = s.get("/api/files?folder=BD-another&realtime=true").await;
    assert_eq!(
        (v["source"].as_str(), v["stale"].as_bool()),
        (Some("cache"), Some(true)),
        "{v}"
    );

    let text = logs.text();
    for needle in [
        "got token: demo-",
        "realtime API found file: 01.mp4",
        // Issue 14: the fallback line gives its cause and names the folder.
        "Wopan failed for folder BD-another; answering from the cache: transient:",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} in the logs:\n{}",
            &text[..text.len().min(3000)]
        );
    }
    for t in DEMO_TOKENS {
        assert!(
            !text.contains(t.access_token),
            "the token of {} reached the logs",
            t.name
        );
        assert!(
            !text.contains(&t.access_token[..16]),
            "the wohome key of {} reached the logs",
            t.name
        );
    }
}

#[tokio::test]
async fn writes_and_uploads_log_token_names_but_never_a_token_or_the_key() {
    const KEY: &str = "webapi-test-write-key-0123456789";
    let (logs, _guard) = crate::support::Logs::install();
    let s = Stack::start_with(|c| c.api_key = Some(tokenlb_core::Secret::new(KEY))).await;
    let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        s.http
            .request(method, format!("{}{path}", s.web_url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    let r = send(reqwest::Method::POST, "/api/folders", json!({"path": "L"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .put(format!("{}/api/upload?path=L/a.bin", s.web_url))
        .bearer_auth(KEY)
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = send(
        reqwest::Method::POST,
        "/api/rename",
        json!({"path": "L/a.bin", "name": "b.bin"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // A failing write logs its error too.
    s.control(json!({"error_rate": 1.0})).await;
    let r = send(
        reqwest::Method::DELETE,
        "/api/files",
        json!({"paths": ["L/b.bin"]}),
    )
    .await
    .unwrap();
    assert!(r.status().is_server_error());

    let text = logs.text();
    for needle in [
        "got token for a write: demo-",
        "upload of \"L/a.bin\" on token demo-",
        "uploaded \"L/a.bin\"",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} in the logs:\n{}",
            &text[..text.len().min(3000)]
        );
    }
    assert!(!text.contains(KEY), "the web API key reached the logs");
    for t in DEMO_TOKENS {
        assert!(
            !text.contains(t.access_token),
            "the token of {} reached the logs",
            t.name
        );
        assert!(
            !text.contains(&t.access_token[..16]),
            "the wohome key of {} reached the logs",
            t.name
        );
    }
}
