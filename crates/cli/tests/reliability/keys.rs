//! `tokenlb keys rotate` (RELIABILITY.md §7): every secret is re-encrypted under a new key
//! file, and a SIGKILL at any moment of a rotation loses nothing. The rotation is killed after
//! seeded random delays spread over the time a whole rotation takes; after each kill the
//! manager starts, every token decrypts (the export returns each original value), exactly one
//! key file is left, and the database opens under exactly one of the two keys: the old one
//! (rotation undone) or the new one (rotation finished).

use crate::support::{http, start_manager, tokenlb, Rng, Scratch, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const TOKENS: usize = 20_000;

fn secret(i: usize) -> String {
    format!("rotate-secret-{i:05}-a7b6c5d4e3f2")
}

/// `tokenlb keys rotate` for `dir/data`; the listen address points where nothing listens.
fn rotate_cmd(dir: &Path) -> std::process::Command {
    let mut cmd = tokenlb(dir);
    cmd.env("TOKENLB_LISTEN", "127.0.0.1:1")
        .args(["keys", "rotate", "--data-dir"])
        .arg(dir.join("data"));
    cmd
}

/// Starts the manager, checks every secret decrypts to its original value, stops it.
async fn every_token_decrypts(dir: &Path, tag: &str, expected: &BTreeSet<String>) {
    let m = start_manager(dir, tag, &[]);
    let export: Value = http()
        .get(format!("{}/api/tokens/export", m.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("export json");
    let got: BTreeSet<String> = export["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["token"].as_str().expect("token").to_string())
        .collect();
    assert_eq!(got.len(), expected.len(), "{tag}: token count");
    assert!(&got == expected, "{tag}: a secret changed");
    let log = m.log_text();
    assert!(!log.contains("panicked"), "{log}");
    for s in expected.iter().take(50) {
        assert!(!log.contains(s.as_str()), "{tag}: a secret in the log");
    }
}

fn key_files(dir: &Path) -> (Option<String>, bool) {
    let data = dir.join("data");
    (
        std::fs::read_to_string(data.join("secret.key")).ok(),
        data.join("secret.key.next").exists(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_reencrypts_everything_and_survives_sigkill_at_any_point() {
    let kills: usize = std::env::var("TOKENLB_ROTATE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut rng = Rng::from_env("keys");
    let scratch = Scratch::new("keys");
    let dir = scratch.path();
    let expected: BTreeSet<String> = (0..TOKENS).map(secret).collect();
    {
        let mut m = start_manager(dir, "seed", &[]);
        let list = json!({"tokens": expected.iter().map(|t| json!({"token": t, "name": "r"})).collect::<Vec<_>>()});
        let r = http()
            .post(format!("{}/api/tokens/import", m.url))
            .bearer_auth(ADMIN_KEY)
            .json(&list)
            .send()
            .await
            .expect("import");
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        assert!(m.terminate().is_some_and(|s| s.success()));
    }

    // While a manager answers on the configured address, rotation refuses.
    {
        let m = start_manager(dir, "running", &[]);
        let out = tokenlb(dir)
            .env("TOKENLB_LISTEN", m.url.trim_start_matches("http://"))
            .args(["keys", "rotate", "--data-dir"])
            .arg(dir.join("data"))
            .output()
            .expect("rotate");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("stop it"));
    }

    // One whole rotation: timed, and it changes the key file.
    let (before, _) = key_files(dir);
    let started = Instant::now();
    let out = rotate_cmd(dir).output().expect("rotate");
    let full = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("re-encrypted {TOKENS} secrets")),
        "{stdout}"
    );
    let (after, next) = key_files(dir);
    assert!(
        after.is_some() && after != before && !next,
        "a new key file replaced the old one"
    );
    for s in expected.iter().take(20) {
        assert!(!stdout.contains(s.as_str()));
    }
    every_token_decrypts(dir, "after-rotate", &expected).await;
    println!(
        "RELIABILITY keys: a rotation of {TOKENS} secrets took {} ms",
        full.as_millis()
    );

    let (mut undone, mut finished, mut interrupted) = (0, 0, 0usize);
    for k in 0..kills {
        let (old_key, _) = key_files(dir);
        // Spread the kills over the whole rotation, start-up included.
        let delay = Duration::from_millis(rng.range(0, full.as_millis() as u64 + 50));
        let mut child = rotate_cmd(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rotate");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("reap");
        interrupted += usize::from(status.code().is_none());
        let state = key_files(dir);
        every_token_decrypts(dir, &format!("kill-{k}"), &expected).await;
        let (new_key, next) = key_files(dir);
        assert!(!next, "kill {k}: the start settled the staged key");
        let new_key = new_key.expect("a key file");
        let outcome = if Some(&new_key) == old_key.as_ref() {
            undone += 1;
            "old key kept"
        } else {
            finished += 1;
            "new key"
        };
        println!(
            "kill {k}: after {} ms ({status}), files then: key.next={}, now: {outcome}",
            delay.as_millis(),
            state.1
        );
    }
    // The narrowest window, between the database commit and the rename, made by hand: a
    // finished rotation with the old key put back as secret.key and the new one as .next.
    let data = dir.join("data");
    let old_key = std::fs::read(data.join("secret.key")).expect("key");
    let out = rotate_cmd(dir).output().expect("rotate");
    assert!(out.status.success());
    std::fs::rename(data.join("secret.key"), data.join("secret.key.next")).expect("rename");
    std::fs::write(data.join("secret.key"), &old_key).expect("old key back");
    every_token_decrypts(dir, "commit-before-rename", &expected).await;
    let (now, next) = key_files(dir);
    assert!(!next, "the start finished the rotation");
    assert_ne!(
        now.map(String::into_bytes),
        Some(old_key),
        "the new key was promoted"
    );
    println!("RELIABILITY keys: {kills} kills during rotation: {interrupted} interrupted a running rotation; {undone} ended on the old key, {finished} on the new; commit-before-rename finished at start; every secret decrypted each time");
}

#[test]
fn a_configured_key_has_no_file_to_rotate() {
    let scratch = Scratch::new("keys-conf");
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    std::fs::write(dir.join("data/tokenlb.db"), b"").expect("db");
    let out = rotate_cmd(dir)
        .env(
            "TOKENLB_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .output()
        .expect("rotate");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no key file to rotate"), "{err}");
    assert!(!err.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
}
