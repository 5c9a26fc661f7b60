//! How a proxied answer is classified (DESIGN §10): the route's rules first (first match
//! wins), then the defaults; and when the token may be used again, read from `Retry-After`
//! or `x-ratelimit-reset*`.
//!
//! Pure functions of the answer's status, headers and body prefix and of `now`, so every
//! rule is tested without a server. The HTTP layer (`crate::proxy`) forwards and streams; it
//! hands the result to [`TokenService::report`](super::TokenService::report) like any other
//! report, so proxied outcomes go through the same state machine, stats, events and metrics.

use crate::config::{parse_status, ProxyRule};
use reqwest::header::HeaderMap;
use tokenlb_core::OutcomeClass;

/// How much of an answer's body the rules look at.
pub const BODY_PEEK: usize = 64 * 1024;

/// A route's rules, with their status conditions parsed once.
#[derive(Clone, Debug, Default)]
pub struct Rules(Vec<(Option<(u16, u16)>, ProxyRule)>);

/// What an answer was found to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub class: OutcomeClass,
    /// Seconds until the token may be used again, when the answer said.
    pub retry_after_s: Option<u64>,
    /// The configured rule that matched (its index), `None` for the defaults.
    pub rule: Option<usize>,
}

impl Rules {
    /// The rules of a validated route (a status that does not parse matches nothing).
    pub fn new(rules: &[ProxyRule]) -> Rules {
        Rules(
            rules
                .iter()
                .map(|r| {
                    let status = r
                        .status
                        .as_deref()
                        .map(|s| parse_status(s).unwrap_or((1, 0)));
                    (status, r.clone())
                })
                .collect(),
        )
    }

    /// Whether classifying an answer of `status` needs its body: some rule that may match
    /// it looks at the body. Otherwise the body streams untouched.
    pub fn needs_body(&self, status: u16) -> bool {
        self.0.iter().any(|(range, rule)| {
            rule.body_contains.is_some() && range.is_none_or(|(lo, hi)| (lo..=hi).contains(&status))
        })
    }

    /// Classifies an answer; `body` is at most the first [`BODY_PEEK`] bytes (empty when
    /// not read), `now_ms` the clock for HTTP dates and epoch times.
    pub fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8], now_ms: u64) -> Verdict {
        let hit = self.0.iter().position(|(range, rule)| {
            range.is_none_or(|(lo, hi)| (lo..=hi).contains(&status))
                && rule
                    .body_contains
                    .as_deref()
                    .is_none_or(|t| contains(body, t.as_bytes()))
                && rule.header.as_deref().is_none_or(|h| {
                    header_text(headers, h).is_some_and(|v| {
                        rule.header_contains
                            .as_deref()
                            .is_none_or(|t| v.contains(t))
                    })
                })
        });
        let class = match hit {
            Some(i) => self.0[i].1.outcome,
            None => default_class(status),
        };
        Verdict {
            class,
            retry_after_s: recovery_s(headers, now_ms),
            rule: hit,
        }
    }
}

/// The default classes of DESIGN §10.
pub fn default_class(status: u16) -> OutcomeClass {
    match status {
        100..=399 => OutcomeClass::Success,
        401 | 403 => OutcomeClass::Auth,
        402 => OutcomeClass::QuotaExhausted,
        429 => OutcomeClass::RateLimited,
        408 | 500..=599 => OutcomeClass::Transient,
        _ => OutcomeClass::ClientError,
    }
}

