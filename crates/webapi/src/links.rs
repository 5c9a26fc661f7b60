//! Download links, cached only briefly.
//!
//! Wopan's links expire at an undocumented time (research notes §9), so a link is reused for
//! at most the configured link TTL (never more than 60 s) and then forgotten: an expired link
//! is never handed out, not even as a stale fallback. Kept in memory only; a restart simply
//! asks for fresh links.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokenlb_core::Millis;

/// Links kept at most; expired ones are swept first, then the oldest.
const MAX_LINKS: usize = 10_000;

/// A link and what it was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The folder/file path it was asked for.
    pub path: String,
    pub name: String,
    pub size: u64,
    pub fid: String,
    pub download_url: String,
    /// When Wopan handed it out, epoch ms.
    pub fetched_at: Millis,
}

pub struct LinkCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Link, Instant)>>,
}

impl LinkCache {
    pub fn new(ttl: Duration) -> Self {
        LinkCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The link for `path` if it is still within its TTL at `now`.
    pub fn get(&self, path: &str, now: Instant) -> Option<Link> {
        let mut map = self.map.lock();
        match map.get(path) {
            Some((link, until)) if *until > now => Some(link.clone()),
            Some(_) => {
                map.remove(path);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, link: Link, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock();
        if map.len() >= MAX_LINKS {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_LINKS {
                if let Some(k) = map
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&k);
                }
            }
        }
        map.insert(link.path.clone(), (link, now + self.ttl));
    }

    /// Forgets the links of `path` and of everything below it (after a rename, move or
    /// delete).
    pub fn forget_tree(&self, path: &str) {
        let prefix = format!("{path}/");
        self.map
            .lock()
            .retain(|k, _| !(path.is_empty() || k == path || k.starts_with(&prefix)));
    }

    /// Forgets a link that the download host refused (expired early).
    pub fn forget(&self, path: &str) {
        self.map.lock().remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &str) -> Link {
        Link {
            path: path.into(),
            name: "f".into(),
            size: 1,
            fid: "fid".into(),
            download_url: "http://x/d".into(),
            fetched_at: 0,
        }
    }

    #[test]
    fn links_expire_and_can_be_forgotten() {
        let t0 = Instant::now();
        let cache = LinkCache::new(Duration::from_secs(30));
        cache.put(link("A/f"), t0);
        assert!(cache.get("A/f", t0 + Duration::from_secs(29)).is_some());
        assert!(cache.get("A/f", t0 + Duration::from_secs(30)).is_none());
        cache.put(link("A/f"), t0);
        cache.forget("A/f");
        assert!(cache.get("A/f", t0).is_none());
        let off = LinkCache::new(Duration::ZERO);
        off.put(link("A/f"), t0);
        assert!(off.get("A/f", t0).is_none());
    }
}
