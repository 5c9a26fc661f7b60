//! Cluster-wide counters: every instance's outcomes summed in Redis, shown by each.
//!
//! Each instance counts outcomes locally, as in single-node mode, and every
//! [`PUSH_EVERY`] adds what it counted since its last push to the token's `P:ctr:TOKEN` hash
//! (`HINCRBY`, so concurrent pushes add up). `GET /api/token/stats` then shows, per token, the
//! Redis totals plus this instance's not-yet-pushed part ([`merge`]). The first instance to
//! reach an empty Redis seeds the totals with its counters (which start from the store's),
//! marked by `P:ctr_seeded`; the others only push what they count from then on.

use super::Cluster;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokenlb_core::{Counters, TokenId};
use tokenlb_manager::service::TokenService;
use tokenlb_manager::shutdown::stopped;
use tokio::sync::watch;

/// How often counter deltas go to Redis.
pub const PUSH_EVERY: Duration = Duration::from_millis(250);

const FIELDS: [&str; 7] = [
    "success",
    "auth",
    "rate_limited",
    "quota_exhausted",
    "transient",
    "client_error",
    "unknown",
];

/// Pushes counter deltas until stopped.
pub async fn pusher(svc: TokenService, c: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(PUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => push(&svc, &c).await,
            _ = stopped(&mut stop) => return,
        }
    }
}

fn local_counters(svc: &TokenService) -> Vec<(TokenId, Counters)> {
    let mut all = Vec::new();
    for h in svc.pools() {
        all.extend(h.views().into_iter().map(|v| (v.id, v.counters)));
    }
    all
}

async fn push(svc: &TokenService, c: &Cluster) {
    if !c.ready() || !c.seeded.load(Ordering::Acquire) {
        return;
    }
    let now = local_counters(svc);
    let mut pipe = redis::pipe();
    let mut sent = Vec::new();
    {
        let pushed = c.pushed.lock();
        for (id, counters) in &now {
            let base = pushed.get(id).map(Counters::by_class).unwrap_or_default();
            let cur = counters.by_class();
            let key = c.key(&format!("ctr:{id}"));
            let mut any = false;
            for (i, f) in FIELDS.iter().enumerate() {
                let d = cur[i] as i64 - base[i] as i64;
                if d != 0 {
                    pipe.hincr(&key, *f, d).ignore();
                    any = true;
                }
            }
            if any {
                sent.push((id.clone(), counters.clone()));
            }
        }
    }
    if sent.is_empty() {
        return;
    }
    let done = c
        .link
        .call(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
        .await;
    if done.is_some() {
        let mut pushed = c.pushed.lock();
        for (id, counters) in sent {
            pushed.insert(id, counters);
        }
    }
}

/// After a start or a Redis restart: the first instance seeds the totals with its counters,
/// the others take their current counters as the point they push from.
pub async fn seed(svc: &TokenService, c: &Cluster) {
    let marker = c.key("ctr_seeded");
    let won = c
        .link
        .call(|mut conn| async move {
            redis::cmd("SET")
                .arg(marker)
                .arg(1)
                .arg("NX")
                .query_async::<Option<String>>(&mut conn)
                .await
        })
        .await;
    let Some(won) = won else { return };
    let now = local_counters(svc);
    let mut pushed = c.pushed.lock();
    if won.is_some() {
        pushed.clear();
    } else if !c.seeded.load(Ordering::Acquire) {
        for (id, counters) in now {
            pushed.entry(id).or_insert(counters);
        }
    }
    c.seeded.store(true, Ordering::Release);
}

impl Cluster {
    /// Forgets the push baseline of a removed token.
    pub fn forget_counters(&self, id: &TokenId) {
        self.pushed.lock().remove(id);
    }
}

/// Turns the stats flusher's counter snapshots into cluster totals before they are written,
/// so instances sharing one database write the same numbers instead of overwriting each
/// other's. No-op outside cluster mode or while Redis is down (local values are written; the
/// next flush after reconnection writes the totals again).
pub async fn to_cluster_totals(c: &Cluster, counters: &mut HashMap<TokenId, Counters>) {
    if !c.ready() || counters.is_empty() {
        return;
    }
    let ids: Vec<TokenId> = counters.keys().cloned().collect();
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(c.key(&format!("ctr:{id}")));
    }
    let Some(totals) = c
        .link
        .call(|mut conn| async move {
            pipe.query_async::<Vec<HashMap<String, u64>>>(&mut conn)
                .await
        })
        .await
    else {
        return;
    };
    let pushed = c.pushed.lock().clone();
    for (id, total) in ids.iter().zip(totals) {
        let Some(local) = counters.get_mut(id) else {
            continue;
        };
        let base = pushed.get(id).map(Counters::by_class).unwrap_or_default();
        let cur = local.by_class();
        let v: Vec<u64> = FIELDS
            .iter()
            .enumerate()
            .map(|(i, f)| total.get(*f).copied().unwrap_or(0) + cur[i].saturating_sub(base[i]))
            .collect();
        (local.success, local.auth, local.rate_limited) = (v[0], v[1], v[2]);
        (local.quota_exhausted, local.transient) = (v[3], v[4]);
        (local.client_error, local.unknown) = (v[5], v[6]);
    }
}
