//! The journal encoding: round trips and damaged input.

use super::*;
use crate::MinuteCount;
use tokenlb_core::TokenId;

fn counters(success: u64, latency: Option<f64>, error: Option<&str>) -> TokenCounters {
    TokenCounters {
        success,
        auth: 1,
        rate_limited: 2,
        quota_exhausted: 3,
        transient: 4,
        client_error: 5,
        unknown: u64::MAX,
        last_used: Some(1_764_000_000_000),
        last_error: error.map(String::from),
        last_error_at: error.map(|_| 1_764_000_000_001),
        latency_ewma_ms: latency,
        times_cooled: u32::MAX,
    }
}

fn minute(id: &str, pool: &str, minute: u64, requests: u32, failures: u32) -> MinuteCount {
    MinuteCount {
        token_id: TokenId(id.into()),
        pool: pool.into(),
        minute,
        requests,
        failures,
    }
}

fn sample() -> StatsBatch {
    StatsBatch {
        counters: vec![
            (TokenId("t_a".into()), counters(7, Some(12.5), None)),
            (
                TokenId("t_b".into()),
                TokenCounters {
                    last_used: Some(0),
                    ..counters(0, Some(0.1), Some("transient: 502 — 坏"))
                },
            ),
            (TokenId("t_c".into()), TokenCounters::default()),
        ],
        minutes: vec![
            minute("t_a", "default", 29_400_000, 3, 1),
            minute("t_a", "default", 29_400_001, 1, 0),
            minute("t_b", "other", 29_400_000, u32::MAX, 0),
            minute("t_only_minutes", "default", 29_400_000, 2, 2),
        ],
    }
}

/// Decodes into (id, counters, minutes with pool names).
type Flat = Vec<(String, Option<TokenCounters>, Vec<(String, u64, u32, u32)>)>;

fn flat(body: &[u8]) -> Result<Flat, String> {
    let mut out = Vec::new();
    decode(body, |pools, e| {
        let minutes = e
            .minutes
            .iter()
            .map(|&(p, m, r, f)| (pools[p].to_string(), m, r, f))
            .collect();
        out.push((e.id.to_string(), e.counters, minutes));
    })?;
    Ok(out)
}

#[test]
fn a_batch_round_trips_exactly() {
    let body = encode(&sample());
    let got = flat(&body).unwrap();
    let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["t_a", "t_b", "t_c", "t_only_minutes"]);
    let b = sample();
    for (i, (_, c)) in b.counters.iter().enumerate() {
        assert_eq!(got[i].1.as_ref(), Some(c));
    }
    assert_eq!(got[3].1, None);
    assert_eq!(
        got[0].2,
        vec![
            ("default".to_string(), 29_400_000, 3, 1),
            ("default".to_string(), 29_400_001, 1, 0)
        ]
    );
    assert_eq!(
        got[1].2,
        vec![("other".to_string(), 29_400_000, u32::MAX, 0)]
    );
    assert!(got[2].2.is_empty());
    // 0.1 is not an f32: stored as f64, bit for bit.
    assert_eq!(got[1].1.as_ref().unwrap().latency_ewma_ms, Some(0.1));
}

#[test]
fn a_typical_entry_is_small() {
    let n = 1000;
    let batch = StatsBatch {
        counters: (0..n)
            .map(|i| {
                let mut c = counters(1_000 + i, Some(f64::from(42.25f32)), None);
                (c.unknown, c.times_cooled) = (0, 0);
                (TokenId(format!("t_{i:010}")), c)
            })
            .collect(),
        minutes: (0..n)
            .map(|i| minute(&format!("t_{i:010}"), "default", 29_400_000, 1, 0))
            .collect(),
    };
    let per_entry = encode(&batch).len() as u64 / n;
    assert!(per_entry <= 36, "{per_entry} bytes per token");
}

#[test]
fn damaged_records_are_errors_never_panics() {
    let body = encode(&sample());
    for cut in 0..body.len() {
        assert!(flat(&body[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = body.clone();
    longer.push(0);
    assert!(flat(&longer).unwrap_err().contains("after the last entry"));
    let mut version = body.clone();
    version[0] = 9;
    assert!(flat(&version).unwrap_err().contains("version 9"));
    // Every single-byte change decodes or fails cleanly.
    for i in 0..body.len() {
        for v in [0u8, 0x7f, 0x80, 0xff] {
            let mut b = body.clone();
            b[i] = v;
            let _ = flat(&b);
        }
    }
    assert!(flat(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
}

#[test]
fn minutes_in_any_order_land_with_their_token() {
    let mut b = sample();
    b.minutes.reverse();
    let mut got = flat(&encode(&b)).unwrap();
    let mut want = flat(&encode(&sample())).unwrap();
    for list in [&mut got, &mut want] {
        list.sort_by(|a, b| a.0.cmp(&b.0));
        for e in list.iter_mut() {
            e.2.sort();
        }
    }
    assert_eq!(got, want);
    // A repeated id (a retried batch): both entries are kept, in order, the later one last.
    let mut b = sample();
    b.counters
        .push((TokenId("t_a".into()), counters(99, None, None)));
    let got = flat(&encode(&b)).unwrap();
    let a: Vec<_> = got.iter().filter(|e| e.0 == "t_a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].1.as_ref().unwrap().success, 99);
    assert_eq!(
        a.iter().map(|e| e.2.len()).sum::<usize>(),
        2,
        "each minute once"
    );
}
