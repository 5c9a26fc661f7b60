//! Leasing in cluster mode: global rotation, cluster-wide limits, reports on any instance.
//!
//! - `round_robin`: every instance has the same sorted list of the pool's active tokens (the
//!   [`Snapshot`], rebuilt after any change); one `INCR` of the pool's cursor says which one
//!   is next, so consecutive picks, whichever instance serves them, walk the list in order.
//!   These leases hold no core lease: their in-flight slot and rpm count live in Redis only.
//! - other strategies choose locally (they rank by local observations: score, latency,
//!   in-flight) and take a core lease as in single-node mode.
//!
//! Either way the lease then passes [`ADMIT`](super::scripts::ADMIT): the token's rpm and
//! in-flight limits hold across the cluster, and the lease is recorded so a report can reach
//! any instance. A token refused there is skipped (rotation: the cursor moves on; others:
//! the core lease is closed as `unknown` and the pick retried, at most a few times).
//! Lease ids are `INSTANCE.POOL.N` (core lease N) or `INSTANCE.POOL.rN` (rotation lease).
//!
//! A cooled token whose cooling has ended is probed (half-open: one request at a time) only by
//! the core's own pick, so while one is due, rotation picks go through the core's rotation on
//! each instance (still admitted by Redis) until the probe settles it.
//!
//! When Redis is down (or this instance is still reconciling) picks are local and lease ids
//! have the single-node form `POOL.N`.

use super::scripts::{Admit, LeaseRecord, ADMIT};
use super::{Cluster, Snapshot};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokenlb_core::{Lease, LeaseId, Strategy, TokenState, Unavailable};
use tokenlb_manager::service::now_ms;
use tokenlb_manager::service::registry::PoolHandle;
use tokenlb_manager::service::{Picked, TokenService};

/// Leases a token from `handle` with `strategy` through Redis (the caller checked
/// [`Cluster::ready`]).
pub async fn pick(
    svc: &TokenService,
    c: &Cluster,
    handle: &PoolHandle,
    strategy: Strategy,
) -> Result<Picked, Unavailable> {
    if strategy == Strategy::RoundRobin {
        rotation_pick(svc, c, handle).await
    } else {
        core_pick(svc, c, handle, strategy).await
    }
}

fn limits_full(now: u64) -> Unavailable {
    Unavailable {
        retry_at: Some((now / 60_000 + 1) * 60_000),
        reason: "every eligible token is at its cluster-wide rate or in-flight limit".into(),
    }
}

