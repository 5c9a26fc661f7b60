//! Events: what a state change or an admin action leaves behind (DESIGN §2, "every state
//! change is an event").
//!
//! The service builds them under the pool's lock ([`change_events`] reads names), then logs,
//! publishes and queues them in one place ([`super::TokenService::record`]). The event
//! writer task takes them from the [`EventQueue`], so the request path never waits on the
//! store.
//!
//! What one client can make the manager write is bounded (DESIGN §9, issue 13 finding 5):
//! - **Coalescing.** A token that makes the same transition again within [`COALESCE_MS`] of
//!   the first is not written or logged again; when the window closes one summary event
//!   says how many more times it happened. A token flapping between `cooling` and `active`
//!   writes a few events a minute, not thousands.
//! - **A bounded queue** of [`MAX_QUEUED`] events: beyond it events are dropped and counted
//!   (`tokenlb_events_dropped_total`), with one warning per 10 s.
//! - **State is not an event.** The tokens whose state must be saved are a set (at most one
//!   entry per token), so a full or coalesced queue never loses a state change.
//! - **A row cap** on the table: the pruner keeps the newest `max_event_rows`.

use crate::service::now_ms;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use tokenlb_core::{ChangeCause, Millis, Pool, StateChange, TokenId, TokenState};
use tokenlb_store::EventRecord;
use tokio::sync::Notify;

/// Repeats of one token's transition within this long become one summary event.
pub const COALESCE_MS: Millis = 60_000;
/// Events waiting for the writer at most; more are dropped (and counted).
pub const MAX_QUEUED: usize = 65_536;

type WindowKey = (TokenId, Option<TokenState>, Option<TokenState>);

/// The repeats of one transition since its window opened.
struct Window {
    opened: Millis,
    repeats: u64,
    last: EventRecord,
}

/// The queue between the service and the event writer task.
#[derive(Default)]
pub struct EventQueue {
    events: Mutex<VecDeque<EventRecord>>,
    /// Tokens whose current state the writer must save.
    dirty: Mutex<HashSet<TokenId>>,
    windows: Mutex<HashMap<WindowKey, Window>>,
    dropped: AtomicU64,
    /// Last time a drop was logged (ms), for one warning per 10 s.
    dropped_logged: AtomicU64,
    wake: Notify,
}

impl EventQueue {
    /// A state-change event: its token's state is marked for saving; the event is logged
    /// and queued unless it repeats a transition of the same token within [`COALESCE_MS`].
    /// Returns whether it was queued.
    pub fn state_change(&self, event: EventRecord) -> bool {
        self.dirty.lock().insert(event.token_id.clone());
        let key = (event.token_id.clone(), event.from, event.to);
        let summary = {
            let mut windows = self.windows.lock();
            match windows.get_mut(&key) {
                Some(w) if event.at.saturating_sub(w.opened) < COALESCE_MS => {
                    w.repeats += 1;
                    w.last = event;
                    self.wake.notify_one();
                    return false;
                }
                _ => {
                    let old = windows.insert(
                        key,
                        Window {
                            opened: event.at,
                            repeats: 0,
                            last: event.clone(),
                        },
                    );
                    old.and_then(summary_of)
                }
            }
        };
        if let Some(s) = summary {
            log_change(&s);
            self.push(s);
        }
        log_change(&event);
        self.push(event);
        true
    }

    /// An admin or lifecycle event: always queued (admins do not flap).
    pub fn admin(&self, event: EventRecord) {
        self.push(event);
    }

    fn push(&self, event: EventRecord) {
        {
            let mut events = self.events.lock();
            if events.len() >= MAX_QUEUED {
                drop(events);
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = now_ms();
                let last = self.dropped_logged.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 10_000
                    && self
                        .dropped_logged
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(dropped = n, "the event queue is full ({MAX_QUEUED}): events are dropped ({n} so far); token states are still saved");
                }
                return;
            }
            events.push_back(event);
        }
        self.wake.notify_one();
    }

    /// Summaries of the windows that closed by `now` (all of them when `all`).
    pub fn close_windows(&self, now: Millis, all: bool) {
        let closed: Vec<EventRecord> = {
            let mut windows = self.windows.lock();
            let due: Vec<WindowKey> = windows
                .iter()
                .filter(|(_, w)| all || now.saturating_sub(w.opened) >= COALESCE_MS)
                .map(|(k, _)| k.clone())
                .collect();
            due.iter()
                .filter_map(|k| windows.remove(k))
                .filter_map(summary_of)
                .collect()
        };
        for s in closed {
            log_change(&s);
            self.push(s);
        }
    }

    /// Up to `max` queued events and every token whose state must be saved.
    pub fn take(&self, max: usize) -> (Vec<EventRecord>, Vec<TokenId>) {
        let events = {
            let mut q = self.events.lock();
            let n = q.len().min(max);
            q.drain(..n).collect()
        };
        let dirty = std::mem::take(&mut *self.dirty.lock())
            .into_iter()
            .collect();
        (events, dirty)
    }

    /// Whether nothing waits for the writer.
    pub fn is_idle(&self) -> bool {
        self.events.lock().is_empty() && self.dirty.lock().is_empty()
    }

    /// Waits until something is queued.
    pub async fn queued(&self) {
        self.wake.notified().await
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Open coalescing windows (for tests and metrics).
    pub fn open_windows(&self) -> usize {
        self.windows.lock().len()
    }
}

