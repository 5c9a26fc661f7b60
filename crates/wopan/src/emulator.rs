//! A protocol-faithful Wopan server for tests, demos and fault injection
//! (`tokenlb wopan-emulator`).
//!
//! It answers both dispatchers exactly as the research notes (§11) describe, and serves the
//! download links it hands out. Everything a client sees uses the real envelope, field names
//! and types; nothing from outside can make it panic or answer HTML.
//!
//! ## Routes
//! - `POST /api-user/dispatcher`: `AppQueryUser` (DATA encrypted with the client secret),
//!   `AppRefreshToken` (plain DATA; new access token, refresh token rotated unless
//!   `rotate_refresh` is off; the old access token stops working), `AppLogout`.
//! - `POST /wohome/dispatcher` (token in the `Accesstoken` header, key = its first 16
//!   characters): `QueryAllFiles`, `GetDownloadUrlV2`, `GetDownloadUrl`,
//!   `FamilyUserCurrentEncode`, `QueryCloudUsageInfo`, `GetZoneInfo` (the emulator is its own
//!   upload host); the writes `CreateDirectory`, `RenameFileOrDirectory`, `MoveFile`,
//!   `CopyFile`, `DeleteFile`, `EmptyRecycleData` (module `write`, changing the tree of module `tree`). DATA
//!   encrypted, `""` for the mutations.
//! - `POST /openapi/client/upload2C`: multipart upload parts (module `upload`).
//! - `GET /openapi/download?fid=<opaque>`: the file's bytes (generated from a fixture file's
//!   id, or the uploaded bytes), `Range` → 206, unknown or expired link → 403.
//! - `ANY /demo-api/<path>`: a small Bearer-token API for proxy mode's demo (module
//!   `demo_api`; `tokenlb up --demo` serves it as `/proxy/demo/…`).
//! - `POST /_emulator/control`, `GET /_emulator/state`: fault injection (below).
//!
//! ## Answers to bad requests
//! Always HTTP 200 and the envelope with `STATUS "200"` and a non-`0000` `RSP_CODE`. The real
//! codes for these cases are unknown; the emulator uses its own, documented here, so tests can
//! tell them apart (the client maps them to `unknown`):
//!
//! | case | RSP_CODE | RSP_DESC |
//! |---|---|---|
//! | body not JSON, no header/body, wrong types, larger than 1 MiB | `0001` | 请求报文格式错误 |
//! | `sign` does not verify | `0002` | 签名校验失败 |
//! | `header.channel` ≠ path segment | `0003` | 渠道不匹配 |
//! | `param` does not decrypt with the channel key, or is not JSON | `0004` | 参数解密失败 |
//! | unknown `header.key` | `0005` | 未知的接口 |
//! | `spaceType` other than 0/1, a move or copy across spaces | `0006` | 不支持的空间类型 |
//! | unknown id, parent or target folder | `0007` | 文件或目录不存在 |
//! | name already used in the folder | `0008` | 文件名已存在 |
//! | folder moved or copied into itself | `0009` | 不能移动到自身或其子目录 |
//! | empty, `/`-containing or over-long name | `0010` | 文件名不合法 |
//! | upload parts that disagree | `0011` | 分片信息不一致 |
//! | no room (quota, or the emulator's memory cap) | `0012` | 空间不足 |
//! | unknown or expired access token | `9999` 系统异常 (or `1001` 无效登录信息, see `invalid_code`) | |
//! | unknown refresh token or wrong client secret | `8005` | 登录失败！ |
//! | family id not the token's family | `120002` | 家庭组不存在或该用户不是选择的家庭组成员 |
//!
//! An unknown `parentDirectoryId` lists as empty (what a database query would give).
//!
//! ## Fault injection: `POST /_emulator/control`
//! A JSON object; every field optional, unknown fields refused with 400:
//! - `down` (bool): an outage. Dispatchers, the upload host and downloads answer HTTP 502 Bad Gateway without
//!   `Retry-After`, as a gateway in front of a dead backend would; the client classes it as
//!   `transient` (not the token's fault). Connections are not dropped. (A 503 would be
//!   classed `rate_limited`; use `rate_limit_status: 503` for that.)
//! - `latency_ms` (int): delay before every dispatcher and download answer.
//! - `error_rate` (0–1): that fraction of dispatcher and upload calls answer HTTP 500
//!   (`transient`).
//! - `tokens` (map access token → `ok` | `expired` | `rate_limited` | `quota` | `error`):
//!   `expired` gives the invalid code; `rate_limited` gives HTTP `rate_limit_status` with
//!   `Retry-After: retry_after_s`; `quota` gives HTTP 509; `error` HTTP 500. Also applied to downloads of links
//!   that token obtained. Unknown tokens are refused with 400.
//! - `invalid_code` (9999 | 1001), `link_ttl_s`, `token_ttl_s` (lifetime of refreshed tokens),
//!   `rotate_refresh` (bool), `rate_limit_status` (429 | 503), `retry_after_s`,
//!   `downloads` (`ok` | `rate_limited` | `quota`: a fault for every download).
//! - `reset_counts` (bool): zero the call counts.
//!
//! The answer, like `GET /_emulator/state`, is `{"settings":{…},"tokens":[…],"calls":{op:n},
//! "links_active":n}`; tokens are shown masked (`abcd…wxyz`). Calls are counted per
//! `header.key` (`_malformed` for unreadable requests, `_unknown` for unknown keys) and
//! `download` for the download host.

