//! Memory per token: 100,000 tokens must fit the manager's budget (well under 150 MiB in
//! all), so the core's share is measured and bounded here (a per-token 24-hour array, for
//! example, would cost over a gigabyte and fail this at once).
//!
//! Measured as the growth of the process's resident set (Linux), with a generous bound; the
//! figure is printed for the record.
#![cfg(target_os = "linux")]

use tokenlb_core::*;

/// Resident set size of this process in bytes, from /proc/self/statm (pages × 4096).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_hundred_thousand_tokens_stay_small() {
    const N: usize = 100_000;
    const T0: Millis = 1_700_000_000_000;
    let before = rss();
    let mut p = Pool::new("default", Policy::default());
    for i in 0..N {
        // A realistic Wopan access token is a 36-character UUID-like string.
        let spec = TokenSpec::new(
            TokenId(format!("t_{i:010}")),
            format!("token {i}"),
            Secret::new(format!("c3f0362b-{i:08}-4997-a9c2-0478702a5fea")),
        );
        p.insert(spec, T0).unwrap();
    }
    // Use every strategy so that every index is built, and touch every token once.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    for s in Strategy::ALL {
        let l = p.pick(s, T0, &mut rng).unwrap();
        p.report(l.id, &Outcome::success(), T0, &mut rng).unwrap();
    }
    for i in 0..N {
        let id = TokenId(format!("t_{i:010}"));
        p.report_token(&id, &Outcome::success(), T0 + 1, &mut rng)
            .unwrap();
    }
    let bytes = rss().saturating_sub(before);
    let per_token = bytes / N;
    eprintln!(
        "100,000 tokens: {:.1} MiB, {per_token} bytes per token",
        bytes as f64 / 1048576.0
    );
    assert!(bytes < 100 * 1024 * 1024, "{bytes} bytes");
}

/// A burst of `get`s that are never reported keeps every lease open for a whole TTL: the
/// lease book must stay near 8 bytes per open lease (a hash map plus a deadline heap cost
/// about 100), and every one of them must still expire as `unknown` at its deadline.
#[test]
fn a_million_unreported_leases_stay_small_and_expire() {
    const N: u64 = 1_000_000;
    const T0: Millis = 1_700_000_000_000;
    let mut p = Pool::new("default", Policy::default());
    for i in 0..10 {
        let spec = TokenSpec::new(
            TokenId(format!("t_{i}")),
            format!("token {i}"),
            Secret::new(format!("secret-{i}")),
        );
        p.insert(spec, T0).unwrap();
    }
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let before = rss();
    let mut last = None;
    for i in 0..N {
        // 100,000 gets per second of pool time, none reported.
        last = Some(
            p.pick(Strategy::RoundRobin, T0 + i / 100, &mut rng)
                .unwrap(),
        );
    }
    let bytes = rss().saturating_sub(before);
    eprintln!(
        "1,000,000 open leases: {:.1} MiB, {} bytes per lease",
        bytes as f64 / 1048576.0,
        bytes as u64 / N
    );
    assert_eq!(p.leases_open(), N as usize);
    assert!(bytes < 24 * 1024 * 1024, "{bytes} bytes");
    // The newest is still reportable; everything else expires at its deadline.
    let last = last.unwrap();
    p.report(last.id, &Outcome::success(), T0 + N / 100, &mut rng)
        .unwrap();
    let (_, expired) = p.tick(last.deadline + 1, &mut rng);
    assert_eq!(expired as u64, N - 1);
    assert_eq!(p.leases_open(), 0);
    assert!(p.views().iter().all(|t| t.in_flight == 0));
}
