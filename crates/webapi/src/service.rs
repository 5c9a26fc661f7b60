//! The web API's logic: answer a listing or a link from Wopan or from the cache, and say
//! which.
//!
//! Three modes, from the `realtime` query parameter:
//! - `realtime=true`: ask Wopan now (through a leased token); if every try fails, fall back to
//!   the cached answer marked `stale` (the seed's 回退到缓存模式);
//! - `realtime=false`: the cache only, never an upstream call;
//! - absent: the cache while it is fresh (listing TTL, link TTL), else as `realtime=true`.
//!
//! A folder path is resolved by walking the listings from the root (research notes §6), each
//! taken from the cache while fresh, so resolving `A/B/C` costs no upstream call when `A` and
//! `A/B` were listed recently. A name missing from a cached parent listing triggers one
//! realtime re-listing of that parent before the answer is "not found", unless that listing
//! is only seconds old (so unknown names cannot be used to drive upstream calls). Identical concurrent
//! listings and link requests are merged ([`crate::flight`]).

use crate::cache::{Entry, Listing, ListingCache};
use crate::error::{ApiError, ApiResult};
use crate::flight::Flights;
use crate::links::LinkCache;
use crate::metrics::Metrics;
use crate::names::DrivePath;
use crate::upstream::{Failure, Realtime};
use axum::http::StatusCode;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokenlb_core::{Millis, OutcomeClass};

/// What the `realtime` parameter asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Realtime,
    CacheOnly,
}

impl Mode {
    pub fn from_param(realtime: Option<bool>) -> Mode {
        match realtime {
            None => Mode::Auto,
            Some(true) => Mode::Realtime,
            Some(false) => Mode::CacheOnly,
        }
    }
}

/// An answer and where it came from.
#[derive(Clone, Debug)]
pub struct Answer<T> {
    pub value: T,
    /// True when it came from Wopan for this request (or a merged identical one).
    pub realtime: bool,
    /// When the data was fetched from Wopan, epoch ms.
    pub cached_at: Millis,
    /// Served from the cache because the realtime path failed.
    pub stale: bool,
}

pub struct Service {
    pub cache: ListingCache,
    pub links: LinkCache,
    pub realtime: Realtime,
    pub metrics: Arc<Metrics>,
    pub cache_ttl: Duration,
    pub(crate) list_flights: Flights<Result<Arc<Listing>, Failure>>,
    pub(crate) link_flights: Flights<Result<String, Failure>>,
    /// The last quota answer (`GET /api/usage`), dropped by every write.
    pub(crate) usage: crate::drive::UsageCache,
}

/// A name missing from a cached listing younger than this is not looked for upstream again.
const RECHECK_AFTER_MS: u64 = 10_000;

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

impl Service {
    pub fn new(
        cache: ListingCache,
        links: LinkCache,
        realtime: Realtime,
        cache_ttl: Duration,
    ) -> Self {
        let metrics = realtime.metrics.clone();
        Service {
            cache,
            links,
            realtime,
            metrics,
            cache_ttl,
            list_flights: Flights::default(),
            link_flights: Flights::default(),
            usage: crate::drive::UsageCache::default(),
        }
    }

    fn fresh(&self, l: &Listing) -> bool {
        now_ms().saturating_sub(l.fetched_at) < self.cache_ttl.as_millis() as u64
    }

    /// The listing of a folder, by mode.
    pub async fn listing(
        self: &Arc<Self>,
        path: &DrivePath,
        mode: Mode,
    ) -> ApiResult<Answer<Arc<Listing>>> {
        if mode != Mode::Realtime {
            if let Some(l) = self.cache.get(path) {
                if mode == Mode::CacheOnly || self.fresh(&l) {
                    self.metrics.cache("hit");
                    return Ok(from_cache(l, false));
                }
            }
            self.metrics.cache("miss");
        }
        if mode == Mode::CacheOnly {
            return Err(self.not_cached(path));
        }
        match self.fetch(path).await {
            Ok(l) => Ok(Answer {
                cached_at: l.fetched_at,
                value: l,
                realtime: true,
                stale: false,
            }),
            Err(Failure::NotFound(m)) => Err(ApiError::not_found(m)),
            Err(f) => match self.cache.get(path) {
                Some(l) => {
                    tracing::warn!(folder = %shown(path), "Wopan failed for folder {}; answering from the cache: {}", shown(path), f.cause());
                    self.metrics.cache("stale");
                    Ok(from_cache(l, true))
                }
                None => Err(upstream_error(
                    &f,
                    &format!("folder {:?}", path.to_string()),
                )),
            },
        }
    }

