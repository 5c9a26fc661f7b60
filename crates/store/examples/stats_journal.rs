//! Measures the stats path at 100,000 tokens under round-robin: each 1 s flush carries
//! counters and a minute count for half of the tokens (50,000 requests a second, every token
//! touched every 2 s). Times the flushes (journal appends, with the background folds they
//! trigger), reads with the journal unfolded, the final fold at close, and a reopen.
//!
//! `cargo run --release -p tokenlb-store --example stats_journal -- [TOKENS] [FLUSHES]`
//! (default 100 000 tokens, 60 flushes). Prints figures; asserts that the counters and minute
//! totals read back are the ones written.

use std::time::Instant;
use tokenlb_core::{Secret, TokenId};
use tokenlb_store::{
    Cipher, MinuteCount, MinuteQuery, SqliteStore, StatsBatch, Store, StoredToken, TokenCounters,
};

fn token(i: usize) -> StoredToken {
    StoredToken::new(
        TokenId(format!("t_rr{i:08}")),
        format!("token {i}"),
        Secret::new(format!("journal-{i:08}-4997-a9c2-0478702a5fea")),
        1_700_000_000_000,
    )
}

/// CPU seconds this process used so far (all threads, SQLite's workers included).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Flush `k`: tokens of one half, each with its k/2-th success, minute 29_400_000 + k / 60.
fn flush(n: usize, k: usize) -> StatsBatch {
    let half = n / 2;
    let ids = (k % 2) * half..(k % 2) * half + half;
    let minute = 29_400_000 + (k / 60) as u64;
    let counters = ids
        .clone()
        .map(|i| {
            let c = TokenCounters {
                success: (k / 2 + 1) as u64,
                last_used: Some(1_764_000_000_000 + k as u64 * 1000 + i as u64 % 1000),
                latency_ewma_ms: Some(f64::from(40.0f32 + (i % 7) as f32)),
                ..TokenCounters::default()
            };
            (TokenId(format!("t_rr{i:08}")), c)
        })
        .collect();
    let minutes = ids
        .map(|i| MinuteCount {
            token_id: TokenId(format!("t_rr{i:08}")),
            pool: "default".into(),
            minute,
            requests: 1,
            failures: 0,
        })
        .collect();
    StatsBatch { counters, minutes }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flushes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tokenlb.db");
    let cipher = Cipher::from_key_bytes(&[7; 32]);
    let store = SqliteStore::open(&path, cipher.clone()).await?;
    store
        .insert_tokens(&(0..n).map(token).collect::<Vec<_>>())
        .await?;
    println!("{n} tokens, {flushes} flushes of {} tokens each", n / 2);

    let batches: Vec<StatsBatch> = (0..flushes).map(|k| flush(n, k)).collect();
    let (t, cpu) = (Instant::now(), cpu_s());
    let mut worst = 0f64;
    for b in &batches {
        let t1 = Instant::now();
        store.write_stats(b).await?;
        worst = worst.max(t1.elapsed().as_secs_f64());
    }
    let (wall, used) = (t.elapsed().as_secs_f64(), cpu_s() - cpu);
    println!(
        "  write_stats: {:.1} ms per flush (worst {:.1} ms), CPU {:.1} ms per flush \
         ({:.2} µs per token touched), background folds included",
        wall * 1000.0 / flushes as f64,
        worst * 1000.0,
        used * 1000.0 / flushes as f64,
        used * 1e6 / (flushes * (n / 2)) as f64
    );

    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    let (rows, bytes): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM stats_journal")
            .fetch_one(&raw)
            .await?;
    raw.close().await;
    println!(
        "  journal after the flushes: {rows} records, {:.1} MiB ({:.1} bytes per token entry)",
        bytes as f64 / 1048576.0,
        bytes as f64 / (rows.max(1) as f64 * (n / 2) as f64)
    );
    let t = Instant::now();
    let series = store
        .minutes(&MinuteQuery {
            since_minute: 0,
            ..MinuteQuery::default()
        })
        .await?;
    println!(
        "  minutes (all tokens) with the journal unfolded: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let total: u64 = series.iter().map(|m| u64::from(m.1)).sum();
    assert_eq!(total, (flushes * (n / 2)) as u64, "every minute count");

    let t = Instant::now();
    let loaded = store.load_tokens().await?;
    println!(
        "  load_tokens with the journal unfolded: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let last_of = |i: usize| {
        let k = (0..flushes).rev().find(|k| (k % 2) == i / (n / 2));
        k.map_or(0, |k| (k / 2 + 1) as u64)
    };
    for (i, t) in loaded.iter().enumerate().step_by(997) {
        assert_eq!(t.counters.success, last_of(i), "{}", t.id);
    }

    let (t, cpu) = (Instant::now(), cpu_s());
    store.close().await;
    println!("  close CPU: {:.0} ms", (cpu_s() - cpu) * 1000.0);
    println!(
        "  close (folds what is left): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(store);
    let t = Instant::now();
    let store = SqliteStore::open(&path, cipher).await?;
    let loaded = store.load_tokens().await?;
    println!(
        "  reopen + load_tokens: {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for (i, t) in loaded.iter().enumerate().step_by(997) {
        assert_eq!(t.counters.success, last_of(i), "{}", t.id);
    }
    store.close().await;
    Ok(())
}
