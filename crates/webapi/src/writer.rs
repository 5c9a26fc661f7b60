//! The listing cache's disk writer: listings reach their files after the answer, not before.
//!
//! A realtime answer used to wait for its listing's file (temporary file + rename, a trip
//! to a blocking thread) before going out. Now [`crate::cache::ListingCache::put`] updates
//! the in-memory copy — so the next request already sees it — and hands the listing to this
//! writer, which writes it in the background. Rapid rewrites of one folder are coalesced:
//! pending listings are kept by folder, a newer one replaces one not yet written, and only
//! the newest is written. One writer task runs at a time (spawned when there is work, ending
//! when there is none), so an older listing never lands after a newer one.
//!
//! A folder's file is also rewritten at most once per [`MIN_REWRITE`]: a listing asked for
//! again and again in realtime waits in `dirty` (newest only) until its file's last write
//! is that old. A write is a new inode plus a rename over the old file, which on ext4 also
//! starts writeback of the data (`auto_da_alloc`): about 120 µs of kernel time, done once
//! per realtime request it was a third of the web API's CPU per request on a machine whose
//! servers share one core. Once a second costs nothing per request and loses no more on a
//! crash than one second of freshness.
//! What a crash can lose: the listings answered but not written yet (the file keeps the
//! previous fetch of those folders, with its own `cached_at`, so nothing is ever mislabelled).
//! [`DiskWriter::flush`] waits for every pending write; the web API calls it on a clean
//! shutdown, so a restart finds everything it answered before.

use crate::cache::{write_atomic, Listing};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A folder's file is written at most this often (see the module docs).
pub const MIN_REWRITE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Pending {
    /// Listings waiting to be written, by file name (newest only).
    /// `None`: the file is to be removed (its listing was dropped from the cache).
    dirty: HashMap<String, Option<Arc<Listing>>>,
    /// When each file was last written; entries older than the interval are pruned.
    written_at: HashMap<String, Instant>,
    /// Whether a writer task is running.
    running: bool,
    /// Set by [`DiskWriter::flush`]: write everything pending now, whatever its last write.
    force: bool,
}

/// What the writer task does next.
enum Step {
    Write(Vec<(String, Option<Arc<Listing>>)>),
    WaitUntil(Instant),
    Done,
}

/// Writes listings to their files in the background (see the module docs).
pub struct DiskWriter {
    dir: PathBuf,
    pending: Mutex<Pending>,
    idle: Notify,
    /// Wakes a writer waiting for a file's interval to pass (a flush wants it now).
    wake: Notify,
    min_rewrite: Duration,
    tmp_seq: AtomicU64,
    written: AtomicU64,
}

impl DiskWriter {
    pub fn new(dir: PathBuf) -> Arc<DiskWriter> {
        DiskWriter::with_min_rewrite(dir, MIN_REWRITE)
    }

    /// A writer that rewrites a file at most every `min_rewrite`.
    pub fn with_min_rewrite(dir: PathBuf, min_rewrite: Duration) -> Arc<DiskWriter> {
        Arc::new(DiskWriter {
            dir,
            pending: Mutex::new(Pending::default()),
            idle: Notify::new(),
            wake: Notify::new(),
            min_rewrite,
            tmp_seq: AtomicU64::new(0),
            written: AtomicU64::new(0),
        })
    }

    /// Schedules `listing` to be written to `file` (replacing a pending older one).
    /// Outside a Tokio runtime it is written at once.
    pub fn schedule(self: &Arc<Self>, file: String, listing: Arc<Listing>) {
        self.enqueue(file, Some(listing));
    }

    /// Schedules the removal of a listing's file, in order with the writes: a write of the
    /// same file still waiting is dropped, one already running is followed by the removal.
    pub fn schedule_removal(self: &Arc<Self>, file: String) {
        self.enqueue(file, None);
    }

