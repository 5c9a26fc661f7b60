//! Upstream and network faults (RELIABILITY.md §3) for the web API and the client library.
//!
//! A raw TCP fake sits between the component and its upstream. In `Pass` mode it forwards
//! bytes to the real thing (the Wopan emulator for the web API, the manager for the client);
//! in the other modes it hangs, resets, closes, trickles, or answers garbage, a wrong envelope
//! or an endless body. For each fault the component must answer in bounded time with either a
//! stale cache answer or a clear JSON error, never panic, and leave no lease in flight at the
//! manager (its stats show `in_flight` 0 for every token).

use crate::support::{http, start_manager, tokenlb, Proc, Scratch, ADMIN_KEY};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEMO_TOKEN: &str = "de000001-7e57-4a1b-9c2d-00000000a001";

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Mode {
    Pass,
    Hang,
    Reset,
    CloseEarly,
    SlowBody,
    Garbage,
    WrongEnvelope,
    HugeBody,
    NotHttp,
}

const FAULTS: [Mode; 8] = [
    Mode::Hang,
    Mode::Reset,
    Mode::CloseEarly,
    Mode::SlowBody,
    Mode::Garbage,
    Mode::WrongEnvelope,
    Mode::HugeBody,
    Mode::NotHttp,
];

fn mode_of(v: u8) -> Mode {
    FAULTS
        .iter()
        .copied()
        .find(|m| *m as u8 == v)
        .unwrap_or(Mode::Pass)
}

/// The mode switch of a fake upstream. Changing it also cuts the connections the old mode
/// was serving, so a pooled keep-alive connection cannot carry a request past a fault.
struct Switch(tokio::sync::watch::Sender<u8>);

impl Switch {
    fn store(&self, mode: u8, _: Ordering) {
        self.0.send_replace(mode);
    }
}

/// The fake: listens on 127.0.0.1:0; returns its address and the mode switch.
async fn fake_upstream(target: String) -> (String, Switch) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = tokio::sync::watch::channel(Mode::Pass as u8);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let mut rx = rx.clone();
            let mode = mode_of(*rx.borrow_and_update());
            let target = target.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = serve(sock, mode, target) => {}
                    _ = rx.changed() => {}
                }
            });
        }
    });
    (addr, Switch(tx))
}

async fn read_head(sock: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
}

