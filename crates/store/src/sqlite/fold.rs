//! Folding the stats journal into `tokens` / `token_minutes` rows.
//!
//! Each stats flush is one `stats_journal` row (see `journal`), so its cost does not grow with
//! the number of rows it would touch. Now and then — when its oldest unfolded record is
//! [`FOLD_AGE`] old (checked after each append), when the store opens and when it closes —
//! the records are merged (`merge`) and written as rows: each token once, however many
//! flushes it appeared in, in chunks of [`FOLD_CHUNK`] tokens, each chunk its own short
//! transaction so appends and admin writes never wait long.
//!
//! In between, when the records hold [`COMPACT_BYTES`], they are compacted (`compact`): merged
//! into one record that replaces them, which keeps the journal and the readers' merge small
//! without writing rows. Writing rows is the expensive part (a B-tree update per token and per
//! minute): with 100,000 tokens under round-robin, folding at every 32 MiB took a tenth of the
//! manager's CPU. A journal that compaction cannot halve (each token in it once) is folded.
//!
//! Crash safety: a fold first records `meta.stats_fold = upto` (the last record it folds);
//! every chunk's transaction moves that progress to `upto:last_id` (compare-and-set on the old
//! value) together with its rows; the last transaction deletes the progress and the folded
//! records together. After a crash the records `<= upto` are still there, so the next fold
//! (at the latest when the store opens) merges them again identically and resumes after the
//! recorded id: nothing is lost, nothing counted twice. A fold that finds the progress moved
//! by someone else (another process folding the same file) stops and looks again.
//!
//! A chunk skips tokens with a drop marker after `upto` (deleted meanwhile); rows of tokens
//! deleted earlier are not there to update (`UPDATE … FROM` / the minute join find nothing).

use super::merge::{self, Merge, Merged, Progress, PROGRESS_KEY};
use super::SqliteStore;
use crate::rows::{to_i64, CounterCols, ROWS_PER_STATEMENT};
use crate::{StoreError, StoreResult};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fold when the oldest unfolded record is this old. Compaction keeps the journal small in
/// between, so this only bounds how long the rows lag behind (readers merge the journal): a
/// fold writes every touched token's row once, ~1 s of SQLite work with 100,000 tokens, and
/// doing that every 5 minutes rather than every minute is a fifth of that cost.
pub(super) const FOLD_AGE: Duration = Duration::from_secs(300);
/// Compact when the unfolded records hold this many bytes (~5 s of flushes with 100,000 tokens
/// touched every second); fold instead when the last compaction left more than half of it.
pub(super) const COMPACT_BYTES: u64 = 16 << 20;
/// Tokens per fold transaction.
const FOLD_CHUNK: usize = 5_000;
/// After a failed background fold, wait this long before the next try.
const RETRY: Duration = Duration::from_secs(10);
/// How long a clean stop folds (the flusher's last fold and the one in `close` together,
/// counted from the first). A fold of a journal that touched 1,000,000 tokens takes about
/// 28 s, longer than a service manager's usual stop timeout (Docker's is 10 s), whose
/// SIGKILL would then end the stop anyway. Stopped between chunks, a fold leaves its
/// progress behind like an interrupted one: the next open resumes it in the background, and
/// readers merge the rest meanwhile.
pub(super) const CLOSE_FOLD_BUDGET: Duration = Duration::from_secs(7);

