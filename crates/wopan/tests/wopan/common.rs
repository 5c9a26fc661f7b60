//! Test helpers: an emulator on 127.0.0.1:0, a client pointed at it, and fake upstreams that
//! misbehave. Nothing here reaches beyond loopback.

use axum::response::Response;
use serde_json::Value;
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_wopan::emulator::{self, EmulatorConfig, DEMO_TOKENS};
use tokenlb_wopan::{ClientConfig, WopanClient};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct Emu {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    http: reqwest::Client,
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start(cfg: EmulatorConfig) -> Emu {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        emulator::serve(listener, cfg, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Emu {
        base,
        stop: Some(tx),
        http: reqwest::Client::new(),
    }
}

pub async fn start_demo() -> Emu {
    start(EmulatorConfig::default()).await
}

impl Emu {
    pub fn client(&self) -> WopanClient {
        client_for(&self.base, Duration::from_secs(10))
    }

    pub async fn control(&self, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_emulator/control", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "control {body}");
        r.json().await.unwrap()
    }

    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/state", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn calls(&self, op: &str) -> u64 {
        self.state().await["calls"][op].as_u64().unwrap_or(0)
    }

    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

pub fn client_for(base: &str, timeout: Duration) -> WopanClient {
    WopanClient::new(ClientConfig {
        base_url: base.to_string(),
        timeout,
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    })
    .unwrap()
}

pub fn demo(i: usize) -> Secret {
    Secret::new(DEMO_TOKENS[i].access_token)
}

pub fn demo_refresh(i: usize) -> Secret {
    Secret::new(DEMO_TOKENS[i].refresh_token)
}

/// A fake upstream answering every request with `make()`.
pub async fn fake(make: fn() -> Response) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move { make() });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A raw TCP fake that accepts connections and writes `reply` (maybe nothing) then closes.
pub async fn raw_tcp(reply: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}
