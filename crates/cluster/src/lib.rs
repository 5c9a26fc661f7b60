//! Cluster mode (`--redis redis://…`): several managers on one PostgreSQL and one Redis act
//! as one pool (DESIGN §6, docs/cluster.md).
//!
//! This crate is the manager's [`Coordinator`] for Redis: it depends on the manager's
//! service layer (`tokenlb_manager::service`) and never on its HTTP layer; the binary
//! chooses it at start ([`coordinator`]) and hands it to `Manager::open_with`.
//!
//! Local state stays the fast path. Every manager keeps the whole pool in memory, as in
//! single-node mode, and Redis is consulted only for what must be global:
//!
//! - **rotation** (`round_robin`): one `INCR` of a per-pool cursor indexes every instance's
//!   identical sorted list of active tokens ([`pick`]);
//! - **rate limits and in-flight limits, leases**: one Lua script per lease checks and
//!   counts the token's rpm window and in-flight set atomically on the server and records the
//!   lease, so a report can reach any instance ([`scripts`]);
//! - **state changes and token add/remove/patch**: published on a pub/sub channel and kept
//!   in a hash (the shared state with deadlines); each instance applies what others publish
//!   to its local pool within a round trip ([`feed`], [`apply`]);
//! - **counters**: per-token totals summed in Redis from each instance's deltas ([`stats`]).
//!
//! When Redis is unreachable an instance keeps serving from local state (picks rotate
//! locally, limits hold per instance), logs once, counts it in `/metrics`, queues its own
//! state changes and, when Redis answers again, re-publishes them and re-reads the shared
//! state ([`link`]).
//!
//! Client: the `redis` crate (redis-rs, the Redis project's own Rust client, maintained and
//! the most used): its `ConnectionManager` multiplexes one connection and reconnects by
//! itself, `Script` runs Lua by SHA with a fallback to `EVAL`, and its pub/sub connection
//! gives a message stream. Version 0.32 keeps the workspace's rust-version (1.85).
//!
//! The Redis URL may carry `?prefix=NAME` (default `tokenlb`): every key and the channel start
//! with it, so several clusters (or tests) can share one Redis.

pub mod apply;
pub mod feed;
pub mod link;
pub mod pick;
pub mod report;
pub mod scripts;
pub mod stats;

use async_trait::async_trait;
use feed::Message;
use link::Link;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokenlb_core::{Millis, Outcome, Strategy, TokenId, Unavailable};
use tokenlb_manager::service::registry::PoolHandle;
use tokenlb_manager::service::{
    Coordinator, CounterMap, Picked, ReportAck, ServiceResult, TokenService,
};
use tokenlb_store::EventRecord;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A pool's rotation list: the ids of its active tokens, sorted, identical on every instance
/// that has seen the same changes, with each token's limits for the lease script.
#[derive(Default)]
pub struct Snapshot {
    pub ids: Vec<TokenId>,
    /// (rpm, max in flight), 0 = none; only tokens with a limit.
    pub limits: HashMap<TokenId, (u32, u32)>,
    pub names: HashMap<TokenId, String>,
    /// Earliest end of a cooling period (0 = a token is half-open now), if any is cooling.
    pub recovery_at: Option<Millis>,
}