/// The journal's bookkeeping inside one `SqliteStore`.
#[derive(Debug, Default)]
pub(super) struct JournalState {
    /// One fold at a time in this process.
    lock: tokio::sync::Mutex<()>,
    /// A background fold is spawned or running.
    running: AtomicBool,
    /// `close` has begun: a background fold stops after its current chunk.
    pub closing: AtomicBool,
    /// Body bytes appended and not yet folded (an estimate after a fold).
    bytes: AtomicU64,
    /// Body bytes of the record the last compaction wrote (0 after a fold).
    compacted: AtomicU64,
    timing: Mutex<Timing>,
    /// [`CLOSE_FOLD_BUDGET`] unless a test set another.
    close_budget: Mutex<Option<Duration>>,
    /// When the stop's folding must end (set by the first fold of the stop).
    close_deadline: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Timing {
    /// When the oldest unfolded record (as far as this process knows) was appended.
    since: Option<Instant>,
    /// No background fold before this (after a failure).
    not_before: Option<Instant>,
}

/// What a fold pass did.
enum Step {
    Empty,
    Claimed,
    /// Folded the records up to this seq.
    Folded(i64),
    /// The progress changed under us (another folder): look again.
    Lost,
    /// Stopped early because the store is closing.
    Stopped,
}

/// What a background pass does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Job {
    Fold,
    Compact,
    /// Fold every record up to this sequence number (what an open found left over).
    FoldThrough(i64),
}

/// The background pass due with the oldest unfolded record `age` old, `bytes` unfolded, of
/// which the last compaction wrote `compacted`: a fold when the records are old or compaction
/// no longer halves them, a compaction when they are large.
fn next_job(age: Duration, bytes: u64, compacted: u64) -> Option<Job> {
    if age >= FOLD_AGE {
        Some(Job::Fold)
    } else if bytes < COMPACT_BYTES {
        None
    } else if compacted > COMPACT_BYTES / 2 {
        Some(Job::Fold)
    } else {
        Some(Job::Compact)
    }
}

/// How far a fold goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Reach {
    /// One pass (the records there when it claims); stops early when the store closes.
    Background,
    /// Until every record up to this seq is folded.
    Through(i64),
    /// Until the journal is empty.
    All,
}

/// Everything a fold needs, owned, so a background fold can be spawned.
#[derive(Clone)]
pub(super) struct Folder {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
    state: Arc<JournalState>,
    /// Tokens per transaction ([`FOLD_CHUNK`]; tests use fewer).
    chunk: usize,
    /// An injected crash: asked at each point of a pass whether to stop there, as a crash
    /// would ([`Folder::crashing_at`]). `None` in production.
    crash: Option<Arc<dyn Fn(FoldPoint) -> bool + Send + Sync>>,
    /// Stop between chunks once this time has come (a clean stop's budget).
    deadline: Option<Instant>,
}

/// A point in a fold pass where a crash can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FoldPoint {
    /// Before the chunk with this index (0-based) is written.
    Chunk(usize),
    /// After the last chunk, before the folded records are deleted.
    BeforeDelete,
}

impl SqliteStore {
    pub(super) fn folder(&self) -> Folder {
        Folder {
            path: self.path.clone(),
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            state: Arc::clone(&self.journal),
            chunk: FOLD_CHUNK,
            crash: None,
            deadline: None,
        }
    }

