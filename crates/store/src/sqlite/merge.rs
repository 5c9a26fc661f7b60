//! Reading the stats journal: merging its records in order, and what readers add to the rows.
//!
//! Records are merged in `seq` order: a counter snapshot replaces the one before it, minute
//! deltas add up per (token, minute), a drop marker forgets what came before it for its token.
//! While a fold is under way, `meta.stats_fold` says how far it got ([`Progress`]): entries of
//! records up to `upto` for ids up to `after` are already in the rows, so readers skip them.
//! Readers read the progress, the journal and the rows in one read transaction (one WAL
//! snapshot), so a fold committing meanwhile can neither hide nor double a figure.

use crate::{StoreError, StoreResult, TokenCounters};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The `meta` key of the fold progress.
pub(super) const PROGRESS_KEY: &str = "stats_fold";

/// Above this many ids, `existing` reads every id instead of looking each up (tests: a few,
/// so both ways are exercised).
const SCAN_ABOVE: usize = if cfg!(test) { 4 } else { 5_000 };

/// Entries merged between two `yield_now` (see `Merge::record`).
const YIELD_EVERY: u32 = 256;

/// Journal records read per query: one, as a record is up to a few MiB with 100,000 tokens
/// and every body read is held until it is merged (a compaction's peak memory).
const PAGE: i64 = 1;

/// How far the fold under way got: records `seq <= upto` are being folded, ids `<= after`
/// (in byte order) are done. Stored as `upto` or `upto:after`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Progress {
    pub upto: i64,
    pub after: Option<String>,
}

impl Progress {
    pub fn parse(v: &str, path: &Path) -> StoreResult<Progress> {
        let (n, after) = match v.split_once(':') {
            Some((n, a)) => (n, Some(a.to_string())),
            None => (v, None),
        };
        let upto = n.parse().map_err(|_| {
            StoreError::Backend(crate::Cause::from(format!(
                "{}: damaged stats fold progress {v:?}",
                path.display()
            )))
        })?;
        Ok(Progress { upto, after })
    }

    pub fn encode(&self) -> String {
        match &self.after {
            Some(a) => format!("{}:{a}", self.upto),
            None => self.upto.to_string(),
        }
    }

    /// The entry of `id` in record `seq` is already in the rows.
    pub fn folded(&self, seq: i64, id: &str) -> bool {
        seq <= self.upto && self.after.as_deref().is_some_and(|a| id <= a)
    }
}

/// Which minutes a reader wants (`None` fields: all).
#[derive(Clone, Debug, Default)]
pub(super) struct MinuteFilter {
    pub token: Option<String>,
    pub pool: Option<String>,
    pub since: u64,
}

/// Maps keyed by token ids and pool names hash with rustc's FxHash (`rustc-hash`), several
/// times faster than SipHash on short keys. The keys are ids the manager generated and pool
/// names from its own store, so hash flooding is not a concern here.
type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// One token's merged journal entries.
#[derive(Debug, Default)]
pub(super) struct Merged {
    pub counters: Option<TokenCounters>,
    /// (minute, pool index into [`Merge::pools`], requests, failures).
    pub minutes: Vec<(u64, u32, u32, u32)>,
}

/// Journal records merged in order.
#[derive(Debug, Default)]
pub(super) struct Merge {
    pub tokens: FxMap<Box<str>, Merged>,
    pub pools: Vec<Box<str>>,
    pool_at: FxMap<Box<str>, u32>,
    /// Keep counter snapshots / minutes (readers want one or the other).
    pub counters: bool,
    pub minutes: bool,
}

impl Merge {
    pub fn new(counters: bool, minutes: bool) -> Merge {
        Merge {
            counters,
            minutes,
            ..Merge::default()
        }
    }