/// The cluster side of one manager: the service's [`Coordinator`] when `--redis` is given.
pub struct Cluster {
    /// This instance's id (random, 8 hex digits); lease ids carry it.
    pub instance: String,
    /// Key and channel prefix.
    pub prefix: String,
    /// The Redis connection and its up/down state.
    pub link: Link,
    /// Messages on their way to Redis (publisher task); never blocks the request path.
    outbox: mpsc::UnboundedSender<Message>,
    /// Taken by the publisher task at start.
    outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<Message>>>,
    /// Rotation lists per pool name, with a generation bumped by every invalidation (a list
    /// built while a change happened is not kept); `None` = rebuild on the next pick.
    snapshots: Mutex<HashMap<String, Versioned>>,
    /// Numbers for `round_robin` leases (which hold no core lease).
    next_lease: std::sync::atomic::AtomicU64,
    /// Keys the tags of the lease ids this instance hands out.
    tags: report::Tags,
    /// This instance's open rotation leases (number → token, deadline), so their reports can
    /// still be applied here while Redis is unreachable.
    pub(crate) own_rotation: Mutex<HashMap<u64, (TokenId, Millis)>>,
    /// Counter values last pushed to Redis, per token ([`stats`]).
    pushed: Mutex<HashMap<TokenId, tokenlb_core::Counters>>,
    /// Set once [`stats::seed`] has settled who seeds the totals; pushes wait for it.
    seeded: AtomicBool,
    /// Set while catching up after Redis came back; picks stay local meanwhile.
    pub reconciling: AtomicBool,
    /// Messages Redis did not take (it was down): the newest state per token, then the rest.
    pending: Mutex<Pending>,
    /// When each token last changed here (own or applied), so older news never wins.
    changed_at: Mutex<HashMap<TokenId, Millis>>,
}

/// A pool's rotation list and its generation.
type Versioned = (u64, Option<Arc<Snapshot>>);

/// Messages kept while Redis is down.
#[derive(Default)]
struct Pending {
    states: HashMap<TokenId, Message>,
    others: Vec<Message>,
}

/// At most this many non-state messages are kept while Redis is down (the token list is
/// re-read on reconnection anyway).
const MAX_PENDING: usize = 10_000;

impl Cluster {
    /// Parses the URL (and its `prefix`), connects if Redis answers (otherwise starts
    /// degraded and keeps trying).
    pub async fn connect(url: &str) -> anyhow::Result<Cluster> {
        let (url, prefix) = split_prefix(url)?;
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            anyhow::anyhow!("redis URL {}: {e}", tokenlb_store::postgres::redact(&url))
        })?;
        let link = Link::new(client, &url).await;
        let (tx, rx) = mpsc::unbounded_channel();
        let instance = format!("{:08x}", rand::random::<u32>());
        Ok(Cluster {
            instance,
            prefix,
            link,
            outbox: tx,
            outbox_rx: Mutex::new(Some(rx)),
            snapshots: Mutex::new(HashMap::new()),
            next_lease: std::sync::atomic::AtomicU64::new(1),
            tags: report::Tags::new(),
            own_rotation: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashMap::new()),
            seeded: AtomicBool::new(false),
            reconciling: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            changed_at: Mutex::new(HashMap::new()),
        })
    }

    /// A key under this cluster's prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Queues a message for the publisher task.
    pub fn send(&self, body: feed::Body) {
        let _ = self.outbox.send(Message {
            from: self.instance.clone(),
            body,
        });
    }

    /// Marks a pool's rotation list stale (a token changed state, joined or left).
    pub fn invalidate(&self, pool: &str) {
        let mut all = self.snapshots.lock();
        let entry = all.entry(pool.to_string()).or_default();
        *entry = (entry.0 + 1, None);
    }

    /// Remembers that `token` changed at `at` (keeps the newest).
    pub fn note_change(&self, token: &TokenId, at: Millis) {
        let mut m = self.changed_at.lock();
        let e = m.entry(token.clone()).or_insert(at);
        *e = (*e).max(at);
    }

    /// Whether news from `at` is newer than what this instance knows about `token`.
    pub fn newer_than_local(&self, token: &TokenId, at: Millis) -> bool {
        self.changed_at.lock().get(token).is_none_or(|&t| at > t)
    }

    /// Keeps a message Redis did not take.
    pub fn keep_pending(&self, m: Message) {
        let mut p = self.pending.lock();
        match &m.body {
            feed::Body::State { token, .. } => {
                p.states.insert(token.clone(), m);
            }
            _ if p.others.len() < MAX_PENDING => p.others.push(m),
            _ => {}
        }
    }

    /// Takes the kept messages, states first.
    pub fn take_pending(&self) -> Vec<Message> {
        let mut p = self.pending.lock();
        let mut all: Vec<Message> = p.states.drain().map(|(_, m)| m).collect();
        all.append(&mut p.others);
        all
    }
}

