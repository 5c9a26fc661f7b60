//! The client's write operations against the emulator (demo data), in personal and family
//! space: each changes what the next listing shows; uploads in parts are served back byte
//! for byte by the download host and counted in the quota; the fault controls apply.

use crate::common::{client_for, demo, start_demo, Emu};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use tokenlb_core::{OutcomeClass, Secret};
use tokenlb_wopan::client::ROOT_ID;
use tokenlb_wopan::emulator::DEMO_FAMILY_ID;
use tokenlb_wopan::{ClientConfig, Selection, Space, UploadTarget, WopanClient, WopanError};

fn family() -> Space {
    Space::Family {
        family_id: DEMO_FAMILY_ID.to_string(),
    }
}

fn spaces() -> [Space; 2] {
    [Space::Personal, family()]
}

async fn names(c: &WopanClient, space: &Space, dir: &str) -> Vec<String> {
    let mut n: Vec<String> = c
        .list_all(&demo(0), space, dir)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    n.sort();
    n
}

fn api_code(e: &WopanError) -> &str {
    e.api_code().unwrap_or("-")
}

/// Deterministic test bytes (not the emulator's generator).
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ salt)
        .collect()
}

/// A stream of `data` in chunks of `chunk` bytes.
fn chunks(
    data: Vec<u8>,
    chunk: usize,
) -> impl futures::Stream<Item = Result<Bytes, String>> + Unpin {
    let parts: Vec<Result<Bytes, String>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts)
}

async fn fetch(url: &str) -> Vec<u8> {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

fn small_parts(emu: &Emu, part: usize) -> WopanClient {
    WopanClient::new(ClientConfig {
        base_url: emu.base.clone(),
        upload_part_size: part,
        upload_retry_pause: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn mkdir_rename_move_copy_delete_in_both_spaces() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    for space in spaces() {
        let a = c
            .create_directory(&t, &space, ROOT_ID, "A-new")
            .await
            .unwrap();
        assert_eq!(a.len(), 32);
        let b = c.create_directory(&t, &space, &a, "B").await.unwrap();
        assert!(names(&c, &space, ROOT_ID)
            .await
            .contains(&"A-new".to_string()));
        assert_eq!(names(&c, &space, &a).await, ["B"]);
        // A name taken, an unknown parent, a bad name.
        let e = c
            .create_directory(&t, &space, ROOT_ID, "A-new")
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "0008");
        let e = c
            .create_directory(&t, &space, "no-such-id", "x")
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "0007");
        let e = c
            .create_directory(&t, &space, ROOT_ID, "a/b")
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "0010");

        // Rename a folder, then move B out of it, copy it back, delete the copy.
        let entry = c.resolve_path(&t, &space, "A-new").await.unwrap();
        c.rename(&t, &space, &entry, "A-renamed").await.unwrap();
        let root = names(&c, &space, ROOT_ID).await;
        assert!(root.contains(&"A-renamed".to_string()) && !root.contains(&"A-new".to_string()));
        let b_entry = c.resolve_path(&t, &space, "A-renamed/B").await.unwrap();
        assert_eq!(b_entry.id, b);
        let sel = Selection::of([&b_entry]);
        c.move_entries(&t, &space, &sel, ROOT_ID).await.unwrap();
        assert!(names(&c, &space, &a).await.is_empty());
        assert!(names(&c, &space, ROOT_ID).await.contains(&"B".to_string()));
        c.copy_entries(&t, &space, &sel, &a).await.unwrap();
        assert_eq!(names(&c, &space, &a).await, ["B"]);
        let copy = c.resolve_path(&t, &space, "A-renamed/B").await.unwrap();
        assert_ne!(copy.id, b);
        // A folder cannot go into itself.
        let whole = Selection::of([&c.resolve_path(&t, &space, "A-renamed").await.unwrap()]);
        let e = c
            .move_entries(&t, &space, &whole, &copy.id)
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "0009");
        c.delete_entries(&t, &space, &Selection::of([&copy]))
            .await
            .unwrap();
        assert!(names(&c, &space, &a).await.is_empty());
        // Deleting what is gone is refused.
        let e = c
            .delete_entries(&t, &space, &Selection::of([&copy]))
            .await
            .unwrap_err();
        assert_eq!(api_code(&e), "0007");
        assert_eq!(e.outcome_class(), OutcomeClass::Unknown);
    }
    for op in [
        "CreateDirectory",
        "RenameFileOrDirectory",
        "MoveFile",
        "CopyFile",
        "DeleteFile",
    ] {
        assert!(emu.calls(op).await >= 2, "{op}");
    }
}

