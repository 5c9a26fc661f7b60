//! The client against the emulator (demo data): login-free calls with a fixture token,
//! multi-page listings, path walks, download links in both spaces with Range, link expiry.

use crate::common::{demo, start, start_demo};
use serde_json::json;
use std::time::Duration;
use tokenlb_core::OutcomeClass;
use tokenlb_wopan::emulator::{content_bytes, EmulatorConfig, DEMO_FAMILY_ID};
use tokenlb_wopan::{Space, WopanError};

fn family() -> Space {
    Space::Family {
        family_id: DEMO_FAMILY_ID.to_string(),
    }
}

#[tokio::test]
async fn fixture_token_works_without_login() {
    let emu = start_demo().await;
    let c = emu.client();
    let user = c.query_user(&demo(0)).await.unwrap();
    assert_eq!(user.user_id, "186****0000");
    assert_eq!(user.user_name, "wo_demo");
    let user = c.check_deep(&demo(1), &Space::Personal).await.unwrap();
    assert_eq!(user.user_id, "186****0000");
    let fam = c.family_info(&demo(2)).await.unwrap();
    assert_eq!(fam.default_home_id, DEMO_FAMILY_ID);
    let usage = c.cloud_usage(&demo(0), &user.user_id).await.unwrap();
    assert!(usage.used_bytes() > 5_242_880);
    assert_eq!(usage.total_bytes(), Some(10_737_418_240));
    assert_eq!(emu.calls("AppQueryUser").await, 2);
    assert_eq!(emu.calls("FamilyUserCurrentEncode").await, 1);
}

#[tokio::test]
async fn root_listing_has_real_types_and_system_dirs() {
    let emu = start_demo().await;
    let page = emu
        .client()
        .list_page(&demo(0), &Space::Personal, "0", 0, 100)
        .await
        .unwrap();
    assert_eq!(page.system_dirs, Some(vec![]));
    let names: Vec<_> = page.files.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["BD-another", "Docs", "Photos", "welcome.txt"]);
    let bd = &page.files[0];
    assert!(bd.is_folder());
    assert_eq!(
        (bd.fid.as_str(), bd.file_type.as_str(), bd.size),
        ("0", "0", 0)
    );
    assert_eq!(bd.id.len(), 32);
    assert!(bd.id.bytes().all(|b| b.is_ascii_hexdigit()));
    let welcome = &page.files[3];
    assert!(!welcome.is_folder());
    assert_eq!((welcome.file_type.as_str(), welcome.size), ("4", 512));
    assert_eq!(welcome.create_time.len(), 14);
    // An inner folder has no systemDirs.
    let inner = emu
        .client()
        .list_page(&demo(0), &Space::Personal, &bd.id, 0, 100)
        .await
        .unwrap();
    assert_eq!(inner.system_dirs, None);
    assert_eq!(inner.files.len(), 6);
}

#[tokio::test]
async fn listing_reads_every_page_and_stops_on_the_short_one() {
    let emu = start_demo().await;
    let c = emu.client();
    let photos = c
        .dir_id_for_path(&demo(0), &Space::Personal, "Photos")
        .await
        .unwrap();
    emu.control(json!({"reset_counts": true})).await;
    let all = c
        .list_all(&demo(0), &Space::Personal, &photos)
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    assert_eq!(all[0].name, "IMG_0001.jpg");
    assert_eq!(all[249].name, "IMG_0250.jpg");
    let mut names: Vec<_> = all.iter().map(|e| e.name.clone()).collect();
    names.dedup();
    assert_eq!(names.len(), 250, "pages do not overlap");
    assert_eq!(emu.calls("QueryAllFiles").await, 3, "pages 0, 1, 2 (short)");
}

