//! Leasing and reporting (DESIGN §2–§3, §9's batch form).
//!
//! A local lease id is `<pool index>.<epoch>.<lease number>.<tag>` ([`LeaseIds`]), so a
//! report finds its pool without a lookup table; a [`Coordinator`](super::Coordinator) may
//! hand out and settle ids of its own form. Every door takes the caller's [`Scope`]: a key
//! outside its pools is refused, and reports by token id or value need the right to. [`TokenService::lease`] with `wait_ms` waits on the pool's `Notify` (woken by
//! reports, ticks, adds and patches) rather than polling; with nothing eligible it fails
//! with the earliest known recovery (at least 1 s).

use super::coordinator::Picked;
use super::registry::PoolHandle;
use super::{Scope, ServiceError, ServiceResult, TokenService};
use crate::service::now_ms;
use crate::validate::MAX_WAIT_MS;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{
    LeaseId, Outcome, OutcomeClass, PoolError, Strategy, TokenId, TokenState, Unavailable,
};

/// Most reports in one batch (DESIGN §9).
pub const MAX_BATCH: usize = 1000;
/// Longest cooling a report's `retry_after_s` may ask for (DESIGN §9's `max_cooling_s`): a
/// client cannot take a token out of rotation for a month with one report.
pub const MAX_COOLING_S: u64 = 3600;
/// Furthest a renewal may move a lease's deadline from now (DESIGN §9's `max_lease_s`).
pub const MAX_LEASE_S: u64 = 3600;

/// What a `get` asks for.
#[derive(Debug)]
pub struct LeaseRequest<'a> {
    /// Who asks.
    pub scope: &'a Scope,
    /// Pool name; `default` when absent.
    pub pool: Option<&'a str>,
    /// Strategy name; the pool's default when absent or empty.
    pub strategy: Option<&'a str>,
    /// How long to wait for an eligible token (0: answer at once).
    pub wait_ms: u64,
}

/// One report: of a lease, or (the seed's form) of a token by value or id; or, at the top
/// level only, a batch of them (DESIGN §9).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub lease: Option<String>,
    pub outcome: Option<OutcomeClass>,
    pub latency_ms: Option<u32>,
    pub status: Option<u16>,
    pub retry_after_s: Option<u64>,
    pub error: Option<String>,
    pub token: Option<String>,
    pub id: Option<TokenId>,
    /// With `lease`: the token the caller believes holds it; another holder is `409`.
    pub token_id: Option<TokenId>,
    /// The seed's form: `true` is a success, `false` a transient failure.
    pub success: Option<bool>,
    /// The batch form: `{"reports":[…]}` and nothing else beside it.
    pub reports: Option<Vec<ReportRequest>>,
}

impl ReportRequest {
    /// The outcome it reports (the error text cut to a sample).
    fn outcome(&self) -> ServiceResult<Outcome> {
        let class = match (self.outcome, self.success) {
            (Some(c), _) => c,
            (None, Some(true)) => OutcomeClass::Success,
            (None, Some(false)) => OutcomeClass::Transient,
            (None, None) => {
                return Err(ServiceError::invalid(
                    "give \"outcome\" (or the seed's \"success\": bool)",
                ))
            }
        };
        let error = self.error.as_deref().map(crate::validate::error_sample);
        Ok(Outcome {
            class,
            latency_ms: self.latency_ms,
            status: self.status,
            retry_after_s: self.retry_after_s.map(|s| s.clamp(1, MAX_COOLING_S)),
            error: error.filter(|s| !s.is_empty()),
        })
    }

    /// Whether it is a batch and nothing else.
    pub fn is_batch(&self) -> bool {
        let ReportRequest {
            lease,
            outcome,
            latency_ms,
            status,
            retry_after_s,
            error,
            token,
            id,
            token_id,
            success,
            reports,
        } = self;
        reports.is_some()
            && token_id.is_none()
            && lease.is_none()
            && outcome.is_none()
            && latency_ms.is_none()
            && status.is_none()
            && retry_after_s.is_none()
            && error.is_none()
            && token.is_none()
            && id.is_none()
            && success.is_none()
    }
}