#[tokio::test]
async fn copied_files_download_the_same_bytes_and_moves_keep_links_working() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(1);
    for space in spaces() {
        let dest = c
            .create_directory(&t, &space, ROOT_ID, "dest")
            .await
            .unwrap();
        let src = c
            .resolve_path(&t, &space, "BD-another/01.mp4")
            .await
            .unwrap();
        c.copy_entries(&t, &space, &Selection::of([&src]), &dest)
            .await
            .unwrap();
        let copy = c.resolve_path(&t, &space, "dest/01.mp4").await.unwrap();
        assert_eq!(copy.size, src.size);
        let a = fetch(&c.download_url(&t, &src.fid).await.unwrap()).await;
        let b = fetch(&c.download_url(&t, &copy.fid).await.unwrap()).await;
        assert_eq!(a.len() as u64, src.size);
        assert_eq!(a, b);
        // Moving the original keeps its fid; renaming a file keeps its bytes.
        c.move_entries(&t, &space, &Selection::of([&src]), &dest)
            .await
            .unwrap_err();
        c.rename(&t, &space, &copy, "copy.mp4").await.unwrap();
        c.move_entries(&t, &space, &Selection::of([&src]), &dest)
            .await
            .unwrap();
        let moved = c.resolve_path(&t, &space, "dest/01.mp4").await.unwrap();
        assert_eq!(moved.fid, src.fid);
        assert!(c
            .resolve_path(&t, &space, "BD-another/01.mp4")
            .await
            .is_err());
        assert_eq!(
            fetch(&c.download_url(&t, &moved.fid).await.unwrap()).await,
            a
        );
    }
}

#[tokio::test]
async fn upload_in_8_mib_parts_is_served_back_and_counted() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    let size = 20 * 1024 * 1024 + 3;
    for (i, space) in spaces().into_iter().enumerate() {
        let data = pattern(size, i as u8);
        let before = c.cloud_usage(&t, "186****0000").await.unwrap().used_bytes();
        let dir = c.dir_id_for_path(&t, &space, "BD-another").await.unwrap();
        let target = UploadTarget {
            space: &space,
            dir_id: &dir,
            name: "big.bin",
            size: size as u64,
        };
        let up = c
            .upload(&t, target, chunks(data.clone(), 100_000))
            .await
            .unwrap();
        // 20 MiB + 3 B: one 8 MiB part and a last one with the remainder (the SDK's rule).
        assert_eq!((up.parts, up.size, up.retries), (2, size as u64, 0));
        let e = c
            .resolve_path(&t, &space, "BD-another/big.bin")
            .await
            .unwrap();
        assert_eq!(
            (e.size, e.fid.as_str(), e.file_type.as_str()),
            (size as u64, up.fid.as_str(), "5")
        );
        let got = fetch(&c.download_url(&t, &e.fid).await.unwrap()).await;
        assert!(got == data, "uploaded bytes come back");
        let after = c.cloud_usage(&t, "186****0000").await.unwrap().used_bytes();
        // The quota is the personal space's.
        let grew = if space == Space::Personal {
            size as u64
        } else {
            0
        };
        assert_eq!(after - before, grew);
    }
    assert_eq!(emu.calls("upload2C").await, 4);
    assert_eq!(emu.calls("GetZoneInfo").await, 2);
    assert_eq!(c.zone_url(&t).await.unwrap(), emu.base);
}

