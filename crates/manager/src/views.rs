//! JSON shapes shared by several routes: the token row and time formatting.
//!
//! A token row is what `/api/token/stats` and `/api/tokens` list (manager-contract.md): the
//! masked token only, never the secret; times as RFC 3339 UTC strings or null.

use crate::service::registry::TokenMeta;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokenlb_core::{Limits, Millis, TokenId, TokenState, TokenView};

/// RFC 3339 (UTC, milliseconds) for an epoch-ms time.
pub fn time(ms: Millis) -> Value {
    match DateTime::<Utc>::from_timestamp_millis(ms as i64) {
        Some(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

/// Parses an RFC 3339 time into epoch ms.
pub fn parse_time(text: &str) -> Result<Millis, crate::validate::Invalid> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z)"))?;
    u64::try_from(t.timestamp_millis()).map_err(|_| "times before 1970 are not accepted".into())
}

/// Failures of a token by outcome class.
#[derive(Debug, Clone, Serialize)]
pub struct FailuresByClass {
    pub auth: u64,
    pub rate_limited: u64,
    pub quota_exhausted: u64,
    pub transient: u64,
    pub client_error: u64,
    pub unknown: u64,
}

/// One token row (typed, so a list of 100,000 serializes without building a JSON tree).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub pool: String,
    /// Masked: `abcd…wxyz`.
    pub token: String,
    pub state: TokenState,
    pub state_reason: Option<String>,
    /// `state_reason` as a code (a change cause) for translation; `null` when only the words
    /// are known (a reason restored from the store).
    pub state_reason_code: Option<&'static str>,
    /// The code's parameters (`{"seconds":"30","count":"5"}`), empty without a code.
    pub state_reason_params: serde_json::Map<String, Value>,
    pub state_until: Option<String>,
    pub half_open: bool,
    pub weight: u32,
    pub limits: Limits,
    pub success: u64,
    pub failure: u64,
    pub failures_by_class: FailuresByClass,
    /// Successes over successes and token failures; `null` before the first of them.
    pub success_rate: Option<f64>,
    pub in_flight: u32,
    pub last_used: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub expires_at: Option<String>,
    pub has_refresh_token: bool,
    pub latency_ms: Option<f64>,
    pub created_at: Option<String>,
}

/// The seed's stats answer (`GET /api/token/stats`).
#[derive(Debug, Serialize)]
pub struct StatsBody {
    pub total_tokens: usize,
    pub active_tokens: usize,
    pub total_requests: u64,
    /// `null` while nothing has been counted (as a row's).
    pub success_rate: Option<f64>,
    pub tokens: Vec<TokenRow>,
    /// Present when the caller asked for a page (`offset`/`limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// RFC 3339 (UTC, milliseconds) for an epoch-ms time, as a string (`None` stays `None`).
pub fn rfc3339(ms: Option<Millis>) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp_millis(ms? as i64)?;
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Appends `ms` (epoch milliseconds, UTC) as RFC 3339 with milliseconds, exactly as
/// [`rfc3339`] writes it, without chrono's formatter: the lease answer's one date, written
/// on every `get` (chrono's general formatter cost about 700 instructions of it). Days to a
/// civil date by Hinnant's `civil_from_days`; years outside 0..=9999 go through chrono.
pub fn push_rfc3339(out: &mut Vec<u8>, ms: Millis) {
    let days = (ms / 86_400_000) as i64;
    let in_day = ms % 86_400_000;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(rfc3339(Some(ms)).unwrap_or_default().as_bytes());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let year = year as u64;
    put2(&mut b[0..2], year / 100);
    put2(&mut b[2..4], year % 100);
    put2(&mut b[5..7], month as u64);
    put2(&mut b[8..10], day as u64);
    put2(&mut b[11..13], in_day / 3_600_000);
    put2(&mut b[14..16], in_day / 60_000 % 60);
    put2(&mut b[17..19], in_day / 1000 % 60);
    let milli = in_day % 1000;
    b[20] = b'0' + (milli / 100) as u8;
    put2(&mut b[21..23], milli % 100);
    out.extend_from_slice(&b);
}

/// Writes `n` (below 100) as two decimal digits into `b[0..2]`.
fn put2(b: &mut [u8], n: u64) {
    b[0] = b'0' + (n / 10) as u8;
    b[1] = b'0' + (n % 10) as u8;
}

/// One token row, from the core's view (consumed: no second copy of its strings).
pub fn token_row(pool: &str, v: TokenView, meta: Option<&TokenMeta>) -> TokenRow {
    let c = v.counters;
    let counted = c.success + c.failures() > 0;
    TokenRow {
        failure: c.failures(),
        failures_by_class: FailuresByClass {
            auth: c.auth,
            rate_limited: c.rate_limited,
            quota_exhausted: c.quota_exhausted,
            transient: c.transient,
            client_error: c.client_error,
            unknown: c.unknown,
        },
        success: c.success,
        last_used: rfc3339(c.last_used),
        last_error_at: rfc3339(c.last_error_at),
        last_error: c.last_error,
        latency_ms: c.latency_ewma_ms,
        id: v.id,
        name: v.name,
        pool: pool.to_string(),
        token: v.masked,
        state: v.state,
        state_reason: v.state_reason,
        state_reason_code: v.state_reason_code.as_ref().map(|c| c.cause.as_str()),
        state_reason_params: v
            .state_reason_code
            .iter()
            .flat_map(|c| c.params.iter())
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        state_until: rfc3339(v.state_until),
        half_open: v.half_open,
        weight: v.weight,
        limits: v.limits,
        success_rate: counted.then_some(v.success_rate),
        in_flight: v.in_flight,
        expires_at: rfc3339(v.expires_at),
        has_refresh_token: meta.is_some_and(|m| m.has_refresh),
        created_at: rfc3339(meta.map(|m| m.created_at)),
    }
}

/// One event as `GET /api/events` lists it (the names the admin UI reads).
pub fn event_row(e: &tokenlb_store::EventRecord) -> Value {
    serde_json::json!({
        "id": e.seq,
        "at": time(e.at),
        "token_id": e.token_id,
        "token_name": e.token_name,
        "pool": e.pool,
        "kind": e.kind,
        "from": e.from,
        "to": e.to,
        "reason": e.reason,
        "reason_code": e.reason_code,
        "reason_params": e
            .reason_params
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .unwrap_or_else(|| serde_json::json!({})),
        "error": e.sample_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn push_rfc3339_writes_what_chrono_writes() {
        let mut rng = rand::thread_rng();
        let edges = [
            0,
            999,
            86_399_999,
            86_400_000,
            951_782_400_000,     // 2000-02-29
            4_107_542_399_999,   // 2100-02-28T23:59:59.999
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // year 10000: chrono's path
        ];
        let random = (0..20_000).map(|_| rng.gen_range(0..260_000_000_000_000u64));
        for ms in edges.into_iter().chain(random) {
            let mut out = Vec::new();
            push_rfc3339(&mut out, ms);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                rfc3339(Some(ms)).unwrap(),
                "{ms}"
            );
        }
    }
}
