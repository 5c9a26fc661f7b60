//! The whole system on loopback for the end-to-end tests: the Wopan emulator with its demo
//! data, a real manager holding the demo tokens, and the web API pointed at both, each on
//! 127.0.0.1:0, each stoppable and restartable in place.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokenlb_core::{Policy, Secret, Strategy};
use tokenlb_manager::config::{Config, PoolConfig};
use tokenlb_manager::Manager;
use tokenlb_webapi::{AppState, WebapiConfig};
use tokenlb_wopan::emulator::{self, EmulatorConfig, DEMO_TOKENS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "webapi-test-admin-key-0123456789";

/// A server task that stops when told (or when dropped).
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub emu_url: String,
    pub manager_url: String,
    manager_addr: SocketAddr,
    pub web_url: String,
    pub web: AppState,
    /// Token id in the manager for each demo token, in `DEMO_TOKENS` order.
    pub token_ids: Vec<String>,
    emu: Running,
    manager: Running,
    webapi: Running,
}

fn manager_config(data: &Path) -> Config {
    let policy = Policy {
        strategy: Strategy::RoundRobin,
        rate_limit_default_s: 1,
        cooling_base_s: 1,
        cooling_cap_s: 2,
        ..Policy::default()
    };
    let mut c = Config {
        data_dir: data.join("manager"),
        tokens_file: data.join("tokens.json"),
        stats_flush_ms: 100,
        ..Config::default()
    };
    c.pools.insert(
        "default".into(),
        PoolConfig {
            policy,
            ..PoolConfig::default()
        },
    );
    c.admin.key = Some(Secret::new(ADMIN_KEY));
    c.admin.password = Some(Secret::new("webapi-test-password"));
    c
}

async fn start_manager(data: &Path, addr: SocketAddr) -> (Running, SocketAddr) {
    let manager = Manager::open(manager_config(data))
        .await
        .expect("manager opens");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind manager");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = manager
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    (
        Running {
            stop: Some(stop),
            task: Some(task),
        },
        addr,
    )
}

async fn start_emulator(config: EmulatorConfig) -> (Running, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = emulator::serve(listener, config, async move {
            let _ = stopped.await;
        })
        .await;
    });
    (
        Running {
            stop: Some(stop),
            task: Some(task),
        },
        url,
    )
}

pub fn webapi_config(data: &Path, manager_url: &str, emu_url: &str) -> WebapiConfig {
    let mut c = WebapiConfig::new(manager_url);
    c.wopan_base_url = emu_url.to_string();
    c.data_dir = data.join("webapi");
    c.manager_probe_interval = Duration::from_millis(50);
    c.upstream_timeout = Duration::from_secs(10);
    c
}

async fn start_webapi(config: &WebapiConfig) -> (Running, String, AppState) {
    let state = AppState::new(config).expect("web API state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = state.clone();
    let task = tokio::spawn(async move {
        let _ = tokenlb_webapi::serve(served, listener, async move {
            let _ = stopped.await;
        })
        .await;
    });
    (
        Running {
            stop: Some(stop),
            task: Some(task),
        },
        url,
        state,
    )
}

impl Stack {
    /// Emulator + manager with the three healthy demo tokens + web API.
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut WebapiConfig)) -> Stack {
        Self::start_full(EmulatorConfig::default(), adjust).await
    }

    /// As [`Stack::start_with`], with the emulator configured too.
    pub async fn start_full(
        emulator: EmulatorConfig,
        adjust: impl FnOnce(&mut WebapiConfig),
    ) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (emu, emu_url) = start_emulator(emulator).await;
        let (manager, manager_addr) =
            start_manager(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
        let manager_url = format!("http://{manager_addr}");
        let mut token_ids = Vec::new();
        for t in DEMO_TOKENS {
            let r = http
                .post(format!("{manager_url}/api/token/add"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"token": t.access_token, "name": t.name}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            token_ids.push(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let mut config = webapi_config(dir.path(), &manager_url, &emu_url);
        adjust(&mut config);
        let (webapi, web_url, web) = start_webapi(&config).await;
        Stack {
            dir,
            http,
            emu_url,
            manager_url,
            manager_addr,
            web_url,
            web,
            token_ids,
            emu,
            manager,
            webapi,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// GET on the web API: status and JSON body (Null when not JSON).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.web_url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get_raw(&self, path_and_query: &str, range: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path_and_query}", self.web_url));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send().await.unwrap()
    }

    pub async fn control(&self, body: Value) {
        let r = self
            .http
            .post(format!("{}/_emulator/control", self.emu_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "control {body}");
    }

    /// Dispatcher calls the emulator counted since the last reset, all operations together.
    pub async fn upstream_calls(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/_emulator/state", self.emu_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["calls"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    pub async fn calls(&self, op: &str) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/_emulator/state", self.emu_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["calls"][op].as_u64().unwrap_or(0)
    }

    pub async fn reset_counts(&self) {
        self.control(json!({"reset_counts": true})).await;
    }

    /// The manager's stats row of a token.
    pub async fn row(&self, id: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}/api/token/stats", self.manager_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect("row")
    }

    pub async fn stop_manager(&mut self) {
        self.manager.stop().await;
    }

    pub async fn restart_manager(&mut self) {
        self.manager.stop().await;
        let (m, _) = start_manager(self.dir.path(), self.manager_addr).await;
        self.manager = m;
    }

    /// Stops the web API and starts a new one on the same data dir.
    pub async fn restart_webapi(&mut self) {
        self.webapi.stop().await;
        let config = webapi_config(self.dir.path(), &self.manager_url, &self.emu_url);
        let (w, url, state) = start_webapi(&config).await;
        self.webapi = w;
        self.web_url = url;
        self.web = state;
    }

    /// Asks until an answer is realtime again (tokens cool for about a second after a rate
    /// limit), a bounded number of times.
    pub async fn until_realtime(&self, path_and_query: &str) -> (u16, Value) {
        let mut last = (0, Value::Null);
        for _ in 0..100 {
            last = self.get(path_and_query).await;
            if last.0 == 200 && last.1["source"] == "realtime" {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
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