#[tokio::test]
async fn empty_files_and_wrong_lengths() {
    let emu = start_demo().await;
    let c = small_parts(&emu, 1024);
    let t = demo(0);
    let p = Space::Personal;
    let target = |name: &'static str, size| UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name,
        size,
    };
    let up = c
        .upload(&t, target("empty.txt", 0), chunks(Vec::new(), 1))
        .await
        .unwrap();
    assert_eq!(up.parts, 1);
    assert_eq!(c.resolve_path(&t, &p, "empty.txt").await.unwrap().size, 0);
    let e = c
        .upload(&t, target("short.bin", 5000), chunks(vec![1; 4000], 700))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::UploadSource { .. }), "{e}");
    assert_eq!(e.outcome_class(), OutcomeClass::ClientError);
    let e = c
        .upload(&t, target("long.bin", 2048), chunks(vec![1; 3000], 700))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::UploadSource { .. }), "{e}");
    // A name that is taken is refused by the upload host.
    let e = c
        .upload(&t, target("welcome.txt", 3), chunks(vec![1; 3], 3))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), "0008");
    // A body stream that fails is the caller's fault, not the token's.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err("disk gone".to_string()),
    ]);
    let e = c
        .upload(&t, target("broken.bin", 10), failing)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("disk gone"), "{e}");
    assert_eq!(e.outcome_class(), OutcomeClass::ClientError);
}

#[tokio::test]
async fn rate_limit_mid_upload_is_waited_out_on_the_same_token() {
    let emu = start_demo().await;
    let c = small_parts(&emu, 1024 * 1024);
    let t = demo(2);
    let data = pattern(3 * 1024 * 1024, 7);
    // After the first part is in, the token is rate limited (Retry-After 1 s) until the
    // emulator has refused one part; then it is cleared.
    let base = emu.base.clone();
    let token = t.expose().to_string();
    let http = reqwest::Client::new();
    let control = move |body: serde_json::Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/_emulator/control"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let c2 = control.clone();
    let tok = token.clone();
    let body = chunks(data.clone(), 256 * 1024)
        .enumerate()
        .then(move |(i, chunk)| {
            let control = c2.clone();
            let tok = tok.clone();
            async move {
                if i == 4 {
                    control(json!({"tokens": {tok: "rate_limited"}, "retry_after_s": 1})).await;
                }
                chunk
            }
        });
    let watcher = {
        let base = emu.base.clone();
        let control = control.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let s: serde_json::Value = http
                    .get(format!("{base}/_emulator/state"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if s["calls"]["upload2C"].as_u64().unwrap_or(0) >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            control(json!({"tokens": {token: "ok"}})).await;
        })
    };
    let p = Space::Personal;
    let target = UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name: "limited.bin",
        size: data.len() as u64,
    };
    let up = c.upload(&t, target, Box::pin(body)).await.unwrap();
    watcher.await.unwrap();
    assert_eq!(up.parts, 3);
    assert!(up.retries >= 1, "{up:?}");
    let e = c.resolve_path(&t, &p, "limited.bin").await.unwrap();
    assert!(fetch(&c.download_url(&t, &e.fid).await.unwrap()).await == data);
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_wait_fails_clearly() {
    let emu = start_demo().await;
    let c = WopanClient::new(ClientConfig {
        base_url: emu.base.clone(),
        upload_part_size: 1024,
        upload_max_wait: Duration::ZERO,
        ..ClientConfig::default()
    })
    .unwrap();
    let t = demo(0);
    let zone = c.zone_url(&t).await.unwrap();
    emu.control(json!({"tokens": {t.expose(): "rate_limited"}, "retry_after_s": 30}))
        .await;
    let p = Space::Personal;
    let target = UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name: "x.bin",
        size: 10,
    };
    let e = c
        .upload_to(&zone, &t, target, chunks(vec![0; 10], 10))
        .await
        .unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::RateLimited);
    assert_eq!(e.retry_after_s(), Some(30));
    assert_eq!(emu.calls("upload2C").await, 1);
}

