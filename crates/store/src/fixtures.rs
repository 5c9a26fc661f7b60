//! Test fixtures for the store: recognisable secrets, tokens, events, counters and queries,
//! used by the store's own unit tests and by the conformance story in
//! `tokenlb-test-support` (which turns on the `fixtures` feature). Not built into
//! production code.

use crate::{
    Cipher, EventQuery, EventRecord, MinuteCount, MinuteQuery, StatsBatch, StoreError, StoreResult,
    StoredPool, StoredToken, TokenCounters, TokenUpdate,
};
use tokenlb_core::{Limits, Secret, TokenId, TokenState};

/// Every secret written by the story contains this; no stored byte may.
pub const SECRET_MARKER: &str = "story-secret-";

/// The `i`-th test secret (unique, recognisable, long enough to mask).
pub fn secret(i: usize) -> Secret {
    Secret::new(format!("{SECRET_MARKER}{i:06}-c3f0362b-a9c2"))
}

/// A fixed key for the story, so a test can reopen with it.
pub fn key(n: u8) -> Cipher {
    Cipher::from_key_bytes(&[n; 32])
}

/// A token with every field set to something other than its default.
pub fn token(i: usize, pool: &str) -> StoredToken {
    StoredToken {
        id: TokenId(format!("t_story{i:05}")),
        pool: pool.to_string(),
        name: format!("token {i}"),
        secret: secret(i),
        refresh_secret: i.is_multiple_of(2).then(|| secret(100_000 + i)),
        weight: 1 + (i as u32 % 1000),
        expires_at: i.is_multiple_of(3).then_some(1_900_000_000_000 + i as u64),
        limits: Limits {
            rpm: (i % 2 == 1).then_some(60),
            max_in_flight: (i % 4 == 1).then_some(3),
        },
        state: TokenState::Active,
        state_reason: None,
        state_until: None,
        created_at: 1_700_000_000_000 + i as u64,
        counters: TokenCounters::default(),
    }
}

/// A state-change event.
pub fn event(at: u64, token: &str, pool: &str, to: TokenState) -> EventRecord {
    EventRecord {
        seq: 0,
        at,
        token_id: TokenId(token.to_string()),
        token_name: format!("name of {token}"),
        pool: pool.to_string(),
        from: Some(TokenState::Active),
        to: Some(to),
        kind: "state_change".to_string(),
        reason: format!("reason at {at}"),
        reason_code: Some("consecutive_failures".to_string()),
        reason_params: Some(format!("{{\"count\":\"{at}\"}}")),
        sample_error: Some("HTTP 503".to_string()),
    }
}

/// Sorted by id, for comparing loads.
pub fn by_id(mut v: Vec<StoredToken>) -> Vec<StoredToken> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// A per-minute count row.
pub fn minute_count(token: &str, pool: &str, minute: u64, req: u32, fail: u32) -> MinuteCount {
    MinuteCount {
        token_id: TokenId(token.to_string()),
        pool: pool.to_string(),
        minute,
        requests: req,
        failures: fail,
    }
}

pub fn q_events(limit: u32) -> EventQuery {
    EventQuery {
        limit,
        ..EventQuery::default()
    }
}

pub fn q_minutes(since: u64) -> MinuteQuery {
    MinuteQuery {
        since_minute: since,
        ..MinuteQuery::default()
    }
}

pub fn counters(success: u64, transient: u64) -> TokenCounters {
    TokenCounters {
        success,
        transient,
        last_used: Some(1_700_000_100_000 + success),
        last_error: Some(format!("error after {success}")),
        last_error_at: Some(1_700_000_200_000),
        latency_ewma_ms: Some(12.5 + success as f64),
        times_cooled: 2,
        ..TokenCounters::default()
    }
}

pub fn is_duplicate_of(r: StoreResult<()>, id: &str) -> bool {
    matches!(r, Err(StoreError::Duplicate(TokenId(ref x))) if x == id)
}

pub fn pool(name: &str, json: &str) -> StoredPool {
    StoredPool {
        name: name.to_string(),
        policy_json: json.to_string(),
    }
}

pub fn stats_batch(counters: Vec<(&str, TokenCounters)>, minutes: Vec<MinuteCount>) -> StatsBatch {
    StatsBatch {
        counters: counters
            .into_iter()
            .map(|(id, c)| (TokenId(id.to_string()), c))
            .collect(),
        minutes,
    }
}

pub fn update() -> TokenUpdate {
    TokenUpdate::default()
}
