//! Request limits of the manager and the web API (RELIABILITY.md §5): a 100 KiB request header
//! is refused with 431, a 2 MiB body with 413 (manager, JSON error), and a slow client that
//! sends its headers one byte per second is cut off by the header-read timeout while other
//! clients are served normally meanwhile. Raw TCP on purpose: HTTP client libraries refuse to
//! send such requests.

use crate::support::{start_manager, tokenlb, Proc, Scratch, ADMIN_KEY};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Sends `request` and returns the status line of the answer (or the I/O error).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = s.write_all(request);
    let mut buf = vec![0u8; 512];
    match s.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn oversized_headers_and_bodies_are_refused() {
    let scratch = Scratch::new("limits");
    let m = start_manager(scratch.path(), "limits", &[]);
    let a = addr(&m.url);
    let big = "x".repeat(100 * 1024);
    let status = exchange(
        &a,
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert!(status.contains(" 431 "), "a 100 KiB header: {status}");
    let body = format!("{{\"token\":\"{}\"}}", "y".repeat(2 * 1024 * 1024));
    let head = format!(
        "POST /api/token/add HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let status = exchange(&a, &[head.as_bytes(), body.as_bytes()].concat());
    assert!(status.contains(" 413 "), "a 2 MiB body: {status}");
    // Still healthy afterwards.
    let status = exchange(
        &a,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains(" 200 "), "{status}");
}

/// A web API whose upstreams are unreachable: enough to serve `/healthz`.
fn start_webapi(dir: &std::path::Path) -> Proc {
    let mut cmd = tokenlb(dir);
    cmd.args(["--log-level", "info", "webapi", "--listen", "127.0.0.1:0"])
        .args(["--manager-url", "http://127.0.0.1:1"])
        .args(["--wopan-base-url", "http://127.0.0.1:1"])
        .arg("--data-dir")
        .arg(dir.join("webapi"));
    Proc::spawn(cmd, dir.join("webapi.log")).expect("webapi starts")
}

#[test]
fn the_web_api_refuses_oversized_headers() {
    let scratch = Scratch::new("limits-webapi");
    let w = start_webapi(scratch.path());
    let big = "x".repeat(100 * 1024);
    let status = exchange(
        &addr(&w.url),
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert!(status.contains(" 431 "), "a 100 KiB header: {status}");
}

#[test]
fn a_slow_header_client_is_cut_off_and_blocks_no_one() {
    let scratch = Scratch::new("slowloris");
    let m = start_manager(scratch.path(), "slowloris", &[]);
    slowloris(&addr(&m.url), "manager");
}

#[test]
fn a_slow_header_client_of_the_web_api_is_cut_off() {
    let scratch = Scratch::new("slowloris-webapi");
    let w = start_webapi(scratch.path());
    slowloris(&addr(&w.url), "web API");
}

fn slowloris(a: &str, what: &str) {
    let a = a.to_string();
    // Several slow clients at once, each trickling one header byte per second.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&a).expect("connect");
                s.set_read_timeout(Some(Duration::from_millis(10)))
                    .expect("t");
                let started = Instant::now();
                let line = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
                let mut sent = 0usize;
                // Give up after 120 s: the server never cut us off.
                while started.elapsed() < Duration::from_secs(120) {
                    let byte = if sent < line.len() { line[sent] } else { b'a' };
                    if s.write_all(&[byte]).is_err() {
                        return Some(started.elapsed());
                    }
                    sent += 1;
                    let mut buf = [0u8; 256];
                    match s.read(&mut buf) {
                        Ok(0) => return Some(started.elapsed()),
                        Ok(_) => return Some(started.elapsed()), // an error answer, then close
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return Some(started.elapsed()),
                    }
                    std::thread::sleep(Duration::from_millis(990));
                }
                None
            })
        })
        .collect();
    // Meanwhile, normal clients are served.
    let mut served = 0;
    for _ in 0..10 {
        let status = exchange(
            &a,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert!(status.contains(" 200 "), "{status}");
        served += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    for h in slow {
        let cut = h.join().expect("slow client thread");
        let cut = cut.expect("the slow client was never cut off (no header-read timeout)");
        println!(
            "RELIABILITY slowloris ({what}): slow client cut off after {:.1} s; {served} normal requests served meanwhile",
            cut.as_secs_f64()
        );
    }
}

/// Seconds until the server closes `s` (reads 0 or fails), waiting at most `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<f64> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(started.elapsed().as_secs_f64()),
        }
    }
    None
}

