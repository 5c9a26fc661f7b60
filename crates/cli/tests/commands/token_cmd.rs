//! `tokenlb token …` against a real manager process on a free loopback port.

use crate::common::{assert_no_panic, run, tokenlb, Manager};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const FIRST: &str = "tok-first-6f1d2c9a-0b7e-4c55-a1d3";
const SECOND: &str = "tok-second-9a8b7c6d-5e4f-4a3b-b2c1";

/// Runs `cmd` with `input` on stdin.
fn run_with_stdin(cmd: &mut Command, input: &str) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn list_json(m: &Manager, extra: &[&str]) -> Vec<serde_json::Value> {
    let (code, out, err) = run(m.token().args(["list", "--json"]).args(extra));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("list --json is a JSON array")
}

#[test]
fn add_list_export_remove_round_trip() {
    let m = Manager::start();
    let (code, out, err) = run(m
        .token()
        .args(["add", FIRST, "--name", "first", "--weight", "5"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("added token first (t_"), "{out}");
    assert!(!out.contains(FIRST), "the full value is not echoed: {out}");

    let (code, out, err) = run_with_stdin(
        m.token().args(["add", "-", "--pool", "other"]),
        &format!("{SECOND}\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("to pool other"), "{out}");

    let (code, _, err) = run(m.token().args(["add", FIRST]));
    assert_eq!(code, 1, "duplicate: {err}");
    assert!(err.contains("(HTTP 409)"), "{err}");
    assert_no_panic(&err);

    let (code, table, err) = run(m.token().arg("list"));
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("first") && table.contains("other"),
        "{table}"
    );
    assert!(
        table.contains("tok-…a1d3") && table.contains("tok-…b2c1"),
        "{table}"
    );
    assert!(table.contains("2 tokens"), "{table}");
    assert!(!table.contains(FIRST) && !table.contains(SECOND), "{table}");

    let other = list_json(&m, &["--pool", "other"]);
    assert_eq!(other.len(), 1);
    let first = list_json(&m, &["--pool", "default"]);
    assert_eq!(first[0]["weight"], 5);
    let id = first[0]["id"].as_str().expect("id").to_string();

    let out_file = m.dir.path().join("export.json");
    let (code, _, err) = run(m.token().args(["export", "--out"]).arg(&out_file));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 2 tokens"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_file)
            .expect("export file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("read")).expect("json");
    let values: Vec<&str> = doc["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["token"].as_str())
        .collect();
    assert!(values.contains(&FIRST) && values.contains(&SECOND), "{doc}");

    let (code, out, err) = run(m.token().args(["remove", "--id", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed token first"), "{out}");
    let (code, _, err) = run_with_stdin(m.token().args(["remove", "-"]), SECOND);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(m.token().args(["remove", "--id", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("(HTTP 404)"), "{err}");
    assert!(list_json(&m, &[]).is_empty());

    let logs = m.log_text();
    assert!(
        !logs.contains(FIRST) && !logs.contains(SECOND),
        "a full token reached the logs"
    );
}

#[test]
fn import_maps_rejected_lines_back_to_the_file() {
    let m = Manager::start();
    let path = m.dir.path().join("tokens.txt");
    let mut text = String::from("# exported from somewhere\n\n");
    for i in 0..12 {
        text.push_str(&format!("line-token-{i:04}-abcdefgh\n"));
    }
    text.push_str("bad\u{1}token\n"); // line 15
    text.push_str("line-token-0003-abcdefgh\n"); // a repeat
    std::fs::write(&path, text).expect("write");
    let (code, _, err) = run(m
        .token()
        .args(["import", "--batch", "5", "--pool", "bulk"])
        .arg(&path));
    assert_eq!(code, 1, "one line was rejected: {err}");
    assert!(
        err.contains("tokens.txt line 15: token must not contain control characters"),
        "{err}"
    );
    assert!(err.contains("12 added"), "{err}");
    assert_eq!(list_json(&m, &["--pool", "bulk"]).len(), 12);

    // Merging by value: a second run adds nothing.
    let good = m.dir.path().join("good.txt");
    std::fs::write(
        &good,
        "line-token-0000-abcdefgh\nline-token-0001-abcdefgh\n",
    )
    .expect("write");
    let (code, _, err) = run(m.token().args(["import"]).arg(&good));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 added, 2 skipped"), "{err}");
}

#[test]
fn import_dry_runs_and_names_the_line_of_each_refused_json_entry() {
    // Issue 14, point 7: junk imported as tokens; refusals must name lines; a dry run.
    let m = Manager::start();
    let path = m.dir.path().join("tokens.json");
    std::fs::write(
        &path,
        "{\"tokens\": [\n  {\"token\": \"json-token-0000-abcdefgh\"},\n  {\"token\": \"short\"},\n\n  {\"token\": \"has space in it 1234567890\"}\n]}\n",
    )
    .expect("write");
    let (code, _, err) = run(m.token().args(["import", "--dry-run"]).arg(&path));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("dry run of"), "{err}");
    assert!(err.contains("1 would be added"), "{err}");
    assert!(
        err.contains("tokens.json line 3 (entry 2): token has 5 characters"),
        "{err}"
    );
    assert!(
        err.contains("tokens.json line 5 (entry 3): token contains whitespace"),
        "{err}"
    );
    assert!(err.contains("2 entries of"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(list_json(&m, &[]).is_empty(), "a dry run writes nothing");
    // Without a terminal the progress lines carry a percentage.
    let (code, _, err) = run(m.token().args(["import"]).arg(&path));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("import: 100% 3 tokens sent"), "{err}");
    assert_eq!(list_json(&m, &[]).len(), 1);
}

#[test]
fn a_malformed_tokens_json_is_refused_before_sending() {
    let m = Manager::start();
    let path = m.dir.path().join("tokens.json");
    std::fs::write(
        &path,
        "{\"tokens\": [\n  {\"token\": \"a-valid-token-123456\"},\n  {\"token\": }\n]}\n",
    )
    .expect("write");
    let (code, _, err) = run(m.token().arg("import").arg(&path));
    assert_ne!(code, 0);
    assert!(
        err.contains("tokens.json is not valid JSON: line 3, column"),
        "{err}"
    );
    assert_no_panic(&err);
    assert!(list_json(&m, &[]).is_empty(), "nothing was imported");
}

#[test]
fn api_and_connection_errors_are_one_sentence() {
    let m = Manager::start();
    let (code, _, err) =
        run(m
            .token()
            .args(["--admin-key", "definitely-not-the-admin-key", "list"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("(HTTP 401)") && err.contains("TOKENLB_ADMIN_KEY"),
        "{err}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let (code, _, err) = run(m.token().args(["--manager-url", &url, "list"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach the manager"), "{err}");

    let (code, _, err) = run(m.token().args(["--data-dir", "/nonexistent-dir", "list"]));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("no admin key"), "{err}");
}

/// 100,000 tokens in the seed's format, end to end through the CLI. The time is printed (run
/// with --nocapture to see it); the test asserts the count only.
#[test]
fn import_100k_tokens() {
    let m = Manager::start();
    let path = m.dir.path().join("tokens.json");
    let mut doc = String::from("{\"tokens\": [\n");
    for i in 0..100_000 {
        let sep = if i + 1 < 100_000 { "," } else { "" };
        doc.push_str(&format!(
            "  {{\"token\": \"bulk-{i:06}-5c0ffee5-d00d-4bad-beef\", \"name\": \"bulk {i}\", \"is_active\": true}}{sep}\n"
        ));
    }
    doc.push_str("]}\n");
    std::fs::write(&path, doc).expect("write");
    let started = Instant::now();
    let (code, _, err) = run(m.token().arg("import").arg(&path));
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("100000 added"), "{err}");
    println!(
        "imported 100,000 tokens in {:.2} s: {}",
        took.as_secs_f64(),
        err.trim()
    );
    assert_eq!(list_json(&m, &["--state", "active"]).len(), 100_000);

    // Issue 14: `tokenlb token export | head` panicked on the broken pipe. Read a little of
    // a long output, hang up, and the command ends quietly with success.
    for args in [&["export"][..], &["list"][..]] {
        let mut child = m
            .token()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut head = [0u8; 100];
        std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut head)
            .expect("some output");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn token_commands_find_the_manager_through_its_config() {
    let m = Manager::start();
    let addr = m.url.trim_start_matches("http://");
    let toml = format!("listen = \"{addr}\"\ndata_dir = \"data\"\n");
    std::fs::write(m.dir.path().join("tokenlb.toml"), toml).expect("write config");
    let (code, out, err) = run(tokenlb(m.dir.path()).args(["token", "list"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "no tokens\n");
}