mod control;
pub mod demo;
mod demo_api;
mod dispatch;
mod download;
pub mod fixture;
mod ops;
mod state;
mod tree;
mod upload;
mod write;

pub use demo::{demo_fixture, DemoToken, DEMO_EXPIRED_TOKEN, DEMO_FAMILY_ID, DEMO_TOKENS};
pub use download::content_bytes;
pub use fixture::{Fixture, FixtureError};
pub use state::{DownloadFault, Settings, TokenFault};
pub use upload::MAX_STORED_BYTES;

use axum::routing::{any, get, post};
use axum::Router;
use parking_lot::Mutex;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// How an emulator starts.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Tokens and tree; [`demo_fixture`] by default.
    pub fixture: Fixture,
    /// Scheme and authority put in download links (e.g. `http://127.0.0.1:8900`). Default:
    /// the `Host` header of the dispatcher request, else the listening address.
    pub public_url: Option<String>,
    /// Lifetime of download links, seconds (default 600).
    pub link_ttl_s: u64,
    /// Lifetime of tokens issued by `AppRefreshToken`, seconds (default 604799, as the real
    /// `expires_in`).
    pub token_ttl_s: u64,
    /// Whether `AppRefreshToken` also issues a new refresh token (default true).
    pub rotate_refresh: bool,
    /// The code for unknown/expired access tokens: 9999 (default) or 1001.
    pub invalid_code: u32,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            fixture: demo_fixture(),
            public_url: None,
            link_ttl_s: 600,
            token_ttl_s: 604_799,
            rotate_refresh: true,
            invalid_code: 9999,
        }
    }
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("emulator configuration: {0}")]
    Config(String),
    #[error("emulator server: {0}")]
    Io(#[from] std::io::Error),
}

impl EmulatorConfig {
    /// Checks the configuration and its fixture.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        self.fixture.validate()?;
        if !matches!(self.invalid_code, 9999 | 1001) {
            return Err(EmulatorError::Config(
                "invalid_code must be 9999 or 1001".into(),
            ));
        }
        if let Some(u) = &self.public_url {
            let ok = reqwest::Url::parse(u)
                .map(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(EmulatorError::Config(format!(
                    "public_url {u:?} must be http(s)://host[:port]"
                )));
            }
        }
        Ok(())
    }
}

/// State shared by all handlers.
pub(crate) struct Shared {
    /// Changed by the write operations; locked briefly, never across an `.await`.
    pub tree: parking_lot::RwLock<tree::Tree>,
    pub inner: Mutex<state::Inner>,
    pub public_url: Option<String>,
    pub local_addr: Option<SocketAddr>,
}

pub(crate) type AppState = Arc<Shared>;

/// The emulator as a router (for `oneshot` tests or embedding). Links fall back to the
/// request's `Host` header.
pub fn router(config: EmulatorConfig) -> Result<Router, EmulatorError> {
    build(config, None)
}

fn build(config: EmulatorConfig, local_addr: Option<SocketAddr>) -> Result<Router, EmulatorError> {
    config.validate()?;
    let shared = Arc::new(Shared {
        tree: parking_lot::RwLock::new(tree::Tree::build(&config.fixture)),
        inner: Mutex::new(state::Inner::new(&config, &config.fixture)),
        public_url: config
            .public_url
            .map(|u| u.trim_end_matches('/').to_string()),
        local_addr,
    });
    Ok(Router::new()
        .route("/api-user/dispatcher", post(dispatch::api_user))
        .route("/wohome/dispatcher", post(dispatch::wohome))
        .route("/openapi/download", get(download::handle))
        .route("/openapi/client/upload2C", post(upload::handle))
        .route("/demo-api", any(demo_api::handle))
        .route("/demo-api/", any(demo_api::handle))
        .route("/demo-api/{*path}", any(demo_api::handle))
        .route("/_emulator/control", post(control::control))
        .route("/_emulator/state", get(control::state))
        .fallback(dispatch::not_found)
        .with_state(shared))
}

/// Serves the emulator on `listener` until `shutdown` completes, then finishes in-flight
/// requests and returns.
pub async fn serve(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EmulatorError> {
    let addr = listener.local_addr()?;
    let app = build(config, Some(addr))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
