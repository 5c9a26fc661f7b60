//! Storage faults (RELIABILITY.md §2): a full data directory (at start and while serving), a
//! read-only data directory, a corrupt or truncated database file, and a corrupt or
//! half-written tokens.json. Each ends in a clear error that names the file (with line and
//! column for JSON), no panic, and no token that was there before lost.
//!
//! Full and read-only are real: the data directory is a small tmpfs mounted by the test
//! (`mount -t tmpfs -o size=…`, remounted `ro` for the read-only case), because root ignores
//! permission bits and a file-size rlimit kills the process with SIGXFSZ instead of
//! returning ENOSPC. The tests therefore need CAP_SYS_ADMIN (CI runs as root).

use crate::support::{http, list_tokens, manager_cmd, start_manager, Proc, Scratch, ADMIN_KEY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory; unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "these tests mount a tmpfs and need CAP_SYS_ADMIN: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .expect("remount");
        assert!(ok.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn secret(i: usize) -> String {
    format!("storage-secret-{i:03}-1b2c3d4e5f60718293a4")
}

/// Starts a manager, adds `n` tokens, stops it with SIGTERM; returns their ids.
async fn seed(dir: &Path, n: usize) -> Vec<String> {
    let mut m = start_manager(dir, "seed", &[]);
    let client = http();
    let mut ids = Vec::new();
    for i in 0..n {
        let r = client
            .post(format!("{}/api/token/add", m.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": secret(i), "name": format!("stored {i}")}))
            .send()
            .await
            .expect("add");
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.expect("json");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    assert!(m.terminate().is_some_and(|s| s.success()));
    ids
}

/// Starts a manager expected to refuse; returns its output (asserting a non-zero exit and no
/// panic).
fn refused(dir: &Path, extra: &[&str]) -> String {
    let out = manager_cmd(dir, extra).output().expect("run manager");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the manager should refuse: {text}");
    assert!(!text.contains("panicked"), "panic: {text}");
    text
}

/// All `ids` are listed by a freshly started manager on `dir`.
async fn all_there(dir: &Path, ids: &[String], tag: &str) {
    let m = start_manager(dir, tag, &[]);
    let listed = list_tokens(&http(), &m.url).await;
    for id in ids {
        assert!(
            listed.iter().any(|r| r["id"] == id.as_str()),
            "{tag}: token {id} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_data_dir_fails_writes_clearly_and_loses_nothing() {
    let scratch = Scratch::new("full");
    let dir = scratch.path();
    let fs = Tmpfs::mount(&dir.join("data"), "4m");
    let ids = seed(dir, 10).await;
    let m = start_manager(dir, "full", &[]);
    // Fill the filesystem to the last byte.
    let filler = dir.join("data/filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    use std::io::Write;
    let mut small = vec![0u8; 512];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    drop(f);
    let client = http();
    let mut refusals = 0;
    for i in 100..140 {
        let r = client
            .post(format!("{}/api/token/add", m.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": secret(i), "name": "x".repeat(200)}))
            .send()
            .await
            .expect("the manager answers when the disk is full");
        if r.status() == 201 {
            continue; // fitted in a page SQLite already had
        }
        assert!(r.status().is_server_error(), "{}", r.status());
        let body: Value = r.json().await.expect("a JSON error");
        assert!(body["error"]["code"].is_string(), "{body}");
        refusals += 1;
    }
    assert!(refusals > 0, "a full disk refused no write");
    // Reads keep working.
    let r = client
        .get(format!("{}/api/token/get", m.url))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let log = m.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("full") || log.contains("disk"),
        "the log says the disk is full: {log}"
    );
    drop(m);
    // A start on the full disk: either refuses clearly or serves; nothing is lost either way.
    if let Ok(mut p) = Proc::spawn(manager_cmd(dir, &[]), dir.join("full-start.log")) {
        let listed = list_tokens(&client, &p.url).await;
        assert!(listed.len() >= ids.len());
        p.kill();
    } else {
        let text = std::fs::read_to_string(dir.join("full-start.log")).unwrap_or_default();
        assert!(!text.contains("panicked"), "{text}");
        assert!(text.contains("data"), "names the data dir or file: {text}");
    }
    std::fs::remove_file(&filler).expect("free space");
    all_there(dir, &ids, "after-full").await;
    drop(fs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_start_on_a_full_disk_is_a_clear_error() {
    let scratch = Scratch::new("fullstart");
    let dir = scratch.path();
    let _fs = Tmpfs::mount(&dir.join("data"), "64k");
    let filler = std::fs::File::create(dir.join("data/filler")).expect("filler");
    use std::io::Write;
    let mut w = std::io::BufWriter::new(filler);
    while w.write_all(&[0u8; 4096]).is_ok() {}
    let _ = w.flush();
    drop(w);
    let text = refused(dir, &[]);
    assert!(
        text.contains(&dir.join("data").display().to_string()),
        "names the path: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_data_dir_is_a_clear_error_and_keeps_the_tokens() {
    let scratch = Scratch::new("ro");
    let dir = scratch.path();
    let fs = Tmpfs::mount(&dir.join("data"), "16m");
    let ids = seed(dir, 5).await;
    fs.remount("ro");
    let out = Proc::spawn(manager_cmd(dir, &[]), dir.join("ro.log"));
    match out {
        // Serving from a read-only store is acceptable if it says so and refuses writes clearly.
        Ok(mut p) => {
            let client = http();
            assert_eq!(list_tokens(&client, &p.url).await.len(), ids.len());
            let r = client
                .post(format!("{}/api/token/add", p.url))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"token": secret(77)}))
                .send()
                .await
                .expect("add");
            assert!(r.status().is_server_error());
            p.kill();
        }
        Err(text) => {
            assert!(!text.contains("panicked"), "{text}");
            assert!(
                text.contains(&dir.join("data").display().to_string()),
                "names the path: {text}"
            );
        }
    }
    fs.remount("rw");
    all_there(dir, &ids, "after-ro").await;
}

/// Folds the WAL into the database file (open and close the store), so that the file alone
/// holds every token and corrupting it is a clean experiment.
async fn checkpoint(data: &Path) {
    let (store, _) = tokenlb_store::keys::open_sqlite(data, None)
        .await
        .expect("open the store");
    store.close().await;
    for side in ["tokenlb.db-wal", "tokenlb.db-shm"] {
        let p = data.join(side);
        assert!(
            std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true),
            "{side} still holds data after a checkpoint"
        );
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_database_is_refused_and_left_untouched() {
    let scratch = Scratch::new("corrupt");
    let dir = scratch.path();
    let ids = seed(dir, 5).await;
    checkpoint(&dir.join("data")).await;
    let db = dir.join("data/tokenlb.db");
    let good = std::fs::read(&db).expect("db");
    let page = 4096.min(good.len() / 2);
    for (what, bytes) in [
        ("garbage header", {
            let mut b = good.clone();
            b[..100].copy_from_slice(&[0x5a; 100]);
            b
        }),
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("truncated to one page", good[..page].to_vec()),
        ("garbage pages", {
            let mut b = good.clone();
            for (i, x) in b[page..].iter_mut().enumerate() {
                *x = (i * 31 % 251) as u8;
            }
            b
        }),
    ] {
        std::fs::write(&db, &bytes).expect("corrupt");
        for side in ["tokenlb.db-wal", "tokenlb.db-shm"] {
            let _ = std::fs::remove_file(dir.join("data").join(side));
        }
        let tag = what.replace(' ', "-");
        match Proc::spawn(manager_cmd(dir, &[]), dir.join(format!("{tag}.log"))) {
            Err(text) => {
                assert!(!text.contains("panicked"), "{what}: {text}");
                let line = text
                    .lines()
                    .rev()
                    .find(|l| l.contains("error"))
                    .unwrap_or("");
                println!("RELIABILITY corrupt db, {what}: refused: {line}");
                assert!(
                    text.contains("tokenlb.db"),
                    "{what}: the error names the file: {text}"
                );
                assert_eq!(
                    std::fs::read(&db).expect("db"),
                    bytes,
                    "{what}: the corrupt file is left as it was (not replaced by an empty store)"
                );
            }
            // Serving is only acceptable with every token there (SQLite could read around
            // the damage); a store silently reset to empty is the failure this test is for.
            Ok(mut p) => {
                let listed = list_tokens(&http(), &p.url).await;
                p.kill();
                println!(
                    "RELIABILITY corrupt db, {what}: served {} tokens",
                    listed.len()
                );
                for id in &ids {
                    assert!(
                        listed.iter().any(|r| r["id"] == id.as_str()),
                        "{what}: the manager started on a damaged database without token {id} \
                         (it should refuse and name the file): {}",
                        p.log_text()
                    );
                }
            }
        }
    }
    std::fs::write(&db, &good).expect("restore");
    for side in ["tokenlb.db-wal", "tokenlb.db-shm"] {
        let _ = std::fs::remove_file(dir.join("data").join(side));
    }
    all_there(dir, &ids, "restored").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_or_half_written_tokens_file_names_file_line_and_column() {
    let scratch = Scratch::new("tokensjson");
    let dir = scratch.path();
    let ids = seed(dir, 3).await;
    let file = dir.join("tokens.json");
    let full = format!(
        "{{\n  \"tokens\": [\n    {{\"token\": \"{}\", \"name\": \"a\", \"is_active\": true}},\n    {{\"token\": \"{}\", \"name\": \"b\", \"is_active\": true}}\n  ]\n}}\n",
        secret(50),
        secret(51)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("half-written", full.as_bytes()[..full.len() / 2].to_vec()),
        (
            "syntax error",
            full.replacen("\"name\": \"b\"", "\"name\" \"b\"", 1)
                .into_bytes(),
        ),
        ("not UTF-8", {
            let mut b = full.clone().into_bytes();
            b[20] = 0xff;
            b
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).expect("write tokens.json");
        let text = refused(dir, &["--tokens-file", file.to_str().expect("utf-8 path")]);
        assert!(
            text.contains("tokens.json"),
            "{what}: names the file: {text}"
        );
        if what != "not UTF-8" {
            assert!(
                text.contains("line") && text.contains("column"),
                "{what}: line and column: {text}"
            );
        }
        for i in [50, 51] {
            assert!(
                !text.contains(&secret(i)),
                "{what}: the error shows a token"
            );
        }
    }
    all_there(dir, &ids, "after-bad-json").await;
}
