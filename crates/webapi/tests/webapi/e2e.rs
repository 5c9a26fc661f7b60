//! The web API end to end (emulator + manager + web API on loopback): listings, nested
//! folders, several pages, download links with Range, redirect, proxy, the cache-only mode,
//! merged identical calls, bad input, /metrics and /healthz.

use crate::support::Stack;
use serde_json::{json, Value};
use tokenlb_wopan::emulator::content_bytes;

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

fn assert_source(v: &Value, source: &str, stale: bool) {
    assert_eq!(v["source"], source, "{v}");
    assert_eq!(v["stale"], stale, "{v}");
    assert!(v["cached_at"].is_string(), "{v}");
}

#[tokio::test]
async fn folders_files_pages_and_nested_folders() {
    let s = Stack::start().await;
    let (st, v) = s.get("/api/folders?realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
    let folders = names(&v, "folders");
    for f in ["BD-another", "Docs", "Photos"] {
        assert!(folders.contains(&f.to_string()), "{folders:?}");
    }
    assert!(
        !folders.contains(&"welcome.txt".to_string()),
        "files are not folders"
    );
    assert!(v["folders"][0]["id"].is_string());

    let (st, v) = s.get("/api/files?folder=BD-another&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
    let files = names(&v, "files");
    assert!(
        files.contains(&"01.mp4".to_string()) && files.contains(&"extras".to_string()),
        "{files:?}"
    );
    let mp4 = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "01.mp4")
        .unwrap();
    assert_eq!(mp4["type"], "file");
    assert_eq!(mp4["size"], 5_242_880);
    assert!(mp4["fid"].is_string());

    // 250 photos: three pages of 100.
    s.reset_counts().await;
    let (st, v) = s.get("/api/files?folder=Photos&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["count"], 250);
    assert_eq!(v["files"].as_array().unwrap().len(), 250);
    assert_eq!(
        s.calls("QueryAllFiles").await,
        3,
        "three pages, root taken from the cache"
    );

    // Nested folders, and the subfolders of a folder.
    let (st, v) = s.get("/api/files?folder=Docs/2024/Q4&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(names(&v, "files"), ["summary.xlsx"]);
    assert_eq!(v["folder"], "Docs/2024/Q4");
    let (st, v) = s.get("/api/folders?folder=Docs&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(names(&v, "folders"), ["2024"]);

    // Without realtime=: a fresh cached listing answers.
    s.reset_counts().await;
    let (_, v) = s.get("/api/files?folder=Docs/2024/Q4").await;
    assert_source(&v, "cache", false);
    assert_eq!(s.upstream_calls().await, 0);
}

#[tokio::test]
async fn download_links_redirect_and_proxy_with_range() {
    let s = Stack::start().await;
    let (_, listing) = s.get("/api/files?folder=BD-another&realtime=true").await;
    let entry = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "01.mp4")
        .unwrap()
        .clone();
    let file_id = entry["id"].as_str().unwrap().to_string();

    for route in ["/api/download/", "/api/download"] {
        let (st, v) = s.get(&format!("{route}?url=BD-another/01.mp4")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["url"], "BD-another/01.mp4");
        assert!(v["cached_at"].is_string() && v["stale"] == false, "{v}");
        assert!(v["download_url"].as_str().unwrap().starts_with(&s.emu_url));
    }
    let (_, v) = s
        .get("/api/download/?url=BD-another/01.mp4&realtime=true")
        .await;
    assert_source(&v, "realtime", false);
    let link = v["download_url"].as_str().unwrap().to_string();

    // The link itself serves the file with Range.
    let r = s
        .http
        .get(&link)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        content_bytes(&file_id, 100, 100).as_slice()
    );

    // redirect=true: 302 to the link.
    let r = s
        .get_raw("/api/download/?url=BD-another/01.mp4&redirect=true", None)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&s.emu_url), "{location}");

    // proxy=true: the bytes through the web API, whole and by range.
    let (_, small) = s.get("/api/files?folder=Docs").await;
    let readme = small["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "readme.txt")
        .unwrap()
        .clone();
    let r = s
        .get_raw("/api/download/?url=Docs/readme.txt&proxy=true", None)
        .await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert_eq!(
        body.as_ref(),
        content_bytes(readme["id"].as_str().unwrap(), 0, 1024).as_slice()
    );
    let r = s
        .get_raw(
            "/api/download/?url=BD-another/01.mp4&proxy=true",
            Some("bytes=1000-1499"),
        )
        .await;
    assert_eq!(r.status(), 206);
    let range = r.headers()["content-range"].to_str().unwrap().to_string();
    assert_eq!(range, "bytes 1000-1499/5242880");
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        content_bytes(&file_id, 1000, 500).as_slice()
    );
}

#[tokio::test]
async fn realtime_false_answers_from_the_cache_without_upstream_calls() {
    let s = Stack::start().await;
    for q in [
        "/api/folders?realtime=true",
        "/api/files?folder=BD-another&realtime=true",
        "/api/files?folder=Docs/2024&realtime=true",
    ] {
        assert_eq!(s.get(q).await.0, 200);
    }
    let (st, _) = s
        .get("/api/download/?url=BD-another/02.mp4&realtime=true")
        .await;
    assert_eq!(st, 200);
    s.reset_counts().await;

    let (st, v) = s.get("/api/folders?realtime=false").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", false);
    let (_, v) = s.get("/api/files?folder=BD-another&realtime=false").await;
    assert_source(&v, "cache", false);
    assert!(names(&v, "files").contains(&"01.mp4".to_string()));
    let (_, v) = s.get("/api/files?folder=Docs/2024&realtime=false").await;
    assert_source(&v, "cache", false);
    let (st, v) = s
        .get("/api/download/?url=BD-another/02.mp4&realtime=false")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", false);

    // Not cached: a clear 404 rather than an upstream call.
    let (st, v) = s.get("/api/files?folder=Photos&realtime=false").await;
    assert_eq!(st, 404);
    assert_eq!(v["error"]["code"], "not_cached");
    let (st, v) = s.get("/api/files?folder=Nope&realtime=false").await;
    assert_eq!(st, 404);
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(s.upstream_calls().await, 0, "no upstream call at all");
}