/// What a report did.
#[derive(Debug, Serialize)]
pub struct ReportAck {
    pub id: TokenId,
    pub ok: bool,
    pub state: Option<TokenState>,
    /// Settled by the peer that holds the lease.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// The report took the token out of rotation (to `invalid` or `disabled`): the change
    /// is written to the store before the report is answered.
    #[serde(skip)]
    pub out_of_rotation: bool,
}

impl ReportAck {
    pub fn new(id: TokenId, state: Option<TokenState>) -> ReportAck {
        ReportAck {
            id,
            ok: true,
            state,
            forwarded: false,
            out_of_rotation: false,
        }
    }
}

/// Whether `changes` take `id` out of rotation until someone acts.
fn takes_out(changes: &[tokenlb_core::StateChange], id: &TokenId) -> bool {
    changes.iter().any(|c| {
        c.token_id == *id
            && c.from != c.to
            && matches!(c.to, TokenState::Invalid | TokenState::Disabled)
    })
}

/// Local lease ids are capabilities (DESIGN §9): `<pool>.<epoch>.<n>.<tag>`. The epoch is
/// drawn at every start, so an id from before a restart never names a lease of this run;
/// the tag is a keyed hash (SipHash with a key drawn at start) of the other three parts, so
/// an id cannot be guessed by counting. Neither needs storing: both are checked by
/// recomputing.
pub(crate) struct LeaseIds {
    epoch: u32,
    key: std::collections::hash_map::RandomState,
}

impl LeaseIds {
    pub(crate) fn new() -> LeaseIds {
        LeaseIds {
            epoch: rand::random(),
            key: std::collections::hash_map::RandomState::new(),
        }
    }

    fn tag(&self, pool: usize, n: u64) -> u64 {
        use std::hash::BuildHasher;
        self.key.hash_one((pool, self.epoch, n))
    }

    /// The id of lease `lease` of pool `pool`.
    pub(crate) fn format(&self, pool: usize, lease: LeaseId) -> String {
        let tag = self.tag(pool, lease.0);
        // By hand: `format!` cost about 2,900 instructions here, a tenth of a `get`.
        let mut id = String::with_capacity(64);
        push_decimal(&mut id, pool as u64);
        id.push('.');
        push_hex(&mut id, u64::from(self.epoch), 8);
        id.push('.');
        push_decimal(&mut id, lease.0);
        id.push('.');
        push_hex(&mut id, tag, 16);
        id
    }

