//! The stats journal end to end: figures survive restarts with the journal unfolded, a fold
//! interrupted after any chunk resumes without losing or doubling anything, a second store on
//! the same file sees the same figures, deleted tokens leave nothing behind.

use super::*;

use crate::fixtures::{counters, key, minute_count, q_minutes, stats_batch, token};
use crate::{MinuteQuery, StatsBatch, Store, TokenCounters};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tokenlb_core::TokenId;

/// The crash the fold tests inject: stop before chunk `n` (or, past the last chunk, before
/// the records are deleted).
fn stop_after(n: usize) -> impl Fn(FoldPoint) -> bool + Send + Sync {
    move |p| match p {
        FoldPoint::Chunk(done) => done >= n,
        FoldPoint::BeforeDelete => true,
    }
}

const N: usize = 7;

fn tid(i: usize) -> String {
    format!("t_story{i:05}")
}

/// What the store must answer after a list of batches: latest counters, summed minutes.
#[derive(Default)]
struct Model {
    counters: HashMap<String, TokenCounters>,
    /// (token, minute) → (pool of the first count, requests, failures).
    minutes: BTreeMap<(String, u64), (String, u32, u32)>,
}

impl Model {
    fn apply(&mut self, b: &StatsBatch) {
        for (id, c) in &b.counters {
            self.counters.insert(id.0.clone(), c.clone());
        }
        for m in &b.minutes {
            let e = self
                .minutes
                .entry((m.token_id.0.clone(), m.minute))
                .or_insert_with(|| (m.pool.clone(), 0, 0));
            e.1 += m.requests;
            e.2 += m.failures;
        }
    }

    fn forget(&mut self, id: &str) {
        self.counters.remove(id);
        self.minutes.retain(|(t, _), _| t != id);
    }

    fn series(&self, token: Option<&str>, pool: Option<&str>) -> Vec<(u64, u32, u32)> {
        let mut by: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
        for ((t, m), (p, r, f)) in &self.minutes {
            if token.is_none_or(|x| x == t) && pool.is_none_or(|x| x == p) {
                let e = by.entry(*m).or_default();
                e.0 += r;
                e.1 += f;
            }
        }
        by.into_iter().map(|(m, (r, f))| (m, r, f)).collect()
    }
}

/// Round `k`'s batch: tokens overlap between rounds, minutes repeat and roll, two pools, and
/// an id the store does not know.
fn batch(k: usize) -> StatsBatch {
    let ids: Vec<usize> = (0..N).filter(|i| !(i + k).is_multiple_of(3)).collect();
    let mut minutes = Vec::new();
    for &i in &ids {
        let pool = if i % 2 == 0 { "a" } else { "b" };
        minutes.push(minute_count(
            &tid(i),
            pool,
            100 + (k as u64 / 2),
            1 + i as u32,
            (k % 2) as u32,
        ));
    }
    minutes.push(minute_count("t_unknown", "a", 100, 50, 50));
    let list: Vec<(String, TokenCounters)> = ids
        .iter()
        .map(|&i| (tid(i), counters((k * 10 + i) as u64, k as u64)))
        .chain([("t_unknown".to_string(), counters(1, 1))])
        .collect();
    stats_batch(
        list.iter()
            .map(|(id, c)| (id.as_str(), c.clone()))
            .collect(),
        minutes,
    )
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, key(1)).await.unwrap()
}

