//! Sending deliveries: a bounded [`Outbox`] per target and the [`Worker`] that empties it,
//! signing each attempt and retrying with exponential backoff.
//!
//! Signature (when the target has a `secret`): `X-Tokenlb-Timestamp: <unix seconds>` and
//! `X-Tokenlb-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, so a
//! receiver that checks the signature and refuses old timestamps cannot be fed a replayed
//! delivery. Each attempt is signed afresh; `X-Tokenlb-Delivery` stays the same across the
//! attempts of one delivery, for a receiver that deduplicates.

use super::payload::{body, Notice};
use super::DRAIN;
use crate::config::NotifyConfig;
use crate::metrics::Metrics;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// First retry delay; doubles per attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// One delivery: its id and its serialized body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub body: bytes::Bytes,
}

impl Delivery {
    pub fn new(notices: &[Notice]) -> Delivery {
        let id = uuid::Uuid::new_v4().to_string();
        let body = body(&id, notices).to_string();
        Delivery {
            id,
            body: body.into(),
        }
    }
}

/// Deliveries waiting for one target: at most `capacity`; a push beyond drops the oldest.
pub struct Outbox {
    queue: Mutex<VecDeque<Delivery>>,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
    dropped: Mutex<u64>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            dropped: Mutex::new(0),
        }
    }

    /// Queues `d`, dropping the oldest when full (counted, see [`Outbox::take_dropped`]).
    pub fn push(&self, d: Delivery) {
        {
            let mut q = self.queue.lock();
            if q.len() >= self.capacity {
                q.pop_front();
                *self.dropped.lock() += 1;
            }
            q.push_back(d);
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Delivery> {
        self.queue.lock().pop_front()
    }

    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops counted since the last call.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut *self.dropped.lock())
    }

    /// No more pushes will come (the aggregator has stopped).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        // Unreachable: HMAC takes a key of any length.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `n + 1` (after `n` failed attempts, n ≥ 1).
pub fn backoff(n: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
        .min(BACKOFF_CAP)
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    /// Worth another try (network error, timeout, 408, 429, 5xx).
    Retry(String),
    /// Not worth another try (another 4xx, a redirect).
    GiveUp(String),
}

/// Sends one target's deliveries.
pub struct Worker {
    /// The target's position in `[[notify]]` (how logs name it; its URL may be a secret).
    pub index: usize,
    pub target: NotifyConfig,
    pub client: reqwest::Client,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut deadline: Option<Instant> = None;
        loop {
            self.count_drops();
            if deadline.is_none() && *stop.borrow() {
                deadline = Some(Instant::now() + DRAIN);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let Some(d) = self.outbox.pop() else {
                if self.outbox.is_closed() {
                    return;
                }
                tokio::select! {
                    _ = self.outbox.ready.notified() => {}
                    _ = stop.changed(), if deadline.is_none() => {}
                    _ = sleep_until(deadline) => {}
                }
                continue;
            };
            let delivered = self.send(&d, deadline, &mut stop).await;
            self.metrics.notify_result(delivered);
        }
        let left = self.outbox.len();
        if left > 0 {
            tracing::warn!(
                target = self.index,
                "shutdown: {left} webhook deliveries to notify[{}] not sent",
                self.index
            );
            self.metrics.notify_dropped(left as u64);
        }
    }

    fn count_drops(&self) {
        let n = self.outbox.take_dropped();
        if n > 0 {
            self.metrics.notify_dropped(n);
            tracing::warn!(
                target = self.index,
                "notify[{}]: queue full, dropped {n} oldest deliveries",
                self.index
            );
        }
    }

    /// Tries `d` up to `max_attempts` times; during shutdown, only until `deadline`.
    async fn send(
        &self,
        d: &Delivery,
        mut deadline: Option<Instant>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let max = self.target.max_attempts.max(1);
        for n in 1..=max {
            match self.attempt(d).await {
                Attempt::Delivered => return true,
                Attempt::GiveUp(why) => {
                    tracing::warn!(
                        target = self.index,
                        "notify[{}]: delivery {} refused, not retried: {why}",
                        self.index,
                        d.id
                    );
                    return false;
                }
                Attempt::Retry(why) if n == max => {
                    tracing::warn!(
                        target = self.index,
                        "notify[{}]: delivery {} failed after {n} attempts: {why}",
                        self.index,
                        d.id
                    );
                    return false;
                }
                Attempt::Retry(why) => {
                    tracing::info!(
                        target = self.index,
                        "notify[{}]: attempt {n} of delivery {} failed ({why}); retrying",
                        self.index,
                        d.id
                    );
                }
            }
            let wake = Instant::now() + backoff(n);
            if deadline.is_none() && *stop.borrow() {
                deadline = Some(Instant::now() + DRAIN);
            }
            if deadline.is_some_and(|dl| wake > dl) {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed(), if deadline.is_none() => {
                    // Shutting down: keep the backoff, but within the drain deadline.
                    deadline = Some(Instant::now() + DRAIN);
                    tokio::time::sleep_until(wake.min(Instant::now() + DRAIN)).await;
                }
            }
        }
        false
    }

    async fn attempt(&self, d: &Delivery) -> Attempt {
        let ts = crate::service::now_ms() / 1000;
        let mut req = self
            .client
            .post(&self.target.url)
            .timeout(Duration::from_millis(self.target.timeout_ms))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::USER_AGENT,
                concat!("tokenlb/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Tokenlb-Delivery", &d.id)
            .header("X-Tokenlb-Timestamp", ts.to_string());
        if let Some(secret) = &self.target.secret {
            req = req.header(
                "X-Tokenlb-Signature",
                signature(secret.expose().as_bytes(), ts, &d.body),
            );
        }
        match req.body(d.body.clone()).send().await {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) => {
                let s = r.status();
                if s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429 {
                    Attempt::Retry(format!("HTTP {}", s.as_u16()))
                } else {
                    Attempt::GiveUp(format!("HTTP {}", s.as_u16()))
                }
            }
            // reqwest's error text names the URL; say what failed without it.
            Err(e) if e.is_timeout() => Attempt::Retry("timed out".to_string()),
            Err(e) if e.is_connect() => Attempt::Retry("cannot connect".to_string()),
            Err(_) => Attempt::Retry("request failed".to_string()),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_drops_the_oldest() {
        let o = Outbox::new(2);
        for id in ["a", "b", "c"] {
            o.push(Delivery {
                id: id.into(),
                body: bytes::Bytes::new(),
            });
        }
        assert_eq!(o.len(), 2);
        assert_eq!(o.take_dropped(), 1);
        assert_eq!(o.take_dropped(), 0);
        assert_eq!(o.pop().map(|d| d.id), Some("b".to_string()));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(3), BACKOFF_BASE * 4);
        assert_eq!(backoff(30), BACKOFF_CAP);
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        // RFC 4231-style check against an independent computation is in the integration
        // test; here: it changes with each input.
        let a = signature(b"k", 1, b"x");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature(b"k", 2, b"x"));
        assert_ne!(a, signature(b"k", 1, b"y"));
        assert_ne!(a, signature(b"j", 1, b"x"));
    }
}
