//! The backend-neutral row form of a token: plain column values, secrets sealed.
//!
//! Both SQL backends store a token as the same columns, so the translation between
//! [`StoredToken`] and those columns (encryption, fingerprint, integer widths, state names) is
//! written once here. Integers are `i64` because that is what both SQLite and PostgreSQL
//! (`BIGINT`) hold; values that do not fit saturate instead of wrapping.

use crate::crypto::{Cipher, CryptoError};
use crate::{StoreError, StoreResult, StoredToken, TokenCounters, TokenUpdate};
use sqlx::{ColumnIndex, Decode, Row, Type};
use std::collections::HashMap;
use tokenlb_core::{Limits, TokenId, TokenState};

/// The token columns in table order, for `SELECT` and `INSERT` lists.
pub(crate) const TOKEN_COLUMNS: &str = "id, pool, name, secret_enc, secret_fp, refresh_enc, \
    weight, expires_at, rpm, max_in_flight, state, state_reason, state_until, created_at, \
    c_success, c_auth, c_rate_limited, c_quota_exhausted, c_transient, c_client_error, \
    c_unknown, last_used, last_error, last_error_at, latency_ewma_ms, times_cooled";

/// How many rows one multi-row statement carries (26 binds each: well under SQLite's 32 766
/// and PostgreSQL's 65 535 bind limits).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// One `tokens` row.
#[derive(Clone, Debug)]
pub(crate) struct TokenRow {
    pub id: String,
    pub pool: String,
    pub name: String,
    pub secret_enc: String,
    pub secret_fp: String,
    pub refresh_enc: Option<String>,
    pub weight: i64,
    pub expires_at: Option<i64>,
    pub rpm: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub state: String,
    pub state_reason: Option<String>,
    pub state_until: Option<i64>,
    pub created_at: i64,
    pub counters: CounterCols,
}

/// The counter columns, also written alone by the stats flusher.
#[derive(Clone, Debug, Default)]
pub(crate) struct CounterCols {
    pub success: i64,
    pub auth: i64,
    pub rate_limited: i64,
    pub quota_exhausted: i64,
    pub transient: i64,
    pub client_error: i64,
    pub unknown: i64,
    pub last_used: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub latency_ewma_ms: Option<f64>,
    pub times_cooled: i64,
}

/// Binds the twelve counter columns of `CounterCols` `$c`, in table order, after the
/// `push_values` row `$row` (an expression giving the builder's `Separated`); one list for
/// both backends and every statement that writes counters.
macro_rules! bind_counters {
    ($row:expr, $c:expr) => {{
        let c: &$crate::rows::CounterCols = $c;
        $row.push_bind(c.success)
            .push_bind(c.auth)
            .push_bind(c.rate_limited)
            .push_bind(c.quota_exhausted)
            .push_bind(c.transient)
            .push_bind(c.client_error)
            .push_bind(c.unknown)
            .push_bind(c.last_used)
            .push_bind(&c.last_error)
            .push_bind(c.last_error_at)
            .push_bind(c.latency_ewma_ms)
            .push_bind(c.times_cooled);
    }};
}
pub(crate) use bind_counters;

/// Binds a whole `TokenRow` `$r` in `TOKEN_COLUMNS` order to the `push_values` row `$b`
/// (both backends' inserts).
macro_rules! bind_token_row {
    ($b:expr, $r:expr) => {{
        let r: &$crate::rows::TokenRow = $r;
        $crate::rows::bind_counters!(
            $b.push_bind(&r.id)
                .push_bind(&r.pool)
                .push_bind(&r.name)
                .push_bind(&r.secret_enc)
                .push_bind(&r.secret_fp)
                .push_bind(&r.refresh_enc)
                .push_bind(r.weight)
                .push_bind(r.expires_at)
                .push_bind(r.rpm)
                .push_bind(r.max_in_flight)
                .push_bind(&r.state)
                .push_bind(&r.state_reason)
                .push_bind(r.state_until)
                .push_bind(r.created_at),
            &r.counters
        )
    }};
}
pub(crate) use bind_token_row;

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn crypto_err(e: CryptoError) -> StoreError {
    match e {
        CryptoError::Decrypt(m) => StoreError::Decrypt(crate::Cause::from(m)),
        other => StoreError::Backend(crate::Cause::from(other.to_string())),
    }
}

