//! Measures bulk writes: insert N tokens in one call (an import), merge the same N again (all
//! duplicates), load them all, re-encrypt them all — on SQLite, and on PostgreSQL too when
//! `TOKENLB_BULK_PG_URL` is set (in a temporary schema, dropped afterwards).
//!
//! `cargo run --release -p tokenlb-store --example bulk_insert -- [N]` (default 100 000).
//! Prints figures; asserts only that every token made it.

use std::time::Instant;
use tokenlb_core::{Secret, TokenId};
use tokenlb_store::{Cipher, PgOptions, PgStore, SqliteStore, Store, StoredToken};

fn token(i: usize) -> StoredToken {
    StoredToken::new(
        TokenId(format!("t_bulk{i:07}")),
        format!("imported {i}"),
        Secret::new(format!("bulk-{i:07}-4997-a9c2-0478702a5fea")),
        1_700_000_000_000,
    )
}

async fn run(store: &dyn Store, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    println!("{}", store.describe());
    let tokens: Vec<StoredToken> = (0..n).map(token).collect();

    let t = Instant::now();
    store.insert_tokens(&tokens).await?;
    println!(
        "  insert_tokens {n} tokens: {:>7.3} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let skipped = store.merge_tokens(&tokens).await?;
    println!(
        "  merge_tokens  {n} dups:   {:>7.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(skipped.len(), n);

    let t = Instant::now();
    let loaded = store.load_tokens().await?;
    println!(
        "  load_tokens   {n} tokens: {:>7.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(loaded.len(), n);

    let t = Instant::now();
    store.reencrypt(&Cipher::generate().0).await?;
    println!(
        "  reencrypt     {n} tokens: {:>7.3} s",
        t.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;

    let cipher = Cipher::generate().0;
    let t = Instant::now();
    for i in 0..n {
        let s = Secret::new(format!("bulk-{i:07}"));
        std::hint::black_box((cipher.encrypt(&s, "t_x")?, cipher.fingerprint(&s)));
    }
    println!(
        "crypto alone (seal + fingerprint) {n}: {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tokenlb.db");
    run(&SqliteStore::open(&path, cipher.clone()).await?, n).await?;
    println!(
        "  database file: {:.1} MiB",
        std::fs::metadata(&path)?.len() as f64 / 1048576.0
    );

    if let Ok(url) = std::env::var("TOKENLB_BULK_PG_URL") {
        let schema = format!("tokenlb_bulk_{}", std::process::id());
        let opts = PgOptions {
            schema: Some(schema.clone()),
            ..PgOptions::default()
        };
        let result = run(&PgStore::connect_with(&url, cipher, opts).await?, n).await;
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await?;
        result?;
    }
    Ok(())
}
