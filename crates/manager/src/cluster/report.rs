//! Reports of cluster leases (`INSTANCE.POOL.N` / `INSTANCE.POOL.rN`), on any instance.
//!
//! The lease is released in Redis first ([`RELEASE`]: its record is deleted and its in-flight
//! slot freed, atomically, so a lease is reported once however many instances receive it).
//! Then the outcome is applied once:
//! - a rotation lease (no core lease anywhere): here, as a token report;
//! - a core lease held here: here, as in single-node mode;
//! - a core lease held by another instance: forwarded to it on the feed, so its core lease
//!   closes with the outcome (the answer says `"forwarded": true`).
//!
//! When Redis is down, a lease taken here (core or rotation: this instance remembers its
//! own) is reported locally; another instance's lease answers 503 `cluster_unavailable`
//! (nothing here can say which token it was).

use super::feed::Body;
use super::scripts::{LeaseRecord, RELEASE};
use crate::error::{ApiError, ApiResult};
use crate::state::{now_ms, AppState};
use crate::tasks::change_events;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tokenlb_core::{LeaseId, Outcome, PoolError, TokenId};

/// A parsed cluster lease id.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterLease {
    pub owner: String,
    pub number: u64,
    /// A rotation lease (no core lease).
    pub rotation: bool,
}

/// Parses `INSTANCE.POOL.N` / `INSTANCE.POOL.rN`; `None` for other forms.
pub fn parse(text: &str) -> Option<ClusterLease> {
    let mut it = text.split('.');
    let (owner, pool, n) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || owner.len() != 8 || !owner.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pool.parse::<usize>().ok()?;
    let (rotation, n) = match n.strip_prefix('r') {
        Some(rest) => (true, rest),
        None => (false, n),
    };
    Some(ClusterLease {
        owner: owner.to_string(),
        number: n.parse().ok()?,
        rotation,
    })
}

fn unknown() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_lease",
        "no open lease with that id (already reported or expired)",
    )
}

/// The report hook: `None` when `lease` is not a cluster lease (or this is not cluster mode).
pub async fn report(
    state: &AppState,
    lease: &str,
    outcome: &Outcome,
) -> Option<ApiResult<Json<Value>>> {
    let c = state.cluster()?;
    let parsed = parse(lease)?;
    let key = c.key(&format!("lease:{lease}"));
    let (prefix, id) = (c.prefix.clone(), lease.to_string());
    let released = if c.link.is_up() {
        c.link
            .call(|mut conn| async move {
                RELEASE
                    .key(key)
                    .arg(prefix)
                    .arg(id)
                    .invoke_async::<Option<String>>(&mut conn)
                    .await
            })
            .await
    } else {
        None
    };
    let record = match released {
        Some(Some(text)) => match LeaseRecord::decode(&text) {
            Some(r) => r,
            None => return Some(Err(ApiError::internal("malformed lease record in redis"))),
        },
        Some(None) => return Some(Err(unknown())),
        None if parsed.owner == c.instance && !parsed.rotation => {
            return Some(local(state, lease, parsed.number, None, outcome));
        }
        None if parsed.owner == c.instance => {
            let own = c.own_rotation.lock().remove(&parsed.number);
            return Some(match own {
                Some((token, deadline)) if deadline > now_ms() => {
                    local(state, "", 0, Some(token), outcome)
                }
                _ => Err(unknown()),
            });
        }
        None => {
            return Some(Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                "redis is unreachable; this lease can only be reported when it is back",
            )
            .with_retry_after(1)))
        }
    };
    let token = TokenId(record.token.clone());
    if parsed.rotation && parsed.owner == c.instance {
        c.own_rotation.lock().remove(&parsed.number);
    }
    if record.core && record.owner != c.instance {
        c.send(Body::Report {
            owner: record.owner,
            pool: record.pool.clone(),
            lease: parsed.number,
            outcome: outcome.into(),
        });
        state.metrics.outcome(outcome.class.as_str(), &record.pool);
        let st = state
            .token_pool(&token)
            .and_then(|h| h.pool.lock().get(&token))
            .map(|v| v.state);
        return Some(Ok(Json(
            json!({ "ok": true, "id": token, "state": st, "forwarded": true }),
        )));
    }
    let number = record.core.then_some(parsed.number);
    Some(local(
        state,
        &record.pool,
        number.unwrap_or(0),
        (!record.core).then_some(token),
        outcome,
    ))
}

/// Applies the outcome here: to core lease `number` of `pool`, or (rotation) to `token`.
fn local(
    state: &AppState,
    pool_or_lease: &str,
    number: u64,
    token: Option<TokenId>,
    outcome: &Outcome,
) -> ApiResult<Json<Value>> {
    let handle = match &token {
        Some(t) => state.token_pool(t),
        None => state
            .pool_by_name(pool_or_lease)
            .or_else(|| pool_index(pool_or_lease).and_then(|i| state.pool_by_index(i))),
    }
    .ok_or_else(unknown)?;
    let now = now_ms();
    let mut rng = rand::thread_rng();
    let (id, events, view) = {
        let mut pool = handle.pool.lock();
        let result = match &token {
            Some(t) => pool
                .report_token(t, outcome, now, &mut rng)
                .map(|ch| (t.clone(), ch)),
            None => pool.report(LeaseId(number), outcome, now, &mut rng),
        };
        let (id, changes) = result.map_err(|e| match e {
            PoolError::UnknownLease | PoolError::UnknownToken(_) => unknown(),
            e => ApiError::internal(format!("report: {e}")),
        })?;
        let events = change_events(&pool, &handle.name, &changes);
        let view = pool.get(&id);
        (id, events, view)
    };
    state.metrics.outcome(outcome.class.as_str(), &handle.name);
    state.record_changes(&handle, events);
    handle.notify.notify_waiters();
    Ok(Json(
        json!({ "ok": true, "id": id, "state": view.map(|v| v.state) }),
    ))
}

/// The pool index inside a lease id `INSTANCE.POOL.N`.
fn pool_index(lease: &str) -> Option<usize> {
    lease.split('.').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_lease_ids_parse() {
        assert_eq!(
            parse("0badcafe.2.17"),
            Some(ClusterLease {
                owner: "0badcafe".into(),
                number: 17,
                rotation: false
            })
        );
        assert!(parse("0badcafe.0.r5").is_some_and(|l| l.rotation && l.number == 5));
        assert_eq!(parse("2.17"), None);
        assert_eq!(parse("nothex!!.1.2"), None);
        assert_eq!(parse("0badcafe.x.2"), None);
        assert_eq!(parse("0badcafe.1.2.3"), None);
    }
}