/// A fake upload host that fails every part's first attempt with HTTP 500 and records what
/// it was sent.
async fn flaky_host() -> (
    String,
    std::sync::Arc<parking_lot::Mutex<Vec<(String, usize)>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<(String, usize)>::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/openapi/client/upload2C",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let ct = headers.get("content-type").unwrap().to_str().unwrap();
                let b = tokenlb_wopan::multipart::boundary_of(ct).unwrap();
                let parts = tokenlb_wopan::multipart::parse(&body, &b).unwrap();
                let field = |n: &str| {
                    parts
                        .iter()
                        .find(|p| p.name == n)
                        .map(|p| p.data.clone())
                        .unwrap()
                };
                let index = String::from_utf8(field("partIndex").to_vec()).unwrap();
                let total = String::from_utf8(field("totalPart").to_vec()).unwrap();
                let len = field("file").len();
                let first = {
                    let mut l = log.lock();
                    let first = !l.iter().any(|(i, _)| *i == index);
                    l.push((index.clone(), len));
                    first
                };
                if first {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                let data = if index == total {
                    json!({"fid": "fake-fid"})
                } else {
                    json!({})
                };
                axum::Json(json!({"code": "0000", "msg": "ok", "data": data})).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

#[tokio::test]
async fn each_part_is_retried_after_a_transient_failure() {
    let (zone, seen) = flaky_host().await;
    let c = WopanClient::new(ClientConfig {
        base_url: zone.clone(),
        upload_part_size: 1000,
        upload_retry_pause: Duration::from_millis(1),
        ..ClientConfig::default()
    })
    .unwrap();
    let t = demo(0);
    let p = Space::Personal;
    let target = UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name: "r.bin",
        size: 2500,
    };
    let up = c
        .upload_to(&zone, &t, target, chunks(vec![9; 2500], 300))
        .await
        .unwrap();
    assert_eq!((up.fid.as_str(), up.parts, up.retries), ("fake-fid", 2, 2));
    let got = seen.lock().clone();
    let want: Vec<(String, usize)> = [("1", 1000), ("1", 1000), ("2", 1500), ("2", 1500)]
        .iter()
        .map(|(i, n)| (i.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    // With one attempt per part, the first 500 is the answer.
    let c1 = WopanClient::new(ClientConfig {
        base_url: zone.clone(),
        upload_part_attempts: 1,
        ..ClientConfig::default()
    })
    .unwrap();
    let (zone2, _) = flaky_host().await;
    let target = UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name: "r.bin",
        size: 10,
    };
    let e = c1
        .upload_to(&zone2, &t, target, chunks(vec![9; 10], 10))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 500, .. }), "{e}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
}

#[tokio::test]
async fn faults_apply_to_the_write_operations() {
    let emu = start_demo().await;
    let c = client_for(&emu.base, Duration::from_secs(10));
    let t = demo(0);
    let p = Space::Personal;
    emu.control(json!({"down": true})).await;
    let e = c.create_directory(&t, &p, ROOT_ID, "x").await.unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    let e = c.empty_recycle(&t).await.unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 502, .. }));
    emu.control(json!({"down": false, "tokens": {t.expose(): "expired"}}))
        .await;
    let e = c.create_directory(&t, &p, ROOT_ID, "x").await.unwrap_err();
    assert!(e.is_token_expired(), "{e}");
    let e = c.zone_url(&t).await.unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    // The upload host refuses the expired token too, in its own answer shape.
    let zone = emu.base.clone();
    let target = UploadTarget {
        space: &p,
        dir_id: ROOT_ID,
        name: "x.bin",
        size: 1,
    };
    let e = c
        .upload_to(&zone, &t, target.clone(), chunks(vec![0], 1))
        .await
        .unwrap_err();
    assert!(e.is_token_expired(), "{e}");
    emu.control(json!({"tokens": {t.expose(): "quota"}})).await;
    let e = c
        .upload_to(&zone, &t, target, chunks(vec![0], 1))
        .await
        .unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::QuotaExhausted);
    // Another family's space is refused.
    let other = Space::Family {
        family_id: "1".into(),
    };
    emu.control(json!({"tokens": {t.expose(): "ok"}})).await;
    let e = c
        .create_directory(&t, &other, ROOT_ID, "x")
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), "120002");
    let short = Secret::new("short");
    assert!(matches!(
        c.zone_url(&short).await,
        Err(WopanError::TokenTooShort { .. })
    ));
}

