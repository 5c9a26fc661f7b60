//! What the client remembers so it can work without the manager for a while.
//!
//! Three things, kept together under one short-held lock (never across an `.await`):
//! - the last-known good tokens (those the manager handed out recently, minus those that
//!   failed), used round robin while the manager is unreachable;
//! - when the manager was first seen unreachable, which bounds the grace period, and when it
//!   was last probed, so a lease does not wait for a dead manager every time;
//! - the reports that could not be sent, in a bounded queue that drops the oldest first.
//!
//! Time comes in as an argument, so the rules here are tested without clocks or sleeps.

use crate::lease::{LeaseSource, LeasedToken};
use crate::manager_api::ReportBody;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokenlb_core::OutcomeClass;

struct CachedToken {
    token: LeasedToken,
    /// Last time the manager handed this token out; the least recent is evicted first.
    seen: Instant,
    /// Skipped until then after a failure (rate limit, transient).
    skip_until: Option<Instant>,
}

/// A report that waits for the manager, with the token id to fall back on.
pub(crate) struct Queued {
    pub body: ReportBody,
    pub token_id: String,
}

#[derive(Default)]
pub(crate) struct Fallback {
    tokens: Vec<CachedToken>,
    cursor: usize,
    unreachable_since: Option<Instant>,
    last_probe: Option<Instant>,
    grace_over_logged: bool,
    queue: VecDeque<Queued>,
    dropped: u64,
}

/// What a failed manager contact changed, so the caller logs it once.
pub(crate) enum Down {
    /// The manager just became unreachable.
    Started { cached: usize },
    /// It was already unreachable.
    Continuing,
}

impl Fallback {
    /// Remembers a token the manager handed out (it is good as far as the manager knows).
    pub(crate) fn remember(&mut self, token: &LeasedToken, capacity: usize, now: Instant) {
        if let Some(t) = self.tokens.iter_mut().find(|t| t.token.id == token.id) {
            t.token = cached_copy(token);
            t.seen = now;
            t.skip_until = None;
            return;
        }
        if self.tokens.len() >= capacity {
            if let Some((i, _)) = self.tokens.iter().enumerate().min_by_key(|(_, t)| t.seen) {
                self.tokens.remove(i);
            }
        }
        self.tokens.push(CachedToken {
            token: cached_copy(token),
            seen: now,
            skip_until: None,
        });
    }

    /// Learns from an outcome: an auth failure drops the token, other token failures skip it
    /// for a while, a success clears the skip.
    pub(crate) fn learn(
        &mut self,
        id: &str,
        class: OutcomeClass,
        retry_after: Option<Duration>,
        cooldown: Duration,
        now: Instant,
    ) {
        if class == OutcomeClass::Auth {
            self.tokens.retain(|t| t.token.id.as_str() != id);
            return;
        }
        if let Some(t) = self.tokens.iter_mut().find(|t| t.token.id.as_str() == id) {
            if class == OutcomeClass::Success {
                t.skip_until = None;
            } else if class.is_token_failure() {
                t.skip_until = Some(now + retry_after.unwrap_or(cooldown));
            }
        }
    }

    pub(crate) fn is_down(&self) -> bool {
        self.unreachable_since.is_some()
    }

    /// Whether a lease should try the manager now (always when it is up; at most once per
    /// `interval` while it is down).
    pub(crate) fn should_probe(&self, interval: Duration, now: Instant) -> bool {
        match (self.unreachable_since, self.last_probe) {
            (None, _) | (Some(_), None) => true,
            (Some(_), Some(last)) => now.saturating_duration_since(last) >= interval,
        }
    }

    pub(crate) fn mark_down(&mut self, now: Instant) -> Down {
        self.last_probe = Some(now);
        if self.unreachable_since.is_some() {
            return Down::Continuing;
        }
        self.unreachable_since = Some(now);
        self.grace_over_logged = false;
        Down::Started {
            cached: self.tokens.len(),
        }
    }

    /// The manager answered: returns how long it had been unreachable, if it was.
    pub(crate) fn mark_up(&mut self, now: Instant) -> Option<Duration> {
        self.last_probe = None;
        self.unreachable_since
            .take()
            .map(|since| now.saturating_duration_since(since))
    }

    /// A cached token, round robin over the usable ones, while the grace period lasts.
    /// `Err` explains why there is none; the bool says whether the grace period just ended
    /// (to be logged once).
    pub(crate) fn pick(
        &mut self,
        grace: Duration,
        now: Instant,
    ) -> Result<LeasedToken, (String, bool)> {
        let since = self.unreachable_since.unwrap_or(now);
        if grace.is_zero() {
            return Err(("the grace period is off".into(), false));
        }
        let down_for = now.saturating_duration_since(since);
        if down_for >= grace {
            let first = !self.grace_over_logged;
            self.grace_over_logged = true;
            let msg = format!(
                "the grace period of {} s is over (unreachable for {} s)",
                grace.as_secs(),
                down_for.as_secs()
            );
            return Err((msg, first));
        }
        let n = self.tokens.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let usable = self.tokens[i].skip_until.is_none_or(|u| u <= now);
            if usable {
                self.cursor = (i + 1) % n;
                return Ok(self.tokens[i].token.clone());
            }
        }
        let msg = if n == 0 {
            "no cached token (none was leased before the manager went away)".to_string()
        } else {
            format!("all {n} cached tokens failed recently")
        };
        Err((msg, false))
    }

    pub(crate) fn cached_count(&self) -> usize {
        self.tokens.len()
    }

    /// Queues a report; returns true when the oldest one had to be dropped.
    pub(crate) fn enqueue(&mut self, item: Queued, capacity: usize) -> bool {
        let mut dropped = false;
        while self.queue.len() >= capacity {
            self.queue.pop_front();
            self.dropped += 1;
            dropped = true;
        }
        self.queue.push_back(item);
        dropped
    }

    /// Takes every queued report (oldest first) and the number dropped so far.
    pub(crate) fn drain(&mut self) -> (Vec<Queued>, u64) {
        (
            self.queue.drain(..).collect(),
            std::mem::take(&mut self.dropped),
        )
    }

    /// Puts back reports that could not be sent, ahead of newer ones.
    pub(crate) fn requeue(&mut self, items: Vec<Queued>, capacity: usize) {
        for item in items.into_iter().rev() {
            if self.queue.len() >= capacity {
                self.dropped += 1;
                continue;
            }
            self.queue.push_front(item);
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }
}

