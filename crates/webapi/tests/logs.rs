//! What the web API logs: token names and ids, files found, fallbacks — and never a token.
//!
//! In its own test binary because it installs a thread-local log subscriber: tests running on
//! other threads of the same process without one could otherwise leave tracing's per-callsite
//! interest cache disabled for an event this test looks for.

mod support;

use serde_json::json;
use support::Stack;
use tokenlb_wopan::emulator::DEMO_TOKENS;

#[tokio::test]
async fn logs_name_tokens_and_files_but_never_show_a_token() {
    let (logs, _guard) = support::Logs::install();
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
        "falling back to cache",
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