/// One part of a one-part upload, as the client sends it.
fn one_part_form(token: &str, unique: &str, name: &str, data: &[u8]) -> (String, Bytes) {
    let key = tokenlb_wopan::crypto::ChannelKey::wohome(token).unwrap();
    let info = tokenlb_wopan::params::file_info(
        &Space::Personal,
        ROOT_ID,
        "20240101000000",
        name,
        data.len() as u64,
    );
    let info = tokenlb_wopan::crypto::encrypt(&key, &serde_json::to_vec(&info).unwrap());
    let mut f = tokenlb_wopan::multipart::FormBuilder::new();
    let size = data.len().to_string();
    f.text("uniqueId", unique)
        .text("accessToken", token)
        .text("fileName", name)
        .text("psToken", "undefined")
        .text("fileSize", &size)
        .text("totalPart", "1")
        .text("partSize", &size)
        .text("partIndex", "1")
        .text("channel", "wocloud")
        .text("directoryId", ROOT_ID)
        .text("fileInfo", &info);
    let ct = f.content_type();
    (ct, f.finish_with_file("file", name, data))
}

#[tokio::test]
async fn a_finished_part_sent_again_gets_the_same_answer_and_no_second_file() {
    let emu = start_demo().await;
    let token = demo(0);
    let (ct, body) = one_part_form(
        token.expose(),
        "1700000000000_abcdef",
        "again.bin",
        b"hello",
    );
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = emu
            .post_raw(
                "/openapi/client/upload2C",
                &[("Content-Type", ct.as_str())],
                body.to_vec(),
            )
            .await;
        assert_eq!(r.status(), 200);
        let a = tokenlb_wopan::client::parse_answer(&r.bytes().await.unwrap()).unwrap();
        answers.push(a.data.unwrap().fid);
    }
    assert!(!answers[0].is_empty());
    assert_eq!(answers[0], answers[1]);
    let c = emu.client();
    let all = c.list_all(&token, &Space::Personal, ROOT_ID).await.unwrap();
    assert_eq!(all.iter().filter(|e| e.name == "again.bin").count(), 1);
    // Another token cannot claim it.
    let (ct2, body2) = one_part_form(
        demo(1).expose(),
        "1700000000000_abcdef",
        "again.bin",
        b"hello",
    );
    let r = emu
        .post_raw(
            "/openapi/client/upload2C",
            &[("Content-Type", ct2.as_str())],
            body2.to_vec(),
        )
        .await;
    let e = tokenlb_wopan::client::parse_answer(&r.bytes().await.unwrap()).unwrap_err();
    assert_eq!(e.api_code(), Some("0011"));
}

#[tokio::test]
async fn renaming_a_file_takes_the_new_names_type() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    let e = c
        .resolve_path(&t, &Space::Personal, "welcome.txt")
        .await
        .unwrap();
    assert_eq!(e.file_type, "4");
    c.rename(&t, &Space::Personal, &e, "welcome.mp4")
        .await
        .unwrap();
    let e = c
        .resolve_path(&t, &Space::Personal, "welcome.mp4")
        .await
        .unwrap();
    assert_eq!(e.file_type, "2");
}
