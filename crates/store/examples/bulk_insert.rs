//! Measures bulk writes on the SQLite store: insert N tokens in one call (an import), merge the
//! same N again (all duplicates), load them all, and re-encrypt them all.
//!
//! `cargo run --release -p tokenlb-store --example bulk_insert -- [N]` (default 100 000).
//! Prints figures; asserts only that every token made it.

use std::time::Instant;
use tokenlb_core::{Limits, Secret, TokenId, TokenState};
use tokenlb_store::{Cipher, SqliteStore, Store, StoredToken, TokenCounters};

fn token(i: usize) -> StoredToken {
    StoredToken {
        id: TokenId(format!("t_bulk{i:07}")),
        pool: "default".into(),
        name: format!("imported {i}"),
        secret: Secret::new(format!("bulk-{i:07}-4997-a9c2-0478702a5fea")),
        refresh_secret: None,
        weight: 100,
        expires_at: None,
        limits: Limits::default(),
        state: TokenState::Active,
        state_reason: None,
        state_until: None,
        created_at: 1_700_000_000_000,
        counters: TokenCounters::default(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tokenlb.db");
    let (cipher, _) = Cipher::generate();
    let store = SqliteStore::open(&path, cipher).await?;
    let tokens: Vec<StoredToken> = (0..n).map(token).collect();

    let t = Instant::now();
    let c2 = Cipher::generate().0;
    for tk in &tokens {
        let e = c2.encrypt(&tk.secret, tk.id.as_str())?;
        std::hint::black_box((e, c2.fingerprint(&tk.secret)));
    }
    println!(
        "(crypto only   {n} tokens: {:>8.3} s)",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    store.insert_tokens(&tokens).await?;
    println!(
        "insert_tokens  {n} tokens: {:>8.3} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let skipped = store.merge_tokens(&tokens).await?;
    println!(
        "merge_tokens   {n} dups:   {:>8.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(skipped.len(), n);

    let t = Instant::now();
    let loaded = store.load_tokens().await?;
    println!(
        "load_tokens    {n} tokens: {:>8.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(loaded.len(), n);

    let t = Instant::now();
    let (next, _) = Cipher::generate();
    store.reencrypt(&next).await?;
    println!(
        "reencrypt      {n} tokens: {:>8.3} s",
        t.elapsed().as_secs_f64()
    );

    store.close().await;
    let size = std::fs::metadata(&path)?.len();
    println!("database file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    Ok(())
}
