//! The seam between one manager and its peers: a [`Coordinator`] takes part in picks and
//! reports, hears about every change, and adds the cluster's totals to counters.
//!
//! The service holds one `Arc<dyn Coordinator>`, chosen at start: [`Local`] for a single
//! node (every method a no-op: the local pool is the whole truth), or the Redis cluster
//! (`crate::cluster::Cluster`). Nothing else asks which one it is, so a handler, a task or a
//! metric never checks for cluster mode (the linkerd `pool` / `pool/p2c` / `pool/mock`
//! shape: a trait at the seam, an implementation, and a double for tests).
//!
//! The hot path stays cheap: [`Coordinator::takes_pick`] and
//! [`Coordinator::takes_report`] are plain calls that say whether the coordinator must
//! take part, and only then is the boxed future of [`Coordinator::pick`] or
//! [`Coordinator::report`] built.

use super::{ReportAck, ServiceResult, TokenService};
use crate::service::registry::PoolHandle;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokenlb_core::{Counters, Lease, Outcome, Strategy, TokenId, Unavailable};
use tokenlb_store::EventRecord;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A lease and the id the client reports it by.
pub struct Picked {
    pub lease: Lease,
    pub lease_id: String,
}

/// Per-token counter totals across the coordinator's members.
pub type CounterMap = HashMap<TokenId, Counters>;

#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// Whether [`Coordinator::pick`] must make this pick (otherwise the local pool does).
    fn takes_pick(&self, strategy: Strategy) -> bool;

    /// Leases a token with the peers' agreement (global rotation, cluster-wide limits).
    async fn pick(
        &self,
        svc: &TokenService,
        handle: &PoolHandle,
        strategy: Strategy,
    ) -> Result<Picked, Unavailable>;

    /// Whether a lease id is one [`Coordinator::report`] must settle.
    fn takes_report(&self, lease: &str) -> bool;

    /// The index of the pool a lease id of [`Coordinator::takes_report`]'s names (for the
    /// caller's scope); `None` when it names none.
    fn lease_pool(&self, _lease: &str) -> Option<usize> {
        None
    }

    /// Settles a report of a lease that [`Coordinator::takes_report`] claimed.
    async fn report(
        &self,
        svc: &TokenService,
        lease: &str,
        outcome: &Outcome,
    ) -> ServiceResult<ReportAck>;

    /// State changes made here (to share with the peers).
    fn publish_changes(&self, events: &[EventRecord]);

    /// Admin events made here: added, removed, patched, refreshed, imported.
    fn publish_admin(&self, event: &EventRecord);

    /// Many tokens were added here at once: peers re-read the token list.
    fn publish_resync(&self);

    /// Whether counters should go through [`Coordinator::to_totals`] before being written.
    fn keeps_totals(&self) -> bool;

    /// Replaces local counters with the members' totals (for stats answers and the store).
    async fn to_totals(&self, counters: &mut CounterMap);

    /// Appends the coordinator's own Prometheus series.
    fn render_metrics(&self, out: &mut String);

    /// Starts the coordinator's background tasks; they stop when `stop` turns true.
    fn spawn(
        self: Arc<Self>,
        svc: &TokenService,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>>;
}

/// A single node: the local pool is the whole truth, so there is nothing to coordinate.
pub struct Local;

#[async_trait]
impl Coordinator for Local {
    fn takes_pick(&self, _: Strategy) -> bool {
        false
    }

    async fn pick(
        &self,
        svc: &TokenService,
        handle: &PoolHandle,
        strategy: Strategy,
    ) -> Result<Picked, Unavailable> {
        svc.local_pick(handle, strategy)
    }

    fn takes_report(&self, _: &str) -> bool {
        false
    }

    async fn report(
        &self,
        svc: &TokenService,
        lease: &str,
        o: &Outcome,
    ) -> ServiceResult<ReportAck> {
        // Never called: `takes_report` claims nothing (the scope was checked by the caller).
        svc.report_local_lease(lease, None, o, &super::Scope::admin())
    }

    fn publish_changes(&self, _: &[EventRecord]) {}

    fn publish_admin(&self, _: &EventRecord) {}

    fn publish_resync(&self) {}

    fn keeps_totals(&self) -> bool {
        false
    }

    async fn to_totals(&self, _: &mut CounterMap) {}

    fn render_metrics(&self, _: &mut String) {}

    fn spawn(self: Arc<Self>, _: &TokenService, _: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}
