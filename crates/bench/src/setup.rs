//! The inputs of the servers under test: token files, manager configuration, and the signed
//! Wopan request of the direct-call comparison.
//!
//! Pools are loaded the way users load them, through a seed-format `tokens.json` imported
//! at start, so a 100,000-token pool costs nothing but the import. The direct Wopan call is
//! built with the same envelope code as tokenlb's client (`tokenlb_wopan::envelope`), signed
//! once: the emulator checks the signature but not the age of `resTime`, so replaying one
//! signed request measures the emulator, not our client's signing.

use crate::http1;
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use tokenlb_core::Secret;
use tokenlb_wopan::crypto::ChannelKey;
use tokenlb_wopan::envelope::{build_request, BodyFlag, Channel, Header};
use tokenlb_wopan::{ClientConfig, Space, WopanClient};

/// The secret of bench token `i` (distinct, long enough for every validator).
pub fn bench_secret(i: usize) -> String {
    format!("bench-{i:07}-0123456789abcdef")
}

/// A seed-format tokens.json with `n` bench tokens.
pub fn tokens_json(n: usize) -> String {
    let tokens: Vec<_> = (0..n)
        .map(|i| json!({"token": bench_secret(i), "name": format!("bench {i}"), "is_active": true}))
        .collect();
    json!({ "tokens": tokens }).to_string()
}

/// A seed-format tokens.json of the emulator's healthy demo tokens.
pub fn demo_tokens_json() -> String {
    let tokens: Vec<_> = tokenlb_wopan::emulator::DEMO_TOKENS
        .iter()
        .map(|t| json!({"token": t.access_token, "name": t.name, "is_active": true}))
        .collect();
    json!({ "tokens": tokens }).to_string()
}

/// Options of a manager under test that differ between variants.
#[derive(Clone, Debug, Default)]
pub struct ManagerOptions {
    /// Health checks of kind `http` against this URL with a sweep of every token this often
    /// (seconds); `None` = kind `none` (the default).
    pub health_sweep: Option<(String, u64)>,
    /// `stats_flush_ms` (default 1000).
    pub stats_flush_ms: Option<u64>,
}

/// The manager's `tokenlb.toml` for a variant; everything else, the log level (`info`)
/// included, stays at its default, so the measured manager is the one users run.
pub fn manager_config(o: &ManagerOptions) -> String {
    let mut s = format!(
        "stats_flush_ms = {}\n\n[pools.default]\nstrategy = \"best\"\n",
        o.stats_flush_ms.unwrap_or(1000)
    );
    if let Some((url, every)) = &o.health_sweep {
        s.push_str(&format!(
            "\n[pools.default.health]\nkind = \"http\"\nurl = {url:?}\nsweep_interval_s = {every}\ntimeout_ms = 2000\n"
        ));
    }
    s
}

/// Writes `text` to `path`, creating the parent directory.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A direct Wopan call: `QueryAllFiles` of one folder, signed and encrypted, as raw HTTP.
pub struct DirectCall {
    pub request: Vec<u8>,
    /// Entries the folder has (checked against the web API's answer).
    pub entries: usize,
}

/// Finds `folder`'s id through the emulator at `base_url` (with tokenlb's own Wopan client)
/// and builds the raw request listing its first page of 100, as the web API does.
pub async fn direct_query_all_files(
    base_url: &str,
    host: &str,
    token: &str,
    folder: &str,
) -> anyhow::Result<DirectCall> {
    let client = WopanClient::new(ClientConfig {
        base_url: base_url.to_string(),
        ..Default::default()
    })
    .context("building the Wopan client")?;
    let secret = Secret::new(token.to_string());
    let dir_id = client
        .dir_id_for_path(&secret, &Space::Personal, folder)
        .await
        .with_context(|| format!("resolving {folder:?} on the emulator"))?;
    let entries = client
        .list_all(&secret, &Space::Personal, &dir_id)
        .await
        .context("listing the folder on the emulator")?
        .len();
    let param = json!({
        "spaceType": Space::Personal.space_type(),
        "parentDirectoryId": dir_id,
        "pageNum": 0,
        "pageSize": 100,
        "sortRule": 0,
        "clientId": tokenlb_wopan::crypto::CLIENT_ID,
    });
    let op = "QueryAllFiles";
    let header = Header::new(
        op,
        Channel::Wohome,
        chrono::Utc::now().timestamp_millis() as u64,
        123_456,
    );
    let key = ChannelKey::wohome(token).context("the token is too short for a wohome key")?;
    let body = build_request(&header, Channel::Wohome, &key, &param, BodyFlag::Secret).to_string();
    let extra = format!(
        "Accesstoken: {token}\r\nOrigin: https://pan.wo.cn\r\nReferer: https://pan.wo.cn/\r\nUser-Agent: {}\r\n",
        tokenlb_wopan::client::BROWSER_UA
    );
    let request = http1::post(
        host,
        Channel::Wohome.path(),
        "application/json",
        body.as_bytes(),
        &extra,
    );
    Ok(DirectCall { request, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_json_has_n_distinct_seed_entries() {
        let v: serde_json::Value = serde_json::from_str(&tokens_json(3)).unwrap();
        let t = v["tokens"].as_array().unwrap();
        assert_eq!(t.len(), 3);
        assert_ne!(t[0]["token"], t[1]["token"]);
        assert_eq!(t[2]["is_active"], true);
        let demo: serde_json::Value = serde_json::from_str(&demo_tokens_json()).unwrap();
        assert_eq!(demo["tokens"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn manager_config_variants() {
        let plain = manager_config(&ManagerOptions::default());
        assert!(plain.contains("stats_flush_ms = 1000") && !plain.contains("health"));
        let sweep = manager_config(&ManagerOptions {
            health_sweep: Some(("http://127.0.0.1:9/h".into(), 5)),
            stats_flush_ms: Some(50),
        });
        assert!(sweep.contains("kind = \"http\""));
        assert!(sweep.contains("sweep_interval_s = 5"));
        assert!(sweep.contains("stats_flush_ms = 50"));
    }
}
