//! The drive's write operations (DESIGN §11) and the quota: create a folder, rename, move,
//! copy, delete, and `usage`.
//!
//! Each write goes the same way:
//! 1. **check** the paths (the same rules as reads, [`crate::names`]) and resolve them
//!    against listings fetched from Wopan *now* (the folders on the way are taken from the
//!    cache while fresh: ids are stable), so that "no such parent", "name taken" and "a
//!    folder into itself" are answered as clear 4xx before any token is spent on the write;
//! 2. **write** through one leased token, reported ([`crate::upstream::Realtime::write`]),
//!    never sent a second time after an ambiguous failure;
//! 3. **refresh** the listings the write touched by listing them again (not merged with a
//!    listing that was already in flight), so the next read shows the change whether it asks
//!    realtime or the cache; a listing that cannot be refreshed is dropped instead, and the
//!    listings and links below a renamed, moved or deleted path are dropped, since they
//!    describe a place that no longer exists. The cached quota is dropped too.

use crate::cache::{Entry, Listing};
use crate::error::{ApiError, ApiResult};
use crate::names::DrivePath;
use crate::service::{now_ms, upstream_error, Answer, Mode, Service};
use crate::upstream::Failure;
use axum::http::StatusCode;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokenlb_core::{Millis, OutcomeClass};
use tokenlb_wopan::{FileEntry, Selection};

/// How long a quota answer is reused when the request does not say `realtime=`.
const USAGE_TTL_MS: u64 = 60_000;
/// Most paths one move, copy or delete may name.
pub const MAX_PATHS: usize = 100;

/// The account's quota as `GET /api/usage` answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub used_bytes: u64,
    pub total_bytes: Option<u64>,
}

/// The last quota answer, in memory.
#[derive(Default)]
pub struct UsageCache(Mutex<Option<(Usage, Millis)>>);

impl UsageCache {
    fn get(&self) -> Option<(Usage, Millis)> {
        *self.0.lock()
    }

    fn put(&self, u: Usage) -> Millis {
        let at = now_ms();
        *self.0.lock() = Some((u, at));
        at
    }

    pub fn drop_cached(&self) {
        *self.0.lock() = None;
    }
}

fn conflict(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "name_taken", message)
}

/// A write's failure: 404 for what the request named wrongly; 503 (with `Retry-After`) when
/// no token could be had or Wopan rate limits; 502 when Wopan failed.
fn write_error(f: &Failure, what: &str) -> ApiError {
    match f {
        Failure::NotFound(m) => ApiError::not_found(m.clone()),
        Failure::Upstream {
            class,
            message,
            no_token,
            retry_after_s,
        } => {
            let (status, code) = if *no_token {
                (StatusCode::SERVICE_UNAVAILABLE, "no_token")
            } else if matches!(
                class,
                OutcomeClass::RateLimited | OutcomeClass::QuotaExhausted
            ) {
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_rate_limited")
            } else {
                (StatusCode::BAD_GATEWAY, "upstream_failed")
            };
            let retry = match status {
                StatusCode::SERVICE_UNAVAILABLE => retry_after_s.or(Some(5)),
                _ => None,
            };
            ApiError::new(status, code, format!("could not {what}: {message}"))
                .with_retry_after(retry)
        }
    }
}

/// A cached entry as the Wopan client wants it for a rename.
fn wopan_entry(e: &Entry) -> FileEntry {
    FileEntry {
        id: e.id.clone(),
        fid: e.fid.clone(),
        name: e.name.clone(),
        entry_type: if e.is_folder { 0 } else { 1 },
        file_type: e.file_type.clone(),
        size: e.size,
        create_time: e.create_time.clone(),
        creator: String::new(),
        family_id: 0,
        shooting_time: String::new(),
        thumb_url: String::new(),
    }
}

/// Is `inner` the path `outer` or below it?
fn within(inner: &DrivePath, outer: &DrivePath) -> bool {
    inner.components().starts_with(outer.components())
}

/// A checked new name: one path component.
pub fn check_name(raw: &str) -> ApiResult<String> {
    let p = DrivePath::parse(raw, "name", false).map_err(|e| ApiError::bad_request(e.0))?;
    match p.components() {
        [one] if !raw.contains('/') => Ok(one.clone()),
        _ => Err(ApiError::bad_request(
            "name must be a single name, without '/'",
        )),
    }
}

/// A path that names an entry (not the root).
pub fn split(path: &DrivePath) -> ApiResult<(DrivePath, String)> {
    path.split_last()
        .map(|(p, n)| (p, n.to_string()))
        .ok_or_else(|| ApiError::bad_request("the root folder cannot be changed"))
}

/// Sources of a move, copy or delete: resolved entries with their parents.
pub struct Sources {
    pub items: Vec<(DrivePath, DrivePath, Entry)>,
}

impl Sources {
    fn selection(&self) -> Selection {
        let mut s = Selection::default();
        for (_, _, e) in &self.items {
            if e.is_folder {
                s.dirs.push(e.id.clone());
            } else {
                s.files.push(e.id.clone());
            }
        }
        s
    }
}