    /// Adds record `seq`, skipping entries `skip` says are folded and minutes `filter` leaves
    /// out. A decoding error names what is damaged.
    pub fn record(
        &mut self,
        seq: i64,
        body: &[u8],
        dropped: Option<&str>,
        progress: Option<&Progress>,
        filter: Option<&MinuteFilter>,
    ) -> Result<(), String> {
        if let Some(id) = dropped {
            self.tokens.remove(id);
            return Ok(());
        }
        let token = filter.and_then(|f| f.token.as_deref());
        let (want_counters, want_minutes) = (self.counters, self.minutes);
        let Merge {
            tokens,
            pools: merged_pools,
            pool_at,
            ..
        } = self;
        // The record's pool indexes mapped to ours, filled at its first entry (a record lists
        // each of its pools once).
        if tokens.is_empty() && token.is_none() {
            // Sized once from the first record (an entry is 30-40 bytes) rather than grown
            // by doubling, which leaves the smaller tables freed behind it.
            tokens.reserve(body.len() / 40);
        }
        let mut pool_map: Vec<u32> = Vec::new();
        let mut since_yield = 0u32;
        super::journal::decode(body, |pools, e| {
            // Merging runs on a blocking thread. Where that thread shares a core with the
            // runtime's worker (one core, or a busy machine), the scheduler would let it run a
            // whole time slice (~3 ms) while requests wait: give the core up every few hundred
            // entries (~0.1 ms) instead.
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                std::thread::yield_now();
            }
            if token.is_some_and(|t| t != e.id) || progress.is_some_and(|p| p.folded(seq, e.id)) {
                return;
            }
            let counters = e.counters.filter(|_| want_counters);
            let wanted = |&&(p, m, _, _): &&(usize, u64, u32, u32)| {
                want_minutes
                    && filter.is_none_or(|f| {
                        m >= f.since && f.pool.as_deref().is_none_or(|fp| fp == pools[p])
                    })
            };
            if counters.is_none() && !e.minutes.iter().any(|m| wanted(&m)) {
                return;
            }
            if pool_map.len() != pools.len() {
                pool_map = pools
                    .iter()
                    .map(|&name| match pool_at.get(name) {
                        Some(&i) => i,
                        None => {
                            let i = merged_pools.len() as u32;
                            merged_pools.push(name.into());
                            pool_at.insert(name.into(), i);
                            i
                        }
                    })
                    .collect();
            }
            let t = match tokens.get_mut(e.id) {
                Some(t) => t,
                None => tokens.entry(e.id.into()).or_default(),
            };
            if counters.is_some() {
                t.counters = counters;
            }
            for &(p, m, r, f) in e.minutes.iter().filter(wanted) {
                match t.minutes.iter_mut().find(|x| x.0 == m) {
                    // The first pool seen for a minute stays, as the row's upsert keeps it.
                    Some(x) => {
                        x.2 = x.2.saturating_add(r);
                        x.3 = x.3.saturating_add(f);
                    }
                    None => t.minutes.push((m, pool_map[p], r, f)),
                }
            }
        })
    }
}

/// Reads the fold progress in `conn`'s transaction.
pub(super) async fn progress(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Option<Progress>, StoreError> {
    let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(PROGRESS_KEY)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| super::error::map(path, e))?;
    v.map(|v| Progress::parse(&v, path)).transpose()
}

