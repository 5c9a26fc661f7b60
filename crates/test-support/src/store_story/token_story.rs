//! The token part of the conformance story: insert, duplicates, merge, lookup by value, every
//! kind of update, delete, and a reopen that must return identical records.

use super::*;

/// Insert, duplicate rejection, merge, lookup by value, every kind of update, delete, reopen.
pub async fn tokens(h: &dyn Harness) {
    let s = open(h).await;
    let mut expected: Vec<StoredToken> = (0..10).map(|i| token(i, "default")).collect();
    expected.extend((10..12).map(|i| token(i, "p2")));
    s.insert_tokens(&expected).await.unwrap();
    assert_eq!(by_id(s.load_tokens().await.unwrap()), expected);

    // A value already stored: rejected with the existing id, and nothing of the batch inserted.
    let dup = StoredToken {
        secret: secret(3),
        ..token(100, "default")
    };
    let batch = [token(101, "default"), dup];
    assert!(is_duplicate_of(
        s.insert_tokens(&batch).await,
        "t_story00003"
    ));
    // A value repeated within one batch: rejected with the first one's id.
    let twin = StoredToken {
        secret: secret(102),
        ..token(103, "default")
    };
    let batch = [token(102, "default"), twin];
    assert!(is_duplicate_of(
        s.insert_tokens(&batch).await,
        "t_story00102"
    ));
    assert_eq!(by_id(s.load_tokens().await.unwrap()), expected);

    // Merge: new values go in, stored and repeated values are skipped and reported.
    let again = StoredToken {
        secret: secret(4),
        ..token(21, "default")
    };
    let repeat = StoredToken {
        secret: secret(20),
        ..token(23, "default")
    };
    let batch = [token(20, "default"), again, token(22, "default"), repeat];
    let mut skipped = s.merge_tokens(&batch).await.unwrap();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![
            TokenId("t_story00021".into()),
            TokenId("t_story00023".into())
        ]
    );
    expected.extend([token(20, "default"), token(22, "default")]);
    assert_eq!(
        by_id(s.load_tokens().await.unwrap()),
        by_id(expected.clone())
    );
    assert_eq!(s.merge_tokens(&[]).await.unwrap(), Vec::<TokenId>::new());
    // A new value under an id already stored is an error, not a skip, and nothing of its
    // batch is written.
    let reused = StoredToken {
        secret: secret(9001),
        ..token(4, "default")
    };
    let batch = [token(9002, "default"), reused];
    assert!(s.merge_tokens(&batch).await.is_err());
    assert_eq!(
        by_id(s.load_tokens().await.unwrap()),
        by_id(expected.clone())
    );

    assert_eq!(
        s.find_by_secret(&secret(4)).await.unwrap(),
        Some(TokenId("t_story00004".into()))
    );
    assert_eq!(
        s.find_by_secret(&secret(20)).await.unwrap(),
        Some(TokenId("t_story00020".into()))
    );
    assert_eq!(s.find_by_secret(&secret(9999)).await.unwrap(), None);

    update_each_field(s.as_ref(), &mut expected).await;

    // Delete: gone, its value free again; a second delete reports absence.
    let gone = TokenId("t_story00005".into());
    assert!(s.delete_token(&gone).await.unwrap());
    assert!(!s.delete_token(&gone).await.unwrap());
    expected.retain(|t| t.id != gone);
    assert_eq!(s.find_by_secret(&secret(5)).await.unwrap(), None);
    let reborn = StoredToken {
        secret: secret(5),
        ..token(50, "default")
    };
    s.insert_tokens(std::slice::from_ref(&reborn))
        .await
        .unwrap();
    expected.push(reborn);
    assert_eq!(
        by_id(s.load_tokens().await.unwrap()),
        by_id(expected.clone())
    );

    s.close().await;
    drop(s);
    let s = open(h).await;
    assert_eq!(by_id(s.load_tokens().await.unwrap()), by_id(expected));
    s.close().await;
}

