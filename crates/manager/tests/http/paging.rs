//! `GET /api/tokens?offset&limit&sort&state&pool&q` and the paged `/api/token/stats`
//! (issue 14.4): one page built on the server, sorted (names naturally), filtered, searched
//! on the name, id and masked token only, with `total`; clear 400s; `null` success rate for
//! unused tokens. The last test times a page at 100,000 tokens (figures printed).

use crate::common::{error_code, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Instant;

/// A secret with a recognisable middle that the masked form (`abcd…wxyz`) never shows.
fn secret(i: usize) -> String {
    format!("sk{i:04}-MIDDLEPART-{i:04}zz")
}

/// Imports `tok1` … `tok{n}` (in a shuffled order) into `pool`.
async fn import(s: &TestServer, n: usize, pool: &str) {
    let mut entries: Vec<Value> = (1..=n)
        .map(|i| json!({"token": secret(i), "name": format!("tok{i}"), "is_active": true}))
        .collect();
    entries.reverse();
    entries.swap(0, n / 2);
    let r = s
        .admin(s.post(&format!("/api/tokens/import?pool={pool}")))
        .body(json!({ "tokens": entries }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn list(s: &TestServer, query: &str) -> Value {
    let r = s
        .admin(s.get(&format!("/api/tokens?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET /api/tokens?{query}");
    r.json().await.unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

fn tok(range: impl Iterator<Item = usize>) -> Vec<String> {
    range.map(|i| format!("tok{i}")).collect()
}

#[tokio::test]
async fn tokens_come_one_page_at_a_time_in_natural_order_with_the_total() {
    let s = TestServer::start().await;
    import(&s, 250, "default").await;

    let first = list(&s, "").await;
    assert_eq!(first["total"], 250);
    assert_eq!(
        (first["offset"].clone(), first["limit"].clone()),
        (json!(0), json!(100))
    );
    assert_eq!(
        names(&first),
        tok(1..=100),
        "default: 100 rows by name, naturally"
    );

    let page = list(&s, "offset=10&limit=10").await;
    assert_eq!(names(&page), tok(11..=20));
    assert_eq!(page["total"], 250);
    let last = list(&s, "offset=245&limit=10").await;
    assert_eq!(names(&last), tok(246..=250));
    assert_eq!(list(&s, "offset=250&limit=10").await["tokens"], json!([]));
    let down = list(&s, "sort=-name&limit=3").await;
    assert_eq!(names(&down), ["tok250", "tok249", "tok248"]);

    // Consecutive pages cover every token once.
    let mut seen = Vec::new();
    for offset in (0..250).step_by(64) {
        seen.extend(names(&list(&s, &format!("offset={offset}&limit=64")).await));
    }
    assert_eq!(seen, tok(1..=250));
    s.stop().await;
}

#[tokio::test]
async fn filters_search_and_stat_sorts_work_on_the_server() {
    let s = TestServer::start().await;
    import(&s, 30, "default").await;
    let other = s
        .add_json(json!({"token": "other-pool-secret-0001", "name": "elsewhere", "pool": "other"}))
        .await;
    let all = list(&s, "limit=1000").await;
    let id_of = |name: &str| {
        all["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // tok3: 3 successes; tok4: 1 success, 1 failure; tok5 disabled.
    for (name, outcomes) in [
        ("tok3", &[true, true, true][..]),
        ("tok4", &[true, false][..]),
    ] {
        for ok in outcomes {
            let r = s.report(json!({"id": id_of(name), "success": ok})).await;
            assert_eq!(r.status(), 200);
        }
    }
    let r = s
        .admin(s.http.patch(s.u(&format!("/api/tokens/{}", id_of("tok5")))))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let disabled = list(&s, "state=disabled").await;
    assert_eq!(
        (disabled["total"].clone(), names(&disabled)),
        (json!(1), vec!["tok5".to_string()])
    );
    let pool = list(&s, "pool=other").await;
    assert_eq!(
        (pool["total"].clone(), names(&pool)),
        (json!(1), vec!["elsewhere".to_string()])
    );
    assert_eq!(pool["tokens"][0]["id"], other);

    // Search: case-insensitive on the name, the id and the masked token.
    assert_eq!(
        names(&list(&s, "q=TOK2").await),
        tok(std::iter::once(2).chain(20..=29))
    );
    let by_id = list(&s, &format!("q={}", id_of("tok7"))).await;
    assert_eq!(names(&by_id), ["tok7"]);
    let masked = all["tokens"].as_array().unwrap()[0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let head: String = masked.chars().take(4).collect();
    assert!(
        list(&s, &format!("q={head}")).await["total"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Never on the secret: its middle is in every secret and in no name, id or mask.
    let hidden = list(&s, "q=middlepart&limit=1000").await;
    assert_eq!(hidden["total"], 0, "q must not match the secret");
    let body = s
        .admin(s.get("/api/tokens?limit=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for i in 1..=30 {
        assert!(
            !body.contains(&secret(i)),
            "the page carries no whole secret"
        );
    }

    // Sort by success rate: the best first, unused tokens (rate null) last either way.
    let best = list(&s, "sort=-success_rate&limit=3").await;
    assert_eq!(names(&best), ["tok3", "tok4", "elsewhere"]);
    assert_eq!(best["tokens"][0]["success_rate"], 1.0);
    assert_eq!(best["tokens"][1]["success_rate"], 0.5);
    assert!(
        best["tokens"][2]["success_rate"].is_null(),
        "unused: null, not 100 %"
    );
    let worst = list(&s, "sort=success_rate&limit=2").await;
    assert_eq!(names(&worst), ["tok4", "tok3"]);
    let busy = list(&s, "sort=-total_requests&limit=2").await;
    assert_eq!(names(&busy), ["tok3", "tok4"]);
    let by_state = list(&s, "sort=-state&limit=1").await;
    assert_eq!(names(&by_state), ["tok5"]);
    // last_used is set by a lease: the one leased token first, the never-used after it.
    let lease: Value = s.lease("?pool=other").await.json().await.unwrap();
    let used = list(&s, "sort=-last_used&limit=2").await;
    assert_eq!(names(&used), ["elsewhere", "tok1"]);
    assert!(used["tokens"][1]["last_used"].is_null());
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn bad_paging_parameters_get_a_clear_400() {
    let s = TestServer::start().await;
    import(&s, 3, "default").await;
    for (query, needle) in [
        ("limit=1001", "at most 1000"),
        ("sort=secret", "name, pool, state"),
        ("sort=-", "success_rate"),
        ("offset=-1", ""),
        ("limit=lots", ""),
        ("q=", "__ok__"),
    ] {
        let r = s
            .admin(s.get(&format!("/api/tokens?{query}")))
            .send()
            .await
            .unwrap();
        if needle == "__ok__" {
            assert_eq!(r.status(), StatusCode::OK, "{query}");
            continue;
        }
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query}: {message}");
    }
    let r = s.get("/api/token/stats?limit=5000").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid");
    s.stop().await;
}

#[tokio::test]
async fn stats_keeps_the_seed_shape_and_takes_an_optional_page() {
    let s = TestServer::start().await;
    import(&s, 12, "default").await;
    let whole = s.stats().await;
    assert_eq!(whole["total_tokens"], 12);
    assert_eq!(
        whole["tokens"].as_array().unwrap().len(),
        12,
        "no paging asked: every row"
    );
    assert!(whole.get("offset").is_none() && whole.get("limit").is_none());
    assert!(whole["success_rate"].is_null(), "nothing counted yet: null");
    assert!(
        whole["tokens"][0]["success_rate"].is_null(),
        "an unused token: null"
    );

    let page: Value = s
        .get("/api/token/stats?offset=5&limit=4")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["total_tokens"], 12,
        "totals are the pool's, not the page's"
    );
    assert_eq!(
        page["tokens"],
        json!(whole["tokens"].as_array().unwrap()[5..9])
    );
    assert_eq!(
        (page["offset"].clone(), page["limit"].clone()),
        (json!(5), json!(4))
    );
    let totals: Value = s
        .get("/api/token/stats?limit=0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (totals["total_tokens"].clone(), totals["tokens"].clone()),
        (json!(12), json!([]))
    );
    s.stop().await;
}

/// 100,000 tokens: the page costs filter + sort over light keys and 100 rendered rows, not
/// 100,000 rows. Prints the figures; the bound is generous (a debug build on a busy CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_a_hundred_thousand_tokens_is_cheap() {
    let s = TestServer::start().await;
    let entries: Vec<Value> = (0..100_000)
        .map(|i| json!({"token": format!("scale-{i:06}-0123456789abcdef"), "name": format!("bulk {i}")}))
        .collect();
    let r = s
        .admin(s.post("/api/tokens/import"))
        .body(json!({ "tokens": entries }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for query in [
        "limit=100",
        "limit=100&sort=-success_rate",
        "offset=99900&limit=100&sort=-name",
        "limit=100&q=bulk%209999",
        "limit=100&state=active&sort=last_used",
    ] {
        let started = Instant::now();
        let body = s
            .admin(s.get(&format!("/api/tokens?{query}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let took = started.elapsed();
        let page: Value = serde_json::from_slice(&body).unwrap();
        eprintln!(
            "GET /api/tokens?{query}: {} rows of {} in {took:?} ({} bytes)",
            page["tokens"].as_array().unwrap().len(),
            page["total"],
            body.len()
        );
        assert!(took.as_secs_f64() < 5.0, "{query} took {took:?}");
    }
    let started = Instant::now();
    let totals = s
        .get("/api/token/stats?limit=0")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    eprintln!(
        "GET /api/token/stats?limit=0: {} bytes in {:?}",
        totals.len(),
        started.elapsed()
    );
    let page = list(&s, "offset=0&limit=3&sort=name").await;
    assert_eq!(names(&page), ["bulk 0", "bulk 1", "bulk 2"]);
    assert_eq!(list(&s, "limit=1&q=bulk%209999").await["total"], 11);
    s.stop().await;
}