    /// A folder for a clean stop: it stops between chunks when the stop's budget, counted
    /// from its first fold, is spent.
    fn closing_folder(&self) -> Folder {
        let budget = self
            .journal
            .close_budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(CLOSE_FOLD_BUDGET);
        let deadline = *self
            .journal
            .close_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| Instant::now() + budget);
        Folder {
            deadline: Some(deadline),
            ..self.folder()
        }
    }

    /// Sets the clean stop's fold budget (tests).
    #[cfg(test)]
    pub(super) fn set_close_budget(&self, budget: Duration) {
        *self
            .journal
            .close_budget
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(budget);
    }

    /// After an append of `len` body bytes: starts a background fold when one is due.
    pub(super) fn appended(&self, len: usize) {
        let st = &self.journal;
        let bytes = st.bytes.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        let now = Instant::now();
        let job = {
            let mut t = st.timing.lock().unwrap_or_else(|p| p.into_inner());
            let since = *t.since.get_or_insert(now);
            let job = next_job(
                now.duration_since(since),
                bytes,
                st.compacted.load(Ordering::Relaxed),
            );
            job.filter(|_| t.not_before.is_none_or(|nb| now >= nb))
        };
        if let Some(job) = job {
            self.spawn_job(job);
        }
    }

    /// Runs `job` on a background task unless one is running or the store is closing.
    fn spawn_job(&self, job: Job) {
        let st = &self.journal;
        if st.closing.load(Ordering::Acquire) || st.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            st.running.store(false, Ordering::Release);
            return;
        };
        let folder = self.folder();
        rt.spawn(async move {
            let result = match job {
                Job::Fold => folder.fold(Reach::Background).await,
                Job::FoldThrough(upto) => folder.fold(Reach::Through(upto)).await,
                Job::Compact => folder.compact().await.map(|_| ()),
            };
            if let Err(e) = &result {
                tracing::warn!(error = %e, "folding the stats journal failed; will retry");
                let mut t = folder
                    .state
                    .timing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                t.not_before = Some(Instant::now() + RETRY);
            }
            folder.state.running.store(false, Ordering::Release);
        });
    }

    /// `Store::fold_stats`: folds the whole journal (a clean stop, before `close`), within
    /// [`CLOSE_FOLD_BUDGET`].
    pub(super) async fn fold_stats_tx(&self) -> StoreResult<()> {
        // A background fold stops after its chunk instead of running to its end first.
        self.journal.closing.store(true, Ordering::Release);
        self.closing_folder().fold(Reach::All).await
    }

    /// Folds every record there now (for pruning: the minute rows must hold them).
    pub(super) async fn fold_now(&self) -> StoreResult<()> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM stats_journal")
            .fetch_one(&self.writer)
            .await
            .map_err(|e| self.err(e))?;
        match max {
            Some(m) => self.folder().fold(Reach::Through(m)).await,
            None => Ok(()),
        }
    }

    /// Folds the whole journal (close) within [`CLOSE_FOLD_BUDGET`]; a failure is logged, not
    /// fatal: readers merge the journal, and the next fold resumes. Then counts what is left.
    pub(super) async fn fold_all(&self) {
        let folder = self.closing_folder();
        if let Err(e) = folder.fold(Reach::All).await {
            tracing::warn!(error = %e, "folding the stats journal failed; it stays for the next fold");
        }
        self.count_journal().await;
    }

    /// At open: counts what the journal holds (records a crash left unfolded, or a fold it
    /// interrupted) and folds it on a background task, up to the last record there now.
    /// Start-up does not wait for it: readers merge the journal meanwhile (see `merge`), and
    /// after a million-token pool was killed under load, that fold (a row update per token)
    /// took 28 of a 35-second start-up.
    pub(super) async fn fold_after_open(&self) {
        self.count_journal().await;
        let max: Result<Option<i64>, _> = sqlx::query_scalar("SELECT MAX(seq) FROM stats_journal")
            .fetch_one(&self.reader)
            .await;
        if let Ok(Some(upto)) = max {
            self.spawn_job(Job::FoldThrough(upto));
        }
    }

    /// Whether a fold started by [`SqliteStore::fold_after_open`] or an append is running.
    #[cfg(test)]
    pub(super) fn folding(&self) -> bool {
        self.journal.running.load(Ordering::Acquire)
    }

    /// Sets the journal's byte count and age from what is in the table.
    async fn count_journal(&self) {
        let left: Result<i64, _> =
            sqlx::query_scalar("SELECT COALESCE(SUM(length(body)), 0) FROM stats_journal")
                .fetch_one(&self.reader)
                .await;
        let left = left.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        self.journal.bytes.store(left, Ordering::Relaxed);
        self.journal.compacted.store(0, Ordering::Relaxed);
        let mut t = self
            .journal
            .timing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.since = (left > 0).then(Instant::now);
    }
}

impl Folder {
    fn err(&self, e: sqlx::Error) -> StoreError {
        super::error::map(&self.path, e)
    }