/// What an update is expected to do to the stored record.
type Apply = fn(&mut StoredToken);

/// Applies one update of each kind and checks the whole stored record after each.
async fn update_each_field(s: &dyn Store, expected: &mut [StoredToken]) {
    let id = TokenId("t_story00006".into());
    let idx = expected.iter().position(|t| t.id == id).unwrap();
    let steps: Vec<(TokenUpdate, Apply)> = vec![
        (
            TokenUpdate {
                name: Some("renamed".into()),
                ..update()
            },
            |t| t.name = "renamed".into(),
        ),
        (
            TokenUpdate {
                pool: Some("p3".into()),
                ..update()
            },
            |t| t.pool = "p3".into(),
        ),
        (
            TokenUpdate {
                weight: Some(777),
                ..update()
            },
            |t| t.weight = 777,
        ),
        (
            TokenUpdate {
                expires_at: Some(Some(5)),
                ..update()
            },
            |t| t.expires_at = Some(5),
        ),
        (
            TokenUpdate {
                expires_at: Some(None),
                ..update()
            },
            |t| t.expires_at = None,
        ),
        (
            TokenUpdate {
                limits: Some(Limits {
                    rpm: Some(7),
                    max_in_flight: None,
                }),
                ..update()
            },
            |t| {
                t.limits = Limits {
                    rpm: Some(7),
                    max_in_flight: None,
                }
            },
        ),
        (
            TokenUpdate {
                secret: Some(secret(600)),
                ..update()
            },
            |t| t.secret = secret(600),
        ),
        (
            TokenUpdate {
                refresh_secret: Some(Some(secret(601))),
                ..update()
            },
            |t| t.refresh_secret = Some(secret(601)),
        ),
        (
            TokenUpdate {
                refresh_secret: Some(None),
                ..update()
            },
            |t| t.refresh_secret = None,
        ),
        (
            TokenUpdate {
                state: Some((
                    TokenState::Cooling,
                    Some("5 transient failures".into()),
                    Some(9),
                )),
                ..update()
            },
            |t| {
                t.state = TokenState::Cooling;
                t.state_reason = Some("5 transient failures".into());
                t.state_until = Some(9);
            },
        ),
        (
            TokenUpdate {
                state: Some((TokenState::Disabled, None, None)),
                ..update()
            },
            |t| {
                t.state = TokenState::Disabled;
                t.state_reason = None;
                t.state_until = None;
            },
        ),
        (update(), |_| {}),
    ];
    for (u, apply) in steps {
        s.update_token(&id, &u).await.unwrap();
        apply(&mut expected[idx]);
        let stored = s.load_tokens().await.unwrap();
        let got = stored.iter().find(|t| t.id == id).unwrap();
        assert_eq!(got, &expected[idx], "after {u:?}");
    }
    assert_eq!(s.find_by_secret(&secret(6)).await.unwrap(), None);
    assert_eq!(
        s.find_by_secret(&secret(600)).await.unwrap(),
        Some(id.clone())
    );

    // A secret another token has: Duplicate naming it, and nothing changed.
    let clash = TokenUpdate {
        secret: Some(secret(7)),
        name: Some("x".into()),
        ..update()
    };
    assert!(is_duplicate_of(
        s.update_token(&id, &clash).await,
        "t_story00007"
    ));
    let missing = TokenId("t_nope".into());
    assert!(matches!(
        s.update_token(&missing, &TokenUpdate { weight: Some(1), ..update() }).await,
        Err(StoreError::NotFound(ref x)) if *x == missing
    ));
    assert!(matches!(
        s.update_token(&missing, &update()).await,
        Err(StoreError::NotFound(_))
    ));
    let stored = s.load_tokens().await.unwrap();
    assert_eq!(stored.iter().find(|t| t.id == id).unwrap(), &expected[idx]);
}
