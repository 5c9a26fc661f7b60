//! `PUT /api/upload?path=A/new.bin`: a file streamed from the request body to Wopan.
//!
//! The body is never held whole: it goes straight into the Wopan client's part reader
//! ([`tokenlb_wopan::WopanClient::upload`]), which cuts it into 8 MiB parts and sends each
//! to the upload host that `GetZoneInfo` names, so memory stays about two parts whatever the
//! size. `Content-Length` is required (every part names the file's size and part count); a
//! body that ends early or runs long is refused.
//!
//! One token carries the whole upload, because the parts are joined under the account that
//! sent them: it is leased once, its lease renewed every
//! [`crate::WebapiConfig::lease_renew_every`] while the upload runs (`POST /api/token/renew`),
//! and reported once at the end. A part that fails transiently is sent again (three tries);
//! a rate limit is waited out on the same token for up to two minutes per part, then the upload fails
//! with `503 upstream_rate_limited` and `Retry-After` (and the token is reported
//! `rate_limited`, so the manager cools it). There is no switch to another token halfway: the
//! parts already sent belong to the first one.

use crate::cache::Entry;
use crate::error::{ApiError, ApiResult};
use crate::names::DrivePath;
use crate::service::Service;
use axum::body::Body;
use axum::http::StatusCode;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_client::{Client, ClientError, Lease};
use tokenlb_core::{Outcome, OutcomeClass};
use tokenlb_wopan::{UploadTarget, WopanError};

/// How an upload keeps its lease alive.
#[derive(Clone, Copy, Debug)]
pub struct Renewal {
    pub every: Duration,
    pub extend: Duration,
}

/// Renews `lease` every `r.every` until dropped (aborted); failures are logged, once per
/// kind, and do not stop the upload (the final report falls back to the token id).
fn keep_alive(client: Client, lease: Lease, r: Renewal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut warned = false;
        let mut tick = tokio::time::interval(r.every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match client.renew(&lease, Some(r.extend)).await {
                Ok(deadline) => {
                    tracing::debug!(token_id = %lease.token_id(), deadline = ?deadline, "upload lease renewed")
                }
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(token_id = %lease.token_id(), error = %e, "could not renew the upload's lease; the upload goes on");
                }
                Err(_) => {}
            }
        }
    })
}

fn lease_error(e: ClientError) -> ApiError {
    let no_token = matches!(e, ClientError::NoToken { .. });
    let retry = match &e {
        ClientError::NoToken { retry_after, .. } => retry_after.map(|d| d.as_secs().max(1)),
        _ => None,
    };
    let code = if no_token {
        "no_token"
    } else {
        "manager_unavailable"
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        format!("no token for the upload: {e}"),
    )
    .with_retry_after(retry.or(Some(5)))
}

fn upload_error(e: &WopanError, path: &DrivePath) -> ApiError {
    let class = e.outcome_class();
    let shown = path.to_string();
    match (e, class) {
        (WopanError::UploadSource { reason }, _) => {
            ApiError::bad_request(format!("upload of {shown:?} stopped: {reason}"))
        }
        (_, OutcomeClass::RateLimited | OutcomeClass::QuotaExhausted) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_rate_limited",
            format!(
                "Wopan kept refusing the upload of {shown:?} on the token that holds it ({e}); \
                 the parts already sent belong to that token, so the upload was not moved to \
                 another one. Try again later."
            ),
        )
        .with_retry_after(e.retry_after_s().or(Some(30))),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_failed",
            format!("Wopan failed the upload of {shown:?}: {e}"),
        ),
    }
}

impl Service {
    /// Uploads `body` (`size` bytes) to `path`; the new entry.
    pub async fn upload(
        self: &Arc<Self>,
        path: &DrivePath,
        size: u64,
        body: Body,
        renewal: Renewal,
    ) -> ApiResult<Entry> {
        let (parent, name) = crate::drive::split(path)?;
        crate::drive::check_name(&name)?;
        let pl = self.fresh_folder(&parent).await?;
        if pl.find(&name).is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                format!("{:?} already exists", path.to_string()),
            ));
        }
        let client = self.realtime.client.clone();
        let lease = client.lease().await.map_err(lease_error)?;
        tracing::info!(token_id = %lease.token_id(), size, "upload of {:?} on token {} ({})", path.to_string(), lease.name(), lease.token_id());
        let renewer = keep_alive(client.clone(), lease.clone(), renewal);
        let stream = body
            .into_data_stream()
            .map(|r| r.map_err(|e| e.to_string()));
        let target = UploadTarget {
            space: &self.realtime.space,
            dir_id: &pl.dir_id,
            name: &name,
            size,
        };
        let started = Instant::now();
        let result = self
            .realtime
            .wopan
            .upload(lease.secret(), target, Box::pin(stream))
            .await;
        renewer.abort();
        let mut outcome = match &result {
            Ok(_) => Outcome::success(),
            Err(e) => e.to_outcome(),
        };
        outcome.latency_ms = Some(u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX));
        self.metrics.upstream("upload", outcome.class);
        if let Err(e) = client.report(&lease, outcome).await {
            tracing::warn!(token_id = %lease.token_id(), error = %e, "could not report the upload's outcome");
        }
        let up = result.map_err(|e| {
            tracing::warn!(token_id = %lease.token_id(), error = %e, "upload of {:?} failed", path.to_string());
            upload_error(&e, path)
        })?;
        tracing::info!(token_id = %lease.token_id(), parts = up.parts, retries = up.retries, "uploaded {:?} ({} bytes)", path.to_string(), up.size);
        self.after_write(std::slice::from_ref(&parent), &[]).await;
        let listed = self.cache.get(&parent).and_then(|l| l.find(&name).cloned());
        Ok(listed.unwrap_or(Entry {
            name,
            id: String::new(),
            fid: up.fid,
            is_folder: false,
            size: up.size,
            file_type: String::new(),
            create_time: String::new(),
        }))
    }
}