async fn serve(mut sock: TcpStream, mode: Mode, target: String) {
    let ok_head = |len: u64| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    match mode {
        Mode::Pass => {
            if let Ok(mut up) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
            }
        }
        Mode::Hang => {
            // Read whatever comes and never answer, until the peer gives up.
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::Reset => {
            // Closing with unread data in the receive buffer makes the kernel send RST.
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(sock);
        }
        Mode::CloseEarly => {
            read_head(&mut sock).await;
            let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
        }
        Mode::SlowBody => {
            read_head(&mut sock).await;
            let _ = sock.write_all(ok_head(1000).as_bytes()).await;
            for _ in 0..1000 {
                if sock.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Mode::Garbage => {
            read_head(&mut sock).await;
            let body: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect();
            let _ = sock.write_all(ok_head(body.len() as u64).as_bytes()).await;
            let _ = sock.write_all(&body).await;
        }
        Mode::WrongEnvelope => {
            read_head(&mut sock).await;
            let body = br#"{"RSP":{"RSP_CODE":"0000","RSP_DESC":"ok"},"DATA":{"unexpected":[1,2,3]},"extra":"x"}"#;
            let _ = sock.write_all(ok_head(body.len() as u64).as_bytes()).await;
            let _ = sock.write_all(body).await;
        }
        Mode::HugeBody => {
            read_head(&mut sock).await;
            let _ = sock.write_all(ok_head(8 << 30).as_bytes()).await;
            let chunk = vec![b'['; 64 * 1024];
            // 8 GiB announced; stream until the peer hangs up (or 2 GiB, to stay bounded).
            for _ in 0..32 * 1024 {
                if sock.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
        Mode::NotHttp => {
            read_head(&mut sock).await;
            let _ = sock
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage\r\n\r\n")
                .await;
        }
    }
}

/// Every token's `in_flight` is 0 (the leases were reported or released); polls briefly,
/// because a report may still be on its way when the answer reached the test.
async fn no_lease_in_flight(manager: &str, what: &str) {
    let client = http();
    let mut last = Value::Null;
    for _ in 0..50 {
        last = client
            .get(format!("{manager}/api/token/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json");
        let tokens = last["tokens"].as_array().cloned().unwrap_or_default();
        if tokens.iter().all(|t| t["in_flight"] == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: a lease stayed in flight: {last}");
}

fn webapi(dir: &std::path::Path, tag: &str, manager: &str, wopan: &str) -> Proc {
    let mut cmd = tokenlb(dir);
    cmd.args(["--log-level", "info", "webapi", "--listen", "127.0.0.1:0"])
        .args(["--manager-url", manager])
        .args(["--wopan-base-url", &format!("http://{wopan}")])
        .args(["--upstream-timeout-s", "2", "--max-attempts", "2"])
        .arg("--data-dir")
        .arg(dir.join(tag));
    Proc::spawn(cmd, dir.join(format!("{tag}.log"))).expect("webapi starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_api_survives_every_upstream_fault() {
    let scratch = Scratch::new("upstream");
    let dir = scratch.path();
    let mut emu_cmd = tokenlb(dir);
    emu_cmd.args([
        "--log-level",
        "info",
        "wopan-emulator",
        "--listen",
        "127.0.0.1:0",
    ]);
    let emulator = Proc::spawn(emu_cmd, dir.join("emulator.log")).expect("emulator");
    let manager = start_manager(dir, "manager", &[]);
    let r = http()
        .post(format!("{}/api/token/add", manager.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"token": DEMO_TOKEN, "name": "demo-1"}))
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), 201);
    let (fake, mode) = fake_upstream(emulator.url.trim_start_matches("http://").to_string()).await;
    let web = webapi(dir, "webapi", &manager.url, &fake);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    // Healthy: a realtime listing, which also fills the cache.
    let r = client
        .get(format!("{}/api/folders?realtime=true", web.url))
        .send()
        .await
        .expect("folders");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["source"], "realtime", "{v}");

    let mut figures = Vec::new();
    for fault in FAULTS {
        mode.store(fault as u8, Ordering::SeqCst);
        // Twice: the first request may meet a pooled connection the switch just cut; the
        // second surely opens a connection into the fault.
        for (route, cached) in [
            ("/api/folders?realtime=true", true),
            ("/api/folders?realtime=true", true),
            ("/api/files?folder=never-listed-folder&realtime=true", false),
        ] {
            let started = Instant::now();
            let r = client
                .get(format!("{}{route}", web.url))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{fault:?} {route}: no answer: {e}"));
            let took = started.elapsed();
            let status = r.status().as_u16();
            let body: Value = r
                .json()
                .await
                .unwrap_or_else(|e| panic!("{fault:?} {route}: not JSON: {e}"));
            if cached {
                assert_eq!(status, 200, "{fault:?}: the cache answers: {body}");
                assert_eq!(body["stale"], true, "{fault:?}: marked stale: {body}");
                assert_eq!(body["source"], "cache", "{body}");
            } else {
                assert!(status >= 400, "{fault:?} {route}: {status} {body}");
                assert!(
                    body["error"]["code"].is_string(),
                    "{fault:?}: a JSON error: {body}"
                );
            }
            figures.push(format!(
                "{fault:?} {route} → {status} in {} ms",
                took.as_millis()
            ));
            no_lease_in_flight(&manager.url, &format!("{fault:?} {route}")).await;
        }
    }
    // With nothing cached, every fault is a clear JSON error.
    let cold = webapi(dir, "webapi-cold", &manager.url, &fake);
    for fault in FAULTS {
        mode.store(fault as u8, Ordering::SeqCst);
        for _ in 0..2 {
            let started = Instant::now();
            let r = client
                .get(format!("{}/api/folders", cold.url))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{fault:?} cold: no answer: {e}"));
            let took = started.elapsed();
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("a JSON answer");
            assert!(status >= 500, "{fault:?} cold: {status} {body}");
            assert!(body["error"]["code"].is_string(), "{fault:?} cold: {body}");
            figures.push(format!(
                "{fault:?} /api/folders (nothing cached) → {status} {} in {} ms",
                body["error"]["code"],
                took.as_millis()
            ));
            no_lease_in_flight(&manager.url, &format!("{fault:?} cold")).await;
        }
    }
    assert!(!cold.log_text().contains("panicked"));
    for f in &figures {
        println!("RELIABILITY upstream: {f}");
    }
    // Back to healthy: realtime again.
    mode.store(Mode::Pass as u8, Ordering::SeqCst);
    let v: Value = client
        .get(format!("{}/api/folders?realtime=true", web.url))
        .send()
        .await
        .expect("folders")
        .json()
        .await
        .expect("json");
    assert_eq!(v["source"], "realtime", "{v}");
    let log = web.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(DEMO_TOKEN), "the web API logged a token");
    let log = manager.log_text();
    assert!(!log.contains(DEMO_TOKEN), "the manager logged a token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_library_survives_every_manager_fault() {
    use tokenlb_client::{Client, ClientConfig};
    let scratch = Scratch::new("client-faults");
    let dir = scratch.path();
    let manager = start_manager(dir, "manager", &[]);
    let r = http()
        .post(format!("{}/api/token/add", manager.url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"token": "client-fault-secret-9a8b7c6d", "name": "c"}))
        .send()
        .await
        .expect("add");
    assert_eq!(r.status(), 201);
    let (fake, mode) = fake_upstream(manager.url.trim_start_matches("http://").to_string()).await;
    for grace in [Duration::ZERO, Duration::from_secs(300)] {
        let mut config = ClientConfig::new(format!("http://{fake}"));
        config.timeout = Duration::from_secs(2);
        config.grace_period = grace;
        config.probe_interval = Duration::ZERO;
        let client = Client::new(config).expect("client");
        mode.store(Mode::Pass as u8, Ordering::SeqCst);
        let lease = client.lease().await.expect("a lease through the fake");
        client
            .report(&lease, tokenlb_client::Outcome::success())
            .await
            .expect("report");
        for fault in FAULTS {
            mode.store(fault as u8, Ordering::SeqCst);
            // The first lease may meet the pooled connection the switch just cut; the second
            // opens a connection into the fault. Both must end in bounded time.
            let first = tokio::time::timeout(Duration::from_secs(30), client.lease()).await;
            assert!(first.is_ok(), "{fault:?}: lease() did not return in 30 s");
            let started = Instant::now();
            let got = tokio::time::timeout(Duration::from_secs(30), client.lease())
                .await
                .unwrap_or_else(|_| panic!("{fault:?}: lease() did not return in 30 s"));
            let took = started.elapsed();
            match &got {
                Ok(l) => assert!(
                    grace > Duration::ZERO && l.is_cached(),
                    "{fault:?}: only a cached lease may come back from a broken manager"
                ),
                Err(e) => {
                    let text = e.to_string();
                    assert!(!text.is_empty());
                    assert!(!text.contains("client-fault-secret-9a8b7c6d"), "{text}");
                }
            }
            println!(
                "RELIABILITY client (grace {} s): {fault:?} → {} in {} ms",
                grace.as_secs(),
                match &got {
                    Ok(_) => "cached lease".to_string(),
                    Err(e) => format!("error: {e}"),
                },
                took.as_millis()
            );
        }
    }
    mode.store(Mode::Pass as u8, Ordering::SeqCst);
    no_lease_in_flight(&manager.url, "client").await;
}
