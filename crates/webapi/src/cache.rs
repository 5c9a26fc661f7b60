//! The listing cache: every folder listing fetched from Wopan, kept in memory and on disk.
//!
//! Storage choice: one JSON file per folder listing, written atomically (temporary file in
//! the same directory, then `rename` over the old one), rather than SQLite. A listing is a
//! document that is always read and replaced whole and never queried inside, so a key-value
//! layout of files fits it exactly: a crash of the process leaves the old file or the new
//! one, never a torn one; there is no schema to migrate and no connection pool; a user can
//! look at a listing with `cat`. There is deliberately no `fsync` (two cost 5–8 ms on this
//! project's machines, BENCHMARKS.md): this is a cache, and what an operating-system crash can
//! lose is the newest listing of a folder, which is fetched again; a file left unreadable is
//! ignored at start (with a warning). File names are the SHA-256 of the space and the folder
//! path, so any Wopan name (slashes, Chinese, spaces) maps to a safe file name.
//!
//! The memory copy is what answers: everything is loaded at start (listings are small), a
//! lookup never touches the disk, and each listing keeps its answer's JSON rendered once
//! ([`crate::render`]), so a cached answer is a copy of bytes. The disk file is the durable
//! copy, written after the answer by [`crate::writer`] (coalescing rapid rewrites of one
//! folder); [`ListingCache::flush`] waits for it on shutdown.
//!
//! Freshness is the caller's business: entries carry `fetched_at`, and the service decides
//! with its TTL whether that is fresh enough.

use crate::names::DrivePath;
use crate::render::RenderCache;
use crate::writer::DiskWriter;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokenlb_core::Millis;

/// Format version written into every file; files of another version are ignored.
const VERSION: u32 = 1;
/// Files larger than this are not loaded (nothing legitimate is that large).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Listings kept in memory; beyond it the oldest fetched is forgotten.
const MAX_ENTRIES: usize = 100_000;

/// One entry of a folder, as cached and as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// Wopan directory/file id.
    pub id: String,
    /// File-content id for download links (`"0"` for folders).
    pub fid: String,
    pub is_folder: bool,
    pub size: u64,
    /// Wopan's `fileType` ("0" folder, "1" image, "2" video, …).
    pub file_type: String,
    /// `yyyyMMddHHmmss` as Wopan sends it.
    pub create_time: String,
}

impl From<tokenlb_wopan::FileEntry> for Entry {
    fn from(e: tokenlb_wopan::FileEntry) -> Self {
        Entry {
            is_folder: e.is_folder(),
            name: e.name,
            id: e.id,
            fid: e.fid,
            size: e.size,
            file_type: e.file_type,
            create_time: e.create_time,
        }
    }
}

/// A folder's listing with where and when it was fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub version: u32,
    /// The space key (`personal`, `family-<id>`).
    pub space: String,
    /// The folder path (`""` for the root).
    pub path: String,
    /// The folder's Wopan id (`"0"` for the root).
    pub dir_id: String,
    /// When it was fetched from Wopan, epoch ms.
    pub fetched_at: Millis,
    pub entries: Vec<Entry>,
    /// The answer's JSON parts, rendered on first use (never stored).
    #[serde(skip)]
    pub(crate) rendered: RenderCache,
}

impl Listing {
    pub fn new(
        space: &str,
        path: &DrivePath,
        dir_id: String,
        fetched_at: Millis,
        entries: Vec<Entry>,
    ) -> Self {
        Listing {
            version: VERSION,
            space: space.to_string(),
            path: path.to_string(),
            dir_id,
            fetched_at,
            entries,
            rendered: RenderCache::default(),
        }
    }

    /// The first entry named exactly `name` (Wopan names are case-sensitive).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// The cache of one space's listings.
pub struct ListingCache {
    space: String,
    mem: RwLock<HashMap<String, Arc<Listing>>>,
    writer: Arc<DiskWriter>,
}

impl ListingCache {
    /// Opens (creating) `dir` and loads the listings of `space` found there.
    pub fn open(dir: &Path, space: &str) -> std::io::Result<ListingCache> {
        std::fs::create_dir_all(dir)?;
        let mut mem = HashMap::new();
        for item in std::fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match load_file(&path) {
                Ok(l) if l.version == VERSION && l.space == space => {
                    mem.insert(l.path.clone(), Arc::new(l));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable cache file")
                }
            }
        }
        tracing::info!(dir = %dir.display(), listings = mem.len(), "listing cache opened");
        Ok(ListingCache {
            space: space.to_string(),
            mem: RwLock::new(mem),
            writer: DiskWriter::new(dir.to_path_buf()),
        })
    }

    pub fn space(&self) -> &str {
        &self.space
    }

    pub fn get(&self, path: &DrivePath) -> Option<Arc<Listing>> {
        self.get_str(&path.to_string())
    }

    /// As [`ListingCache::get`], by the path's text (`A/B`, `""` for the root).
    pub fn get_str(&self, path: &str) -> Option<Arc<Listing>> {
        self.mem.read().get(path).cloned()
    }

