//! The Redis connection and whether it works: every cluster call goes through [`Link`], which
//! bounds it in time, and on a connection failure marks Redis down (logged once, counted in
//! `/metrics`) so the request path stops asking and serves from local state.
//!
//! The [`watcher`] task pings a down link every [`RETRY`]; when Redis answers again it first
//! reconciles (re-reads the shared state and the token list, re-publishes what was queued:
//! [`super::apply::reconcile`]) and only then marks the link up, so picks do not use the
//! shared rotation before this instance has caught up.

use super::Cluster;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt::Write;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokenlb_manager::service::TokenService;
use tokenlb_manager::shutdown::stopped;
use tokio::sync::watch;

/// Upper bound of one Redis call on the request path.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How often a down link is retried.
pub const RETRY: Duration = Duration::from_millis(250);

/// The connection, its state and its counters.
pub struct Link {
    pub client: redis::Client,
    /// For messages: the URL without its password.
    pub target: String,
    conn: Mutex<Option<ConnectionManager>>,
    up: AtomicBool,
    /// Times the link went down (a metric).
    downs: AtomicU64,
    /// Calls that failed or timed out (a metric).
    failures: AtomicU64,
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(CALL_TIMEOUT)
        .set_response_timeout(CALL_TIMEOUT)
        .set_number_of_retries(1)
        .set_max_delay(200)
}

impl Link {
    /// Connects now if Redis answers; otherwise starts down (the watcher keeps trying).
    pub async fn new(client: redis::Client, url: &str) -> Link {
        let target = tokenlb_store::postgres::redact(url);
        let conn = match tokio::time::timeout(
            CALL_TIMEOUT * 4,
            ConnectionManager::new_with_config(client.clone(), config()),
        )
        .await
        {
            Ok(Ok(c)) => Some(c),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis {target} unreachable at start; serving from local state until it answers");
                None
            }
            Err(_) => {
                tracing::warn!("redis {target} did not answer at start; serving from local state until it answers");
                None
            }
        };
        Link {
            client,
            target,
            up: AtomicBool::new(conn.is_some()),
            conn: Mutex::new(conn),
            downs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The connection, when the link is up.
    pub fn conn(&self) -> Option<ConnectionManager> {
        if !self.is_up() {
            return None;
        }
        self.conn.lock().clone()
    }

    /// Runs one call with [`CALL_TIMEOUT`]; `None` when the link is down or the call failed
    /// (a connection failure or timeout marks the link down).
    pub async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(CALL_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                {
                    self.mark_down(&e.to_string());
                } else {
                    tracing::error!(error = %e, "redis call failed");
                }
                None
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.mark_down("no answer within the call timeout");
                None
            }
        }
    }

    /// Marks the link down; logs only on the transition.
    pub fn mark_down(&self, why: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.downs.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "redis {} unreachable ({why}); serving from local state, will reconcile when it is back",
                self.target
            );
        }
    }

    /// Tries to reach Redis (reconnecting if there never was a connection).
    async fn probe(&self) -> bool {
        let existing = self.conn.lock().clone();
        let mut conn = match existing {
            Some(c) => c,
            None => match tokio::time::timeout(
                CALL_TIMEOUT * 2,
                ConnectionManager::new_with_config(self.client.clone(), config()),
            )
            .await
            {
                Ok(Ok(c)) => {
                    *self.conn.lock() = Some(c.clone());
                    c
                }
                _ => return false,
            },
        };
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        matches!(tokio::time::timeout(CALL_TIMEOUT, ping).await, Ok(Ok(_)))
    }

    /// Prometheus lines for the link.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP tokenlb_cluster_redis_up Whether Redis answers (1) or this instance serves from local state (0).");
        let _ = writeln!(out, "# TYPE tokenlb_cluster_redis_up gauge");
        let _ = writeln!(out, "tokenlb_cluster_redis_up {}", u8::from(self.is_up()));
        let _ = writeln!(
            out,
            "# HELP tokenlb_cluster_redis_down_total Times Redis became unreachable."
        );
        let _ = writeln!(out, "# TYPE tokenlb_cluster_redis_down_total counter");
        let _ = writeln!(
            out,
            "tokenlb_cluster_redis_down_total {}",
            self.downs.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenlb_cluster_redis_failures_total Redis calls that failed or timed out."
        );
        let _ = writeln!(out, "# TYPE tokenlb_cluster_redis_failures_total counter");
        let _ = writeln!(
            out,
            "tokenlb_cluster_redis_failures_total {}",
            self.failures.load(Ordering::Relaxed)
        );
    }
}

/// Brings a down link back: probe, reconcile, mark up.
pub async fn watcher(svc: TokenService, c: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(RETRY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        if c.link.is_up() || !c.link.probe().await {
            continue;
        }
        // Up for the reconciliation's own calls, but picks wait for it to finish.
        c.link.up.store(true, Ordering::Release);
        c.reconciling.store(true, Ordering::Release);
        let ok = super::apply::reconcile(&svc, &c).await;
        c.reconciling.store(false, Ordering::Release);
        if ok && c.link.is_up() {
            tracing::info!(
                "redis {} reachable again; shared state reconciled",
                c.link.target
            );
        } else {
            c.link.mark_down("reconciliation failed");
        }
    }
}
