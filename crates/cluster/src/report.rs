//! Reports of cluster leases (`INSTANCE.POOL.N.TAG` / `INSTANCE.POOL.rN.TAG`), on any
//! instance. The tag is a keyed hash (SipHash, key drawn at start) of the rest, so an id
//! cannot be made up by counting (DESIGN §9): with Redis up a report must name the whole id
//! (its record's key), with Redis down the owner checks the tag by recomputing it.
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
use super::Cluster;
use tokenlb_core::{LeaseId, Outcome, TokenId};
use tokenlb_manager::service::now_ms;
use tokenlb_manager::service::{ReportAck, ServiceError, ServiceResult, TokenService};

/// A parsed cluster lease id.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterLease {
    pub owner: String,
    pub pool: usize,
    pub number: u64,
    /// A rotation lease (no core lease).
    pub rotation: bool,
    pub tag: u64,
}

/// This instance's lease-id tags (a fresh key per start).
#[derive(Default)]
pub struct Tags(std::collections::hash_map::RandomState);

impl Tags {
    pub fn new() -> Tags {
        Tags::default()
    }

    fn tag(&self, owner: &str, pool: usize, number: u64, rotation: bool) -> u64 {
        use std::hash::BuildHasher;
        self.0.hash_one((owner, pool, number, rotation))
    }

    /// The id of a lease this instance (`owner`) hands out.
    pub fn format(&self, owner: &str, pool: usize, number: u64, rotation: bool) -> String {
        let tag = self.tag(owner, pool, number, rotation);
        let r = if rotation { "r" } else { "" };
        format!("{owner}.{pool}.{r}{number}.{tag:016x}")
    }

    /// Whether `lease` is one this instance handed out (checked by recomputing its tag).
    pub fn genuine(&self, lease: &ClusterLease) -> bool {
        lease.tag == self.tag(&lease.owner, lease.pool, lease.number, lease.rotation)
    }
}

/// Parses `INSTANCE.POOL.N.TAG` / `INSTANCE.POOL.rN.TAG`; `None` for other forms.
pub fn parse(text: &str) -> Option<ClusterLease> {
    let mut it = text.split('.');
    let (owner, pool, n, tag) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some()
        || owner.len() != 8
        || !owner.bytes().all(|b| b.is_ascii_hexdigit())
        || tag.len() != 16
    {
        return None;
    }
    let (rotation, n) = match n.strip_prefix('r') {
        Some(rest) => (true, rest),
        None => (false, n),
    };
    Some(ClusterLease {
        owner: owner.to_string(),
        pool: pool.parse().ok()?,
        number: n.parse().ok()?,
        rotation,
        tag: u64::from_str_radix(tag, 16).ok()?,
    })
}

/// Settles a report of a cluster lease (the caller checked that [`parse`] accepts it).
pub async fn report(
    svc: &TokenService,
    c: &Cluster,
    lease: &str,
    outcome: &Outcome,
) -> ServiceResult<ReportAck> {
    let parsed = parse(lease).ok_or(ServiceError::UnknownLease)?;
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
        Some(Some(text)) => LeaseRecord::decode(&text)
            .ok_or_else(|| ServiceError::internal("malformed lease record in redis"))?,
        Some(None) => return Err(ServiceError::UnknownLease),
        None => return report_while_down(svc, c, &parsed, outcome),
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
        svc.metrics().reported(outcome, &record.pool);
        let state = svc.token_pool(&token).and_then(|h| h.state_of(&token));
        let mut ack = ReportAck::new(token, state);
        ack.forwarded = true;
        return Ok(ack);
    }
    if record.core {
        let handle = svc
            .pool_by_name(&record.pool)
            .ok_or(ServiceError::UnknownLease)?;
        return svc.report_core_lease(&handle, LeaseId(parsed.number), outcome);
    }
    rotation_report(svc, &token, outcome)
}

/// Redis is down: only a lease taken here can be settled (this instance remembers its own).
fn report_while_down(
    svc: &TokenService,
    c: &Cluster,
    parsed: &ClusterLease,
    outcome: &Outcome,
) -> ServiceResult<ReportAck> {
    if parsed.owner != c.instance {
        return Err(ServiceError::ClusterUnavailable);
    }
    if !c.tags.genuine(parsed) {
        return Err(ServiceError::UnknownLease);
    }
    if !parsed.rotation {
        let handle = svc
            .pool_by_index(parsed.pool)
            .ok_or(ServiceError::UnknownLease)?;
        return svc.report_core_lease(&handle, LeaseId(parsed.number), outcome);
    }
    match c.own_rotation.lock().remove(&parsed.number) {
        Some((token, deadline)) if deadline > now_ms() => rotation_report(svc, &token, outcome),
        _ => Err(ServiceError::UnknownLease),
    }
}

/// A rotation lease holds no core lease: its outcome goes to the token.
fn rotation_report(
    svc: &TokenService,
    token: &TokenId,
    outcome: &Outcome,
) -> ServiceResult<ReportAck> {
    svc.report_token(token, outcome).map_err(|e| match e {
        ServiceError::UnknownToken(_) => ServiceError::UnknownLease,
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_lease_ids_parse_and_cannot_be_counted() {
        let tags = Tags::new();
        let id = tags.format("0badcafe", 2, 17, false);
        let parsed = parse(&id).unwrap();
        assert_eq!(
            (parsed.pool, parsed.number, parsed.rotation),
            (2, 17, false)
        );
        assert!(tags.genuine(&parsed));
        let rot = parse(&tags.format("0badcafe", 0, 5, true)).unwrap();
        assert!(rot.rotation && rot.number == 5 && tags.genuine(&rot));
        // The next number with the same tag is not genuine; another start's tags neither.
        let forged = id.replacen(".17.", ".18.", 1);
        assert!(!tags.genuine(&parse(&forged).unwrap()));
        assert!(!Tags::new().genuine(&parsed));
        assert_eq!(parse("2.17"), None);
        assert_eq!(parse("0badcafe.2.17"), None, "the untagged form of before");
        assert_eq!(parse("nothex!!.1.2.0000000000000000"), None);
        assert_eq!(parse("0badcafe.x.2.0000000000000000"), None);
        // A local id (pool.epoch.n.tag) is not a cluster id.
        assert_eq!(parse("0.1234abcd.5.0123456789abcdef"), None);
    }
}
