//! A Wopan emulator on 127.0.0.1:0 next to a real manager whose `default` pool uses health
//! check kind `wopan` against it (for the wopan health and refresh tests).

use crate::common::TestServer;
use serde_json::{json, Value};
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_manager::config::{Config, HealthKind};
use tokenlb_wopan::emulator::{self, EmulatorConfig};
use tokenlb_wopan::{ClientConfig, WopanClient, WopanError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A refresh token the emulator does not know (its refresh answers 8005).
pub const UNKNOWN_REFRESH: &str = "00000000-dead-4bad-8bad-00000000f0ff";

pub struct Emu {
    pub base: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

pub async fn emulator() -> Emu {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(emulator::serve(
        listener,
        EmulatorConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Emu {
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Emu {
    pub async fn control(&self, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_emulator/control", self.base))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert_eq!(r.status(), 200, "control refused {body}");
        r.json().await.expect("control json")
    }

    pub fn client(&self) -> WopanClient {
        WopanClient::new(ClientConfig {
            base_url: self.base.clone(),
            timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        })
        .expect("client")
    }

    /// `AppQueryUser` with this access token.
    pub async fn works(&self, token: &str) -> Result<(), WopanError> {
        self.client()
            .check_light(&Secret::new(token))
            .await
            .map(drop)
    }
}

/// Points the default pool's health check at the emulator, refreshing `refresh_before_s`
/// before expiry.
pub fn wopan_pool(c: &mut Config, base: &str, refresh_before_s: u64) {
    let h = &mut c.pools.get_mut("default").expect("default pool").health;
    h.kind = HealthKind::Wopan;
    h.wopan_base_url = base.to_string();
    h.refresh_before_s = refresh_before_s;
}

pub async fn start(emu: &Emu, refresh_before_s: u64) -> TestServer {
    let base = emu.base.clone();
    TestServer::start_with(move |c| wopan_pool(c, &base, refresh_before_s)).await
}

/// Adds a token with a refresh token; returns its id.
pub async fn add_refreshable(s: &TestServer, access: &str, refresh: &str, name: &str) -> String {
    s.add_json(json!({ "token": access, "name": name, "refresh_token": refresh }))
        .await
}

/// The current secret and refresh secret of a token, from the admin export.
pub async fn stored(s: &TestServer, id: &str) -> (String, Option<String>) {
    let v: Value = s
        .admin(s.get("/api/tokens/export"))
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("export json");
    let row = s.row(id).await;
    let entry = v["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|e| e["name"] == row["name"])
        .cloned()
        .expect("exported");
    (
        entry["token"].as_str().expect("token").to_string(),
        entry["refresh_token"].as_str().map(str::to_string),
    )
}

/// Events of one token, newest first.
pub async fn events(s: &TestServer, id: &str) -> Vec<Value> {
    let v: Value = s
        .admin(s.get(&format!("/api/events?token={id}&limit=1000")))
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("events json");
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Polls until `f` holds (the manager works in the background); panics after a generous
/// bound so a broken build fails instead of hanging.
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

pub async fn check(s: &TestServer, id: &str) -> Value {
    let r = s
        .admin(s.post(&format!("/api/tokens/{id}/check")))
        .send()
        .await
        .expect("check");
    assert_eq!(r.status(), 200);
    r.json().await.expect("check json")
}
