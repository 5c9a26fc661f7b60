//! The parser against canned answers from a loopback server: fixed length, chunked (split
//! across writes), `Connection: close`, and malformed heads.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers each request (read up to its blank line) with the next canned
/// answer, written in the given pieces.
async fn canned(answers: Vec<Vec<&'static [u8]>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        for pieces in answers {
            loop {
                if find(&buf, b"\r\n\r\n").is_some() {
                    let i = find(&buf, b"\r\n\r\n").unwrap();
                    buf.drain(..i + 4);
                    break;
                }
                let mut chunk = [0u8; 1024];
                let n = s.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            for p in pieces {
                s.write_all(p).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn reads_fixed_and_chunked_answers_on_one_connection() {
    let addr = canned(vec![
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo"],
        vec![
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            b"4;ext=1\r\ndefg\r\n0\r\n\r\n",
        ],
        vec![
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        ],
    ])
    .await;
    let mut c = Conn::connect(addr).await.unwrap();
    let req = get("x", "/", "");
    let r = c.send(&req).await.unwrap();
    assert_eq!((r.status, r.close), (200, false));
    assert_eq!(c.body(&r), b"hello");
    let r = c.send(&req).await.unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(c.body(&r), b"abcdefg");
    let r = c.send(&req).await.unwrap();
    assert_eq!((r.status, r.close), (503, true));
    assert_eq!(c.body(&r), b"{}");
    assert!(matches!(
        c.send(&req).await,
        Err(HttpError::Closed) | Err(HttpError::Io(_))
    ));
}

#[tokio::test]
async fn malformed_answers_are_errors() {
    for bad in [
        &b"SMTP 220 hello\r\n\r\n"[..],
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let addr = canned(vec![vec![bad]]).await;
        let mut c = Conn::connect(addr).await.unwrap();
        let e = c.send(&get("x", "/", "")).await.unwrap_err();
        assert!(matches!(e, HttpError::Malformed(_)), "{e}");
    }
}

#[test]
fn requests_are_well_formed() {
    assert_eq!(
        get("h:1", "/a?b=c", "X-A: 1\r\n"),
        b"GET /a?b=c HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\n\r\n"
    );
    assert_eq!(
        post("h", "/r", "application/json", b"{}", ""),
        b"POST /r HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    );
}

#[test]
fn json_str_finds_plain_string_values_only() {
    let body = br#"{"id":"t1","lease":"0.42","lease_expires_at":"2026"}"#;
    assert_eq!(json_str(body, "lease"), Some("0.42"));
    assert_eq!(json_str(body, "id"), Some("t1"));
    assert_eq!(json_str(body, "missing"), None);
    assert_eq!(json_str(br#"{"lease":"a\"b"}"#, "lease"), None);
    assert_eq!(json_str(br#"{"lease":"unterminated"#, "lease"), None);
}