impl Service {
    /// A folder listed from Wopan now (and stored in the cache).
    pub(crate) async fn fresh_folder(
        self: &Arc<Self>,
        path: &DrivePath,
    ) -> ApiResult<Arc<Listing>> {
        self.fetch(path)
            .await
            .map_err(|f| upstream_error(&f, &format!("folder {:?}", path.to_string())))
    }

    /// The listings a write touched: refreshed, or dropped when that fails; `gone` paths
    /// (and everything below them) dropped with their links; the quota dropped.
    pub(crate) async fn after_write(self: &Arc<Self>, refresh: &[DrivePath], gone: &[DrivePath]) {
        for g in gone {
            self.cache.remove_tree(g);
            self.links.forget_tree(&g.to_string());
        }
        self.usage.drop_cached();
        let mut done: Vec<&DrivePath> = Vec::new();
        for r in refresh {
            if done.contains(&r) {
                continue;
            }
            done.push(r);
            if let Err(f) = self.fetch_with(r, false).await {
                let why = match f {
                    Failure::NotFound(m) | Failure::Upstream { message: m, .. } => m,
                };
                tracing::warn!(folder = %r, "could not refresh {:?} after a write; dropped it from the cache: {why}", r.to_string());
                self.cache.remove(r);
            }
        }
    }

    /// `POST /api/folders {"path"}`: a new folder; its entry.
    pub async fn create_folder(self: &Arc<Self>, path: &DrivePath) -> ApiResult<Entry> {
        let (parent, name) = split(path)?;
        let pl = self.fresh_folder(&parent).await?;
        if let Some(e) = pl.find(&name) {
            let kind = if e.is_folder { "a folder" } else { "a file" };
            return Err(conflict(format!(
                "{:?} already exists ({kind})",
                path.to_string()
            )));
        }
        let dir_id = pl.dir_id.clone();
        let n = name.clone();
        let id = self
            .realtime
            .write("mkdir", move |w, t, s| {
                let (dir_id, n) = (dir_id.clone(), n.clone());
                async move { w.create_directory(&t, &s, &dir_id, &n).await }
            })
            .await
            .map_err(|f| write_error(&f, &format!("create folder {:?}", path.to_string())))?;
        self.after_write(std::slice::from_ref(&parent), std::slice::from_ref(path))
            .await;
        // A new folder is empty: known without asking.
        let empty = Listing::new(self.cache.space(), path, id.clone(), now_ms(), Vec::new());
        self.cache.put(empty);
        let listed = self.cache.get(&parent).and_then(|l| l.find(&name).cloned());
        Ok(listed.unwrap_or(Entry {
            name,
            id,
            fid: "0".into(),
            is_folder: true,
            size: 0,
            file_type: "0".into(),
            create_time: String::new(),
        }))
    }

