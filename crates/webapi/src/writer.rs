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
use tokio::sync::Notify;

#[derive(Default)]
struct Pending {
    /// Listings waiting to be written, by file name (newest only).
    dirty: HashMap<String, Arc<Listing>>,
    /// Whether a writer task is running.
    running: bool,
}

/// Writes listings to their files in the background (see the module docs).
pub struct DiskWriter {
    dir: PathBuf,
    pending: Mutex<Pending>,
    idle: Notify,
    tmp_seq: AtomicU64,
    written: AtomicU64,
}

impl DiskWriter {
    pub fn new(dir: PathBuf) -> Arc<DiskWriter> {
        Arc::new(DiskWriter {
            dir,
            pending: Mutex::new(Pending::default()),
            idle: Notify::new(),
            tmp_seq: AtomicU64::new(0),
            written: AtomicU64::new(0),
        })
    }

    /// Schedules `listing` to be written to `file` (replacing a pending older one).
    /// Outside a Tokio runtime it is written at once.
    pub fn schedule(self: &Arc<Self>, file: String, listing: Arc<Listing>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.write_one(&file, &listing);
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
                let p = self.pending.lock();
                if !p.running && p.dirty.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<(String, Arc<Listing>)> = {
                let mut p = self.pending.lock();
                if p.dirty.is_empty() {
                    p.running = false;
                    drop(p);
                    self.idle.notify_waiters();
                    return;
                }
                p.dirty.drain().collect()
            };
            let me = self.clone();
            let done = tokio::task::spawn_blocking(move || {
                for (file, listing) in &batch {
                    me.write_one(file, listing);
                }
            })
            .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "cache writer task failed");
            }
        }
    }

    fn write_one(&self, file: &str, listing: &Listing) {
        let target = self.dir.join(file);
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
