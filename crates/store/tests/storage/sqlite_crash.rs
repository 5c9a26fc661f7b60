//! Acknowledged writes survive SIGKILL: a child process (this same test binary, re-run with an
//! environment variable) inserts tokens one call at a time and prints each id once the call has
//! returned; the parent kills it without warning mid-stream, reopens the database, and checks
//! that every acknowledged token is there, whole, and that the database opens cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use tokenlb_store::{SqliteStore, Store};
use tokenlb_test_support::store_story as conformance;

const CHILD_ENV: &str = "TOKENLB_STORE_CRASH_CHILD_DIR";
/// The test's path inside the `storage` test binary (the child re-runs exactly it).
const TEST_NAME: &str = "sqlite_crash::acknowledged_writes_survive_sigkill";

/// The child: insert forever (until killed), one durable call per token, acknowledging each.
async fn child(dir: &Path, round: usize) {
    let store = SqliteStore::open(&dir.join("tokenlb.db"), conformance::key(1))
        .await
        .expect("child: open");
    for i in 0.. {
        let t = conformance::token(round * 100_000 + i, "default");
        store
            .insert_tokens(std::slice::from_ref(&t))
            .await
            .expect("child: insert");
        println!("ACK {}", t.id);
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("TOKENLB_STORE_CRASH_ROUND")
            .unwrap()
            .parse()
            .unwrap();
        return child(Path::new(&dir), round).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for (round, kill_after) in [(1, 5), (2, 40), (3, 150)] {
        let mut proc = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("TOKENLB_STORE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(proc.stdout.take().unwrap());
        let mut n = 0;
        for line in out.lines() {
            let line = line.unwrap();
            // libtest may print "test … ... " on the same line before the first ACK.
            if let Some((_, id)) = line.split_once("ACK ") {
                acked.push((round * 100_000 + n, id.to_string()));
                n += 1;
                if n == kill_after {
                    proc.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        proc.wait().unwrap();
        assert_eq!(n, kill_after, "child stopped early in round {round}");

        let store = SqliteStore::open(&dir.path().join("tokenlb.db"), conformance::key(1))
            .await
            .unwrap();
        let loaded = store.load_tokens().await.unwrap();
        for (i, id) in &acked {
            let t = loaded.iter().find(|t| t.id.as_str() == id);
            assert_eq!(t, Some(&conformance::token(*i, "default")), "lost {id}");
        }
        store.close().await;
    }
}
