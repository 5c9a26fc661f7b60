//! Fixtures for the cluster tests: a database of its own on the local PostgreSQL (dropped
//! afterwards), a private `redis-server` on a free loopback port (so the shared one on 6379
//! is never stopped), a TCP proxy in front of PostgreSQL that a test can cut, and real
//! `tokenlb manager` processes. Everything listens on, and talks to, loopback only.

pub mod http;
pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokenlb_test_support::process::{clean_command, collect_lines};

pub const ADMIN_KEY: &str = "cluster-test-admin-key-0123456789";
/// Base64 of 32 bytes: every instance must share the store's encryption key.
pub const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A name unique to this process and call (lowercase letters, digits, `_`).
pub fn unique(kind: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tokenlb_{kind}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "test",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database of its own on the local PostgreSQL; dropped (connections and all) on drop.
pub struct Db {
    pub name: String,
}

impl Db {
    pub fn create() -> Db {
        let name = unique("cluster");
        psql(&format!("CREATE DATABASE {name}"));
        Db { name }
    }

    /// Its URL through `port` (5432 = directly).
    pub fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{}", self.name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// A private `redis-server` (no persistence) on a free port; stopped on drop.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        for _ in 0..5 {
            let mut r = Redis {
                port: free_port(),
                child: None,
            };
            r.restart();
            // Another test process may have taken the port in between: then our server
            // exited and the one answering is theirs. Try another port.
            if r.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
            {
                return r;
            }
        }
        panic!("could not start a private redis-server");
    }

    /// The URL managers use, with a key prefix of their own.
    pub fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/0?prefix={prefix}", self.port)
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A server that failed to bind exits within moments of starting.
        std::thread::sleep(Duration::from_millis(50));
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `tokenlb manager` process in cluster mode; killed on drop.
pub struct Node {
    pub url: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    pub fn start(store: &str, redis: &str) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = clean_command(env!("CARGO_BIN_EXE_tokenlb"), dir.path());
        let mut child = cmd
            .env("TOKENLB_ADMIN_KEY", ADMIN_KEY)
            .env("TOKENLB_ENCRYPTION_KEY", ENCRYPTION_KEY)
            .args(["manager", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--store", store, "--redis", redis])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("manager starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (logs, rx) = collect_lines(stderr);
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "manager did not start: {:?}",
                logs.lock().expect("log lock")
            );
        };
        Node {
            url: format!("http://{addr}"),
            child,
            logs,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().expect("log lock").join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shared PostgreSQL database, a private Redis and two managers on them.
pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub redis: Redis,
    pub db: Db,
}

impl Pair {
    pub fn start() -> Pair {
        let db = Db::create();
        let redis = Redis::start();
        let prefix = unique("p");
        let a = Node::start(&db.url(5432), &redis.url(&prefix));
        let b = Node::start(&db.url(5432), &redis.url(&prefix));
        Pair { a, b, redis, db }
    }
}

/// Polls `check` every 5 ms until it holds or `limit` passes; returns how long it took.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