#[tokio::test]
async fn path_walks() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    let p = Space::Personal;
    let f = c.resolve_path(&t, &p, "BD-another/01.mp4").await.unwrap();
    assert_eq!(
        (f.name.as_str(), f.size, f.file_type.as_str()),
        ("01.mp4", 5_242_880, "2")
    );
    let f = c
        .resolve_path(&t, &p, "/BD-another/extras/trailer.mp4")
        .await
        .unwrap();
    assert_eq!(f.size, 524_288);
    let f = c
        .resolve_path(&t, &p, "Docs/2024/Q4/summary.xlsx")
        .await
        .unwrap();
    assert_eq!(f.size, 16_384);
    let f = c.resolve_path(&t, &p, "Photos/IMG_0234.jpg").await.unwrap();
    assert_eq!(f.name, "IMG_0234.jpg");
    let f = c
        .resolve_path(&t, &family(), "BD-another/01.mp4")
        .await
        .unwrap();
    assert_eq!(f.size, 2_621_440, "family space has its own tree");

    let e = c
        .resolve_path(&t, &p, "bd-another/01.mp4")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WopanError::NotFound {
            path: "bd-another".into()
        }
    );
    let e = c
        .resolve_path(&t, &p, "BD-another/99.mp4")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WopanError::NotFound {
            path: "BD-another/99.mp4".into()
        }
    );
    let e = c.resolve_path(&t, &p, "welcome.txt/x").await.unwrap_err();
    assert_eq!(
        e,
        WopanError::NotAFolder {
            path: "welcome.txt".into()
        }
    );
    assert_eq!(e.outcome_class(), OutcomeClass::ClientError);
    assert!(c.resolve_path(&t, &p, "").await.is_err());
    assert_eq!(c.dir_id_for_path(&t, &p, "/").await.unwrap(), "0");
}

#[tokio::test]
async fn download_links_serve_bytes_with_ranges_in_both_spaces() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    let http = reqwest::Client::new();
    for (space, path) in [
        (Space::Personal, "BD-another/02.mp4"),
        (family(), "Videos/holiday.mp4"),
    ] {
        let file = c.resolve_path(&t, &space, path).await.unwrap();
        assert!(file.fid.len() > 40);
        let v2 = c.download_url(&t, &file.fid).await.unwrap();
        let v1 = c.download_url_v1(&t, &space, &file.fid).await.unwrap();
        assert!(
            v2.starts_with(&format!("{}/openapi/download?fid=", emu.base)),
            "{v2}"
        );
        assert_ne!(v1, v2, "every call hands out a fresh opaque link");
        for url in [v1, v2] {
            let full = http.get(&url).send().await.unwrap();
            assert_eq!(full.status(), 200);
            assert_eq!(full.headers()["accept-ranges"], "bytes");
            let full = full.bytes().await.unwrap();
            assert_eq!(full.len() as u64, file.size);
            assert_eq!(&full[..4096], content_bytes(&file.id, 0, 4096).as_slice());
            let part = http
                .get(&url)
                .header("Range", "bytes=1000-1999")
                .send()
                .await
                .unwrap();
            assert_eq!(part.status(), 206);
            let expect = format!("bytes 1000-1999/{}", file.size);
            assert_eq!(part.headers()["content-range"], expect.as_str());
            assert_eq!(part.bytes().await.unwrap(), full.slice(1000..2000));
            let tail = http
                .get(&url)
                .header("Range", "bytes=-10")
                .send()
                .await
                .unwrap();
            assert_eq!(tail.status(), 206);
            assert_eq!(tail.bytes().await.unwrap(), full.slice(full.len() - 10..));
            let past = http
                .get(&url)
                .header("Range", format!("bytes={}-", file.size))
                .send()
                .await
                .unwrap();
            assert_eq!(past.status(), 416);
        }
    }
    // v1 only answers fids of the named space.
    let fam_file = c
        .resolve_path(&t, &family(), "Videos/holiday.mp4")
        .await
        .unwrap();
    let e = c
        .download_url_v1(&t, &Space::Personal, &fam_file.fid)
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::MissingLink { .. }));
}

#[tokio::test]
async fn links_expire_with_403() {
    let emu = start(EmulatorConfig {
        link_ttl_s: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let t = demo(0);
    let file = c
        .resolve_path(&t, &Space::Personal, "welcome.txt")
        .await
        .unwrap();
    let url = c.download_url(&t, &file.fid).await.unwrap();
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut status = http.get(&url).send().await.unwrap().status();
    for _ in 0..50 {
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = http.get(&url).send().await.unwrap().status();
    }
    assert_eq!(status, 403);
    // An unknown link is refused the same way; a fresh one works again.
    let bogus = format!("{}/openapi/download?fid=nope", emu.base);
    assert_eq!(http.get(bogus).send().await.unwrap().status(), 403);
    let fresh = c.download_url(&t, &file.fid).await.unwrap();
    assert_eq!(http.get(&fresh).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn wrong_family_is_a_client_error() {
    let emu = start_demo().await;
    let wrong = Space::Family {
        family_id: "1234".into(),
    };
    let e = emu
        .client()
        .list_page(&demo(0), &wrong, "0", 0, 10)
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some("120002"));
    assert_eq!(e.outcome_class(), OutcomeClass::ClientError);
}