    pub fn len(&self) -> usize {
        self.mem.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a listing in memory at once and schedules its file to be written in the
    /// background. A listing older than the one held is ignored (the held one is returned).
    pub fn put(&self, listing: Listing) -> Arc<Listing> {
        let listing = Arc::new(listing);
        {
            let mut mem = self.mem.write();
            if let Some(held) = mem.get(&listing.path) {
                if held.fetched_at > listing.fetched_at {
                    return held.clone();
                }
            }
            if mem.len() >= MAX_ENTRIES && !mem.contains_key(&listing.path) {
                let oldest = mem
                    .iter()
                    .min_by_key(|(_, l)| l.fetched_at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    mem.remove(&k);
                }
            }
            mem.insert(listing.path.clone(), listing.clone());
        }
        self.writer
            .schedule(file_name(&self.space, &listing.path), listing.clone());
        listing
    }

    /// Drops the listing of `path` alone (memory at once, its file in the background).
    pub fn remove(&self, path: &DrivePath) -> bool {
        let key = path.to_string();
        let gone = self.mem.write().remove(&key).is_some();
        if gone {
            self.writer.schedule_removal(file_name(&self.space, &key));
        }
        gone
    }

    /// Drops the listing of `path` and of every folder below it (memory at once, files in
    /// the background, in order with pending writes): after a delete or a move, those
    /// listings describe folders that are no longer there. Returns how many were dropped.
    pub fn remove_tree(&self, path: &DrivePath) -> usize {
        let root = path.to_string();
        let prefix = format!("{root}/");
        let gone: Vec<String> = {
            let mut mem = self.mem.write();
            let keys: Vec<String> = mem
                .keys()
                .filter(|k| root.is_empty() || **k == root || k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in &keys {
                mem.remove(k);
            }
            keys
        };
        for k in &gone {
            self.writer.schedule_removal(file_name(&self.space, k));
        }
        gone.len()
    }

    /// Waits until every listing stored so far is written to disk.
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Listing files written so far (rewrites coalesced by the writer count once).
    pub fn disk_writes(&self) -> u64 {
        self.writer.written()
    }
}

fn file_name(space: &str, path: &str) -> String {
    let mut h = Sha256::new();
    h.update(space.as_bytes());
    h.update([0u8]);
    h.update(path.as_bytes());
    format!("{}.json", hex::encode(h.finalize()))
}

fn load_file(path: &Path) -> Result<Listing, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a listing: {e}"))
}

/// Temp file in the same directory, then rename over the target (no `fsync`: see the module
/// documentation).
pub(crate) fn write_atomic(tmp: &Path, target: &Path, listing: &Listing) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(listing).map_err(std::io::Error::other)?;
    let result = (|| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(&bytes)?;
        drop(f);
        std::fs::rename(tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            id: format!("id-{name}"),
            fid: format!("fid-{name}"),
            is_folder: false,
            size: 3,
            file_type: "2".into(),
            create_time: "20240101000000".into(),
        }
    }

    #[tokio::test]
    async fn listings_survive_reopening_and_spaces_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = DrivePath::parse("A/电影", "folder", false).unwrap();
        {
            let cache = ListingCache::open(dir.path(), "personal").unwrap();
            cache.put(Listing::new(
                "personal",
                &path,
                "d1".into(),
                10,
                vec![entry("x")],
            ));
            // An older fetch does not replace a newer one.
            cache.put(Listing::new("personal", &path, "d1".into(), 5, vec![]));
            cache.flush().await;
            std::fs::write(dir.path().join("junk.json"), b"{not json").unwrap();
            std::fs::write(dir.path().join("1.2.tmp"), b"half").unwrap();
        }
        let cache = ListingCache::open(dir.path(), "personal").unwrap();
        let got = cache.get(&path).unwrap();
        assert_eq!(got.fetched_at, 10);
        assert_eq!(got.find("x").unwrap().fid, "fid-x");
        assert!(!dir.path().join("1.2.tmp").exists());
        let other = ListingCache::open(dir.path(), "family-7").unwrap();
        assert!(other.get(&path).is_none());
    }

    #[tokio::test]
    async fn rapid_rewrites_of_a_folder_are_coalesced_and_the_newest_lands() {
        let dir = tempfile::tempdir().unwrap();
        let a = DrivePath::parse("A", "folder", false).unwrap();
        let b = DrivePath::parse("B", "folder", false).unwrap();
        let cache = ListingCache::open(dir.path(), "personal").unwrap();
        // A current-thread runtime: the writer cannot run before this test yields, so every
        // rewrite of A lands while the previous one is still pending.
        for t in 1..=50u64 {
            let l = Listing::new("personal", &a, "d".into(), t, vec![entry(&t.to_string())]);
            let held = cache.put(l);
            // The memory copy answers at once, before any disk write.
            assert_eq!(cache.get(&a).unwrap().fetched_at, t);
            assert_eq!(held.fetched_at, t);
        }
        cache.put(Listing::new("personal", &b, "d".into(), 7, vec![]));
        assert_eq!(cache.disk_writes(), 0);
        cache.flush().await;
        assert_eq!(cache.disk_writes(), 2, "one write per folder");
        let reopened = ListingCache::open(dir.path(), "personal").unwrap();
        let got = reopened.get(&a).unwrap();
        assert_eq!((got.fetched_at, got.entries[0].name.as_str()), (50, "50"));
        assert_eq!(reopened.get(&b).unwrap().fetched_at, 7);
        // A later rewrite is written again.
        cache.put(Listing::new("personal", &a, "d".into(), 51, vec![]));
        cache.flush().await;
        assert_eq!(cache.disk_writes(), 3);
    }
}