    /// After a fold (`written` 0) or a compaction replaced `read` bytes of records by
    /// `written`: counts what is left, and hands back the writer's page cache, which the
    /// appends and the records freed filled (up to 64 MiB, sized for imports), as after an
    /// import. Best effort.
    async fn replaced(&self, read: u64, written: u64) {
        let _ = sqlx::query("PRAGMA shrink_memory")
            .execute(&self.writer)
            .await;
        let _ = self
            .state
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(read) + written)
            });
        self.state.compacted.store(written, Ordering::Relaxed);
    }

    /// Folds as far as `reach` says.
    pub(super) async fn fold(&self, reach: Reach) -> StoreResult<()> {
        let _one = self.state.lock.lock().await;
        let mut lost = 0;
        loop {
            match self.pass(reach == Reach::Background).await? {
                Step::Empty | Step::Stopped => return Ok(()),
                Step::Folded(upto) => match reach {
                    Reach::Background => return Ok(()),
                    Reach::Through(t) if upto >= t => return Ok(()),
                    _ => {}
                },
                Step::Claimed => {}
                Step::Lost => {
                    lost += 1;
                    if lost > 8 {
                        return Err(StoreError::Backend(crate::Cause::from(format!(
                            "{}: the stats fold progress keeps changing (another process \
                             folding?)",
                            self.path.display()
                        ))));
                    }
                }
            }
        }
    }

    /// One step: claim a fold, or fold the claimed records.
    async fn pass(&self, background: bool) -> StoreResult<Step> {
        let mut rtx = self.reader.begin().await.map_err(|e| self.err(e))?;
        let Some(progress) = merge::progress(&mut rtx, &self.path).await? else {
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM stats_journal")
                .fetch_one(&mut *rtx)
                .await
                .map_err(|e| self.err(e))?;
            rtx.rollback().await.map_err(|e| self.err(e))?;
            let Some(upto) = max else {
                return Ok(Step::Empty);
            };
            let claim = Progress { upto, after: None };
            let done = sqlx::query(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            )
            .bind(PROGRESS_KEY)
            .bind(claim.encode())
            .execute(&self.writer)
            .await
            .map_err(|e| self.err(e))?;
            return Ok(if done.rows_affected() == 1 {
                Step::Claimed
            } else {
                Step::Lost
            });
        };
        let mut merged = Merge::new(true, true);
        let bytes = merge::read(
            &mut rtx,
            &self.path,
            Some(progress.upto),
            &mut merged,
            None,
            None,
        )
        .await?;
        rtx.rollback().await.map_err(|e| self.err(e))?;
        let pools = std::mem::take(&mut merged.pools);
        let mut todo: Vec<(Box<str>, Merged)> = merged
            .tokens
            .into_iter()
            .filter(|(id, _)| progress.after.as_deref().is_none_or(|a| &**id > a))
            .collect();
        todo.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut cur = progress;
        for (done, chunk) in todo.chunks(self.chunk.max(1)).enumerate() {
            if background && self.state.closing.load(Ordering::Acquire) {
                return Ok(Step::Stopped);
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::info!(
                    folded = done * self.chunk.max(1),
                    left = todo.len() - done * self.chunk.max(1),
                    "the stop's time for folding the stats journal is spent; the rest is folded after the next start (nothing is lost: reads merge the journal)"
                );
                return Ok(Step::Stopped);
            }
            if self.crashes_at(FoldPoint::Chunk(done)) {
                return Ok(Step::Stopped);
            }
            let next = Progress {
                upto: cur.upto,
                after: chunk.last().map(|(id, _)| id.to_string()),
            };
            if !self.chunk(&cur, &next, chunk, &pools).await? {
                return Ok(Step::Lost);
            }
            cur = next;
        }
        if self.crashes_at(FoldPoint::BeforeDelete) {
            return Ok(Step::Stopped);
        }
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query("DELETE FROM meta WHERE key = ? AND value = ?")
            .bind(PROGRESS_KEY)
            .bind(cur.encode())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() != 1 {
            return Ok(Step::Lost);
        }
        sqlx::query("DELETE FROM stats_journal WHERE seq <= ?")
            .bind(cur.upto)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.replaced(bytes, 0).await;
        let mut t = self.state.timing.lock().unwrap_or_else(|p| p.into_inner());
        let left = self.state.bytes.load(Ordering::Relaxed) > 0;
        t.since = left.then(Instant::now);
        t.not_before = None;
        Ok(Step::Folded(cur.upto))
    }

    /// Writes one chunk's rows and moves the progress from `cur` to `next`, in one
    /// transaction; `false` when the progress was not `cur` (nothing written).
    async fn chunk(
        &self,
        cur: &Progress,
        next: &Progress,
        chunk: &[(Box<str>, Merged)],
        pools: &[Box<str>],
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let moved = sqlx::query("UPDATE meta SET value = ? WHERE key = ? AND value = ?")
            .bind(next.encode())
            .bind(PROGRESS_KEY)
            .bind(cur.encode())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        let dropped: Vec<(String,)> = sqlx::query_as(
            "SELECT dropped FROM stats_journal WHERE dropped IS NOT NULL AND seq > ?",
        )
        .bind(cur.upto)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let dropped: HashSet<String> = dropped.into_iter().map(|(id,)| id).collect();
        let live: Vec<&(Box<str>, Merged)> = chunk
            .iter()
            .filter(|(id, _)| !dropped.contains(&**id))
            .collect();
        let counters: Vec<(&str, CounterCols)> = live
            .iter()
            .filter_map(|(id, m)| m.counters.as_ref().map(|c| (&**id, CounterCols::encode(c))))
            .collect();
        let minutes: Vec<(&str, &str, u64, u32, u32)> = live
            .iter()
            .flat_map(|(id, m)| {
                m.minutes
                    .iter()
                    .map(move |&(min, p, r, f)| (&**id, &*pools[p as usize], min, r, f))
            })
            .collect();
        write_counters(&mut tx, &counters)
            .await
            .map_err(|e| self.err(e))?;
        write_minutes(&mut tx, &minutes)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }
}

