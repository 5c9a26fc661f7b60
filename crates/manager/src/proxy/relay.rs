//! The lease of a proxied request, and the body that carries it to the caller.
//!
//! [`Held`] is the lease as a guard (tower's in-flight guard that records on `Drop`): it is
//! reported exactly once, through [`TokenService::report`] — explicitly
//! ([`Held::report_now`]), when the delivered body ends, or, when the handler's future or
//! the body is dropped because the caller went away, from `Drop`. A caller that hangs up
//! before the answer's head is reported `unknown` (not the token's fault, and its in-flight
//! slot is freed); one that hangs up while a successful answer streams, as the success the
//! upstream had already answered.
//!
//! [`Relay`] streams the upstream body chunk by chunk as it arrives (no buffering beyond
//! the peeked prefix), with an idle timeout between chunks; an upstream that breaks off or
//! stalls mid-body turns the report into `transient`.

use super::Route;
use crate::service::{ReportRequest, Scope, TokenService, MAX_LEASE_S};
use bytes::Bytes;
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokenlb_core::OutcomeClass;

/// A leased token not yet reported.
pub struct Held(Option<Inner>);

struct Inner {
    svc: TokenService,
    scope: Scope,
    route: Arc<Route>,
    lease: String,
    /// What `Drop` reports: `unknown` until an answer is being delivered.
    on_drop: ReportRequest,
}

fn unknown() -> ReportRequest {
    ReportRequest {
        outcome: Some(OutcomeClass::Unknown),
        ..ReportRequest::default()
    }
}

impl Held {
    pub fn new(svc: &TokenService, scope: &Scope, route: &Arc<Route>, lease: &str) -> Held {
        Held(Some(Inner {
            svc: svc.clone(),
            scope: scope.clone(),
            route: route.clone(),
            lease: lease.to_string(),
            on_drop: unknown(),
        }))
    }

    /// Reports `report` now (and waits for it, so the next pick sees the new state). A
    /// second call does nothing.
    pub async fn report_now(&mut self, report: &ReportRequest) {
        if let Some(inner) = self.0.take() {
            let req = inner.with(report);
            send(&inner, req).await;
        }
    }

    /// Hands back a lease that was not used (a token tried already): `unknown`, not counted
    /// as a forwarded request.
    pub async fn release(mut self) {
        if let Some(inner) = self.0.take() {
            let req = inner.with(&unknown());
            if let Err(e) = inner.svc.report(req, &inner.scope).await {
                tracing::debug!(route = %inner.route.name(), "proxy: release not applied: {e}");
            }
        }
    }

    /// The lease is kept while a successful answer streams: its deadline moves out of the
    /// way of long streams, and `report` is sent when the body ends or is dropped.
    pub fn keep_for_stream(mut self, report: ReportRequest) -> Option<Held> {
        let inner = self.0.as_mut()?;
        // A long stream must not see its lease closed as `unknown` by the timer.
        let _ = inner
            .svc
            .renew(&inner.lease, Some(MAX_LEASE_S), &inner.scope);
        inner.on_drop = report;
        Some(self)
    }

    /// Ends the lease from synchronous code (a body's poll, `Drop`): the report is sent on
    /// the runtime. `failure` replaces the kept report with a transient one.
    fn finish(&mut self, failure: Option<String>) {
        let Some(inner) = self.0.take() else { return };
        let mut req = inner.with(&inner.on_drop);
        if let Some(error) = failure {
            req.outcome = Some(OutcomeClass::Transient);
            req.error = Some(error);
        }
        if !inner.svc.coordinator().takes_report(&inner.lease) {
            // A local lease settles here and now (no task per request): the same service
            // door `report` takes for it.
            inner.settle_local(&req);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { send(&inner, req).await });
            }
            Err(_) => {
                tracing::warn!(route = %inner.route.name(), "proxy: lease left to expire (no runtime)")
            }
        }
    }
}

/// Longest cooling a report may ask for (DESIGN §9's `max_cooling_s`, as `report` clamps).
const MAX_COOLING_S: u64 = 3600;

impl Inner {
    /// Reports a local lease without awaiting: through
    /// [`TokenService::report_local_lease`]; a change out of rotation is then written to the
    /// store on a task, as `report` would before answering.
    fn settle_local(&self, req: &ReportRequest) {
        let class = req.outcome.unwrap_or(OutcomeClass::Unknown);
        self.route.count(&self.svc, class);
        let outcome = tokenlb_core::Outcome {
            class,
            latency_ms: req.latency_ms,
            status: req.status,
            retry_after_s: req.retry_after_s.map(|s| s.clamp(1, MAX_COOLING_S)),
            error: req.error.as_deref().map(crate::validate::error_sample),
        };
        match self
            .svc
            .report_local_lease(&self.lease, None, &outcome, &self.scope)
        {
            Ok(ack) if ack.out_of_rotation => {
                let svc = self.svc.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { svc.persist_state_now(&ack.id).await });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(route = %self.route.name(), "proxy: report not applied: {e}"),
        }
    }

    fn with(&self, report: &ReportRequest) -> ReportRequest {
        ReportRequest {
            lease: Some(self.lease.clone()),
            outcome: report.outcome,
            latency_ms: report.latency_ms,
            status: report.status,
            retry_after_s: report.retry_after_s,
            error: report.error.clone(),
            ..ReportRequest::default()
        }
    }
}

async fn send(inner: &Inner, req: ReportRequest) {
    let class = req.outcome.unwrap_or(OutcomeClass::Unknown);
    inner.route.count(&inner.svc, class);
    if let Err(e) = inner.svc.report(req, &inner.scope).await {
        tracing::debug!(route = %inner.route.name(), "proxy: report not applied: {e}");
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.finish(None);
    }
}

type Upstream = http_body_util::BodyDataStream<hyper::body::Incoming>;

/// The upstream body on its way to the caller (see the module doc).
pub struct Relay {
    /// Bytes read for the rules before the answer was delivered: they go out first.
    prefix: Option<Bytes>,
    upstream: Upstream,
    held: Option<Held>,
    idle: Duration,
    stall: Pin<Box<tokio::time::Sleep>>,
}

impl Relay {
    pub fn new(prefix: Bytes, upstream: Upstream, held: Option<Held>, idle: Duration) -> Relay {
        Relay {
            prefix: (!prefix.is_empty()).then_some(prefix),
            upstream,
            held,
            idle,
            stall: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn fail(&mut self, why: String) -> std::io::Error {
        if let Some(mut h) = self.held.take() {
            h.finish(Some(why.clone()));
        }
        std::io::Error::other(why)
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(p) = this.prefix.take() {
            return Poll::Ready(Some(Ok(p)));
        }
        match Pin::new(&mut this.upstream).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.stall.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let why = match super::causes(&e) {
                    Some(cause) => format!("upstream body broke off: {e}: {cause}"),
                    None => format!("upstream body broke off: {e}"),
                };
                Poll::Ready(Some(Err(this.fail(why))))
            }
            Poll::Ready(None) => {
                if let Some(mut h) = this.held.take() {
                    h.finish(None);
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.stall.as_mut().poll(cx).is_ready() {
                    let why = format!(
                        "upstream body stalled for more than {} s",
                        this.idle.as_secs()
                    );
                    return Poll::Ready(Some(Err(this.fail(why))));
                }
                Poll::Pending
            }
        }
    }
}
