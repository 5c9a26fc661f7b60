//! `tokenlb manager` start-up problems and shutdown, against the real binary.

use crate::common::{assert_no_panic, run, tokenlb, Manager};

#[test]
fn a_taken_port_is_one_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, _, err) = run(tokenlb(dir.path())
        .args(["manager", "--listen", &addr, "--data-dir"])
        .arg(dir.path().join("data")));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "port {addr} is already in use (is another tokenlb manager running?)"
        )),
        "{err}"
    );
    assert_no_panic(&err);
}

#[test]
fn a_malformed_tokens_file_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        "{\n  \"tokens\": [\n    {\"token\": \"abc\",}\n  ]\n}\n",
    )
    .expect("write");
    let (code, _, err) = run(tokenlb(dir.path())
        .args(["manager", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tokens-file")
        .arg(&tokens));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("tokens.json"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("column"), "{err}");
    assert_no_panic(&err);
}

#[test]
fn sigterm_stops_the_manager_cleanly() {
    let manager = Manager::start();
    let (code, logs) = manager.terminate();
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert_no_panic(&logs);
}

#[test]
fn json_logs_when_asked() {
    let manager = Manager::start_with(&["--log-format", "json"]);
    let (code, logs) = manager.terminate();
    assert_eq!(code, 0, "{logs}");
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}