/// Counter snapshots into `tokens` rows (absent tokens are skipped).
pub(super) async fn write_counters(
    conn: &mut SqliteConnection,
    rows: &[(&str, CounterCols)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE tokens SET c_success = v.column2, c_auth = v.column3, \
             c_rate_limited = v.column4, c_quota_exhausted = v.column5, \
             c_transient = v.column6, c_client_error = v.column7, c_unknown = v.column8, \
             last_used = v.column9, last_error = v.column10, last_error_at = v.column11, \
             latency_ewma_ms = v.column12, times_cooled = v.column13 FROM (",
        );
        q.push_values(chunk, |mut b, (id, c)| {
            crate::rows::bind_counters!(b.push_bind(*id), c);
        });
        q.push(") AS v WHERE tokens.id = v.column1");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Minute deltas (token, pool, minute, requests, failures) added to `token_minutes` (absent
/// tokens are skipped).
pub(super) async fn write_minutes(
    conn: &mut SqliteConnection,
    rows: &[(&str, &str, u64, u32, u32)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO token_minutes (token_id, pool, minute, requests, failures) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5 FROM (",
        );
        q.push_values(chunk, |mut b, (id, pool, minute, r, f)| {
            b.push_bind(*id)
                .push_bind(*pool)
                .push_bind(to_i64(*minute))
                .push_bind(i64::from(*r))
                .push_bind(i64::from(*f));
        });
        q.push(
            ") AS v JOIN tokens t ON t.id = v.column1 WHERE true \
             ON CONFLICT (token_id, minute) DO UPDATE SET \
             requests = requests + excluded.requests, \
             failures = failures + excluded.failures",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

impl Folder {
    /// A folder with `chunk` tokens per transaction (smaller passes to inspect).
    #[cfg(test)]
    pub fn with_chunk(mut self, chunk: usize) -> Folder {
        self.chunk = chunk;
        self
    }

    /// A folder whose passes stop wherever `crash` says, as a crash would (fault injection).
    #[cfg(test)]
    pub fn crashing_at(
        mut self,
        crash: impl Fn(FoldPoint) -> bool + Send + Sync + 'static,
    ) -> Folder {
        self.crash = Some(Arc::new(crash));
        self
    }

    fn crashes_at(&self, point: FoldPoint) -> bool {
        self.crash.as_ref().is_some_and(|c| c(point))
    }
}

mod compact;
#[cfg(test)]
mod tests;
