//! Download links for the `/api/download/` route, by mode.
//!
//! A link is taken from the brief link cache ([`crate::links`]) unless the request says
//! `realtime=true`; otherwise the file is found through the (cached) listing of its folder,
//! which gives its `fid`, and a fresh link is asked for with a leased token, merged with
//! identical concurrent requests. When that fails, a link still within its cache time is
//! answered marked `stale`; an older one never is, since links expire upstream.

use crate::error::{ApiError, ApiResult};
use crate::links::Link;
use crate::names::DrivePath;
use crate::service::{
    internal_failure, is_a_folder, now_ms, upstream_error, Answer, Mode, Service,
};
use crate::upstream::Failure;
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Instant;

impl Service {
    /// A download link for a file, by mode.
    pub async fn link(self: &Arc<Self>, path: &DrivePath, mode: Mode) -> ApiResult<Answer<Link>> {
        let key = path.to_string();
        if mode != Mode::Realtime {
            if let Some(l) = self.links.get(&key, Instant::now()) {
                self.metrics.cache("hit");
                return Ok(Answer {
                    cached_at: l.fetched_at,
                    value: l,
                    realtime: false,
                    stale: false,
                });
            }
            self.metrics.cache("miss");
        }
        let Some((parent, name)) = path.split_last() else {
            return Err(ApiError::bad_request("url must name a file: FOLDER/FILE"));
        };
        let entry = if mode == Mode::CacheOnly {
            let found = self.cache.get(&parent).and_then(|l| l.find(name).cloned());
            match found {
                Some(e) if e.is_folder => return Err(is_a_folder(path)),
                _ => {
                    return Err(ApiError::new(StatusCode::NOT_FOUND, "not_cached", format!(
                        "no download link for {key:?} in the cache (links are kept briefly); ask with realtime=true"
                    )))
                }
            }
        } else {
            match self.find(&parent, name).await {
                Ok(e) => e,
                Err(Failure::NotFound(m)) => return Err(ApiError::not_found(m)),
                Err(f) => return Err(upstream_error(&f, &format!("file {key:?}"))),
            }
        };
        if entry.is_folder {
            return Err(is_a_folder(path));
        }
        tracing::info!(file = %key, fid = %entry.fid, "realtime API found file: {}", entry.name);
        let worker = self.clone();
        let fid = entry.fid.clone();
        let (result, joined) = self
            .link_flights
            .run(&format!("link\0{fid}"), move || async move {
                worker.realtime.link(&fid).await
            })
            .await;
        if joined {
            self.metrics.merged();
        }
        match result.unwrap_or_else(|| Err(internal_failure())) {
            Ok(url) => {
                let link = Link {
                    path: key,
                    name: entry.name,
                    size: entry.size,
                    fid: entry.fid,
                    download_url: url,
                    fetched_at: now_ms(),
                };
                self.links.put(link.clone(), Instant::now());
                Ok(Answer {
                    cached_at: link.fetched_at,
                    value: link,
                    realtime: true,
                    stale: false,
                })
            }
            Err(Failure::NotFound(m)) => Err(ApiError::not_found(m)),
            Err(f) => match self.links.get(&key, Instant::now()) {
                Some(l) => {
                    tracing::warn!(file = %key, "Wopan failed for file {key}; answering with the cached link: {}", f.cause());
                    self.metrics.cache("stale");
                    Ok(Answer {
                        cached_at: l.fetched_at,
                        value: l,
                        realtime: false,
                        stale: true,
                    })
                }
                None => Err(upstream_error(&f, &format!("a download link for {key:?}"))),
            },
        }
    }
}
