//! Paged token lists: filter, sort and page on the server (`GET /api/tokens`, and the
//! optional `offset`/`limit` of `GET /api/token/stats`).
//!
//! Built for 100,000 tokens answered every two seconds: under each pool's lock, taken once per
//! chunk of slots so leases never wait long, only the [`TokenKey`]s are read (no view, no
//! formatting) and the matching ones copied into a small [`Entry`]; the page is then chosen with two `select_nth_unstable` passes (O(n)) and only
//! its rows are sorted and rendered. Sorting is total (the field, then the name in natural
//! order, then the id), so pages never overlap or skip a token between two requests.
//! `q` matches the name, the id and the *masked* token, never the secret.

use super::natural;
use super::{ServiceError, ServiceResult, TokenService};
use crate::views::{token_row, TokenRow};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use tokenlb_core::{TokenId, TokenKey, TokenState};

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;
/// Token slots read per hold of a pool's lock (about a millisecond's copying).
const LOCKED_SLOTS: usize = 4096;
/// The longest search text accepted.
const MAX_QUERY_CHARS: usize = 200;

/// `GET /api/tokens` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    pub pool: Option<String>,
    pub state: Option<TokenState>,
    /// Case-insensitive substring of the name, the id or the masked token.
    pub q: Option<String>,
    /// A [`SortField`] name, `-` in front for descending; default `name`.
    pub sort: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

/// One page of tokens and how many matched in all.
#[derive(Debug, Serialize)]
pub struct TokenPage {
    pub tokens: Vec<TokenRow>,
    /// Rows matching the filters, over all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// What a list can be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    Name,
    Pool,
    State,
    Success,
    Failure,
    SuccessRate,
    TotalRequests,
    InFlight,
    Weight,
    LastUsed,
    LastErrorAt,
    ExpiresAt,
}

const FIELDS: [(&str, SortField); 12] = [
    ("name", SortField::Name),
    ("pool", SortField::Pool),
    ("state", SortField::State),
    ("success", SortField::Success),
    ("failure", SortField::Failure),
    ("success_rate", SortField::SuccessRate),
    ("total_requests", SortField::TotalRequests),
    ("in_flight", SortField::InFlight),
    ("weight", SortField::Weight),
    ("last_used", SortField::LastUsed),
    ("last_error_at", SortField::LastErrorAt),
    ("expires_at", SortField::ExpiresAt),
];

/// The names `sort` accepts (for the OpenAPI document and error messages).
pub fn sort_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|(n, _)| *n)
}

/// A sort order: a field and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub desc: bool,
}

impl Sort {
    /// `name`, `-success_rate`, …; anything else is refused with the list of names.
    pub fn parse(text: &str) -> ServiceResult<Sort> {
        let (desc, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let field = FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f);
        field.map(|field| Sort { field, desc }).ok_or_else(|| {
            let names: Vec<&str> = sort_names().collect();
            ServiceError::invalid(format!(
                "sort must be one of {} (with - in front for descending), not {text:?}",
                names.join(", ")
            ))
        })
    }
}

/// Checks `offset`/`limit` against the bounds; `None` limit means `default`.
pub fn page_bounds(
    offset: Option<usize>,
    limit: Option<usize>,
    default: usize,
) -> ServiceResult<(usize, usize)> {
    let limit = limit.unwrap_or(default);
    if limit > MAX_LIMIT {
        return Err(ServiceError::invalid(format!(
            "limit must be at most {MAX_LIMIT}, not {limit}"
        )));
    }
    Ok((offset.unwrap_or(0), limit))
}

/// A matching token as the sort sees it: a copy of what it orders by, nothing more.
struct Entry {
    pool: usize,
    id: Box<str>,
    name: Box<str>,
    /// The sort field's value; `None` (no value) sorts last in both directions.
    value: Option<f64>,
}

fn value_of(field: SortField, k: &TokenKey<'_>) -> Option<f64> {
    let ms = |t: Option<u64>| t.map(|t| t as f64);
    match field {
        SortField::Name | SortField::Pool => Some(0.0),
        SortField::State => Some(TokenState::ALL.iter().position(|s| *s == k.state)? as f64),
        SortField::Success => Some(k.success as f64),
        SortField::Failure => Some(k.failures as f64),
        SortField::SuccessRate => {
            let n = k.success + k.failures;
            (n > 0).then(|| k.success as f64 / n as f64)
        }
        SortField::TotalRequests => Some(k.requests as f64),
        SortField::InFlight => Some(f64::from(k.in_flight)),
        SortField::Weight => Some(f64::from(k.weight)),
        SortField::LastUsed => ms(k.last_used),
        SortField::LastErrorAt => ms(k.last_error_at),
        SortField::ExpiresAt => ms(k.expires_at),
    }
}

/// A lower-cased search text, matched without allocating for ASCII.
struct Needle(String);

impl Needle {
    fn new(q: &str) -> Needle {
        Needle(q.to_lowercase())
    }

    fn found_in(&self, hay: &str) -> bool {
        let n = self.0.as_bytes();
        if self.0.is_ascii() {
            n.is_empty()
                || hay
                    .as_bytes()
                    .windows(n.len())
                    .any(|w| w.eq_ignore_ascii_case(n))
        } else {
            hay.to_lowercase().contains(&self.0)
        }
    }

    /// Name, id or masked token: never the secret (a key does not even hold it readable).
    fn matches(&self, k: &TokenKey<'_>) -> bool {
        self.found_in(k.name) || self.found_in(k.id) || self.found_in(&k.masked())
    }
}