    /// The pool and lease an id names, if it is one of this run's.
    pub(crate) fn parse(&self, text: &str) -> Option<(usize, LeaseId)> {
        let mut it = text.split('.');
        let (pool, epoch, n, tag) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || epoch.len() != 8 || tag.len() != 16 {
            return None;
        }
        let (pool, n): (usize, u64) = (pool.parse().ok()?, n.parse().ok()?);
        let fresh = u32::from_str_radix(epoch, 16).ok()? == self.epoch;
        let genuine = u64::from_str_radix(tag, 16).ok()? == self.tag(pool, n);
        (fresh && genuine).then_some((pool, LeaseId(n)))
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: always UTF-8; one copy instead of a char-by-char push.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

/// Appends the low `width` hex digits of `n` (lower case, zero-padded).
fn push_hex(out: &mut String, n: u64, width: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [b'0'; 16];
    let width = (width as usize).min(16);
    for (i, d) in digits[..width].iter_mut().enumerate() {
        let shift = (width - 1 - i) * 4;
        *d = HEX[((n >> shift) & 0xf) as usize];
    }
    out.push_str(std::str::from_utf8(&digits[..width]).unwrap_or_default());
}

/// A caller counted among a pool's long-poll waiters while it lives.
struct Waiting<'a>(&'a PoolHandle);

impl<'a> Waiting<'a> {
    /// Counts one more waiter, or refuses when `max` already wait.
    fn enter(handle: &'a PoolHandle, max: usize) -> ServiceResult<Waiting<'a>> {
        use std::sync::atomic::Ordering;
        let admitted = handle
            .waiters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match admitted {
            Ok(_) => Ok(Waiting(handle)),
            Err(_) => Err(ServiceError::TooManyWaiters {
                pool: handle.name.clone(),
                max,
            }),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .waiters
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn parse_strategy(s: Option<&str>) -> ServiceResult<Option<Strategy>> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ServiceError::UnknownStrategy(s.to_string())),
    }
}

impl TokenService {
    /// Leases a token (waiting up to `wait_ms` for one); returns the lease and its pool.
    pub async fn lease(&self, req: LeaseRequest<'_>) -> ServiceResult<(Picked, Arc<PoolHandle>)> {
        let strategy = parse_strategy(req.strategy)?;
        if req.wait_ms > MAX_WAIT_MS {
            return Err(ServiceError::invalid(format!(
                "wait_ms must be at most {MAX_WAIT_MS}"
            )));
        }
        let handle = self.named_pool(req.pool)?;
        req.scope.check(&handle.name)?;
        let strategy = strategy.unwrap_or_else(|| handle.lock().policy().strategy);
        // Read the clock only when the caller may wait.
        let deadline =
            (req.wait_ms > 0).then(|| Instant::now() + Duration::from_millis(req.wait_ms));
        // Taken before the first wait, so callers that are served at once never count.
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let notified = handle.notify.notified();
            tokio::pin!(notified);
            if deadline.is_some() {
                // Registered before the pick, so a report between the pick and the wait is
                // not missed. Without waiting there is nothing to miss, and the Notify's lock
                // is not taken on every get.
                notified.as_mut().enable();
            }
            let started = Instant::now();
            let picked = self.pick(&handle, strategy).await;
            self.metrics()
                .pick_duration(&handle.name, started.elapsed());
            let unavailable = match picked {
                Ok(picked) => {
                    self.metrics().pick(strategy, &handle.name);
                    return Ok((picked, Arc::clone(&handle)));
                }
                Err(u) => u,
            };
            let retry_in = unavailable.retry_at.map(|t| t.saturating_sub(now_ms()));
            let now = Instant::now();
            let deadline = match deadline {
                Some(d) if now < d => d,
                _ => {
                    self.metrics().unavailable();
                    return Err(ServiceError::NoTokenAvailable {
                        reason: self.with_other_pools(&handle, req.scope, unavailable.reason),
                        retry_after_s: retry_in.map_or(5, |ms| ms.div_ceil(1000)).max(1),
                    });
                }
            };
            if waiting.is_none() {
                waiting = Some(Waiting::enter(&handle, self.config().max_waiters)?);
            }
            // Sleep until woken, the caller's deadline, the known recovery time, or 1 s at
            // most (limits such as rpm windows free up without an event).
            let mut nap = (deadline - now).min(Duration::from_secs(1));
            if let Some(ms) = retry_in {
                nap = nap.min(Duration::from_millis(ms.max(10)));
            }
            let mut closing = self.closing();
            tokio::select! {
                woken = tokio::time::timeout(nap, notified) => {
                    if woken.is_ok() {
                        handle.wakeups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                _ = closing.wait_for(|c| *c) => return Err(ServiceError::ShuttingDown),
            }
        }
    }

    /// An empty pool's 503 names the pools (the caller may use) that do hold tokens: the
    /// usual cause is a request for `default` while the tokens went to another pool.
    fn with_other_pools(&self, handle: &PoolHandle, scope: &Scope, reason: String) -> String {
        if !handle.lock().is_empty() {
            return reason;
        }
        let others: Vec<String> = self
            .pools()
            .iter()
            .filter(|p| p.name != handle.name && scope.allows(&p.name))
            .filter_map(|p| {
                let n = p.lock().len();
                (n > 0).then(|| format!("{} ({n})", p.name))
            })
            .collect();
        if others.is_empty() {
            format!(
                "{reason}; no pool has tokens yet: add one with POST /api/token/add or tokens.json"
            )
        } else {
            format!(
                "{reason}; pools with tokens: {} (choose one with ?pool=NAME)",
                others.join(", ")
            )
        }
    }

    async fn pick(&self, handle: &PoolHandle, strategy: Strategy) -> Result<Picked, Unavailable> {
        let c = self.coordinator();
        if c.takes_pick(strategy) {
            c.pick(self, handle, strategy).await
        } else {
            self.local_pick(handle, strategy)
        }
    }

    /// The single-node pick (also the coordinator's fallback).
    pub fn local_pick(
        &self,
        handle: &PoolHandle,
        strategy: Strategy,
    ) -> Result<Picked, Unavailable> {
        let lease = handle
            .lock()
            .pick(strategy, now_ms(), &mut rand::thread_rng())?;
        Ok(Picked {
            lease_id: self.lease_ids().format(handle.index, lease.id),
            lease,
        })
    }

    /// Applies one report from `scope`. A report that takes its token out of rotation is
    /// answered only once that state is in the store (DESIGN §9: it survives a crash);
    /// cooling and counters stay batched.
    pub async fn report(&self, req: ReportRequest, scope: &Scope) -> ServiceResult<ReportAck> {
        let ack = self.report_unsaved(req, scope).await?;
        if ack.out_of_rotation {
            self.persist_state_now(&ack.id).await?;
        }
        Ok(ack)
    }

    async fn report_unsaved(&self, req: ReportRequest, scope: &Scope) -> ServiceResult<ReportAck> {
        if req.reports.is_some() {
            return Err(ServiceError::invalid(
                "\"reports\" is a batch: give it alone, and not inside a batch",
            ));
        }
        let outcome = req.outcome()?;
        match req.lease {
            Some(lease) if self.coordinator().takes_report(&lease) => {
                let pool = self
                    .coordinator()
                    .lease_pool(&lease)
                    .and_then(|i| self.pool_by_index(i));
                match pool {
                    Some(handle) => scope.check(&handle.name)?,
                    None => return Err(ServiceError::UnknownLease),
                }
                self.coordinator().report(self, &lease, &outcome).await
            }
            Some(lease) => self.report_local_lease(&lease, req.token_id.as_ref(), &outcome, scope),
            None => {
                if req.token_id.is_some() {
                    return Err(ServiceError::invalid(
                        "\"token_id\" checks a lease: give it with \"lease\"",
                    ));
                }
                scope.check_report_by_id()?;
                let by = super::TokenRef {
                    token: req.token,
                    id: req.id,
                    by: None,
                };
                let id = self.resolve(&by).await?;
                if let Some(handle) = self.token_pool(&id) {
                    scope.check(&handle.name)?;
                }
                self.report_token(&id, &outcome)
            }
        }
    }

    /// Applies up to [`MAX_BATCH`] reports, each on its own: one refused report does not
    /// stop the others. Results are in the order of the requests.
    pub async fn report_batch(
        &self,
        reqs: Vec<ReportRequest>,
        scope: &Scope,
    ) -> ServiceResult<Vec<ServiceResult<ReportAck>>> {
        if reqs.len() > MAX_BATCH {
            return Err(ServiceError::invalid(format!(
                "a batch holds at most {MAX_BATCH} reports; this one has {}",
                reqs.len()
            )));
        }
        let mut results = Vec::with_capacity(reqs.len());
        for req in reqs {
            results.push(self.report(req, scope).await);
        }
        Ok(results)
    }

    /// Moves an open lease's deadline to `extend_s` from now (the pool's lease TTL when
    /// absent; at most [`MAX_LEASE_S`]), so a long upload or stream keeps its token. Returns
    /// the token's id and the new deadline.
    pub fn renew(
        &self,
        lease: &str,
        extend_s: Option<u64>,
        scope: &Scope,
    ) -> ServiceResult<(TokenId, u64)> {
        if self.coordinator().takes_report(lease) {
            return Err(ServiceError::invalid(
                "a cluster lease cannot be renewed; report it and lease again",
            ));
        }
        let (index, number) = self
            .lease_ids()
            .parse(lease)
            .ok_or(ServiceError::UnknownLease)?;
        let handle = self
            .pool_by_index(index)
            .ok_or(ServiceError::UnknownLease)?;
        scope.check(&handle.name)?;
        let extend_s = extend_s.unwrap_or_else(|| handle.policy().lease_ttl_s);
        if extend_s == 0 || extend_s > MAX_LEASE_S {
            return Err(ServiceError::invalid(format!(
                "extend_s must be between 1 and {MAX_LEASE_S}"
            )));
        }
        let now = now_ms();
        let deadline = now + extend_s * 1000;
        let id = handle
            .lock()
            .renew(number, deadline, now)
            .map_err(|_| ServiceError::UnknownLease)?;
        Ok((id, deadline))
    }

    /// Closes a local lease with its outcome, for `scope`; with `token_id`, only if the
    /// lease is that token's (else [`ServiceError::LeaseTokenMismatch`], lease left open).
    pub fn report_local_lease(
        &self,
        lease: &str,
        token_id: Option<&TokenId>,
        outcome: &Outcome,
        scope: &Scope,
    ) -> ServiceResult<ReportAck> {
        let (index, lease) = self
            .lease_ids()
            .parse(lease)
            .ok_or(ServiceError::UnknownLease)?;
        let handle = self
            .pool_by_index(index)
            .ok_or(ServiceError::UnknownLease)?;
        scope.check(&handle.name)?;
        if let Some(expected) = token_id {
            match handle.lock().lease_holder(lease) {
                Some(holder) if holder == *expected => {}
                Some(_) => return Err(ServiceError::LeaseTokenMismatch),
                None => return Err(ServiceError::UnknownLease),
            }
        }
        self.report_core_lease(&handle, lease, outcome)
    }

    /// Closes core lease `lease` of `handle`'s pool with its outcome.
    pub fn report_core_lease(
        &self,
        handle: &PoolHandle,
        lease: LeaseId,
        outcome: &Outcome,
    ) -> ServiceResult<ReportAck> {
        let ack = self.mutate_freeing(handle, |pool| {
            match pool.report(lease, outcome, now_ms(), &mut rand::thread_rng()) {
                Ok((id, changes)) => {
                    let state = pool.state_of(&id);
                    let mut ack = ReportAck::new(id, state);
                    ack.out_of_rotation = takes_out(&changes, &ack.id);
                    Ok((ack, changes))
                }
                Err(PoolError::UnknownLease) | Err(PoolError::UnknownToken(_)) => {
                    Err(ServiceError::UnknownLease)
                }
                Err(e) => Err(ServiceError::internal(format!("report: {e}"))),
            }
        })?;
        self.metrics().reported(outcome, &handle.name);
        Ok(ack)
    }

    /// Applies an outcome to a token directly (the seed's report form; cluster rotation
    /// leases, which hold no core lease).
    pub fn report_token(&self, id: &TokenId, outcome: &Outcome) -> ServiceResult<ReportAck> {
        let handle = self
            .token_pool(id)
            .ok_or(ServiceError::UnknownToken(None))?;
        let ack = self.mutate(&handle, |pool| {
            let changes = pool
                .report_token(id, outcome, now_ms(), &mut rand::thread_rng())
                .map_err(|_| ServiceError::UnknownToken(None))?;
            let state = pool.state_of(id);
            let mut ack = ReportAck::new(id.clone(), state);
            ack.out_of_rotation = takes_out(&changes, id);
            Ok::<_, ServiceError>((ack, changes))
        })?;
        self.metrics().reported(outcome, &handle.name);
        Ok(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_round_trip_and_others_are_refused() {
        let ids = LeaseIds::new();
        let id = ids.format(3, LeaseId(42));
        assert_eq!(ids.parse(&id), Some((3, LeaseId(42))));
        // Another run (a restart) does not know it, even for the same pool and number.
        assert_eq!(LeaseIds::new().parse(&id), None);
        // Counting does not forge one: the next number with the same tag is refused.
        let parts: Vec<&str> = id.split('.').collect();
        let forged = format!("{}.{}.43.{}", parts[0], parts[1], parts[3]);
        assert_eq!(ids.parse(&forged), None);
        for bad in [
            "x.1",
            "12",
            "3.42",
            "0.1",
            "3.zzzzzzzz.42.0000000000000000",
            &format!("{id}.1"),
        ] {
            assert_eq!(ids.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn lease_ids_are_written_as_format_would() {
        let ids = LeaseIds::new();
        for (pool, n) in [(0, 0), (7, 9), (12, 1_000_000), (usize::MAX >> 1, u64::MAX)] {
            let expected = format!("{pool}.{:08x}.{n}.{:016x}", ids.epoch, ids.tag(pool, n));
            assert_eq!(ids.format(pool, LeaseId(n)), expected);
        }
    }

    #[test]
    fn strategies_parse_or_are_refused_by_name() {
        assert_eq!(parse_strategy(None).unwrap(), None);
        assert_eq!(parse_strategy(Some("")).unwrap(), None);
        assert_eq!(parse_strategy(Some("best")).unwrap(), Some(Strategy::Best));
        assert!(matches!(
            parse_strategy(Some("fastest")),
            Err(ServiceError::UnknownStrategy(s)) if s == "fastest"
        ));
    }
}
