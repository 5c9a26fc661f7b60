//! Starting each kind of server under test with the flags the harness needs.
//!
//! Every server listens on a fresh loopback port and runs in its own directory under the
//! run's scratch directory. Managers get a generated `tokenlb.toml` and, on first start, a
//! seed-format `tokens.json`; a restart on the same data directory loads the pool from the
//! store instead (the tokens file is then a path that does not exist).

use crate::procs::{free_port, Server, Spawn};
use crate::setup::{self, ManagerOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Programs and CPU sets.
#[derive(Clone, Debug)]
pub struct Programs {
    pub tokenlb: PathBuf,
    /// This binary (for `serve-baseline`).
    pub bench: PathBuf,
    /// `taskset -c` list for the servers under test.
    pub server_cpus: Option<String>,
    /// `taskset -c` list for helpers that must not compete with the servers (the health
    /// check target): the load client's CPUs.
    pub helper_cpus: Option<String>,
    /// Start-up bound (a 100,000-token import included).
    pub ready_timeout: Duration,
}

fn loopback() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

impl Programs {
    /// The baseline server; `helper` pins it with the helpers instead of the servers.
    pub async fn baseline(
        &self,
        name: &str,
        dir: &Path,
        helper: bool,
        stack: crate::baseline::Stack,
    ) -> anyhow::Result<Server> {
        let addr = loopback()?;
        let mut s = Server::spawn(Spawn {
            name: name.into(),
            program: self.bench.clone(),
            args: vec![
                "serve-baseline".into(),
                "--listen".into(),
                addr.to_string().into(),
                "--stack".into(),
                stack.as_arg().into(),
            ],
            dir: dir.join(name),
            env: vec![],
            cpus: if helper {
                self.helper_cpus.clone()
            } else {
                self.server_cpus.clone()
            },
            addr,
        })?;
        s.wait_ready("/", self.ready_timeout).await?;
        Ok(s)
    }

    /// A manager in `dir` (its data directory is `dir/data`). `tokens_json` is imported at
    /// start when given.
    pub async fn manager(
        &self,
        name: &str,
        dir: &Path,
        tokens_json: Option<&str>,
        options: &ManagerOptions,
    ) -> anyhow::Result<Server> {
        let addr = loopback()?;
        let config = dir.join("tokenlb.toml");
        setup::write(&config, &setup::manager_config(options))?;
        let tokens = match tokens_json {
            Some(text) => {
                let p = dir.join("tokens.json");
                setup::write(&p, text)?;
                p
            }
            None => dir.join("no-tokens-file.json"),
        };
        let args = vec![
            "manager".into(),
            "--listen".into(),
            addr.to_string().into(),
            "--data-dir".into(),
            dir.join("data").into_os_string(),
            "--config".into(),
            config.into_os_string(),
            "--tokens-file".into(),
            tokens.into_os_string(),
        ];
        let mut s = Server::spawn(Spawn {
            name: name.into(),
            program: self.tokenlb.clone(),
            args,
            dir: dir.to_path_buf(),
            env: vec![],
            cpus: self.server_cpus.clone(),
            addr,
        })?;
        s.wait_ready("/readyz", self.ready_timeout).await?;
        Ok(s)
    }

    /// The Wopan emulator with its demo data and tokens.
    pub async fn emulator(&self, dir: &Path) -> anyhow::Result<Server> {
        let addr = loopback()?;
        let mut s = Server::spawn(Spawn {
            name: "wopan-emulator".into(),
            program: self.tokenlb.clone(),
            args: vec![
                "wopan-emulator".into(),
                "--listen".into(),
                addr.to_string().into(),
            ],
            dir: dir.join("wopan-emulator"),
            env: vec![],
            cpus: self.server_cpus.clone(),
            addr,
        })?;
        s.wait_ready("/_emulator/state", self.ready_timeout).await?;
        Ok(s)
    }

    /// The web API against `manager` and `emulator`.
    pub async fn webapi(
        &self,
        dir: &Path,
        manager: SocketAddr,
        emulator: SocketAddr,
    ) -> anyhow::Result<Server> {
        let addr = loopback()?;
        let dir = dir.join("webapi");
        let args = vec![
            "webapi".into(),
            "--listen".into(),
            addr.to_string().into(),
            "--manager-url".into(),
            format!("http://{manager}").into(),
            "--wopan-base-url".into(),
            format!("http://{emulator}").into(),
            "--data-dir".into(),
            dir.join("data").into_os_string(),
        ];
        let mut s = Server::spawn(Spawn {
            name: "webapi".into(),
            program: self.tokenlb.clone(),
            args,
            dir,
            env: vec![],
            cpus: self.server_cpus.clone(),
            addr,
        })?;
        s.wait_ready("/healthz", self.ready_timeout).await?;
        Ok(s)
    }
}