async fn fresh(dir: &Path) -> SqliteStore {
    let s = open(&dir.join("t.db")).await;
    let toks: Vec<_> = (0..N)
        .map(|i| token(i, if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    s.insert_tokens(&toks).await.unwrap();
    s
}

/// A fresh store in a new directory with `rounds` written, and the model of them.
async fn written(rounds: std::ops::Range<usize>) -> (tempfile::TempDir, SqliteStore, Model) {
    let dir = tempfile::tempdir().unwrap();
    let s = fresh(dir.path()).await;
    let mut model = Model::default();
    write(&s, &mut model, rounds).await;
    (dir, s, model)
}

async fn write(s: &SqliteStore, model: &mut Model, rounds: std::ops::Range<usize>) {
    for k in rounds {
        let b = batch(k);
        s.write_stats(&b).await.unwrap();
        model.apply(&b);
    }
    model.forget("t_unknown");
}

/// Every figure the store answers equals the model's.
async fn check(s: &SqliteStore, model: &Model, when: &str) {
    for t in s.load_tokens().await.unwrap() {
        let want = model
            .counters
            .get(t.id.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.counters, want, "{when}: counters of {}", t.id);
    }
    let q = |token: Option<&str>, pool: Option<&str>| MinuteQuery {
        token_id: token.map(|t| TokenId(t.into())),
        pool: pool.map(String::from),
        ..q_minutes(0)
    };
    for (token, pool) in [(None, None), (None, Some("b")), (Some(tid(3)), None)] {
        let got = s.minutes(&q(token.as_deref(), pool)).await.unwrap();
        assert_eq!(
            got,
            model.series(token.as_deref(), pool),
            "{when}: {token:?} {pool:?}"
        );
    }
    let later = MinuteQuery {
        since_minute: 102,
        ..q(None, None)
    };
    let want: Vec<_> = model
        .series(None, None)
        .into_iter()
        .filter(|m| m.0 >= 102)
        .collect();
    assert_eq!(s.minutes(&later).await.unwrap(), want, "{when}: since 102");
}

/// Waits for the fold an open starts in the background.
async fn settled(s: &SqliteStore) {
    for _ in 0..500 {
        if !s.folding() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the fold started at open did not end within 5 s");
}

async fn journal_rows(s: &SqliteStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM stats_journal")
        .fetch_one(&s.reader)
        .await
        .unwrap()
}

async fn progress(s: &SqliteStore) -> Option<String> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = 'stats_fold'")
        .fetch_optional(&s.reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn figures_survive_a_restart_with_the_journal_unfolded() {
    let (dir, s, model) = written(0..6).await;
    assert_eq!(
        journal_rows(&s).await,
        6,
        "one row per flush, nothing folded yet"
    );
    check(&s, &model, "unfolded").await;
    drop(s); // a crash: no fold at close
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_journal")
        .fetch_one(&raw)
        .await
        .unwrap();
    let c: i64 = sqlx::query_scalar("SELECT SUM(c_success) FROM tokens")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(
        (rows, c),
        (6, 0),
        "the rows were not touched before the restart"
    );
    raw.close().await;
    let s = open(&dir.path().join("t.db")).await;
    // Right after open (fold still under way or not), the figures are whole: reads merge.
    check(&s, &model, "right after restart").await;
    settled(&s).await;
    assert_eq!(
        journal_rows(&s).await,
        0,
        "folded after open, in the background"
    );
    check(&s, &model, "after restart").await;
    // Folding again changes nothing.
    s.folder().fold(Reach::All).await.unwrap();
    check(&s, &model, "folded twice").await;
    s.close().await;
}

#[tokio::test]
async fn a_fold_interrupted_after_any_chunk_resumes_without_loss_or_double_counting() {
    // 8 ids (7 tokens and one unknown), 2 per chunk: 4 chunks; stop after 0..=4 of them (4:
    // before the folded records are deleted), as a crash would.
    for stop in 0..=4 {
        let (dir, s, mut model) = written(0..5).await;
        let f = s.folder().with_chunk(2).crashing_at(stop_after(stop));
        f.fold(Reach::All).await.unwrap();
        let p = progress(&s).await;
        assert!(p.is_some(), "stop {stop}: the fold is under way");
        check(&s, &model, &format!("stop {stop}, mid-fold")).await;
        // Flushes go on while the fold waits.
        write(&s, &mut model, 5..7).await;
        check(&s, &model, &format!("stop {stop}, mid-fold, more flushed")).await;
        drop(s);
        let s = open(&dir.path().join("t.db")).await;
        check(&s, &model, &format!("stop {stop}, right after open")).await;
        settled(&s).await;
        assert_eq!((journal_rows(&s).await, progress(&s).await), (0, None));
        check(&s, &model, &format!("stop {stop}, resumed at open")).await;
        s.close().await;
    }
}

#[tokio::test]
async fn a_second_store_on_the_same_file_sees_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = fresh(dir.path()).await;
    let mut model = Model::default();
    write(&s1, &mut model, 0..4).await;
    let s2 = open(&dir.path().join("t.db")).await; // folds what s1 wrote
    settled(&s2).await;
    check(&s2, &model, "second store").await;
    check(&s1, &model, "first store after the other folded").await;
    write(&s1, &mut model, 4..8).await;
    check(&s2, &model, "second store, unfolded flushes of the first").await;
    // A fold by the first store while the second has one stopped half-way.
    let half = s2.folder().with_chunk(3).crashing_at(stop_after(1));
    half.fold(Reach::All).await.unwrap();
    s1.folder().fold(Reach::All).await.unwrap();
    check(&s1, &model, "after both folded").await;
    check(&s2, &model, "after both folded (second)").await;
    s2.folder().fold(Reach::All).await.unwrap();
    assert_eq!(journal_rows(&s1).await, 0);
    check(&s2, &model, "all folded").await;
    s2.close().await;
    s1.close().await;
}

#[tokio::test]
async fn deleted_tokens_leave_nothing_behind_in_the_journal() {
    let (dir, s, mut model) = written(0..3).await;
    // Token 1 goes and comes back under the same id, while its old stats are unfolded.
    let gone = TokenId(tid(1));
    assert!(s.delete_token(&gone).await.unwrap());
    s.insert_tokens(&[token(1, "b")]).await.unwrap();
    model.forget(&tid(1));
    check(&s, &model, "re-added, unfolded").await;
    // Token 2 the same, while a fold has claimed the records but not reached it.
    let f = s.folder().with_chunk(1).crashing_at(stop_after(1));
    f.fold(Reach::All).await.unwrap();
    assert!(s.delete_token(&TokenId(tid(2))).await.unwrap());
    s.insert_tokens(&[token(2, "a")]).await.unwrap();
    model.forget(&tid(2));
    check(&s, &model, "re-added mid-fold").await;
    write(&s, &mut model, 3..5).await;
    s.folder().fold(Reach::All).await.unwrap();
    check(&s, &model, "folded").await;
    s.close().await;
    let s = open(&dir.path().join("t.db")).await;
    check(&s, &model, "reopened").await;
    s.close().await;
}

#[tokio::test]
async fn background_and_shutdown_folds_fold_what_was_there() {
    let (_dir, s, mut model) = written(0..3).await;
    s.folder().fold(Reach::Background).await.unwrap();
    assert_eq!((journal_rows(&s).await, progress(&s).await), (0, None));
    check(&s, &model, "background fold").await;
    // What the manager's flusher calls at a clean stop.
    write(&s, &mut model, 6..8).await;
    assert_eq!(journal_rows(&s).await, 2);
    Store::fold_stats(&s).await.unwrap();
    assert_eq!(journal_rows(&s).await, 0);
    check(&s, &model, "fold_stats").await;
    // Pruning folds first, so the old minutes it deletes are the rows' and the journal's.
    write(&s, &mut model, 3..6).await;
    s.prune(101, 0, u64::MAX >> 1).await.unwrap();
    model.minutes.retain(|(_, m), _| *m >= 101);
    check(&s, &model, "pruned").await;
    s.close().await;
}

#[tokio::test]
async fn a_clean_stop_folds_within_its_budget_and_the_next_open_folds_the_rest() {
    let (dir, s, model) = written(0..6).await;
    // A budget spent before the first chunk: what a million touched tokens make of the
    // default one.
    s.set_close_budget(std::time::Duration::ZERO);
    Store::fold_stats(&s).await.unwrap();
    assert_eq!(
        journal_rows(&s).await,
        6,
        "the stop folded nothing: its time was spent"
    );
    check(&s, &model, "after the stop's fold").await;
    s.close().await;
    let s = open(&dir.path().join("t.db")).await;
    check(&s, &model, "reopened").await;
    settled(&s).await;
    assert_eq!((journal_rows(&s).await, progress(&s).await), (0, None));
    check(&s, &model, "folded after the next open").await;
    s.close().await;
}

#[tokio::test]
async fn compaction_keeps_every_figure_in_one_record() {
    let (dir, s, mut model) = written(0..6).await;
    // Token 1 goes and comes back under the same id with its old stats unfolded: the
    // compacted record must forget them as the drop marker says.
    assert!(s.delete_token(&TokenId(tid(1))).await.unwrap());
    s.insert_tokens(&[token(1, "b")]).await.unwrap();
    model.forget(&tid(1));
    write(&s, &mut model, 6..8).await;
    assert!(s.folder().compact().await.unwrap());
    assert_eq!(journal_rows(&s).await, 1, "one record replaces them");
    let c: i64 = sqlx::query_scalar("SELECT SUM(c_success) FROM tokens")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(c, 0, "compaction writes no rows");
    check(&s, &model, "compacted").await;
    // More flushes and a second compaction over the compacted record.
    write(&s, &mut model, 8..11).await;
    check(&s, &model, "compacted, then flushed").await;
    assert!(s.folder().compact().await.unwrap());
    assert_eq!(journal_rows(&s).await, 1);
    check(&s, &model, "compacted twice").await;
    assert!(
        !s.folder().compact().await.unwrap(),
        "one record: nothing to gain"
    );
    // A crash, then the fold at open puts the compacted figures into the rows.
    drop(s);
    let s = open(&dir.path().join("t.db")).await;
    // Right after open (fold still under way or not), the figures are whole: reads merge.
    check(&s, &model, "right after restart").await;
    settled(&s).await;
    assert_eq!(
        journal_rows(&s).await,
        0,
        "folded after open, in the background"
    );
    check(&s, &model, "folded after compaction").await;
    s.close().await;
}

#[tokio::test]
async fn a_journal_of_dropped_tokens_compacts_to_nothing() {
    let (_dir, s, mut model) = written(0..3).await;
    for i in 0..N {
        assert!(s.delete_token(&TokenId(tid(i))).await.unwrap());
        model.forget(&tid(i));
    }
    // Only the unknown id's entries are left besides the markers.
    assert!(s.folder().compact().await.unwrap());
    assert!(journal_rows(&s).await <= 1);
    check(&s, &model, "dropped, compacted").await;
    s.close().await;
}

#[tokio::test]
async fn compaction_gives_way_to_a_fold() {
    let (dir, s, mut model) = written(0..4).await;
    // A fold under way: compaction leaves its records alone.
    let half = s.folder().with_chunk(2).crashing_at(stop_after(1));
    half.fold(Reach::All).await.unwrap();
    assert!(progress(&s).await.is_some());
    assert!(!s.folder().compact().await.unwrap());
    assert_eq!(journal_rows(&s).await, 4);
    check(&s, &model, "compaction refused mid-fold").await;
    s.folder().fold(Reach::All).await.unwrap();
    check(&s, &model, "folded").await;
    // A second store folds between the compaction's read and its write: the write must not
    // put the folded records back (they would count twice).
    write(&s, &mut model, 4..8).await;
    let read = s.folder().read_compacted().await.unwrap().expect("records");
    let other = open(&dir.path().join("t.db")).await; // folds after open
    settled(&other).await;
    assert_eq!(journal_rows(&other).await, 0);
    write(&s, &mut model, 8..10).await; // and more flushes arrive
    assert!(!s.folder().write_compacted(read).await.unwrap());
    check(&s, &model, "compaction after another fold").await;
    // The same, with the second store claiming a fold in between.
    let read = s.folder().read_compacted().await.unwrap().expect("records");
    let claim = other.folder().with_chunk(2).crashing_at(stop_after(0));
    claim.fold(Reach::All).await.unwrap();
    assert!(!s.folder().write_compacted(read).await.unwrap());
    check(&s, &model, "compaction after another's claim").await;
    other.close().await;
    s.close().await;
    let s = open(&dir.path().join("t.db")).await;
    check(&s, &model, "reopened").await;
    s.close().await;
}

#[test]
fn old_records_fold_large_ones_compact_until_compaction_stops_paying() {
    let s = Duration::from_secs;
    assert_eq!(next_job(s(1), 1 << 20, 0), None);
    assert_eq!(next_job(FOLD_AGE, 1, 0), Some(Job::Fold));
    assert_eq!(next_job(s(5), COMPACT_BYTES, 0), Some(Job::Compact));
    assert_eq!(
        next_job(s(5), COMPACT_BYTES, COMPACT_BYTES / 4),
        Some(Job::Compact)
    );
    assert_eq!(
        next_job(s(5), COMPACT_BYTES, COMPACT_BYTES / 2 + 1),
        Some(Job::Fold),
        "a compacted record of more than half: compaction would not halve the journal"
    );
}