/// Parses a stored state name; an unknown one means a damaged or newer database.
pub(crate) fn parse_state(s: &str) -> Result<TokenState, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Backend(crate::Cause::from(format!("corrupt row: {e}"))))
}

impl CounterCols {
    pub fn encode(c: &TokenCounters) -> CounterCols {
        CounterCols {
            success: to_i64(c.success),
            auth: to_i64(c.auth),
            rate_limited: to_i64(c.rate_limited),
            quota_exhausted: to_i64(c.quota_exhausted),
            transient: to_i64(c.transient),
            client_error: to_i64(c.client_error),
            unknown: to_i64(c.unknown),
            last_used: c.last_used.map(to_i64),
            last_error: c.last_error.clone(),
            last_error_at: c.last_error_at.map(to_i64),
            latency_ewma_ms: c.latency_ewma_ms,
            times_cooled: i64::from(c.times_cooled),
        }
    }

    fn decode(self) -> TokenCounters {
        TokenCounters {
            success: to_u64(self.success),
            auth: to_u64(self.auth),
            rate_limited: to_u64(self.rate_limited),
            quota_exhausted: to_u64(self.quota_exhausted),
            transient: to_u64(self.transient),
            client_error: to_u64(self.client_error),
            unknown: to_u64(self.unknown),
            last_used: self.last_used.map(to_u64),
            last_error: self.last_error,
            last_error_at: self.last_error_at.map(to_u64),
            latency_ewma_ms: self.latency_ewma_ms,
            times_cooled: to_u32(self.times_cooled),
        }
    }
}

impl TokenRow {
    /// Seals the secrets of `t` under `cipher` (bound to the token id) and flattens the rest.
    pub fn encode(t: &StoredToken, cipher: &Cipher) -> Result<TokenRow, StoreError> {
        let id = t.id.as_str();
        let refresh_enc = match &t.refresh_secret {
            Some(r) => Some(
                cipher
                    .encrypt(r, &refresh_context(id))
                    .map_err(crypto_err)?,
            ),
            None => None,
        };
        Ok(TokenRow {
            id: id.to_string(),
            pool: t.pool.clone(),
            name: t.name.clone(),
            secret_enc: cipher.encrypt(&t.secret, id).map_err(crypto_err)?,
            secret_fp: cipher.fingerprint(&t.secret),
            refresh_enc,
            weight: i64::from(t.weight),
            expires_at: t.expires_at.map(to_i64),
            rpm: t.limits.rpm.map(i64::from),
            max_in_flight: t.limits.max_in_flight.map(i64::from),
            state: t.state.as_str().to_string(),
            state_reason: t.state_reason.clone(),
            state_until: t.state_until.map(to_i64),
            created_at: to_i64(t.created_at),
            counters: CounterCols::encode(&t.counters),
        })
    }

    /// Opens the secrets and rebuilds the token; `Decrypt` under the wrong key.
    pub fn decode(self, cipher: &Cipher) -> Result<StoredToken, StoreError> {
        let secret = cipher
            .decrypt(&self.secret_enc, &self.id)
            .map_err(crypto_err)?;
        let refresh_secret = match &self.refresh_enc {
            Some(r) => Some(
                cipher
                    .decrypt(r, &refresh_context(&self.id))
                    .map_err(crypto_err)?,
            ),
            None => None,
        };
        Ok(StoredToken {
            state: parse_state(&self.state)?,
            id: TokenId(self.id),
            pool: self.pool,
            name: self.name,
            secret,
            refresh_secret,
            weight: to_u32(self.weight),
            expires_at: self.expires_at.map(to_u64),
            limits: Limits {
                rpm: self.rpm.map(to_u32),
                max_in_flight: self.max_in_flight.map(to_u32),
            },
            state_reason: self.state_reason,
            state_until: self.state_until.map(to_u64),
            created_at: to_u64(self.created_at),
            counters: self.counters.decode(),
        })
    }

