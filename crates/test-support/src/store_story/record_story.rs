//! The record parts of the conformance story: stats, events, minutes and pruning, pools, and
//! re-encryption. Each ends by reopening the database to check what was acknowledged.

use super::*;

/// Counter snapshots replace, minute deltas add up, unknown tokens are ignored, all durable.
pub async fn stats(h: &dyn Harness) {
    let s = open(h).await;
    let toks: Vec<StoredToken> = (0..3).map(|i| token(i, "default")).collect();
    s.insert_tokens(&toks).await.unwrap();
    let (t0, t1) = ("t_story00000", "t_story00001");
    let b1 = stats_batch(
        vec![(t0, counters(5, 1)), (t1, counters(2, 0))],
        vec![
            minute_count(t0, "default", 100, 3, 1),
            minute_count(t1, "default", 100, 2, 0),
        ],
    );
    let b2 = stats_batch(
        vec![(t0, counters(9, 2)), ("t_unknown", counters(1, 1))],
        vec![
            minute_count(t0, "default", 100, 4, 2),
            minute_count(t0, "default", 101, 1, 0),
            minute_count("t_unknown", "default", 100, 50, 50),
        ],
    );
    s.write_stats(&b1).await.unwrap();
    s.write_stats(&b2).await.unwrap();
    s.write_stats(&StatsBatch::default()).await.unwrap();

    let check = |loaded: Vec<StoredToken>| {
        let get = |id: &str| {
            loaded
                .iter()
                .find(|t| t.id.as_str() == id)
                .unwrap()
                .counters
                .clone()
        };
        assert_eq!(get(t0), counters(9, 2));
        assert_eq!(get(t1), counters(2, 0));
        assert_eq!(get("t_story00002"), TokenCounters::default());
    };
    check(s.load_tokens().await.unwrap());
    assert_eq!(
        s.minutes(&q_minutes(0)).await.unwrap(),
        vec![(100, 9, 3), (101, 1, 0)]
    );
    let only_t0 = MinuteQuery {
        token_id: Some(TokenId(t0.into())),
        ..q_minutes(0)
    };
    assert_eq!(
        s.minutes(&only_t0).await.unwrap(),
        vec![(100, 7, 3), (101, 1, 0)]
    );

    s.close().await;
    drop(s);
    let s = open(h).await;
    check(s.load_tokens().await.unwrap());
    assert_eq!(
        s.minutes(&q_minutes(0)).await.unwrap(),
        vec![(100, 9, 3), (101, 1, 0)]
    );
    // Deleting a token removes its minute rows.
    assert!(s.delete_token(&TokenId(t1.into())).await.unwrap());
    assert_eq!(
        s.minutes(&q_minutes(0)).await.unwrap(),
        vec![(100, 7, 3), (101, 1, 0)]
    );
    s.close().await;
}

/// Append assigns increasing sequence numbers; queries filter, order newest first, page.
pub async fn events(h: &dyn Harness) {
    let s = open(h).await;
    let input = vec![
        event(1_000, "t_a", "default", TokenState::Cooling),
        event(2_000, "t_b", "default", TokenState::Invalid),
        event(3_000, "t_a", "default", TokenState::Active),
        event(4_000, "t_c", "other", TokenState::Disabled),
        EventRecord {
            from: None,
            to: None,
            kind: "added".into(),
            sample_error: None,
            ..event(5_000, "t_a", "default", TokenState::Active)
        },
    ];
    let stored = s.append_events(&input).await.unwrap();
    assert_eq!(stored.len(), input.len());
    for (i, (got, sent)) in stored.iter().zip(&input).enumerate() {
        assert_eq!(
            EventRecord {
                seq: 0,
                ..got.clone()
            },
            *sent
        );
        assert!(got.seq > 0);
        if i > 0 {
            assert!(
                got.seq > stored[i - 1].seq,
                "sequence numbers must increase"
            );
        }
    }
    let newest_first: Vec<EventRecord> = stored.iter().rev().cloned().collect();
    assert_eq!(s.events(&q_events(0)).await.unwrap(), newest_first);
    assert_eq!(
        s.events(&q_events(2)).await.unwrap(),
        newest_first[..2].to_vec()
    );
    let page2 = EventQuery {
        before_seq: Some(newest_first[1].seq),
        ..q_events(2)
    };
    assert_eq!(s.events(&page2).await.unwrap(), newest_first[2..4].to_vec());

    let seqs = |v: Vec<EventRecord>| v.into_iter().map(|e| e.at).collect::<Vec<_>>();
    let by_token = EventQuery {
        token_id: Some(TokenId("t_a".into())),
        ..q_events(0)
    };
    assert_eq!(
        seqs(s.events(&by_token).await.unwrap()),
        vec![5_000, 3_000, 1_000]
    );
    let by_pool = EventQuery {
        pool: Some("other".into()),
        ..q_events(0)
    };
    assert_eq!(seqs(s.events(&by_pool).await.unwrap()), vec![4_000]);
    let since = EventQuery {
        since: Some(3_000),
        ..q_events(0)
    };
    assert_eq!(
        seqs(s.events(&since).await.unwrap()),
        vec![5_000, 4_000, 3_000]
    );
    let both = EventQuery {
        token_id: Some(TokenId("t_a".into())),
        since: Some(2_000),
        ..q_events(1)
    };
    assert_eq!(seqs(s.events(&both).await.unwrap()), vec![5_000]);

    let more = s
        .append_events(&[event(6_000, "t_b", "default", TokenState::Active)])
        .await
        .unwrap();
    assert!(more[0].seq > stored[4].seq);
    assert_eq!(s.append_events(&[]).await.unwrap(), vec![]);

    s.close().await;
    drop(s);
    let s = open(h).await;
    let all = s.events(&q_events(0)).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], more[0]);
    assert_eq!(all[1..].to_vec(), newest_first);
    s.close().await;
}