async fn rotation_pick(
    svc: &TokenService,
    c: &Cluster,
    handle: &PoolHandle,
) -> Result<Picked, Unavailable> {
    let snap = c.snapshot(handle);
    if snap.recovery_at.is_some_and(|t| t <= now_ms()) {
        // A cooled token is due for its half-open probe, which only the core's own pick lets
        // through (one request at a time): rotate locally until it is back or cooled again.
        return core_pick(svc, c, handle, Strategy::RoundRobin).await;
    }
    if snap.ids.is_empty() {
        // Nothing active: the local pool says why and when (or leases a half-open probe).
        return svc.local_pick(handle, Strategy::RoundRobin);
    }
    let cursor = c.key(&format!("rr:{}", handle.name));
    let ttl = lease_ttl(handle);
    for _ in 0..snap.ids.len().min(16) {
        let key = cursor.clone();
        let Some(n) = c
            .link
            .call(|mut conn| async move {
                redis::cmd("INCR")
                    .arg(key)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await
        else {
            return svc.local_pick(handle, Strategy::RoundRobin);
        };
        let id = &snap.ids[(n.saturating_sub(1) % snap.ids.len() as u64) as usize];
        let Some(secret) = handle.secret(id) else {
            continue;
        };
        let number = c.next_lease.fetch_add(1, Ordering::Relaxed);
        let lease_id = c.tags.format(&c.instance, handle.index, number, true);
        let now = now_ms();
        let lease = Lease {
            id: LeaseId(number),
            token_id: id.clone(),
            name: snap.names.get(id).cloned().unwrap_or_default(),
            secret,
            deadline: now + ttl,
        };
        match c.admit(&snap, handle, &lease, &lease_id, false).await {
            Some(Admit::Ok) => {
                c.remember_rotation(number, &lease.token_id, lease.deadline, now);
                return Ok(Picked { lease, lease_id });
            }
            Some(_) => continue,
            None => return svc.local_pick(handle, Strategy::RoundRobin),
        }
    }
    Err(limits_full(now_ms()))
}

async fn core_pick(
    svc: &TokenService,
    c: &Cluster,
    handle: &PoolHandle,
    strategy: Strategy,
) -> Result<Picked, Unavailable> {
    let snap = c.snapshot(handle);
    for _ in 0..4 {
        let picked = svc.local_pick(handle, strategy)?;
        let lease_id = c
            .tags
            .format(&c.instance, handle.index, picked.lease.id.0, false);
        match c.admit(&snap, handle, &picked.lease, &lease_id, true).await {
            Some(Admit::Ok) => {
                return Ok(Picked {
                    lease: picked.lease,
                    lease_id,
                })
            }
            Some(_) => svc.release_lease(handle, picked.lease.id),
            None => return Ok(picked),
        }
    }
    Err(limits_full(now_ms()))
}

fn lease_ttl(handle: &PoolHandle) -> u64 {
    handle.policy().lease_ttl_s.clamp(1, 86_400) * 1000
}

impl Cluster {
    /// Whether picks may use Redis now.
    pub fn ready(&self) -> bool {
        self.link.is_up() && !self.reconciling.load(Ordering::Acquire)
    }

    /// The pool's rotation list, rebuilt when a change made it stale.
    pub fn snapshot(&self, handle: &PoolHandle) -> Arc<Snapshot> {
        let generation = match self.snapshots.lock().get(&handle.name) {
            Some((_, Some(s))) => return s.clone(),
            Some((g, None)) => *g,
            None => 0,
        };
        let mut snap = Snapshot::default();
        for v in handle.views() {
            let l = (
                v.limits.rpm.unwrap_or(0),
                v.limits.max_in_flight.unwrap_or(0),
            );
            if l != (0, 0) {
                snap.limits.insert(v.id.clone(), l);
            }
            if v.state == TokenState::Active {
                snap.ids.push(v.id.clone());
            }
            if v.state == TokenState::Cooling {
                let at = if v.half_open {
                    0
                } else {
                    v.state_until.unwrap_or(0)
                };
                snap.recovery_at = Some(snap.recovery_at.map_or(at, |r: u64| r.min(at)));
            }
            snap.names.insert(v.id, v.name);
        }
        snap.ids.sort();
        let snap = Arc::new(snap);
        let mut all = self.snapshots.lock();
        let entry = all.entry(handle.name.clone()).or_default();
        if entry.0 == generation {
            entry.1 = Some(snap.clone());
        }
        snap
    }

    /// Keeps an own rotation lease until reported or past its deadline (expired ones are
    /// dropped whenever the map has grown by a thousand since the last sweep).
    fn remember_rotation(
        &self,
        number: u64,
        token: &tokenlb_core::TokenId,
        deadline: u64,
        now: u64,
    ) {
        let mut own = self.own_rotation.lock();
        if own.len() % 1024 == 1023 {
            own.retain(|_, (_, d)| *d > now);
        }
        own.insert(number, (token.clone(), deadline));
    }

    /// Runs [`ADMIT`] for a lease; `None` when Redis failed.
    async fn admit(
        &self,
        snap: &Snapshot,
        handle: &PoolHandle,
        lease: &Lease,
        lease_id: &str,
        core: bool,
    ) -> Option<Admit> {
        let (rpm, mif) = snap.limits.get(&lease.token_id).copied().unwrap_or((0, 0));
        let now = now_ms();
        let token = lease.token_id.as_str();
        let record = LeaseRecord {
            token: token.to_string(),
            pool: handle.name.clone(),
            owner: self.instance.clone(),
            core,
        };
        let mut inv = ADMIT.prepare_invoke();
        inv.key(self.key(&format!("rpm:{token}:{}", now / 60_000)))
            .key(self.key(&format!("inflight:{token}")))
            .key(self.key(&format!("lease:{lease_id}")))
            .arg(rpm)
            .arg(mif)
            .arg(now)
            .arg(lease.deadline)
            .arg(lease.deadline.saturating_sub(now).max(1))
            .arg(record.encode())
            .arg(lease_id);
        self.link
            .call(|mut conn| async move { inv.invoke_async::<i64>(&mut conn).await })
            .await
            .map(Admit::from_code)
    }
}
