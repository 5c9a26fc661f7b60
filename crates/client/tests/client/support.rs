//! A real manager on 127.0.0.1:0 (or a given address, to restart it in place) with a
//! temporary data dir, and a log capture, for the client's integration tests.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokenlb_core::Secret;
use tokenlb_manager::config::Config;
use tokenlb_manager::Manager;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "client-test-admin-key-0123456789";

pub struct TestManager {
    pub addr: SocketAddr,
    pub url: String,
    pub http: reqwest::Client,
    data: PathBuf,
    client_keys: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A client key the test manager lets report by token id (DESIGN §9's `report_by_id`), for
/// tests of the reports a client makes without a lease (offline use, a lease lost to a
/// restart). Other keys, and loopback callers, may report leases only.
pub const REPORTER_KEY: &str = "reporter-key-with-report-by-id";

fn config(data: &Path, client_keys: &[String]) -> Config {
    let mut c = Config {
        data_dir: data.join("data"),
        tokens_file: data.join("tokens.json"),
        client_keys: client_keys
            .iter()
            .enumerate()
            .map(|(i, k)| tokenlb_manager::config::ClientKey {
                report_by_id: k == REPORTER_KEY,
                ..tokenlb_manager::config::ClientKey::bare(k, i + 1)
            })
            .collect(),
        stats_flush_ms: 100,
        ..Config::default()
    };
    c.admin.key = Some(Secret::new(ADMIN_KEY));
    c.admin.password = Some(Secret::new("client-test-password"));
    c
}

impl TestManager {
    /// A manager on a fresh port; `client_keys` empty means open to loopback peers.
    pub async fn start(data: &Path, client_keys: &[&str]) -> TestManager {
        let keys: Vec<String> = client_keys.iter().map(|k| k.to_string()).collect();
        Self::start_at(data, "127.0.0.1:0".parse().unwrap(), keys).await
    }

    async fn start_at(data: &Path, addr: SocketAddr, client_keys: Vec<String>) -> TestManager {
        let manager = Manager::open(config(data, &client_keys))
            .await
            .expect("manager opens");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            manager
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("manager serves");
        });
        TestManager {
            addr,
            url: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            data: data.to_path_buf(),
            client_keys,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the manager (gracefully: stats are flushed).
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("manager task");
        }
    }

    /// Starts it again on the same address with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let again = Self::start_at(&self.data, self.addr, self.client_keys.clone()).await;
        *self = again;
    }

    pub async fn add(&self, token: &str, name: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/token/add", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": token, "name": name}))
            .send()
            .await
            .expect("add");
        assert_eq!(r.status(), 201, "add answered {}", r.status());
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// The stats row of a token (with the client key, if any).
    pub async fn row(&self, id: &str) -> Value {
        let mut req = self.http.get(format!("{}/api/token/stats", self.url));
        if let Some(k) = self.client_keys.first() {
            req = req.bearer_auth(k);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect("row present")
    }
}

/// Captures the log output of the current test (thread-local subscriber at DEBUG).
pub struct Logs;

impl Logs {
    pub fn install() -> (
        tokenlb_test_support::logs::Logs,
        tracing::subscriber::DefaultGuard,
    ) {
        tokenlb_test_support::logs::Logs::capture(tracing::Level::DEBUG)
    }
}

/// Token values of the tests (the manager only needs them to be distinct).
pub const GOOD: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
pub const GOOD2: &str = "22222222-aaaa-4bbb-8ccc-000000000002";
pub const BAD: &str = "33333333-aaaa-4bbb-8ccc-000000000003";

/// The test operation's failure: a class and a message.
#[derive(Debug)]
pub struct Fail(pub tokenlb_core::OutcomeClass);

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream said {}", self.0)
    }
}

impl tokenlb_client::Classify for Fail {
    fn class(&self) -> tokenlb_core::OutcomeClass {
        self.0
    }
    fn message(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// A client of `m` with round-robin leases and a fast probe.
pub fn client_config(m: &TestManager) -> tokenlb_client::ClientConfig {
    let mut c = tokenlb_client::ClientConfig::new(m.url.clone());
    c.client_key = m
        .client_keys
        .iter()
        .find(|k| *k == REPORTER_KEY)
        .map(Secret::new);
    c.strategy = Some(tokenlb_core::Strategy::RoundRobin);
    c.probe_interval = std::time::Duration::from_millis(50);
    c
}