    /// Why a cache-only request has no answer: the folder is known not to exist, or it was
    /// never listed.
    fn not_cached(&self, path: &DrivePath) -> ApiError {
        if let Some((parent, name)) = path.split_last() {
            if let Some(pl) = self.cache.get(&parent) {
                match pl.find(name) {
                    None => {
                        return ApiError::not_found(format!(
                            "no folder {:?} (per the cached listing)",
                            path.to_string()
                        ))
                    }
                    Some(e) if !e.is_folder => {
                        return ApiError::not_found(format!(
                            "{:?} is a file, not a folder",
                            path.to_string()
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_cached",
            format!(
                "folder {:?} is not in the cache yet; ask with realtime=true",
                path.to_string()
            ),
        )
    }

    /// A realtime listing (merged with identical concurrent ones), stored in the cache.
    pub(crate) fn fetch(
        self: &Arc<Self>,
        path: &DrivePath,
    ) -> BoxFuture<'static, Result<Arc<Listing>, Failure>> {
        self.fetch_with(path, true)
    }

    /// As [`Service::fetch`]; `merge: false` never joins a listing already in flight (after
    /// a write, one that started before it may not show it).
    pub(crate) fn fetch_with(
        self: &Arc<Self>,
        path: &DrivePath,
        merge: bool,
    ) -> BoxFuture<'static, Result<Arc<Listing>, Failure>> {
        let me = self.clone();
        let path = path.clone();
        async move {
            let dir_id = match path.split_last() {
                None => tokenlb_wopan::client::ROOT_ID.to_string(),
                Some((parent, name)) => {
                    let entry = me.find(&parent, name).await?;
                    if !entry.is_folder {
                        return Err(Failure::NotFound(format!(
                            "{:?} is a file, not a folder",
                            path.to_string()
                        )));
                    }
                    entry.id
                }
            };
            if !merge {
                let entries = me.realtime.list(&dir_id, &path.to_string()).await?;
                let listing = Listing::new(me.cache.space(), &path, dir_id, now_ms(), entries);
                return Ok(me.cache.put(listing));
            }
            let key = format!("list\0{path}");
            let worker = me.clone();
            let p = path.clone();
            let (result, joined) = me
                .list_flights
                .run(&key, move || async move {
                    let entries = worker.realtime.list(&dir_id, &p.to_string()).await?;
                    let listing = Listing::new(worker.cache.space(), &p, dir_id, now_ms(), entries);
                    Ok(worker.cache.put(listing))
                })
                .await;
            if joined {
                me.metrics.merged();
            }
            result.unwrap_or_else(|| Err(internal_failure()))
        }
        .boxed()
    }

    /// The entry `name` in folder `parent`, walking from the cache while it is fresh; a
    /// name missing from a cached listing is looked for once more in a realtime listing. When
    /// Wopan fails, an older cached parent listing still resolves the name (ids are stable).
    pub(crate) async fn find(
        self: &Arc<Self>,
        parent: &DrivePath,
        name: &str,
    ) -> Result<Entry, Failure> {
        let cached = self.cache.get(parent);
        if let Some(l) = cached.as_ref().filter(|l| self.fresh(l)) {
            if let Some(e) = l.find(name) {
                return Ok(e.clone());
            }
            // A name missing from a listing fetched moments ago is missing: asking Wopan
            // again for every request of an unknown name would let anyone drive upstream calls.
            if now_ms().saturating_sub(l.fetched_at) < RECHECK_AFTER_MS {
                return Err(not_found(parent, name));
            }
        }
        let listing = match (self.fetch(parent).await, cached) {
            (Ok(l), _) => l,
            (Err(Failure::Upstream { .. }), Some(old)) => old,
            (Err(f), _) => return Err(f),
        };
        listing
            .find(name)
            .cloned()
            .ok_or_else(|| not_found(parent, name))
    }
}

fn not_found(parent: &DrivePath, name: &str) -> Failure {
    Failure::NotFound(format!("not found: {:?}", parent.child(name).to_string()))
}

fn from_cache(l: Arc<Listing>, stale: bool) -> Answer<Arc<Listing>> {
    Answer {
        cached_at: l.fetched_at,
        value: l,
        realtime: false,
        stale,
    }
}

pub(crate) fn is_a_folder(path: &DrivePath) -> ApiError {
    ApiError::bad_request(format!(
        "{:?} is a folder; list it with /api/files?folder=…",
        path.to_string()
    ))
}

pub(crate) fn internal_failure() -> Failure {
    Failure::Upstream {
        class: OutcomeClass::Unknown,
        message: "the upstream task failed unexpectedly".into(),
        no_token: false,
        retry_after_s: None,
    }
}

/// The answer when realtime failed and nothing was cached: 503 when no token could be had or
/// Wopan is rate limiting, 502 when Wopan itself failed.
/// A folder path for people: the root is `/`, not `""`.
pub(crate) fn shown(path: &impl std::fmt::Display) -> String {
    let p = path.to_string();
    if p.is_empty() {
        "/ (root)".to_string()
    } else {
        p
    }
}

pub(crate) fn upstream_error(f: &Failure, what: &str) -> ApiError {
    failure_answer(f, |m| {
        format!("could not get {what} from Wopan and nothing is cached: {m}")
    })
}

/// A failure as an answer: 404 for what the request named wrongly; 503 with `Retry-After`
/// (Wopan's, else 5 s) when no token could be had or Wopan rate limits; 502 when Wopan
/// failed. `message` words the upstream's message for the caller.
pub(crate) fn failure_answer(f: &Failure, message: impl FnOnce(&str) -> String) -> ApiError {
    match f {
        Failure::NotFound(m) => ApiError::not_found(m.clone()),
        Failure::Upstream {
            class,
            message: upstream,
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
            let retry =
                (status == StatusCode::SERVICE_UNAVAILABLE).then(|| retry_after_s.unwrap_or(5));
            ApiError::new(status, code, message(upstream)).with_retry_after(retry)
        }
    }
}
