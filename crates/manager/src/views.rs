//! JSON shapes shared by several routes: the token row and time formatting.
//!
//! A token row is what `/api/token/stats` and `/api/tokens` list (manager-contract.md): the
//! masked token only, never the secret; times as RFC 3339 UTC strings or null.

use crate::state::TokenMeta;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokenlb_core::{Millis, TokenView};

/// RFC 3339 (UTC, milliseconds) for an epoch-ms time.
pub fn time(ms: Millis) -> Value {
    match DateTime::<Utc>::from_timestamp_millis(ms as i64) {
        Some(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

pub fn opt_time(ms: Option<Millis>) -> Value {
    ms.map_or(Value::Null, time)
}

/// Parses an RFC 3339 time into epoch ms.
pub fn parse_time(text: &str) -> Result<Millis, String> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z)"))?;
    u64::try_from(t.timestamp_millis())
        .map_err(|_| "times before 1970 are not accepted".to_string())
}

/// One token row.
pub fn token_row(pool: &str, v: &TokenView, meta: Option<&TokenMeta>) -> Value {
    let c = &v.counters;
    json!({
        "id": v.id,
        "name": v.name,
        "pool": pool,
        "token": v.masked,
        "state": v.state,
        "state_reason": v.state_reason,
        "state_until": opt_time(v.state_until),
        "half_open": v.half_open,
        "weight": v.weight,
        "limits": { "rpm": v.limits.rpm, "max_in_flight": v.limits.max_in_flight },
        "success": c.success,
        "failure": c.failures(),
        "failures_by_class": {
            "auth": c.auth,
            "rate_limited": c.rate_limited,
            "quota_exhausted": c.quota_exhausted,
            "transient": c.transient,
            "client_error": c.client_error,
            "unknown": c.unknown,
        },
        "success_rate": v.success_rate,
        "in_flight": v.in_flight,
        "last_used": opt_time(c.last_used),
        "last_error": c.last_error,
        "last_error_at": opt_time(c.last_error_at),
        "expires_at": opt_time(v.expires_at),
        "has_refresh_token": meta.is_some_and(|m| m.has_refresh),
        "latency_ms": c.latency_ewma_ms,
        "created_at": meta.map_or(Value::Null, |m| time(m.created_at)),
    })
}
