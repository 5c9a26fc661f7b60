//! A 1 GiB upload through the web API stays within 64 MiB of memory: the body is streamed
//! part by part, never held whole.
//!
//! The emulator names a counting sink as its upload host (`public_url`), so the test process
//! (which runs the web API, the manager, the emulator and the sink) keeps no copy of the
//! file anywhere; its peak resident memory is measured from a reset high-water mark
//! (`/proc/self/clear_refs`, Linux) across the upload. Each test binary of nextest runs in
//! its own process, so nothing else shares the measurement.

use crate::support::Stack;
use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokenlb_core::Secret;
use tokenlb_wopan::emulator::EmulatorConfig;

const KEY: &str = "webapi-test-write-key-0123456789";
const MIB: u64 = 1024 * 1024;

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The number after `name="FIELD"` and a blank line in a form's head.
fn field(head: &[u8], name: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    let marker = format!("name=\"{name}\"\r\n\r\n");
    let rest = &text[text.find(&marker)? + marker.len()..];
    rest.split("\r\n").next()?.trim().parse().ok()
}

/// An upload host that reads every part as a stream, counts its bytes and answers like
/// `upload2C`; the last part gets a fid.
async fn sink(total: Arc<AtomicU64>) -> String {
    let app = axum::Router::new().route(
        "/openapi/client/upload2C",
        axum::routing::post(move |_h: HeaderMap, body: Body| {
            let total = total.clone();
            async move {
                let mut head = Vec::new();
                let mut stream = body.into_data_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.unwrap();
                    if head.len() < 8192 {
                        head.extend_from_slice(&chunk[..chunk.len().min(8192)]);
                    }
                    total.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                let (index, parts) = (field(&head, "partIndex"), field(&head, "totalPart"));
                let data = if index.is_some() && index == parts {
                    json!({"fid": "sink-fid"})
                } else {
                    json!({})
                };
                axum::Json(json!({"code": "0000", "msg": "上传成功", "data": data}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_upload_stays_within_64_mib() {
    let received = Arc::new(AtomicU64::new(0));
    let zone = sink(received.clone()).await;
    let emulator = EmulatorConfig {
        public_url: Some(zone),
        ..EmulatorConfig::default()
    };
    let s = Stack::start_full(emulator, |c| c.api_key = Some(Secret::new(KEY))).await;
    // Warm up every path once (connections, caches, the first listing).
    let (st, _) = s.get("/api/files?folder=Docs&realtime=true").await;
    assert_eq!(st, 200);

    let size: u64 = 1024 * MIB;
    let chunk = Bytes::from(vec![0x5a; MIB as usize]);
    let body = futures::stream::iter(
        (0..size / MIB).map(move |_| Ok::<Bytes, std::io::Error>(chunk.clone())),
    );
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = if reset {
        status_kib("VmRSS:")
    } else {
        status_kib("VmHWM:")
    }
    .expect("Linux /proc");
    let r = s
        .http
        .put(format!("{}/api/upload?path=Docs/big.bin", s.web_url))
        .bearer_auth(KEY)
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let answer: Value = r.json().await.unwrap();
    let peak = status_kib("VmHWM:").unwrap();
    assert_eq!(st, 201, "{answer}");
    assert_eq!(answer["entry"]["size"], size);
    assert_eq!(answer["entry"]["fid"], "sink-fid");
    assert!(
        received.load(Ordering::Relaxed) > size,
        "the sink saw every byte"
    );
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!("resident memory grew by {grew_mib} MiB during a 1 GiB upload (reset high-water mark: {reset})");
    assert!(grew_mib <= 64, "resident memory grew by {grew_mib} MiB");
}
