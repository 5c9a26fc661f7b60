//! What a webhook is told: [`Notice`]s, made from the service's events by [`classify`], and
//! the JSON body of a delivery (a list and counts, [`body`]).
//!
//! A notice holds a token's id and name, its pool, the states and the reason, nothing
//! more: never the token's value, and the reason is passed through [`mask_secret`] so a
//! reason that ever quoted the token would carry its masked form only.

use crate::config::NotifyEvent;
use crate::service::TokenService;
use serde::Serialize;
use tokenlb_core::{PoolStats, TokenState};
use tokenlb_store::EventRecord;

/// Most notices listed in one delivery; the counts still count every one.
pub const MAX_LISTED: usize = 100;

/// One thing an operator must know about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub event: NotifyEvent,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub pool: String,
    /// The token's public id (absent for a pool notice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TokenState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TokenState>,
    pub reason: String,
}

/// The notice an event calls for, if any: a state change to `invalid`, or a refresh the
/// upstream refused.
pub fn classify(svc: &TokenService, e: &EventRecord) -> Option<Notice> {
    let event = match (e.kind.as_str(), e.to) {
        ("state_change", Some(TokenState::Invalid)) if e.from != Some(TokenState::Invalid) => {
            NotifyEvent::TokenInvalid
        }
        ("refresh_failed", _) if is_refusal(&e.reason) => NotifyEvent::RefreshRefused,
        _ => return None,
    };
    let secret = svc
        .token_pool(&e.token_id)
        .and_then(|h| h.secret(&e.token_id));
    let reason = match &secret {
        Some(s) => mask_secret(&e.reason, s.expose(), &s.masked()),
        None => e.reason.clone(),
    };
    Some(Notice {
        event,
        at: e.at,
        pool: e.pool.clone(),
        token_id: Some(e.token_id.to_string()),
        token_name: Some(e.token_name.clone()),
        from: e.from,
        to: e.to,
        reason,
    })
}

/// A `refresh_failed` event's reason begins with the refusal's message
/// (`crate::refresh::RefreshError::Refused`).
fn is_refusal(reason: &str) -> bool {
    reason.starts_with("refresh refused")
}

/// `text` with every occurrence of `secret` replaced by `masked`.
pub fn mask_secret(text: &str, secret: &str, masked: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    text.replace(secret, masked)
}

/// The notice for a pool that has tokens but none eligible.
pub fn pool_unavailable(pool: &str, stats: &PoolStats) -> Notice {
    let states: Vec<String> = stats
        .by_state
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    Notice {
        event: NotifyEvent::PoolUnavailable,
        at: crate::service::now_ms(),
        pool: pool.to_string(),
        token_id: None,
        token_name: None,
        from: None,
        to: None,
        reason: format!(
            "no eligible token among {} ({})",
            stats.total,
            states.join(", ")
        ),
    }
}

/// The JSON body of one delivery: its id, when it was made, how many notices of each kind,
/// and the first [`MAX_LISTED`] of them.
pub fn body(id: &str, notices: &[Notice]) -> serde_json::Value {
    let mut counts = serde_json::Map::new();
    for kind in NotifyEvent::ALL {
        let n = notices.iter().filter(|x| x.event == kind).count();
        if n > 0 {
            counts.insert(kind.as_str().to_string(), n.into());
        }
    }
    let listed = &notices[..notices.len().min(MAX_LISTED)];
    serde_json::json!({
        "source": "tokenlb",
        "delivery": id,
        "sent_at": crate::service::now_ms(),
        "count": notices.len(),
        "counts": counts,
        "notices": listed,
        "omitted": notices.len() - listed.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event: NotifyEvent) -> Notice {
        Notice {
            event,
            at: 1,
            pool: "p".into(),
            token_id: Some("t_1".into()),
            token_name: Some("main".into()),
            from: Some(TokenState::Active),
            to: Some(TokenState::Invalid),
            reason: "auth failure".into(),
        }
    }

    #[test]
    fn a_body_counts_every_notice_and_lists_a_bounded_number() {
        let mut many = vec![notice(NotifyEvent::TokenInvalid); MAX_LISTED + 5];
        many.push(notice(NotifyEvent::RefreshRefused));
        let b = body("d1", &many);
        assert_eq!(b["count"], MAX_LISTED + 6);
        assert_eq!(b["counts"]["token_invalid"], MAX_LISTED + 5);
        assert_eq!(b["counts"]["refresh_refused"], 1);
        assert_eq!(b["notices"].as_array().map(Vec::len), Some(MAX_LISTED));
        assert_eq!(b["omitted"], 6);
        assert_eq!(b["notices"][0]["event"], "token_invalid");
        assert_eq!(b["notices"][0]["to"], "invalid");
    }

    #[test]
    fn secrets_in_reasons_are_masked_and_refusals_recognised() {
        assert_eq!(
            mask_secret("bad token sk-123456 here", "sk-123456", "sk-1…3456"),
            "bad token sk-1…3456 here"
        );
        let refused =
            crate::refresh::RefreshError::Refused(tokenlb_wopan::WopanError::TokenUnusable {
                reason: "x".into(),
            });
        assert!(is_refusal(&refused.to_string()), "{refused}");
        assert!(!is_refusal("refresh failed: timeout"));
    }
}