    /// `POST /api/rename {"path","name"}`: the renamed entry.
    pub async fn rename(self: &Arc<Self>, path: &DrivePath, new_name: &str) -> ApiResult<Entry> {
        let (parent, name) = split(path)?;
        let new_name = check_name(new_name)?;
        let pl = self.fresh_folder(&parent).await?;
        let entry = pl
            .find(&name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("not found: {:?}", path.to_string())))?;
        if new_name == name {
            return Ok(entry);
        }
        if pl.find(&new_name).is_some() {
            let taken = parent.child(&new_name).to_string();
            return Err(conflict(format!("{taken:?} already exists")));
        }
        let we = wopan_entry(&entry);
        let n = new_name.clone();
        self.realtime
            .write("rename", move |w, t, s| {
                let (we, n) = (we.clone(), n.clone());
                async move { w.rename(&t, &s, &we, &n).await }
            })
            .await
            .map_err(|f| write_error(&f, &format!("rename {:?}", path.to_string())))?;
        self.after_write(std::slice::from_ref(&parent), std::slice::from_ref(path))
            .await;
        Ok(Entry {
            name: new_name,
            ..entry
        })
    }

    /// Resolves the sources of a move, copy or delete (each must exist; no path twice).
    pub(crate) async fn sources(self: &Arc<Self>, paths: &[DrivePath]) -> ApiResult<Sources> {
        if paths.is_empty() || paths.len() > MAX_PATHS {
            return Err(ApiError::bad_request(format!(
                "paths must name 1 to {MAX_PATHS} entries"
            )));
        }
        let mut listings: HashMap<DrivePath, Arc<Listing>> = HashMap::new();
        let mut items = Vec::new();
        for p in paths {
            let (parent, name) = split(p)?;
            if items.iter().any(|(q, _, _)| q == p) {
                return Err(ApiError::bad_request(format!(
                    "{:?} is named twice",
                    p.to_string()
                )));
            }
            let pl = match listings.get(&parent) {
                Some(l) => l.clone(),
                None => {
                    let l = self.fresh_folder(&parent).await?;
                    listings.insert(parent.clone(), l.clone());
                    l
                }
            };
            let e = pl
                .find(&name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("not found: {:?}", p.to_string())))?;
            items.push((p.clone(), parent, e));
        }
        Ok(Sources { items })
    }

    /// `POST /api/move` and `POST /api/copy {"paths","to"}`: the new paths.
    pub async fn transfer(
        self: &Arc<Self>,
        paths: &[DrivePath],
        to: &DrivePath,
        moving: bool,
    ) -> ApiResult<Vec<(DrivePath, DrivePath)>> {
        let src = self.sources(paths).await?;
        let target = self.fresh_folder(to).await?;
        let mut names: Vec<&str> = Vec::new();
        for (p, parent, e) in &src.items {
            if e.is_folder && within(to, p) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "into_itself",
                    format!(
                        "{:?} cannot go into itself ({:?})",
                        p.to_string(),
                        to.to_string()
                    ),
                ));
            }
            let stays = moving && parent == to;
            if (!stays && target.find(&e.name).is_some()) || names.contains(&e.name.as_str()) {
                let taken = to.child(&e.name).to_string();
                return Err(conflict(format!("{taken:?} already exists")));
            }
            names.push(&e.name);
        }
        let moved: Vec<(DrivePath, DrivePath)> = src
            .items
            .iter()
            .map(|(p, _, e)| (p.clone(), to.child(&e.name)))
            .collect();
        let mut sel = src.selection();
        if moving {
            // Moving into the folder it is in already changes nothing.
            let staying: Vec<&String> = src
                .items
                .iter()
                .filter(|(_, parent, _)| parent == to)
                .map(|(_, _, e)| &e.id)
                .collect();
            sel.dirs.retain(|id| !staying.contains(&id));
            sel.files.retain(|id| !staying.contains(&id));
            if sel.is_empty() {
                return Ok(moved);
            }
        }
        let dir_id = target.dir_id.clone();
        let op = if moving { "move" } else { "copy" };
        self.realtime
            .write(op, move |w, t, s| {
                let (sel, dir_id) = (sel.clone(), dir_id.clone());
                async move {
                    if moving {
                        w.move_entries(&t, &s, &sel, &dir_id).await
                    } else {
                        w.copy_entries(&t, &s, &sel, &dir_id).await
                    }
                }
            })
            .await
            .map_err(|f| write_error(&f, &format!("{op} to {:?}", to.to_string())))?;
        let mut refresh = vec![to.clone()];
        let mut gone = Vec::new();
        if moving {
            for (p, parent, _) in &src.items {
                if parent != to {
                    refresh.push(parent.clone());
                    gone.push(p.clone());
                }
            }
        }
        self.after_write(&refresh, &gone).await;
        Ok(moved)
    }

    /// `DELETE /api/files {"paths"}`: the entries go to Wopan's recycle bin.
    pub async fn delete(self: &Arc<Self>, paths: &[DrivePath]) -> ApiResult<Vec<DrivePath>> {
        let src = self.sources(paths).await?;
        let sel = src.selection();
        self.realtime
            .write("delete", move |w, t, s| {
                let sel = sel.clone();
                async move { w.delete_entries(&t, &s, &sel).await }
            })
            .await
            .map_err(|f| write_error(&f, "delete"))?;
        let parents: Vec<DrivePath> = src.items.iter().map(|(_, p, _)| p.clone()).collect();
        let gone: Vec<DrivePath> = src.items.iter().map(|(p, _, _)| p.clone()).collect();
        self.after_write(&parents, &gone).await;
        Ok(gone)
    }

    /// `GET /api/usage`: the quota, by mode (a cached answer is reused for a minute).
    pub async fn usage(self: &Arc<Self>, mode: Mode) -> ApiResult<Answer<Usage>> {
        let cached = self.usage.get();
        if mode != Mode::Realtime {
            if let Some((u, at)) = cached {
                if mode == Mode::CacheOnly || now_ms().saturating_sub(at) < USAGE_TTL_MS {
                    return Ok(Answer {
                        value: u,
                        realtime: false,
                        cached_at: at,
                        stale: false,
                    });
                }
            }
        }
        if mode == Mode::CacheOnly {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_cached",
                "the quota is not in the cache yet; ask with realtime=true",
            ));
        }
        match self.realtime.usage().await {
            Ok(c) => {
                let u = Usage {
                    used_bytes: c.used_bytes(),
                    total_bytes: c.total_bytes(),
                };
                let at = self.usage.put(u);
                Ok(Answer {
                    value: u,
                    realtime: true,
                    cached_at: at,
                    stale: false,
                })
            }
            Err(f) => match cached {
                Some((u, at)) => Ok(Answer {
                    value: u,
                    realtime: false,
                    cached_at: at,
                    stale: true,
                }),
                None => Err(upstream_error(&f, "the quota")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DrivePath {
        DrivePath::parse(s, "path", true).unwrap()
    }

    #[test]
    fn names_and_nesting() {
        assert_eq!(check_name("g.mp4").unwrap(), "g.mp4");
        assert!(check_name("a/b").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(300)).is_err());
        assert!(within(&p("A/B/C"), &p("A/B")));
        assert!(within(&p("A/B"), &p("A/B")));
        assert!(!within(&p("A/BC"), &p("A/B")));
        assert!(!within(&p("A"), &p("A/B")));
        assert!(split(&p("")).is_err());
    }
}