    fn enqueue(self: &Arc<Self>, file: String, listing: Option<Arc<Listing>>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.write_one(&file, listing.as_deref());
            return;
        };
        let start = {
            let mut p = self.pending.lock();
            p.dirty.insert(file, listing);
            !std::mem::replace(&mut p.running, true)
        };
        if start {
            rt.spawn(self.clone().run());
        }
    }

    /// Files written so far (each coalesced burst counts once).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Waits until every listing scheduled so far is on disk (or failed with a warning).
    pub async fn flush(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut p = self.pending.lock();
                if !p.running && p.dirty.is_empty() {
                    return;
                }
                p.force = true;
            }
            self.wake.notify_one();
            notified.await;
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            match self.next_step() {
                Step::Done => {
                    self.idle.notify_waiters();
                    return;
                }
                Step::WaitUntil(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                Step::Write(batch) => {
                    let me = self.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        for (file, listing) in &batch {
                            me.write_one(file, listing.as_deref());
                        }
                    })
                    .await;
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "cache writer task failed");
                    }
                }
            }
        }
    }

    /// Takes the pending listings whose files may be written now; else says when one may.
    fn next_step(&self) -> Step {
        let mut guard = self.pending.lock();
        let p = &mut *guard;
        if p.dirty.is_empty() {
            p.running = false;
            p.force = false;
            return Step::Done;
        }
        let now = Instant::now();
        let every = self.min_rewrite;
        p.written_at.retain(|_, at| now.duration_since(*at) < every);
        let due: Vec<String> = p
            .dirty
            .keys()
            .filter(|f| p.force || !p.written_at.contains_key(*f))
            .cloned()
            .collect();
        if due.is_empty() {
            let next = p
                .dirty
                .keys()
                .filter_map(|f| p.written_at.get(f))
                .min()
                .map_or(now, |at| *at + every);
            return Step::WaitUntil(next);
        }
        let batch = due
            .into_iter()
            .filter_map(|f| p.dirty.remove_entry(&f))
            .collect::<Vec<_>>();
        for (file, _) in &batch {
            p.written_at.insert(file.clone(), now);
        }
        Step::Write(batch)
    }

    fn write_one(&self, file: &str, listing: Option<&Listing>) {
        let target = self.dir.join(file);
        let Some(listing) = listing else {
            match std::fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "could not remove a dropped listing's file"),
            }
            return;
        };
        let tmp = self.dir.join(format!(
            "{}.{}.tmp",
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        match write_atomic(&tmp, &target, listing) {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(path = %listing.path, error = %e, "could not write the listing to disk; kept in memory")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DrivePath;

    fn listing(path: &DrivePath, t: u64) -> Arc<Listing> {
        Arc::new(Listing::new("personal", path, "d".into(), t, vec![]))
    }

    async fn until_written(w: &DiskWriter, n: u64) {
        while w.written() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_file_written_moments_ago_waits_for_its_interval_or_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        // An interval no test run reaches: the second write can only come from the flush.
        let w = DiskWriter::with_min_rewrite(dir.path().to_path_buf(), Duration::from_secs(3600));
        let a = DrivePath::parse("A", "folder", false).unwrap();
        let b = DrivePath::parse("B", "folder", false).unwrap();
        w.schedule("a.json".into(), listing(&a, 1));
        until_written(&w, 1).await;
        // A was just written: its rewrite waits; B, never written, goes out at once.
        w.schedule("a.json".into(), listing(&a, 2));
        w.schedule("a.json".into(), listing(&a, 3));
        w.schedule("b.json".into(), listing(&b, 7));
        until_written(&w, 2).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(w.written(), 2);
        let on_disk: Listing =
            serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
        assert_eq!(on_disk.fetched_at, 1);
        // A flush writes the newest pending listing without waiting for the interval.
        w.flush().await;
        assert_eq!(w.written(), 3);
        let on_disk: Listing =
            serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
        assert_eq!(on_disk.fetched_at, 3);
    }
}