    /// Reads a row selected with [`TOKEN_COLUMNS`], from either backend.
    pub fn from_row<'r, R>(row: &'r R) -> Result<TokenRow, sqlx::Error>
    where
        R: Row,
        &'static str: ColumnIndex<R>,
        String: Decode<'r, R::Database> + Type<R::Database>,
        i64: Decode<'r, R::Database> + Type<R::Database>,
        f64: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(TokenRow {
            id: row.try_get("id")?,
            pool: row.try_get("pool")?,
            name: row.try_get("name")?,
            secret_enc: row.try_get("secret_enc")?,
            secret_fp: row.try_get("secret_fp")?,
            refresh_enc: row.try_get("refresh_enc")?,
            weight: row.try_get("weight")?,
            expires_at: row.try_get("expires_at")?,
            rpm: row.try_get("rpm")?,
            max_in_flight: row.try_get("max_in_flight")?,
            state: row.try_get("state")?,
            state_reason: row.try_get("state_reason")?,
            state_until: row.try_get("state_until")?,
            created_at: row.try_get("created_at")?,
            counters: CounterCols {
                success: row.try_get("c_success")?,
                auth: row.try_get("c_auth")?,
                rate_limited: row.try_get("c_rate_limited")?,
                quota_exhausted: row.try_get("c_quota_exhausted")?,
                transient: row.try_get("c_transient")?,
                client_error: row.try_get("c_client_error")?,
                unknown: row.try_get("c_unknown")?,
                last_used: row.try_get("last_used")?,
                last_error: row.try_get("last_error")?,
                last_error_at: row.try_get("last_error_at")?,
                latency_ewma_ms: row.try_get("latency_ewma_ms")?,
                times_cooled: row.try_get("times_cooled")?,
            },
        })
    }
}

/// A token whose value repeats an earlier one of its batch: (its id, the first one's id).
pub(crate) type Repeat = (TokenId, TokenId);

/// Encodes tokens and splits off repeats within the batch: (rows to insert, repeats).
pub(crate) fn encode_unique(
    tokens: &[StoredToken],
    cipher: &Cipher,
) -> StoreResult<(Vec<TokenRow>, Vec<Repeat>)> {
    let mut seen: HashMap<String, TokenId> = HashMap::with_capacity(tokens.len());
    let mut rows = Vec::with_capacity(tokens.len());
    let mut repeats = Vec::new();
    for t in tokens {
        let row = TokenRow::encode(t, cipher)?;
        if let Some(first) = seen.get(&row.secret_fp) {
            repeats.push((t.id.clone(), first.clone()));
        } else {
            seen.insert(row.secret_fp.clone(), t.id.clone());
            rows.push(row);
        }
    }
    Ok((rows, repeats))
}

/// One token's secrets opened with `old` and sealed with `new`:
/// (id, secret_enc, secret_fp, refresh_enc).
pub(crate) fn reseal(
    old: &Cipher,
    new: &Cipher,
    id: String,
    enc: &str,
    refresh_enc: Option<&str>,
) -> StoreResult<(String, String, String, Option<String>)> {
    let secret = old.decrypt(enc, &id).map_err(crypto_err)?;
    let refresh = match refresh_enc {
        Some(r) => {
            let ctx = refresh_context(&id);
            let plain = old.decrypt(r, &ctx).map_err(crypto_err)?;
            Some(new.encrypt(&plain, &ctx).map_err(crypto_err)?)
        }
        None => None,
    };
    let enc = new.encrypt(&secret, &id).map_err(crypto_err)?;
    Ok((id, enc, new.fingerprint(&secret), refresh))
}

/// Associated data for a refresh secret: distinct from the access secret's, so the two
/// ciphertexts of one row cannot be swapped.
pub(crate) fn refresh_context(id: &str) -> String {
    format!("{id}#refresh")
}

/// The sentinel sealed into the database's metadata so that opening it with another key fails
/// at once with a clear message instead of at the first token read.
pub(crate) const KEY_CHECK_CONTEXT: &str = "tokenlb:key-check";
pub(crate) const KEY_CHECK_PLAIN: &str = "tokenlb key check v1";

/// The `refresh_enc` column of an update: set to the encrypted refresh token, cleared, or
/// left alone.
pub(crate) fn encrypt_refresh_update(
    cipher: &Cipher,
    id: &TokenId,
    refresh: &Option<Option<tokenlb_core::Secret>>,
) -> StoreResult<Option<Option<String>>> {
    Ok(match refresh {
        Some(Some(r)) => Some(Some(
            cipher
                .encrypt(r, &refresh_context(id.as_str()))
                .map_err(crypto_err)?,
        )),
        Some(None) => Some(None),
        None => None,
    })
}

