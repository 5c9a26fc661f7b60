//! A real manager on 127.0.0.1:0 with a temporary data dir, for the integration tests.

use axum::extract::ConnectInfo;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use tempfile::TempDir;
use tokenlb_core::Secret;
use tokenlb_manager::config::Config;
use tokenlb_manager::{AppState, Manager};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const PASSWORD: &str = "test-password-123";

pub struct TestServer {
    pub url: String,
    pub dir: TempDir,
    pub state: AppState,
    pub http: Client,
    /// When set, every request is seen as coming from this address (the loopback rule
    /// cannot otherwise be exercised from a loopback test client).
    peer: Arc<RwLock<Option<IpAddr>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A config for tests: temp data dir, known admin key and password, fast stats flush.
pub fn test_config(dir: &TempDir) -> Config {
    let mut c = Config {
        data_dir: dir.path().join("data"),
        tokens_file: dir.path().join("tokens.json"),
        stats_flush_ms: 100,
        ..Config::default()
    };
    c.admin.key = Some(Secret::new(ADMIN_KEY));
    c.admin.password = Some(Secret::new(PASSWORD));
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&dir);
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: TempDir, config: Config) -> TestServer {
        let manager = Manager::open(config).await.expect("manager opens");
        let state = manager.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let peer: Arc<RwLock<Option<IpAddr>>> = Arc::default();
        let stand_in = peer.clone();
        let prepare: tokenlb_manager::app::Prepare =
            Arc::new(move |req: &mut axum::extract::Request| {
                if let Some(ip) = *stand_in.read().unwrap() {
                    let addr = SocketAddr::new(ip, 40_000);
                    req.extensions_mut().insert(ConnectInfo(addr));
                }
            });
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(manager.serve_with(listener, shutdown, Some(prepare)));
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        TestServer {
            url,
            dir,
            state,
            http,
            peer,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Treat every client as connecting from `addr` (`None`: the real address).
    pub fn set_peer_override(&self, addr: Option<IpAddr>) {
        *self.peer.write().unwrap() = addr;
    }

    /// Graceful stop; returns the temp dir so a test can reopen it.
    pub async fn stop(self) -> TempDir {
        let TestServer {
            dir, stop, task, ..
        } = self;
        if let Some(s) = stop {
            let _ = s.send(());
        }
        if let Some(t) = task {
            t.await.expect("server task").expect("server ran");
        }
        dir
    }

    pub fn u(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.u(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.u(path))
    }

    pub fn admin(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.bearer_auth(ADMIN_KEY)
    }

    /// Adds a token as the admin; returns its id.
    pub async fn add(&self, token: &str, name: &str) -> String {
        self.add_json(json!({ "token": token, "name": name })).await
    }

    pub async fn add_json(&self, body: Value) -> String {
        let r = self
            .admin(self.post("/api/token/add"))
            .json(&body)
            .send()
            .await
            .expect("add");
        assert_eq!(r.status(), 201, "add answered {}", r.status());
        let v: Value = r.json().await.expect("json");
        v["id"].as_str().expect("id").to_string()
    }

    pub async fn lease(&self, query: &str) -> Response {
        self.get(&format!("/api/token/get{query}"))
            .send()
            .await
            .expect("get")
    }

    /// Posts a report; one by token id or value goes as the admin (DESIGN §9: a loopback
    /// client may report leases only).
    pub async fn report(&self, body: Value) -> Response {
        let rb = self.post("/api/token/report").json(&body);
        let by_id = body.get("lease").is_none() && body.get("reports").is_none();
        let rb = if by_id { self.admin(rb) } else { rb };
        rb.send().await.expect("report")
    }

    pub async fn stats(&self) -> Value {
        self.get("/api/token/stats")
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    pub async fn row(&self, id: &str) -> Value {
        let s = self.stats().await;
        s["tokens"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect("row present")
    }
}

/// Asserts the uniform error shape and returns the code.
pub async fn error_code(r: Response) -> String {
    let v: Value = r.json().await.expect("error body is JSON");
    assert!(
        v["error"]["message"].is_string(),
        "error has a message: {v}"
    );
    v["error"]["code"]
        .as_str()
        .expect("error has a code")
        .to_string()
}