/// Minute sums by token and pool, and pruning of old minutes and events.
pub async fn minutes_and_prune(h: &dyn Harness) {
    let s = open(h).await;
    s.insert_tokens(&[token(0, "a"), token(1, "b")])
        .await
        .unwrap();
    let (t0, t1) = ("t_story00000", "t_story00001");
    let mins = vec![
        minute_count(t0, "a", 10, 1, 0),
        minute_count(t0, "a", 11, 2, 1),
        minute_count(t0, "a", 12, 3, 0),
        minute_count(t1, "b", 11, 10, 5),
        minute_count(t1, "b", 12, 20, 0),
    ];
    s.write_stats(&stats_batch(vec![], mins)).await.unwrap();
    assert_eq!(
        s.minutes(&q_minutes(0)).await.unwrap(),
        vec![(10, 1, 0), (11, 12, 6), (12, 23, 0)]
    );
    assert_eq!(
        s.minutes(&q_minutes(11)).await.unwrap(),
        vec![(11, 12, 6), (12, 23, 0)]
    );
    let pool_b = MinuteQuery {
        pool: Some("b".into()),
        ..q_minutes(0)
    };
    assert_eq!(
        s.minutes(&pool_b).await.unwrap(),
        vec![(11, 10, 5), (12, 20, 0)]
    );
    assert_eq!(s.minutes(&q_minutes(13)).await.unwrap(), vec![]);

    s.append_events(&[
        event(100, t0, "a", TokenState::Cooling),
        event(200, t1, "b", TokenState::Cooling),
    ])
    .await
    .unwrap();
    s.prune(12, 150, u64::MAX >> 1).await.unwrap();
    assert_eq!(s.minutes(&q_minutes(0)).await.unwrap(), vec![(12, 23, 0)]);
    let left: Vec<u64> = s
        .events(&q_events(0))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(left, vec![200]);
    // The row cap keeps the newest events only.
    s.append_events(&[
        event(300, t0, "a", TokenState::Active),
        event(400, t1, "b", TokenState::Active),
    ])
    .await
    .unwrap();
    s.prune(0, 0, 2).await.unwrap();
    let left: Vec<u64> = s
        .events(&q_events(0))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(
        left,
        vec![400, 300],
        "newest first, the oldest dropped by the cap"
    );

    s.close().await;
    drop(s);
    let s = open(h).await;
    assert_eq!(s.minutes(&q_minutes(0)).await.unwrap(), vec![(12, 23, 0)]);
    s.close().await;
}

/// Pools are upserted by name and loaded in name order.
pub async fn pools(h: &dyn Harness) {
    let s = open(h).await;
    assert_eq!(s.load_pools().await.unwrap(), vec![]);
    s.upsert_pool(&pool("default", r#"{"strategy":"best"}"#))
        .await
        .unwrap();
    s.upsert_pool(&pool("alpha", "{}")).await.unwrap();
    s.upsert_pool(&pool("default", r#"{"strategy":"weighted"}"#))
        .await
        .unwrap();
    let want = vec![
        pool("alpha", "{}"),
        pool("default", r#"{"strategy":"weighted"}"#),
    ];
    assert_eq!(s.load_pools().await.unwrap(), want);
    s.ping().await.unwrap();
    assert!(!s.describe().is_empty());
    s.close().await;
    drop(s);
    let s = open(h).await;
    assert_eq!(s.load_pools().await.unwrap(), want);
    s.close().await;
}

/// Re-encryption under a new key: the store keeps working, a reopen with the new key reads
/// everything, a reopen with the old key fails with `Decrypt`.
pub async fn reencrypt(h: &dyn Harness) {
    let s = open(h).await;
    let toks: Vec<StoredToken> = (0..6).map(|i| token(i, "default")).collect();
    s.insert_tokens(&toks).await.unwrap();
    assert_eq!(s.reencrypt(&key(2)).await.unwrap(), toks.len());
    assert_eq!(by_id(s.load_tokens().await.unwrap()), toks);
    assert_eq!(
        s.find_by_secret(&secret(2)).await.unwrap(),
        Some(TokenId("t_story00002".into()))
    );
    let dup = StoredToken {
        secret: secret(2),
        ..token(90, "default")
    };
    assert!(is_duplicate_of(
        s.insert_tokens(&[dup]).await,
        "t_story00002"
    ));
    s.insert_tokens(&[token(7, "default")]).await.unwrap();
    s.close().await;
    drop(s);

    let s = match h.open(&key(2)).await {
        Ok(s) => s,
        Err(e) => panic!("reopen with the new key failed: {e}"),
    };
    let mut want = toks.clone();
    want.push(token(7, "default"));
    assert_eq!(by_id(s.load_tokens().await.unwrap()), want);
    s.close().await;
    drop(s);

    let old = match h.open(&key(1)).await {
        Ok(s) => s.load_tokens().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        matches!(old, Err(StoreError::Decrypt(_))),
        "old key must fail: {old:?}"
    );
}