impl TokenService {
    /// One page of token rows, filtered, searched and sorted on the server.
    pub fn list(&self, query: &TokenQuery) -> ServiceResult<TokenPage> {
        let (offset, limit) = page_bounds(query.offset, query.limit, DEFAULT_LIMIT)?;
        let sort = Sort::parse(query.sort.as_deref().unwrap_or("name"))?;
        let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            let message = format!("q must be at most {MAX_QUERY_CHARS} characters");
            return Err(ServiceError::invalid(message));
        }
        let needle = q.map(Needle::new);
        let pools = match query.pool.as_deref() {
            Some(name) => vec![self.named_pool(Some(name))?],
            None => self.pools(),
        };
        let mut entries = Vec::new();
        for (i, handle) in pools.iter().enumerate() {
            // In chunks, so leases wait at most one chunk's copy, not 100,000 tokens'.
            let mut start = 0;
            loop {
                let pool = handle.lock();
                let end = start + LOCKED_SLOTS;
                let matching = pool
                    .keys_in(start..end)
                    .filter(|k| query.state.is_none_or(|s| s == k.state))
                    .filter(|k| needle.as_ref().is_none_or(|n| n.matches(k)));
                entries.extend(matching.map(|k| Entry {
                    pool: i,
                    id: k.id.into(),
                    name: k.name.into(),
                    value: value_of(sort.field, &k),
                }));
                if end >= pool.slot_count() {
                    break;
                }
                start = end;
            }
        }
        let total = entries.len();
        let names: Vec<&str> = pools.iter().map(|h| h.name.as_str()).collect();
        let page = select_page(entries, offset, limit, |a, b| compare(sort, &names, a, b));
        let tokens = page
            .into_iter()
            .filter_map(|e| {
                let handle = &pools[e.pool];
                let view = handle.view(&TokenId(e.id.into()))?;
                let meta = self.token_meta(&view.id);
                Some(token_row(&handle.name, view, meta.as_ref()))
            })
            .collect();
        Ok(TokenPage {
            tokens,
            total,
            offset,
            limit,
        })
    }
}

/// The total order of a list: the field (no value last, whatever the direction), then the
/// name in natural order, then the id.
fn compare(sort: Sort, pools: &[&str], a: &Entry, b: &Entry) -> Ordering {
    let by_name = || natural::compare(&a.name, &b.name);
    let primary = match sort.field {
        SortField::Name => by_name(),
        SortField::Pool => natural::compare(pools[a.pool], pools[b.pool]),
        _ => match (a.value, b.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) => x.total_cmp(&y),
        },
    };
    let primary = if sort.desc {
        primary.reverse()
    } else {
        primary
    };
    primary
        .then_with(by_name)
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.pool.cmp(&b.pool))
}

/// Items `offset..offset + limit` of `items` in `cmp` order, without sorting the rest: two
/// selections (O(n)) and a sort of the page only.
pub fn select_page<T>(
    mut items: Vec<T>,
    offset: usize,
    limit: usize,
    mut cmp: impl FnMut(&T, &T) -> Ordering,
) -> Vec<T> {
    let end = offset.saturating_add(limit).min(items.len());
    if offset >= end {
        return Vec::new();
    }
    if end < items.len() {
        items.select_nth_unstable_by(end, &mut cmp);
        items.truncate(end);
    }
    if offset > 0 {
        items.select_nth_unstable_by(offset, &mut cmp);
        items.drain(..offset);
    }
    items.sort_unstable_by(&mut cmp);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_the_slice_of_the_full_sort() {
        let items: Vec<u32> = (0..500).map(|i| (i * 7919) % 500).collect();
        let mut all = items.clone();
        all.sort();
        for (offset, limit) in [
            (0, 10),
            (10, 10),
            (490, 100),
            (499, 1),
            (500, 5),
            (0, 0),
            (0, 1000),
        ] {
            let page = select_page(items.clone(), offset, limit, |a, b| a.cmp(b));
            let end = (offset + limit).min(all.len());
            let want = if offset < end {
                &all[offset..end]
            } else {
                &[][..]
            };
            assert_eq!(page, want, "offset {offset} limit {limit}");
        }
    }

    #[test]
    fn sort_names_parse_with_a_direction_and_unknown_ones_list_the_allowed() {
        let s = Sort::parse("-success_rate").unwrap();
        assert_eq!((s.field, s.desc), (SortField::SuccessRate, true));
        assert_eq!(Sort::parse("name").unwrap().field, SortField::Name);
        let err = Sort::parse("secret").unwrap_err().to_string();
        assert!(err.contains("name, pool, state"), "{err}");
        assert!(err.contains("\"secret\""), "{err}");
    }

    #[test]
    fn limits_above_the_maximum_are_refused() {
        assert_eq!(page_bounds(None, None, 100).unwrap(), (0, 100));
        assert!(page_bounds(Some(5), Some(MAX_LIMIT + 1), 100).is_err());
        assert_eq!(page_bounds(Some(5), Some(0), 100).unwrap(), (5, 0));
    }

    #[test]
    fn search_ignores_ascii_and_unicode_case() {
        assert!(Needle::new("TOK").found_in("my-tok-1"));
        assert!(Needle::new("Ä").found_in("bär"));
        assert!(!Needle::new("zz").found_in("abc"));
    }
}