fn cached_copy(token: &LeasedToken) -> LeasedToken {
    LeasedToken {
        source: LeaseSource::Cache,
        ..token.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenlb_core::{Secret, TokenId};

    fn tok(id: &str) -> LeasedToken {
        LeasedToken {
            id: TokenId(id.into()),
            name: id.into(),
            pool: "default".into(),
            secret: Secret::new(format!("secret-{id}")),
            source: LeaseSource::Manager,
        }
    }

    fn body() -> Queued {
        Queued {
            body: ReportBody {
                lease: None,
                id: None,
                success: None,
                outcome: "success",
                latency_ms: None,
                status: None,
                retry_after_s: None,
                error: None,
            },
            token_id: "a".into(),
        }
    }

    #[test]
    fn round_robin_skips_failed_and_drops_auth() {
        let t0 = Instant::now();
        let mut f = Fallback::default();
        for id in ["a", "b", "c"] {
            f.remember(&tok(id), 8, t0);
        }
        assert!(matches!(f.mark_down(t0), Down::Started { cached: 3 }));
        let grace = Duration::from_secs(60);
        let picks: Vec<String> = (0..3).map(|_| f.pick(grace, t0).unwrap().id.0).collect();
        assert_eq!(picks, ["a", "b", "c"]);
        assert_eq!(f.pick(grace, t0).unwrap().source, LeaseSource::Cache);
        f.learn("b", OutcomeClass::Auth, None, Duration::from_secs(30), t0);
        f.learn(
            "c",
            OutcomeClass::Transient,
            None,
            Duration::from_secs(30),
            t0,
        );
        assert_eq!(f.cached_count(), 2);
        for _ in 0..3 {
            assert_eq!(f.pick(grace, t0).unwrap().id.0, "a");
        }
        let later = t0 + Duration::from_secs(31);
        let ids: Vec<String> = (0..2).map(|_| f.pick(grace, later).unwrap().id.0).collect();
        assert!(ids.contains(&"c".to_string()));
    }

    #[test]
    fn grace_period_ends_and_recovery_resets_it() {
        let t0 = Instant::now();
        let mut f = Fallback::default();
        f.remember(&tok("a"), 8, t0);
        f.mark_down(t0);
        let grace = Duration::from_secs(10);
        assert!(f.pick(grace, t0 + Duration::from_secs(9)).is_ok());
        let (msg, first) = f.pick(grace, t0 + Duration::from_secs(10)).unwrap_err();
        assert!(msg.contains("grace period") && first);
        assert!(!f.pick(grace, t0 + Duration::from_secs(11)).unwrap_err().1);
        assert_eq!(
            f.mark_up(t0 + Duration::from_secs(12)),
            Some(Duration::from_secs(12))
        );
        assert_eq!(f.mark_up(t0 + Duration::from_secs(13)), None);
        assert!(f.pick(Duration::ZERO, t0).is_err());
    }

    #[test]
    fn probes_are_spaced_while_down() {
        let t0 = Instant::now();
        let mut f = Fallback::default();
        let every = Duration::from_secs(2);
        assert!(f.should_probe(every, t0));
        f.mark_down(t0);
        assert!(!f.should_probe(every, t0 + Duration::from_secs(1)));
        assert!(f.should_probe(every, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn capacity_evicts_least_recent_and_queue_is_bounded() {
        let t0 = Instant::now();
        let mut f = Fallback::default();
        f.remember(&tok("a"), 2, t0);
        f.remember(&tok("b"), 2, t0 + Duration::from_secs(1));
        f.remember(&tok("a"), 2, t0 + Duration::from_secs(2));
        f.remember(&tok("c"), 2, t0 + Duration::from_secs(3));
        f.mark_down(t0);
        let ids: Vec<String> = (0..2)
            .map(|_| f.pick(Duration::from_secs(60), t0).unwrap().id.0)
            .collect();
        assert!(ids.contains(&"a".into()) && ids.contains(&"c".into()));
        assert!(!f.enqueue(body(), 2));
        assert!(!f.enqueue(body(), 2));
        assert!(f.enqueue(body(), 2));
        let (items, dropped) = f.drain();
        assert_eq!((items.len(), dropped), (2, 1));
        f.requeue(items, 1);
        assert_eq!(f.queued(), 1);
    }
}