/// Whether another token may do better than this one did.
pub fn retryable(class: OutcomeClass) -> bool {
    matches!(
        class,
        OutcomeClass::Auth
            | OutcomeClass::RateLimited
            | OutcomeClass::QuotaExhausted
            | OutcomeClass::Transient
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Seconds until the upstream says the token may be used again: `Retry-After` (seconds or
/// an HTTP date), else the latest `x-ratelimit-reset*` (delta seconds, epoch seconds or
/// milliseconds, an HTTP date, or a duration such as `6m0s` / `20ms`). At least 1 s.
pub fn recovery_s(headers: &HeaderMap, now_ms: u64) -> Option<u64> {
    if let Some(s) = header_text(headers, "retry-after").and_then(|v| time_value(v, now_ms)) {
        return Some(s);
    }
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ratelimit-reset"))
        .filter_map(|(_, v)| v.to_str().ok())
        .filter_map(|v| time_value(v, now_ms))
        .max()
}

/// One time value, as seconds from now (rounded up, at least 1).
fn time_value(text: &str, now_ms: u64) -> Option<u64> {
    let t = text.trim();
    let until_ms = |at_ms: u64| at_ms.saturating_sub(now_ms);
    let ms = if let Ok(n) = t.parse::<f64>() {
        if !(n.is_finite() && n >= 0.0) {
            return None;
        }
        if n >= 1e12 {
            until_ms(n as u64) // epoch milliseconds
        } else if n >= 1e9 {
            until_ms((n * 1000.0) as u64) // epoch seconds
        } else {
            (n * 1000.0).ceil() as u64 // seconds from now
        }
    } else if let Ok(at) = chrono::DateTime::parse_from_rfc2822(t) {
        until_ms(u64::try_from(at.timestamp_millis()).ok()?)
    } else {
        go_duration_ms(t)?
    };
    Some(ms.div_ceil(1000).max(1))
}

/// A duration as OpenAI's rate-limit headers write it: `1h2m3.5s`, `6m0s`, `20ms`.
fn go_duration_ms(text: &str) -> Option<u64> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1.0, 2)
        } else if rest.starts_with('h') {
            (3_600_000.0, 1)
        } else if rest.starts_with('m') {
            (60_000.0, 1)
        } else if rest.starts_with('s') {
            (1000.0, 1)
        } else {
            return None;
        };
        total += n * unit;
        rest = &rest[len..];
    }
    Some(total.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn defaults_follow_the_design() {
        let r = Rules::default();
        let none = HeaderMap::new();
        let class = |s| r.classify(s, &none, b"", 0).class;
        assert_eq!(class(200), OutcomeClass::Success);
        assert_eq!(class(304), OutcomeClass::Success);
        assert_eq!(class(401), OutcomeClass::Auth);
        assert_eq!(class(403), OutcomeClass::Auth);
        assert_eq!(class(402), OutcomeClass::QuotaExhausted);
        assert_eq!(class(429), OutcomeClass::RateLimited);
        assert_eq!(class(408), OutcomeClass::Transient);
        assert_eq!(class(503), OutcomeClass::Transient);
        assert_eq!(class(404), OutcomeClass::ClientError);
        assert_eq!(class(422), OutcomeClass::ClientError);
    }

    #[test]
    fn rules_come_first_and_need_every_condition() {
        let rule =
            |status: Option<&str>, body: Option<&str>, header: Option<&str>, outcome| ProxyRule {
                status: status.map(str::to_string),
                body_contains: body.map(str::to_string),
                header: header.map(str::to_string),
                header_contains: None,
                outcome,
            };
        let r = Rules::new(&[
            rule(
                Some("403"),
                Some("quota"),
                None,
                OutcomeClass::QuotaExhausted,
            ),
            rule(
                Some("200-299"),
                None,
                Some("x-error"),
                OutcomeClass::Transient,
            ),
        ]);
        let none = HeaderMap::new();
        let v = r.classify(403, &none, b"{\"error\":\"quota exceeded\"}", 0);
        assert_eq!((v.class, v.rule), (OutcomeClass::QuotaExhausted, Some(0)));
        let v = r.classify(403, &none, b"forbidden", 0);
        assert_eq!((v.class, v.rule), (OutcomeClass::Auth, None));
        let v = r.classify(200, &headers(&[("x-error", "1")]), b"", 0);
        assert_eq!(v.class, OutcomeClass::Transient);
        assert!(r.needs_body(403));
        assert!(!r.needs_body(200));
    }

    #[test]
    fn recovery_times_in_every_form() {
        let now = 1_700_000_000_000u64;
        let at = |pairs: &[(&str, &str)]| recovery_s(&headers(pairs), now);
        assert_eq!(at(&[("retry-after", "30")]), Some(30));
        assert_eq!(at(&[("retry-after", "0")]), Some(1));
        // HTTP date 90 s from now.
        let date = chrono::DateTime::from_timestamp_millis(now as i64 + 90_000)
            .unwrap()
            .to_rfc2822()
            .replace("+0000", "GMT");
        assert_eq!(at(&[("retry-after", &date)]), Some(90));
        assert_eq!(at(&[("x-ratelimit-reset", "1700000045")]), Some(45));
        assert_eq!(at(&[("x-ratelimit-reset", "1700000012000")]), Some(12));
        assert_eq!(
            at(&[
                ("x-ratelimit-reset-requests", "6m0s"),
                ("x-ratelimit-reset-tokens", "20ms")
            ]),
            Some(360)
        );
        assert_eq!(at(&[("x-ratelimit-reset", "7")]), Some(7));
        assert_eq!(at(&[("retry-after", "soon")]), None);
        assert_eq!(at(&[]), None);
    }
}
