//! The listing cache: every folder listing fetched from Wopan, kept in memory and on disk.
//!
//! Storage choice: one JSON file per folder listing, written atomically (temporary file in
//! the same directory, then `rename` over the old one), rather than SQLite. A listing is a
//! document that is always read and replaced whole and never queried inside, so a key-value
//! layout of files fits it exactly: a crash of the process leaves the old file or the new
//! one, never a torn one; there is no schema to migrate and no connection pool; a user can
//! look at a listing with `cat`. There is deliberately no `fsync`: every realtime answer
//! waits for its listing's write, and the two `fsync`s cost 5–8 ms on this project's
//! machines, ten times the rest of the realtime path (tokenlb-bench, BENCHMARKS.md). This is
//! a cache: what an operating-system crash can lose is the newest listing of a folder, which
//! is fetched again; a file left unreadable is ignored at start (with a warning). File names are the SHA-256 of the space and the folder path, so
//! any Wopan name (slashes, Chinese, spaces) maps to a safe file name. Everything is loaded
//! into memory at start (listings are small), so a lookup never touches the disk; writes go
//! through to disk in a blocking task, one at a time.
//!
//! Freshness is the caller's business: entries carry `fetched_at`, and the service decides
//! with its TTL whether that is fresh enough.

use crate::names::DrivePath;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
        }
    }

    /// The first entry named exactly `name` (Wopan names are case-sensitive).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// The cache of one space's listings.
pub struct ListingCache {
    dir: PathBuf,
    space: String,
    mem: RwLock<HashMap<String, Arc<Listing>>>,
    /// One disk write at a time, so an older listing never lands after a newer one.
    writes: tokio::sync::Mutex<()>,
    tmp_seq: AtomicU64,
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
            dir: dir.to_path_buf(),
            space: space.to_string(),
            mem: RwLock::new(mem),
            writes: tokio::sync::Mutex::new(()),
            tmp_seq: AtomicU64::new(0),
        })
    }

    pub fn space(&self) -> &str {
        &self.space
    }

    pub fn get(&self, path: &DrivePath) -> Option<Arc<Listing>> {
        self.mem.read().get(&path.to_string()).cloned()
    }

    pub fn len(&self) -> usize {
        self.mem.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a listing in memory and on disk. A listing older than the one held is ignored.
    pub async fn put(&self, listing: Listing) -> Arc<Listing> {
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
        let _one = self.writes.lock().await;
        let file = self.dir.join(file_name(&self.space, &listing.path));
        let tmp = self.dir.join(format!(
            "{}.{}.tmp",
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let data = listing.clone();
        let written = tokio::task::spawn_blocking(move || write_atomic(&tmp, &file, &data)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(path = %listing.path, error = %e, "could not write the listing to disk; kept in memory")
            }
            Err(e) => tracing::warn!(path = %listing.path, error = %e, "cache writer task failed"),
        }
        listing
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
fn write_atomic(tmp: &Path, target: &Path, listing: &Listing) -> std::io::Result<()> {
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
            cache
                .put(Listing::new(
                    "personal",
                    &path,
                    "d1".into(),
                    10,
                    vec![entry("x")],
                ))
                .await;
            // An older fetch does not replace a newer one.
            cache
                .put(Listing::new("personal", &path, "d1".into(), 5, vec![]))
                .await;
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
}