#[tokio::test]
async fn identical_concurrent_requests_make_one_upstream_call() {
    let s = Stack::start().await;
    assert_eq!(s.get("/api/folders?realtime=true").await.0, 200);
    s.control(json!({"latency_ms": 400})).await;
    s.reset_counts().await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let http = s.http.clone();
        let url = format!("{}/api/files?folder=Photos&realtime=true", s.web_url);
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        s.calls("QueryAllFiles").await,
        3,
        "one listing of three pages for five requests"
    );
    let metrics = tokenlb_test_support::metrics::scrape(&s.http, &s.web_url).await;
    assert!(
        metrics.contains("tokenlb_webapi_merged_calls_total 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_json() {
    let s = Stack::start().await;
    let long = "x".repeat(256);
    let very_long = vec!["y".repeat(200); 6].join("/");
    let cases = [
        ("/api/files?folder=../etc", 400),
        ("/api/files?folder=A/../B", 400),
        ("/api/files?folder=", 400),
        ("/api/files", 400),
        ("/api/files?folder=A//B", 400),
        (&format!("/api/files?folder={long}") as &str, 400),
        (&format!("/api/files?folder={very_long}"), 400),
        ("/api/files?folder=A%0AB", 400),
        ("/api/files?folder=BD-another&realtime=maybe", 400),
        ("/api/download/?url=", 400),
        ("/api/download/?url=BD-another", 400),
        ("/api/download/", 400),
        (
            "/api/download/?url=BD-another/01.mp4&redirect=true&proxy=true",
            400,
        ),
        ("/api/files?folder=NoSuchFolder&realtime=true", 404),
        ("/api/files?folder=BD-another/NoSuch&realtime=true", 404),
        ("/api/files?folder=welcome.txt&realtime=true", 404),
        ("/api/download/?url=BD-another/nothing.mp4", 404),
        ("/api/nope", 404),
    ];
    for (q, want) in cases {
        let (st, v) = s.get(q).await;
        assert_eq!(st, want, "{q}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{q}: {v}"
        );
    }
    let (st, v) = s.get("/api/download/?url=BD-another/extras").await;
    assert_eq!(st, 400, "a folder is not a file: {v}");
}

#[tokio::test]
async fn metrics_and_healthz() {
    let s = Stack::start().await;
    s.get("/api/folders?realtime=true").await;
    s.get("/api/folders?realtime=false").await;
    let (st, v) = s.get("/healthz").await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["manager_reachable"], true);
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.web_url).await;
    for needle in [
        "tokenlb_webapi_requests_total{route=\"folders\",source=\"realtime\"} 1",
        "tokenlb_webapi_requests_total{route=\"folders\",source=\"cache\"} 1",
        "tokenlb_webapi_upstream_calls_total{op=\"list\",outcome=\"success\"} 1",
        "tokenlb_webapi_cache_total{result=\"hit\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[tokio::test]
async fn family_space_lists_the_family_tree() {
    use tokenlb_wopan::emulator::DEMO_FAMILY_ID;
    let s = Stack::start_with(|c| {
        c.space = tokenlb_wopan::Space::Family {
            family_id: DEMO_FAMILY_ID.to_string(),
        }
    })
    .await;
    let (st, v) = s.get("/api/folders?realtime=true").await;
    assert_eq!(st, 200, "{v}");
    let folders = names(&v, "folders");
    assert!(
        folders.contains(&"家庭相册".to_string()) && folders.contains(&"Videos".to_string()),
        "{folders:?}"
    );
    assert!(
        !folders.contains(&"Photos".to_string()),
        "the personal tree is not shown: {folders:?}"
    );
    let (st, v) = s.get("/api/files?folder=家庭相册&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert!(names(&v, "files").contains(&"合影.jpg".to_string()));
    let (st, v) = s.get("/api/download/?url=Videos/holiday.mp4").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["size"], 1_572_864);
}

#[tokio::test]
async fn realtime_answers_are_reported_in_the_background_and_settle_on_shutdown() {
    let s = Stack::start().await;
    for _ in 0..4 {
        let (st, v) = s.get("/api/files?folder=BD-another&realtime=true").await;
        assert_eq!(st, 200, "{v}");
        assert_source(&v, "realtime", false);
    }
    // The root listing (to resolve BD-another) and four listings of it, each reported as a
    // success once the background work has settled.
    s.web.settle().await;
    assert_eq!(s.web.client.status().queued_reports, 0);
    let mut successes = 0;
    for id in &s.token_ids {
        let row = s.row(id).await;
        assert_eq!(row["in_flight"], 0, "{row}");
        successes += row["success"].as_u64().unwrap_or(0);
    }
    assert_eq!(successes, 5);
    // The newest listing is on disk too.
    let path = tokenlb_webapi::names::DrivePath::parse("BD-another", "folder", false).unwrap();
    let held = s.web.service.cache.get(&path).unwrap();
    let on_disk = tokenlb_webapi::cache::ListingCache::open(
        &s.data().join("webapi").join("webapi-cache"),
        s.web.service.cache.space(),
    )
    .unwrap();
    assert_eq!(on_disk.get(&path).unwrap().fetched_at, held.fetched_at);
}