#[async_trait]
impl Coordinator for Cluster {
    fn takes_pick(&self, _: Strategy) -> bool {
        self.ready()
    }

    async fn pick(
        &self,
        svc: &TokenService,
        handle: &PoolHandle,
        strategy: Strategy,
    ) -> Result<Picked, Unavailable> {
        pick::pick(svc, self, handle, strategy).await
    }

    fn takes_report(&self, lease: &str) -> bool {
        report::parse(lease).is_some()
    }

    fn lease_pool(&self, lease: &str) -> Option<usize> {
        report::parse(lease).map(|l| l.pool)
    }

    async fn report(
        &self,
        svc: &TokenService,
        lease: &str,
        outcome: &Outcome,
    ) -> ServiceResult<ReportAck> {
        report::report(svc, self, lease, outcome).await
    }

    fn publish_changes(&self, events: &[EventRecord]) {
        Cluster::publish_changes(self, events)
    }

    fn publish_admin(&self, event: &EventRecord) {
        Cluster::publish_admin(self, event)
    }

    fn publish_resync(&self) {
        self.send(feed::Body::Resync);
    }

    fn keeps_totals(&self) -> bool {
        true
    }

    async fn to_totals(&self, counters: &mut CounterMap) {
        stats::to_cluster_totals(self, counters).await
    }

    fn render_metrics(&self, out: &mut String) {
        self.link.render(out);
    }

    /// The publisher, subscriber, link watcher and counter pusher.
    fn spawn(
        self: Arc<Self>,
        svc: &TokenService,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Some(rx) = self.outbox_rx.lock().take() {
            let (svc, c) = (svc.clone(), self.clone());
            handles.push(tokio::spawn(feed::publisher(svc, c, rx, stop.clone())));
        }
        let (s, c) = (svc.clone(), self.clone());
        handles.push(tokio::spawn(feed::subscriber(s, c, stop.clone())));
        let (s, c) = (svc.clone(), self.clone());
        handles.push(tokio::spawn(link::watcher(s, c, stop.clone())));
        handles.push(tokio::spawn(stats::pusher(svc.clone(), self, stop)));
        handles
    }
}

/// The coordinator a configuration asks for: the Redis cluster when `redis` is set, else
/// [`Local`](tokenlb_manager::service::Local).
pub async fn coordinator(
    config: &tokenlb_manager::config::Config,
) -> anyhow::Result<Arc<dyn Coordinator>> {
    let Some(url) = &config.redis else {
        return Ok(Arc::new(tokenlb_manager::service::Local));
    };
    let cluster = Cluster::connect(url).await?;
    tracing::info!(
        "cluster mode: instance {} on redis {} (prefix {})",
        cluster.instance,
        cluster.link.target,
        cluster.prefix
    );
    Ok(Arc::new(cluster))
}

/// Splits `?prefix=NAME` off a Redis URL (other query parameters stay).
fn split_prefix(url: &str) -> anyhow::Result<(String, String)> {
    let mut parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("redis URL: {e}"))?;
    let mut prefix = "tokenlb".to_string();
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "prefix" {
                prefix = v.into_owned();
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        anyhow::bail!("redis URL: prefix must be 1-64 letters, digits, '_', '-' or '.'");
    }
    if others.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(others);
    }
    Ok((parsed.to_string(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_split_off_the_url() {
        let (u, p) = split_prefix("redis://127.0.0.1:6379/0?prefix=t1").unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("redis://127.0.0.1:6379/0", "t1"));
        let (u, p) = split_prefix("redis://h/1").unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("redis://h/1", "tokenlb"));
        let (u, _) = split_prefix("redis://h/?protocol=resp3&prefix=x").unwrap();
        assert_eq!(u, "redis://h/?protocol=resp3");
        assert!(split_prefix("redis://h/?prefix=a%20b").is_err());
        assert!(split_prefix("not a url").is_err());
    }
}