/// Merges the journal records `seq <= upto` (all when `None`) into `merge`, page by page;
/// returns the bytes of the bodies read. Decoding and merging run on the blocking pool: a
/// record of 50,000 tokens is tens of milliseconds of CPU that must not hold up a runtime
/// worker serving requests.
pub(super) async fn read(
    conn: &mut SqliteConnection,
    path: &Path,
    upto: Option<i64>,
    merge: &mut Merge,
    progress: Option<Progress>,
    filter: Option<MinuteFilter>,
) -> StoreResult<u64> {
    let upto = upto.unwrap_or(i64::MAX);
    let (mut after, mut bytes) = (0i64, 0u64);
    let shared = std::sync::Arc::new((progress, filter));
    loop {
        let rows: Vec<(i64, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT seq, body, dropped FROM stats_journal WHERE seq > ? AND seq <= ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(upto)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| super::error::map(path, e))?;
        let Some(last) = rows.last() else {
            return Ok(bytes);
        };
        after = last.0;
        bytes += rows.iter().map(|r| r.1.len() as u64).sum::<u64>();
        let mut m = std::mem::take(merge);
        let args = std::sync::Arc::clone(&shared);
        let (m, done) = tokio::task::spawn_blocking(move || {
            let (progress, filter) = &*args;
            let mut done = Ok(());
            for (seq, body, dropped) in rows {
                if let Err(e) = m.record(
                    seq,
                    &body,
                    dropped.as_deref(),
                    progress.as_ref(),
                    filter.as_ref(),
                ) {
                    done = Err((seq, e));
                    break;
                }
            }
            (m, done)
        })
        .await
        .map_err(|e| {
            StoreError::Backend(crate::Cause::from(format!(
                "merging the stats journal: {e}"
            )))
        })?;
        *merge = m;
        done.map_err(|(seq, e)| {
            StoreError::Backend(crate::Cause::from(format!(
                "{}: stats journal record {seq} is damaged: {e}",
                path.display()
            )))
        })?;
    }
}

/// What the journal adds for a reader: counters (`load_tokens`) or minutes (`minutes`), as of
/// `conn`'s read transaction. Minutes of tokens that no longer exist are left out.
pub(super) async fn overlay(
    conn: &mut SqliteConnection,
    path: &Path,
    filter: Option<MinuteFilter>,
) -> StoreResult<Merge> {
    let progress = progress(conn, path).await?;
    let mut merge = Merge::new(filter.is_none(), filter.is_some());
    let minutes = filter.is_some();
    read(conn, path, None, &mut merge, progress, filter).await?;
    if minutes && !merge.tokens.is_empty() {
        let live = existing(conn, path, merge.tokens.keys().map(|k| &**k)).await?;
        merge.tokens.retain(|id, _| live.contains(&**id));
    }
    Ok(merge)
}

/// Which of `ids` are stored tokens.
async fn existing<'a>(
    conn: &mut SqliteConnection,
    path: &Path,
    ids: impl Iterator<Item = &'a str>,
) -> StoreResult<HashSet<String>> {
    let ids: Vec<&str> = ids.collect();
    let mut live = HashSet::with_capacity(ids.len());
    if ids.len() > SCAN_ABOVE {
        // Many ids (a journal of a large pool): one pass over the id index beats thousands
        // of lookups.
        let all: Vec<(String,)> = sqlx::query_as("SELECT id FROM tokens")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| super::error::map(path, e))?;
        let wanted: HashSet<&str> = ids.into_iter().collect();
        live.extend(
            all.into_iter()
                .map(|(id,)| id)
                .filter(|id| wanted.contains(id.as_str())),
        );
        return Ok(live);
    }
    for chunk in ids.chunks(crate::rows::ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM tokens WHERE id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        let found: Vec<(String,)> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| super::error::map(path, e))?;
        live.extend(found.into_iter().map(|(id,)| id));
    }
    Ok(live)
}

/// Minute rows merged with what the journal adds, oldest first.
pub(super) fn add_minutes(rows: Vec<(u64, u32, u32)>, merge: &Merge) -> Vec<(u64, u32, u32)> {
    let mut by: HashMap<u64, (u32, u32)> = rows.into_iter().map(|(m, r, f)| (m, (r, f))).collect();
    for t in merge.tokens.values() {
        for &(m, _, r, f) in &t.minutes {
            let e = by.entry(m).or_default();
            e.0 = e.0.saturating_add(r);
            e.1 = e.1.saturating_add(f);
        }
    }
    let mut out: Vec<(u64, u32, u32)> = by.into_iter().map(|(m, (r, f))| (m, r, f)).collect();
    out.sort_unstable_by_key(|x| x.0);
    out
}
