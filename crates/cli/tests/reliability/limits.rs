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
        format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert!(status.contains(" 431 "), "a 100 KiB header: {status}");
    let body = format!("{{\"token\":\"{}\"}}", "y".repeat(2 * 1024 * 1024));
    let head = format!(
        "POST /api/token/add HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let status = exchange(&a, &[head.as_bytes(), body.as_bytes()].concat());
    assert!(status.contains(" 413 "), "a 2 MiB body: {status}");
    // Still healthy afterwards.
    let status = exchange(
        &a,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
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
        format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
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
                let line = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ";
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
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
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