/// Appends `, column = value` for every field `u` sets, to an `UPDATE tokens SET …` being
/// built (both backends: the statement is the same SQL but for the placeholders, which the
/// query builder writes). `secret` is (ciphertext, fingerprint), `refresh` the ciphertext.
pub(crate) fn push_update<'a, DB>(
    q: &mut sqlx::QueryBuilder<'a, DB>,
    u: &'a TokenUpdate,
    secret: Option<(String, String)>,
    refresh: Option<Option<String>>,
) where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + Type<DB>,
    &'a Option<String>: sqlx::Encode<'a, DB> + Type<DB>,
    Option<String>: sqlx::Encode<'a, DB> + Type<DB>,
    i64: sqlx::Encode<'a, DB> + Type<DB>,
    Option<i64>: sqlx::Encode<'a, DB> + Type<DB>,
{
    if let Some(v) = &u.name {
        q.push(", name = ").push_bind(v);
    }
    if let Some(v) = &u.pool {
        q.push(", pool = ").push_bind(v);
    }
    if let Some(v) = u.weight {
        q.push(", weight = ").push_bind(i64::from(v));
    }
    if let Some(v) = u.expires_at {
        q.push(", expires_at = ").push_bind(v.map(to_i64));
    }
    if let Some(l) = &u.limits {
        q.push(", rpm = ").push_bind(l.rpm.map(i64::from));
        q.push(", max_in_flight = ")
            .push_bind(l.max_in_flight.map(i64::from));
    }
    if let Some((enc, fp)) = secret {
        q.push(", secret_enc = ").push_bind(enc);
        q.push(", secret_fp = ").push_bind(fp);
    }
    if let Some(r) = refresh {
        q.push(", refresh_enc = ").push_bind(r);
    }
    if let Some((state, reason, until)) = &u.state {
        q.push(", state = ").push_bind(state.as_str());
        q.push(", state_reason = ").push_bind(reason);
        q.push(", state_until = ").push_bind(until.map(to_i64));
    }
}

/// The columns of an event row after `seq`, in insert order.
pub(crate) const EVENT_COLUMNS: &str =
    "at, token_id, token_name, pool, from_state, to_state, kind, reason, sample_error, reason_code, reason_params";

/// `SELECT seq, … FROM events` with the query's filters, newest first (both backends).
pub(crate) fn events_query<'a, DB>(query: &'a crate::EventQuery) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + Type<DB>,
    i64: sqlx::Encode<'a, DB> + Type<DB>,
{
    let mut q = sqlx::QueryBuilder::<DB>::new(format!(
        "SELECT seq, {} FROM events WHERE 1 = 1",
        crate::rows::EVENT_COLUMNS
    ));
    if let Some(id) = &query.token_id {
        q.push(" AND token_id = ").push_bind(id.as_str());
    }
    if let Some(pool) = &query.pool {
        q.push(" AND pool = ").push_bind(pool);
    }
    if let Some(since) = query.since {
        q.push(" AND at >= ").push_bind(to_i64(since));
    }
    if let Some(before) = query.before_seq {
        q.push(" AND seq < ").push_bind(before);
    }
    q.push(" ORDER BY seq DESC");
    if query.limit > 0 {
        q.push(" LIMIT ").push_bind(i64::from(query.limit));
    }
    q
}

/// One event row selected by [`events_query`], from either backend; `err` names the
/// database in a driver error.
pub(crate) fn event_from_row<'r, R>(
    r: &'r R,
    err: impl Fn(sqlx::Error) -> StoreError,
) -> StoreResult<crate::EventRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let state = |v: Option<String>| v.as_deref().map(parse_state).transpose();
    Ok(crate::EventRecord {
        seq: r.try_get("seq").map_err(&err)?,
        at: to_u64(r.try_get("at").map_err(&err)?),
        token_id: TokenId(r.try_get("token_id").map_err(&err)?),
        token_name: r.try_get("token_name").map_err(&err)?,
        pool: r.try_get("pool").map_err(&err)?,
        from: state(r.try_get("from_state").map_err(&err)?)?,
        to: state(r.try_get("to_state").map_err(&err)?)?,
        kind: r.try_get("kind").map_err(&err)?,
        reason: r.try_get("reason").map_err(&err)?,
        reason_code: r.try_get("reason_code").map_err(&err)?,
        reason_params: r.try_get("reason_params").map_err(&err)?,
        sample_error: r.try_get("sample_error").map_err(&err)?,
    })
}