/// Issue 13 finding 2: a connection that sends nothing, or only the HTTP/2 preface, is
/// closed within the header timeout (10 s); before, it stayed open for ever. Both services.
#[test]
fn idle_and_preface_only_connections_are_closed_within_the_header_timeout() {
    let scratch = Scratch::new("idle");
    let m = start_manager(scratch.path(), "idle", &[]);
    let w = start_webapi(scratch.path());
    for (what, url) in [("manager", &m.url), ("web API", &w.url)] {
        let a = addr(url);
        let opened = Instant::now();
        let mut silent: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&a).unwrap()).collect();
        let mut preface = TcpStream::connect(&a).unwrap();
        preface
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        let limit = Duration::from_secs(30);
        closed_within(&mut preface, limit)
            .unwrap_or_else(|| panic!("{what}: a preface-only connection stayed open {limit:?}"));
        let t = opened.elapsed().as_secs_f64();
        println!("RELIABILITY idle ({what}): HTTP/2-preface-only connection closed {t:.1} s after it opened");
        for s in silent.iter_mut() {
            closed_within(s, limit)
                .unwrap_or_else(|| panic!("{what}: a silent connection stayed open {limit:?}"));
        }
        let t = opened.elapsed().as_secs_f64();
        println!(
            "RELIABILITY idle ({what}): 5 silent connections closed within {t:.1} s of opening"
        );
        let status = exchange(
            &a,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert!(status.contains(" 200 "), "{what}: {status}");
    }
}

/// Issue 13 finding 2: beyond `max_connections` new connections are closed at accept, the
/// log says so once (not once per connection), and service resumes when the idle ones go.
#[test]
fn connections_beyond_the_cap_are_refused_with_one_log_line() {
    let scratch = Scratch::new("maxconn");
    let mut cmd = crate::support::manager_cmd(scratch.path(), &[]);
    cmd.env("TOKENLB_MAX_CONNECTIONS", "16");
    let m = Proc::spawn(cmd, scratch.path().join("maxconn.log")).expect("manager starts");
    let a = addr(&m.url);
    let held: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(&a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = 0;
    for _ in 0..50 {
        let mut s = TcpStream::connect(&a).unwrap();
        if closed_within(&mut s, Duration::from_secs(2)).is_some() {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 50,
        "connections beyond the cap are closed at accept"
    );
    let log = m.log_text();
    let lines = log.matches("refusing connections").count();
    assert_eq!(lines, 1, "one log line for 50 refusals:\n{log}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let status = exchange(
        &a,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains(" 200 "), "served again: {status}");
    println!("RELIABILITY max_connections: 50 of 50 connections beyond a cap of 16 refused, {lines} log line");
}

/// Issue 13 finding 1 on the web API: a foreign Host gets 421; its own names pass.
#[test]
fn the_web_api_answers_only_for_its_own_names() {
    let scratch = Scratch::new("hosts-webapi");
    let w = start_webapi(scratch.path());
    let a = addr(&w.url);
    let port = a.rsplit(':').next().unwrap().to_string();
    for host in ["evil.example", &format!("evil.example:{port}"), "10.9.8.7"] {
        let status = exchange(
            &a,
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(status.contains(" 421 "), "Host {host}: {status}");
    }
    for host in [
        "localhost".to_string(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "LocalHost".into(),
    ] {
        let status = exchange(
            &a,
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(status.contains(" 200 "), "Host {host}: {status}");
    }
}
