//! Events: what a state change or an admin action leaves behind (DESIGN §2, "every state
//! change is an event").
//!
//! The service builds them under the pool's lock ([`change_events`] reads names), then logs,
//! publishes and queues them in one place ([`super::TokenService::record`]). The event
//! writer task takes them from the queue, so the request path never waits on the store.

use crate::service::now_ms;
use tokenlb_core::{Pool, StateChange, TokenId, TokenState};
use tokenlb_store::EventRecord;
use tokio::sync::mpsc;

/// An event on its way to the store; `persist_state` asks the writer to also save the
/// token's current state.
pub struct Recorded {
    pub event: EventRecord,
    pub persist_state: bool,
}

pub type EventSink = mpsc::UnboundedSender<Recorded>;
pub type EventSource = mpsc::UnboundedReceiver<Recorded>;

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
        sample_error: None,
    }
}

/// One log line per state change, at the level its meaning deserves.
pub(crate) fn log_change(e: &EventRecord) {
    let (name, id, reason) = (&e.token_name, &e.token_id, &e.reason);
    match e.to {
        Some(TokenState::Cooling) => {
            tracing::warn!(token = %id, "token {name} ({id}) cooled: {reason}")
        }
        Some(TokenState::Invalid) => {
            tracing::warn!(token = %id, "token {name} ({id}) invalid: {reason}")
        }
        Some(TokenState::Expired) => {
            tracing::warn!(token = %id, "token {name} ({id}) expired: {reason}")
        }
        Some(TokenState::Disabled) => {
            tracing::info!(token = %id, "token {name} ({id}) disabled: {reason}")
        }
        Some(TokenState::Active) => {
            tracing::info!(token = %id, "token {name} ({id}) active: {reason}")
        }
        None => tracing::info!(token = %id, "token {name} ({id}) {}: {reason}", e.kind),
    }
}
