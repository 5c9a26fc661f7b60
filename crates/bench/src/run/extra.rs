//! The comparisons beyond the pool-size matrix: the health-sweep and stats-flush variants of
//! the manager, and the web API (cached, realtime) against the Wopan emulator called
//! directly.

use super::{fixed, Bench, Client, Target};
use crate::http1;
use crate::load::Work;
use crate::report::Row;
use crate::setup::{self, ManagerOptions};
use anyhow::bail;
use std::net::SocketAddr;
use std::sync::Arc;

impl Bench {
    /// The same manager with health-check sweeps or 20× more frequent stats flushes, against
    /// a reference started the same way without them.
    pub(super) async fn variants(&mut self) -> anyhow::Result<()> {
        let probe_target = self
            .programs
            .baseline(
                "probe-target",
                &self.scratch(),
                true,
                crate::baseline::Stack::Axum,
            )
            .await?;
        let url = format!("http://{}/health", probe_target.addr);
        let c = self.plan.matrix_conns;
        let n = 1_000;
        let cases: [(&str, ManagerOptions); 3] = [
            ("variant reference", ManagerOptions::default()),
            (
                "variant health sweep 10 s",
                ManagerOptions {
                    health_sweep: Some((url, 10)),
                    stats_flush_ms: None,
                },
            ),
            (
                "variant stats flush 50 ms",
                ManagerOptions {
                    health_sweep: None,
                    stats_flush_ms: Some(50),
                },
            ),
        ];
        for (name, options) in cases {
            eprintln!("{name}");
            let dir = self
                .scratch()
                .join(format!("manager-{}", name.replace(' ', "-")));
            let _ = std::fs::remove_dir_all(&dir);
            let m = self
                .programs
                .manager("manager", &dir, Some(&setup::tokens_json(n)), &options)
                .await?;
            let host = m.addr.to_string();
            let get = http1::get(&host, "/api/token/get?strategy=best", "");
            let reference = (name != "variant reference")
                .then(|| Row::key("variant reference", Some(n), Some("best"), c));
            self.measure(Target {
                group: name,
                label: format!(
                    "get + report, {n} tokens, best, {}",
                    name.trim_start_matches("variant ")
                ),
                tokens: Some(n),
                strategy: Some("best"),
                conns: c,
                addr: m.addr,
                client: Client::Own(Work::LeasePair {
                    get: Arc::new(get),
                    host,
                }),
                reference,
                pids: vec![m.pid()],
            })
            .await?;
        }
        Ok(())
    }

    /// The web API's cached and realtime answers, and the emulator called directly.
    pub(super) async fn webapi(&mut self) -> anyhow::Result<()> {
        eprintln!("web API + manager + Wopan emulator");
        let dir = self.scratch().join("webapi");
        let _ = std::fs::remove_dir_all(&dir);
        let emulator = self.programs.emulator(&dir).await?;
        let manager = self
            .programs
            .manager(
                "manager",
                &dir.join("manager"),
                Some(&setup::demo_tokens_json()),
                &ManagerOptions::default(),
            )
            .await?;
        let webapi = self
            .programs
            .webapi(&dir, manager.addr, emulator.addr)
            .await?;
        let folder = "BD-another";
        let host = webapi.addr.to_string();
        let realtime = http1::get(
            &host,
            &format!("/api/files?folder={folder}&realtime=true"),
            "",
        );
        let cached = http1::get(&host, &format!("/api/files?folder={folder}"), "");
        check_source(webapi.addr, &realtime, "\"source\":\"realtime\"").await?;
        check_source(webapi.addr, &cached, "\"source\":\"cache\"").await?;
        let token = tokenlb_wopan::emulator::DEMO_TOKENS[0].access_token;
        let direct = setup::direct_query_all_files(
            &format!("http://{}", emulator.addr),
            &emulator.addr.to_string(),
            token,
            folder,
        )
        .await?;
        for c in self.plan.webapi_conns.clone() {
            self.measure(Target {
                group: "webapi cached",
                label: format!("web API /api/files, cached ({folder})"),
                tokens: None,
                strategy: None,
                conns: c,
                addr: webapi.addr,
                client: fixed(cached.clone()),
                reference: self.baseline_ref(c),
                pids: vec![webapi.pid()],
            })
            .await?;
        }
        for c in self.plan.realtime_conns.clone() {
            self.measure(Target {
                group: "wopan direct",
                label: format!("emulator direct QueryAllFiles ({} entries)", direct.entries),
                tokens: None,
                strategy: None,
                conns: c,
                addr: emulator.addr,
                client: fixed(direct.request.clone()),
                reference: None,
                pids: vec![emulator.pid()],
            })
            .await?;
            self.measure(Target {
                group: "webapi realtime",
                label: format!("web API /api/files, realtime ({folder})"),
                tokens: None,
                strategy: None,
                conns: c,
                addr: webapi.addr,
                client: fixed(realtime.clone()),
                reference: Some(Row::key("wopan direct", None, None, c)),
                pids: vec![webapi.pid(), manager.pid(), emulator.pid()],
            })
            .await?;
        }
        check_source(webapi.addr, &realtime, "\"source\":\"realtime\"").await?;
        self.remember_rss(&webapi, "webapi", None, "after the load runs");
        Ok(())
    }
}

/// One request must answer 200 with `marker` in its body (the web API falls back to its
/// cache silently, so a realtime measurement must prove it was realtime).
async fn check_source(addr: SocketAddr, request: &[u8], marker: &str) -> anyhow::Result<()> {
    let mut c = http1::Conn::connect(addr).await?;
    let r = c.send(request).await?;
    let body = String::from_utf8_lossy(c.body(&r)).to_string();
    if r.status != 200 || !body.contains(marker) {
        bail!(
            "expected 200 with {marker}, got {} {}",
            r.status,
            body.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}
