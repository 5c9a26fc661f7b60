//! Helpers for the binary's tests: run `tokenlb` with a clean environment, and start a real
//! manager process on a free loopback port with a temporary data dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokenlb_test_support::process::{clean_command, collect_lines};

/// `tokenlb` with no TOKENLB_* or RUST_LOG variables inherited, run in `dir`.
pub fn tokenlb(dir: &Path) -> Command {
    clean_command(env!("CARGO_BIN_EXE_tokenlb"), dir)
}

pub use tokenlb_test_support::process::{assert_no_panic, run};

/// A `tokenlb manager` child process; killed on drop.
pub struct Manager {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl Manager {
    /// Starts a manager on 127.0.0.1:0 in a fresh temporary directory and waits until it
    /// logs its address.
    pub fn start() -> Manager {
        Manager::start_with(&[])
    }

    /// Like [`Manager::start`] with extra `tokenlb manager` arguments.
    pub fn start_with(extra: &[&str]) -> Manager {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let mut child = tokenlb(dir.path())
            .args(["manager", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("manager starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (logs, rx) = collect_lines(stderr);
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "manager did not start: {:?}",
                    logs.lock().expect("log lock")
                )
            });
        Manager {
            child,
            url: format!("http://{addr}"),
            data_dir,
            logs,
            dir,
        }
    }

    /// `tokenlb token …` against this manager (admin key from the data dir's key file).
    pub fn token(&self) -> Command {
        let mut cmd = tokenlb(self.dir.path());
        cmd.arg("token")
            .arg("--manager-url")
            .arg(&self.url)
            .arg("--data-dir")
            .arg(&self.data_dir);
        cmd
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().expect("log lock").join("\n")
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the reader drain
                return (status.code().unwrap_or(-1), self.log_text());
            }
            assert!(Instant::now() < deadline, "manager did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