/// The summary event of a window that saw repeats.
fn summary_of(w: Window) -> Option<EventRecord> {
    if w.repeats == 0 {
        return None;
    }
    let seconds = w.last.at.saturating_sub(w.opened).div_ceil(1000).max(1);
    let mut e = w.last;
    e.reason = format!(
        "{} (repeated {} more times in {seconds} s; 重复 {} 次)",
        e.reason, w.repeats, w.repeats
    );
    let e = with_param(e, "repeated", &w.repeats.to_string());
    Some(with_param(e, "repeated_in_s", &seconds.to_string()))
}

/// Builds event records for state changes; call with the pool locked (it reads names).
pub fn change_events(pool: &Pool, pool_name: &str, changes: &[StateChange]) -> Vec<EventRecord> {
    changes
        .iter()
        .map(|c| EventRecord {
            seq: 0,
            at: c.at,
            token_id: c.token_id.clone(),
            token_name: pool.get(&c.token_id).map(|v| v.name).unwrap_or_default(),
            pool: pool_name.to_string(),
            from: Some(c.from),
            to: Some(c.to),
            kind: "state_change".to_string(),
            reason: c.reason.clone(),
            reason_code: Some(c.cause.as_str().to_string()),
            reason_params: params_json(&c.params),
            sample_error: c.sample_error.clone(),
        })
        .collect()
}

/// An admin or lifecycle event (added, removed, imported, patched, refreshed).
pub fn admin_event(
    kind: &str,
    id: &TokenId,
    name: &str,
    pool: &str,
    reason: String,
) -> EventRecord {
    EventRecord {
        seq: 0,
        at: now_ms(),
        token_id: id.clone(),
        token_name: name.to_string(),
        pool: pool.to_string(),
        from: None,
        to: None,
        kind: kind.to_string(),
        reason,
        reason_code: Some(kind.to_string()),
        reason_params: None,
        sample_error: None,
    }
}

/// Reason parameters as the JSON object the store keeps (`None` when there are none).
pub fn params_json(params: &[(String, String)]) -> Option<String> {
    if params.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// `e` with one more reason parameter.
pub fn with_param(mut e: EventRecord, key: &str, value: &str) -> EventRecord {
    let mut map: serde_json::Map<String, serde_json::Value> = e
        .reason_params
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    map.insert(
        key.to_string(),
        serde_json::Value::String(value.to_string()),
    );
    e.reason_params = Some(serde_json::Value::Object(map).to_string());
    e
}

/// One log line per state change, at the level its meaning deserves: a token leaving
/// rotation is a WARN, one coming back (half-open probation included) or an admin's change
/// INFO. The token is named once, by name and public id (never its secret).
pub(crate) fn log_change(e: &EventRecord) {
    let (name, id, reason) = (&e.token_name, &e.token_id, &e.reason);
    let recovering = e.reason_code.as_deref() == Some(ChangeCause::CoolingEnded.as_str());
    match e.to {
        Some(TokenState::Cooling) if recovering => {
            tracing::info!("token {name} ({id}) on probation: {reason}")
        }
        Some(TokenState::Cooling) => {
            tracing::warn!("token {name} ({id}) temporarily disabled: {reason}")
        }
        Some(TokenState::Invalid) => tracing::warn!("token {name} ({id}) invalid: {reason}"),
        Some(TokenState::Expired) => tracing::warn!("token {name} ({id}) expired: {reason}"),
        Some(TokenState::Disabled) => tracing::info!("token {name} ({id}) disabled: {reason}"),
        Some(TokenState::Active) => {
            tracing::info!("token {name} ({id}) back in rotation: {reason}")
        }
        None => tracing::info!("token {name} ({id}) {}: {reason}", e.kind),
    }
}
