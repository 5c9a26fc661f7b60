//! Observability settings: `[metrics]` and the `[[notify]]` webhook targets (DESIGN §13;
//! the notifier itself is `crate::notify`).

use super::secret_serde;
use serde::{Deserialize, Serialize};
use tokenlb_core::Secret;

/// `/metrics` settings. `[metrics]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Per-token series, labelled by pool, token id and name (never the secret). One series
    /// set per token, so off by default. false, `TOKENLB_METRICS_PER_TOKEN`.
    pub per_token: bool,
}

/// What a webhook may be told about (`events` of a `[[notify]]` target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A token turned invalid (the upstream rejected it).
    TokenInvalid,
    /// A pool that has tokens has none that may be leased.
    PoolUnavailable,
    /// The upstream refused a token's refresh.
    RefreshRefused,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 3] = [
        NotifyEvent::TokenInvalid,
        NotifyEvent::PoolUnavailable,
        NotifyEvent::RefreshRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::TokenInvalid => "token_invalid",
            NotifyEvent::PoolUnavailable => "pool_unavailable",
            NotifyEvent::RefreshRefused => "refresh_refused",
        }
    }

    fn all() -> Vec<NotifyEvent> {
        NotifyEvent::ALL.to_vec()
    }
}

/// One webhook target, `[[notify]]`: changes an operator must know about are POSTed to
/// `url` as JSON, signed with `secret` when one is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// http:// or https:// URL the deliveries are POSTed to. Required.
    pub url: String,
    /// Key of the `X-Tokenlb-Signature` HMAC-SHA256, at least 16 characters; unset = no
    /// signature.
    #[serde(default, with = "secret_serde::option")]
    pub secret: Option<Secret>,
    /// Which events this target hears about. All of them.
    #[serde(default = "NotifyEvent::all")]
    pub events: Vec<NotifyEvent>,
    /// Events within this many milliseconds of the first become one delivery. 2000.
    #[serde(default = "default_coalesce_ms")]
    pub coalesce_ms: u64,
    /// Attempts per delivery (exponential backoff between them), 1..=20. 5.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Deliveries waiting for this target at most; beyond, the oldest is dropped. 100.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Timeout of one attempt, milliseconds. 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_coalesce_ms() -> u64 {
    2000
}
fn default_max_attempts() -> u32 {
    5
}
fn default_queue() -> usize {
    100
}
fn default_timeout_ms() -> u64 {
    5000
}

impl NotifyConfig {
    /// A target with every default (tests, examples).
    pub fn to(url: impl Into<String>) -> NotifyConfig {
        NotifyConfig {
            url: url.into(),
            secret: None,
            events: NotifyEvent::all(),
            coalesce_ms: default_coalesce_ms(),
            max_attempts: default_max_attempts(),
            queue: default_queue(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// A webhook URL as `config check` shows it: scheme, host and port only (webhook paths and
/// queries are often the credential).
pub(super) fn mask_webhook_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => "(hidden)".to_string(),
        },
        Err(_) => "(hidden: not a parseable URL)".to_string(),
    }
}
