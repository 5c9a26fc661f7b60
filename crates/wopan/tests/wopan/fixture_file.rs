//! Fixture files: the documented format loads and is served as written; bad files are clear
//! errors, never panics.

use crate::common::start;
use serde_json::json;
use std::io::Write;
use tokenlb_core::{OutcomeClass, Secret};
use tokenlb_wopan::emulator::{EmulatorConfig, Fixture, FixtureError};
use tokenlb_wopan::Space;

fn write(v: &serde_json::Value) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(v.to_string().as_bytes()).unwrap();
    f
}

const A: &str = "aaaa0001-1111-4222-8333-444455556666";
const B: &str = "bbbb0002-1111-4222-8333-444455556666";
const C: &str = "cccc0003-1111-4222-8333-444455556666";

#[tokio::test]
async fn documented_format_is_served_as_written() {
    let file = write(&json!({
        "user": {"phone": "155****1234", "name": "tester"},
        "tokens": [
            {"access_token": A, "refresh_token": "aaaa-refresh-0001", "ttl_s": 3600, "family_id": 42},
            {"access_token": B, "expires_at": "2001-01-01T00:00:00Z"},
            {"access_token": C, "expires_at": 4102444800000u64, "user": {"phone": "133****0000", "name": "other"}}
        ],
        "personal": [
            {"name": "Movies", "children": [
                {"name": "a.mp4", "size": 10, "create_time": "20200101000000"},
                {"name": "Deep", "children": [{"name": "b.bin", "size": 3, "file_type": "5"}]}
            ]},
            {"name": "Many", "generate": {"count": 7, "prefix": "f", "suffix": ".txt", "size": 1}}
        ],
        "families": [{"id": 42, "name": "家", "files": [{"name": "shared.jpg", "size": 5}]}]
    }));
    let fixture = Fixture::from_file(file.path()).unwrap();
    let emu = start(EmulatorConfig {
        fixture,
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let a = Secret::new(A);
    assert_eq!(c.query_user(&a).await.unwrap().user_id, "155****1234");
    assert_eq!(
        c.query_user(&Secret::new(C)).await.unwrap().user_name,
        "other"
    );
    let e = c.query_user(&Secret::new(B)).await.unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    let f = c
        .resolve_path(&a, &Space::Personal, "Movies/a.mp4")
        .await
        .unwrap();
    assert_eq!(
        (f.size, f.create_time.as_str(), f.creator.as_str()),
        (10, "20200101000000", "155****1234")
    );
    let f = c
        .resolve_path(&a, &Space::Personal, "Movies/Deep/b.bin")
        .await
        .unwrap();
    assert_eq!(f.file_type, "5");
    let many = c
        .dir_id_for_path(&a, &Space::Personal, "Many")
        .await
        .unwrap();
    let names: Vec<_> = c
        .list_all(&a, &Space::Personal, &many)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        [
            "f0001.txt",
            "f0002.txt",
            "f0003.txt",
            "f0004.txt",
            "f0005.txt",
            "f0006.txt",
            "f0007.txt"
        ]
    );
    let fam = Space::Family {
        family_id: "42".into(),
    };
    let shared = c.resolve_path(&a, &fam, "shared.jpg").await.unwrap();
    assert_eq!(shared.family_id, 42);
    assert_eq!(c.family_info(&a).await.unwrap().default_home_id, 42);
    // C is not in family 42.
    let e = c
        .list_page(&Secret::new(C), &fam, "0", 0, 10)
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some("120002"));
    let pair = c
        .refresh_token(&Secret::new("aaaa-refresh-0001"))
        .await
        .unwrap();
    c.query_user(&pair.access_token).await.unwrap();
}

#[test]
fn bad_fixtures_are_clear_errors() {
    let missing =
        Fixture::from_file(std::path::Path::new("/nonexistent/fixture.json")).unwrap_err();
    assert!(matches!(missing, FixtureError::Read { .. }), "{missing}");
    let cases = [
        json!({"tokens": [{"access_token": "short"}]}),
        json!({"tokens": [{"access_token": A}, {"access_token": A}]}),
        json!({"tokens": [{"access_token": A, "expires_at": "tomorrow"}]}),
        json!({"personal": [{"name": "a/b", "size": 1}]}),
        json!({"personal": [{"name": "", "size": 1}]}),
        json!({"personal": [{"name": "x", "size": 1, "children": []}]}),
        json!({"personal": [{"name": "x", "generate": {"count": 300000}}]}),
        json!({"families": [{"id": 1}, {"id": 1}]}),
        json!({"surprise": true}),
        json!([1, 2]),
    ];
    for case in cases {
        let file = write(&case);
        let e = Fixture::from_file(file.path()).unwrap_err();
        assert!(!e.to_string().is_empty(), "{case}");
        assert!(!e.to_string().contains(A), "{e}");
    }
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"{not json").unwrap();
    assert!(matches!(
        Fixture::from_file(f.path()).unwrap_err(),
        FixtureError::Parse { .. }
    ));
}
