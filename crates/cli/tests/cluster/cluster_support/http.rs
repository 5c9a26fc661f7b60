//! The few HTTP calls the cluster tests make, answering (status, JSON body).

use super::ADMIN_KEY;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// `GET /api/token/get?strategy=…`.
pub async fn get(base: &str, strategy: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{base}/api/token/get?strategy={strategy}"))
        .send()
        .await
        .expect("get");
    answer(r).await
}

/// `POST /api/token/report` for a lease.
pub async fn report(base: &str, lease: &str, outcome: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/api/token/report"))
        .json(&json!({ "lease": lease, "outcome": outcome }))
        .send()
        .await
        .expect("report");
    answer(r).await
}

/// `POST /api/token/add` (admin) with extra fields merged into the body.
pub async fn add(base: &str, token: &str, name: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "token": token, "name": name });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = client()
        .post(format!("{base}/api/token/add"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("add");
    answer(r).await
}

/// `DELETE /api/token/remove` by id (admin).
pub async fn remove(base: &str, id: &str) -> (u16, Value) {
    let r = client()
        .delete(format!("{base}/api/token/remove"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "id": id }))
        .send()
        .await
        .expect("remove");
    answer(r).await
}

/// `GET /api/token/stats`.
pub async fn stats(base: &str) -> Value {
    let r = client()
        .get(format!("{base}/api/token/stats"))
        .send()
        .await
        .expect("stats");
    answer(r).await.1
}

/// `GET /api/events` (admin): the events, newest first.
pub async fn events(base: &str) -> Vec<Value> {
    let r = client()
        .get(format!("{base}/api/events?limit=200"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("events");
    answer(r).await.1["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The stats row of token `id`, if listed.
pub async fn row(base: &str, id: &str) -> Option<Value> {
    stats(base).await["tokens"]
        .as_array()?
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
}

/// `POST /api/token/report` with a body of one's own.
pub async fn report_body(base: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/api/token/report"))
        .json(&body)
        .send()
        .await
        .expect("report");
    answer(r).await
}

/// An admin call with a JSON body: `POST /api/tokens/import`, `PATCH /api/tokens/{id}`.
pub async fn admin(base: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let r = client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("admin call");
    answer(r).await
}
