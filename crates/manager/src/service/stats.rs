//! Reading the pools: the seed's stats answer and the token list.
//!
//! With a coordinator that keeps totals (cluster mode), per-token counters are the members'
//! sums and the summary is recomputed from them; otherwise the pools' own totals are used.

use super::{CounterMap, Scope, ServiceError, ServiceResult, TokenService};
use crate::config::HealthKind;
use crate::service::now_ms;
use crate::views::{token_row, StatsBody, TokenRow};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tokenlb_core::{Millis, Strategy, TokenId, TokenState, TokenView};
use tokenlb_store::{EventQuery, EventRecord, MinuteQuery};

impl TokenService {
    /// The seed's stats: totals and one row per token, of `pool` or of every pool `scope`
    /// may see.
    /// With `page` (`offset`, `limit`), only those rows, in the same order, are built; the
    /// totals are still the pools' (kept incrementally, so the page costs O(offset + limit)).
    pub async fn stats(
        &self,
        pool: Option<&str>,
        scope: &Scope,
        page: Option<(usize, usize)>,
    ) -> ServiceResult<StatsBody> {
        let pools = match pool {
            Some(name) => {
                let handle = self.named_pool(Some(name))?;
                scope.check(&handle.name)?;
                vec![handle]
            }
            None => self
                .pools()
                .into_iter()
                .filter(|h| scope.allows(&h.name))
                .collect(),
        };
        let (mut total, mut active, mut requests, mut success, mut failures) =
            (0usize, 0usize, 0u64, 0u64, 0u64);
        let mut views: Vec<(String, TokenView)> = Vec::new();
        // Cluster totals are summed over every row, so then the page is cut at the end.
        let keeps_totals = self.coordinator().keeps_totals();
        let (mut skip, mut room) = page.unwrap_or((0, usize::MAX));
        for handle in pools {
            let (stats, pool_views) = {
                let pool = handle.lock();
                let views = match page {
                    Some(_) if !keeps_totals => page_views(&pool, &mut skip, &mut room),
                    _ => pool.views(),
                };
                (pool.stats(), views)
            };
            total += stats.total;
            active += active_of(&stats);
            requests += stats.requests;
            success += stats.success;
            failures += stats.failures;
            views.extend(pool_views.into_iter().map(|v| (handle.name.clone(), v)));
        }
        if self.coordinator().keeps_totals() {
            (requests, success, failures) = self.to_totals(&mut views).await;
            if let Some((offset, limit)) = page {
                views = views.into_iter().skip(offset).take(limit).collect();
            }
        }
        let tokens: Vec<TokenRow> = views
            .into_iter()
            .map(|(pool, v)| {
                let meta = self.token_meta(&v.id);
                token_row(&pool, v, meta.as_ref())
            })
            .collect();
        Ok(StatsBody {
            total_tokens: total,
            active_tokens: active,
            total_requests: requests,
            success_rate: rate(success, failures),
            tokens,
            offset: page.map(|p| p.0),
            limit: page.map(|p| p.1),
        })
    }

    /// Replaces each view's counters with the members' totals; the new summary sums.
    async fn to_totals(&self, views: &mut [(String, TokenView)]) -> (u64, u64, u64) {
        let mut map: CounterMap = views
            .iter()
            .map(|(_, v)| (v.id.clone(), v.counters.clone()))
            .collect();
        self.coordinator().to_totals(&mut map).await;
        let (mut requests, mut success, mut failures) = (0u64, 0u64, 0u64);
        for (_, v) in views.iter_mut() {
            if let Some(c) = map.remove(&v.id) {
                v.counters = c;
            }
            let c = &v.counters;
            v.success_rate = c.success_rate();
            requests += c.success + c.failures() + c.client_error + c.unknown;
            success += c.success;
            failures += c.failures();
        }
        (requests, success, failures)
    }
}

/// One pool as `GET /api/pools` lists it.
#[derive(Debug, Serialize)]
pub struct PoolSummary {
    pub name: String,
    pub strategy: Strategy,
    pub tokens: usize,
    pub active: usize,
    pub in_flight: u64,
    pub health: HealthKind,
}

const MINUTE_MS: u64 = 60_000;

impl TokenService {
    /// Every pool's summary, in index order.
    pub fn pool_summaries(&self) -> Vec<PoolSummary> {
        self.pools()
            .iter()
            .map(|h| {
                let (stats, strategy) = {
                    let pool = h.lock();
                    (pool.stats(), pool.policy().strategy)
                };
                PoolSummary {
                    name: h.name.clone(),
                    strategy,
                    tokens: stats.total,
                    active: active_of(&stats),
                    in_flight: stats.in_flight,
                    health: h.health.kind,
                }
            })
            .collect()
    }

    /// Requests and failures per minute for the last `count` minutes, oldest first, with
    /// every minute present (zeros where nothing happened); of one pool or token or of all.
    pub async fn minutes(
        &self,
        count: u64,
        pool: Option<String>,
        token: Option<TokenId>,
    ) -> ServiceResult<Vec<(Millis, u32, u32)>> {
        if let Some(p) = &pool {
            self.named_pool(Some(p))?;
        }
        let now_minute = now_ms() / MINUTE_MS;
        let first = now_minute + 1 - count;
        let query = MinuteQuery {
            token_id: token,
            pool,
            since_minute: first,
        };
        let rows: HashMap<u64, (u32, u32)> = self
            .store()
            .minutes(&query)
            .await?
            .into_iter()
            .map(|(m, r, f)| (m, (r, f)))
            .collect();
        Ok((first..=now_minute)
            .map(|m| {
                let (r, f) = rows.get(&m).copied().unwrap_or((0, 0));
                (m * MINUTE_MS, r, f)
            })
            .collect())
    }
}

/// Which events to read (`GET /api/events`), newest first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsFilter {
    pub limit: Option<u32>,
    pub token: Option<String>,
    pub pool: Option<String>,
    /// Only events with a smaller `id` (paging back).
    pub before: Option<i64>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
}

const DEFAULT_EVENTS: u32 = 100;
const MAX_EVENTS: u32 = 1000;

impl TokenService {
    /// Events from the store, newest first (they survive restarts; the UI pages back with
    /// `before`).
    pub async fn events(&self, f: EventsFilter) -> ServiceResult<Vec<EventRecord>> {
        let limit = f.limit.unwrap_or(DEFAULT_EVENTS);
        if limit == 0 || limit > MAX_EVENTS {
            return Err(ServiceError::invalid(format!(
                "limit must be between 1 and {MAX_EVENTS}"
            )));
        }
        let since = f.since.as_deref().map(crate::views::parse_time).transpose();
        let query = EventQuery {
            token_id: f.token.map(TokenId),
            pool: f.pool,
            since: since?,
            before_seq: f.before,
            limit,
        };
        Ok(self.store().events(&query).await?)
    }
}

fn active_of(stats: &tokenlb_core::PoolStats) -> usize {
    stats
        .by_state
        .iter()
        .filter(|(s, _)| *s == TokenState::Active)
        .map(|(_, n)| n)
        .sum()
}

/// The success rate, or `None` when nothing has been counted yet (not 100 %).
fn rate(success: u64, failures: u64) -> Option<f64> {
    let n = success + failures;
    (n > 0).then(|| success as f64 / n as f64)
}

/// The views of the rows of `pool` that fall in the page: `skip` rows still to pass over,
/// `room` rows still wanted (both carried from one pool to the next).
fn page_views(pool: &tokenlb_core::Pool, skip: &mut usize, room: &mut usize) -> Vec<TokenView> {
    let n = pool.len();
    if *skip >= n {
        *skip -= n;
        return Vec::new();
    }
    let ids: Vec<TokenId> = pool
        .keys()
        .skip(*skip)
        .take(*room)
        .map(|k| TokenId(k.id.to_string()))
        .collect();
    *skip = 0;
    *room -= ids.len();
    ids.iter().filter_map(|id| pool.get(id)).collect()
}
