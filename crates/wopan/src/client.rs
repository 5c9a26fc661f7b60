//! A client of the Wopan dispatcher: the operations tokenlb needs, each one bounded in time
//! and in response size.
//!
//! Every call is one POST of a signed envelope (see [`crate::envelope`]) with the headers the
//! web client sends (`Accesstoken`, `Origin`, `Referer`, a browser `User-Agent`). A call never
//! waits longer than [`ClientConfig::timeout`] (the whole exchange, body included) and never
//! buffers more than [`ClientConfig::max_response_bytes`]. The client holds no token: each
//! operation takes the token it should use, so one client serves a whole pool. Listing, the
//! path walk and the health checks are in the `fs` submodule, the write operations in
//! `write`, the multipart upload in `upload`.

use crate::crypto::{ChannelKey, CLIENT_ID, CLIENT_SECRET};
use crate::envelope::{Channel, Data};
use crate::error::WopanError;
use crate::types::{
    CloudUsage, FamilyInfo, LinkItem, LinkListV2, Listing, RawTokenPair, Space, TokenPair, UserInfo,
};
use serde_json::{json, Value};
use std::time::Duration;
use tokenlb_core::Secret;

pub(crate) use transport::now_ms;

mod fs;
mod transport;
mod upload;
mod write;
pub use fs::ROOT_ID;
pub use upload::{batch_no, parse_answer, part_count, part_len, UploadTarget, UPLOAD_OP};
pub use write::Selection;

/// The real service.
pub const DEFAULT_BASE_URL: &str = "https://panservice.mail.wo.cn";
/// The browser UA the Java and Python clients send.
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
(KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 Edg/114.0.1823.37";

/// How the client reaches Wopan.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Scheme, host and port of the dispatcher (tests point it at the emulator).
    pub base_url: String,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on a whole call: connect, send, and read the full body.
    pub timeout: Duration,
    /// `pageSize` for listings (AList and OpenWoPan use 100).
    pub page_size: u32,
    /// Largest response body accepted; anything larger is an error, never buffered whole.
    pub max_response_bytes: usize,
    /// Upper bound on pages read by one `list_all` (a server that never sends a short page
    /// must not loop us forever).
    pub max_pages: u32,
    /// Bytes per `upload2C` part (8 MiB, as the SDK); the last part carries the remainder
    /// (up to twice this, less a byte).
    pub upload_part_size: usize,
    /// Bound on sending one part and reading its answer.
    pub upload_part_timeout: Duration,
    /// Tries per part after transient failures (1 = no retry).
    pub upload_part_attempts: u32,
    /// Pause before the n-th retry of a part: n times this.
    pub upload_retry_pause: Duration,
    /// Longest total wait for rate limits (429/503) during one part before giving up.
    pub upload_max_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            page_size: 100,
            max_response_bytes: 8 * 1024 * 1024,
            max_pages: 2000,
            upload_part_size: 8 * 1024 * 1024,
            upload_part_timeout: Duration::from_secs(120),
            upload_part_attempts: 3,
            upload_retry_pause: Duration::from_millis(500),
            upload_max_wait: Duration::from_secs(120),
        }
    }
}

/// A Wopan client. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct WopanClient {
    http: reqwest::Client,
    base: reqwest::Url,
    cfg: ClientConfig,
}

impl WopanClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, WopanError> {
        let base = reqwest::Url::parse(&cfg.base_url)
            .map_err(|e| WopanError::Config(format!("base URL {:?}: {e}", cfg.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(WopanError::Config(format!(
                "base URL {:?} must be http(s)://host[:port]",
                cfg.base_url
            )));
        }
        if cfg.page_size == 0 || cfg.timeout.is_zero() || cfg.max_response_bytes == 0 {
            return Err(WopanError::Config(
                "page_size, timeout and max_response_bytes must be positive".into(),
            ));
        }
        if !(1..=32 * 1024 * 1024).contains(&cfg.upload_part_size)
            || cfg.upload_part_attempts == 0
            || cfg.upload_part_timeout.is_zero()
        {
            return Err(WopanError::Config(
                "upload_part_size must be 1 B–32 MiB; upload attempts and timeout positive".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WopanError::Config(format!("HTTP client: {e}")))?;
        Ok(WopanClient { http, base, cfg })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// A wohome call with the token's key.
    async fn wohome(
        &self,
        op: &str,
        token: &Secret,
        param: Value,
    ) -> Result<(Data, ChannelKey), WopanError> {
        let key = wohome_key(token)?;
        let data = self
            .call(Channel::Wohome, op, Some(token), &key, param)
            .await?;
        Ok((data, key))
    }

    /// `AppQueryUser`: who owns this token. The cheap health check.
    pub async fn query_user(&self, token: &Secret) -> Result<UserInfo, WopanError> {
        const OP: &str = "AppQueryUser";
        let key = ChannelKey::api_user();
        let param = json!({ "accessToken": token.expose() });
        let data = self
            .call(Channel::ApiUser, OP, Some(token), &key, param)
            .await?;
        data.decode(OP, &key)
    }

    /// `AppRefreshToken`: a new access token and (maybe rotated) refresh token. Store both.
    pub async fn refresh_token(&self, refresh_token: &Secret) -> Result<TokenPair, WopanError> {
        const OP: &str = "AppRefreshToken";
        let key = ChannelKey::api_user();
        let param =
            json!({ "refreshToken": refresh_token.expose(), "clientSecret": CLIENT_SECRET });
        let data = self.call(Channel::ApiUser, OP, None, &key, param).await?;
        let raw: RawTokenPair = data.decode(OP, &key)?;
        if raw.access_token.is_empty() || raw.refresh_token.is_empty() {
            return Err(WopanError::malformed(
                OP,
                "answer lacks access_token or refresh_token",
            ));
        }
        Ok(TokenPair {
            access_token: Secret::new(raw.access_token),
            refresh_token: Secret::new(raw.refresh_token),
            expires_in_s: raw.expires_in,
            expires_at: now_ms().saturating_add(raw.expires_in.saturating_mul(1000)),
        })
    }

    /// `QueryAllFiles`: one 0-based page of a directory, `page_size` entries at most.
    pub async fn list_page(
        &self,
        token: &Secret,
        space: &Space,
        dir_id: &str,
        page_num: u32,
        page_size: u32,
    ) -> Result<Listing, WopanError> {
        const OP: &str = "QueryAllFiles";
        let mut param = json!({
            "spaceType": space.space_type(),
            "parentDirectoryId": dir_id,
            "pageNum": page_num,
            "pageSize": page_size,
            "sortRule": 0,
            "clientId": CLIENT_ID,
        });
        if let Some(f) = space.family_id() {
            param["familyId"] = Value::String(f.to_string());
        }
        let (data, key) = self.wohome(OP, token, param).await?;
        if data == Data::Empty {
            return Err(WopanError::malformed(OP, "listing has no DATA"));
        }
        data.decode(OP, &key)
    }

    /// `GetDownloadUrlV2`: a download link for a file's `fid` (personal or family).
    pub async fn download_url(&self, token: &Secret, fid: &str) -> Result<String, WopanError> {
        const OP: &str = "GetDownloadUrlV2";
        let param = json!({ "type": "1", "fidList": [fid], "clientId": CLIENT_ID });
        let (data, key) = self.wohome(OP, token, param).await?;
        let list: LinkListV2 = data.decode(OP, &key)?;
        pick_link(OP, list.list, fid)
    }

    /// `GetDownloadUrl` (v1, the web UI's call): DATA is an array matched by `fid`.
    pub async fn download_url_v1(
        &self,
        token: &Secret,
        space: &Space,
        fid: &str,
    ) -> Result<String, WopanError> {
        const OP: &str = "GetDownloadUrl";
        let param =
            json!({ "fidList": [fid], "clientId": CLIENT_ID, "spaceType": space.space_type() });
        let (data, key) = self.wohome(OP, token, param).await?;
        let items: Vec<LinkItem> = data.decode(OP, &key)?;
        items
            .into_iter()
            .find(|i| i.fid == fid && !i.download_url.is_empty())
            .map(|i| i.download_url)
            .ok_or_else(|| WopanError::MissingLink { op: OP.to_string() })
    }

    /// `FamilyUserCurrentEncode`: the user's default family (its id for [`Space::Family`]).
    pub async fn family_info(&self, token: &Secret) -> Result<FamilyInfo, WopanError> {
        const OP: &str = "FamilyUserCurrentEncode";
        let (data, key) = self
            .wohome(OP, token, json!({ "clientId": CLIENT_ID }))
            .await?;
        data.decode(OP, &key)
    }

    /// `QueryCloudUsageInfo`: quota. `phone` is [`UserInfo::user_id`].
    pub async fn cloud_usage(&self, token: &Secret, phone: &str) -> Result<CloudUsage, WopanError> {
        const OP: &str = "QueryCloudUsageInfo";
        let param = crate::params::cloud_usage(phone);
        let (data, key) = self.wohome(OP, token, param).await?;
        data.decode(OP, &key)
    }
}

/// The wohome key of a token, or the clear error for a short one.
fn wohome_key(token: &Secret) -> Result<ChannelKey, WopanError> {
    ChannelKey::wohome(token.expose()).map_err(|e| WopanError::TokenTooShort { len: e.len })
}

/// The link for `fid`; a single unmatched item is accepted as AList does (`list[0]`).
fn pick_link(op: &str, items: Vec<LinkItem>, fid: &str) -> Result<String, WopanError> {
    let single = items.len() == 1;
    let mut fallback = None;
    for item in items {
        if item.download_url.is_empty() {
            continue;
        }
        if item.fid == fid {
            return Ok(item.download_url);
        }
        fallback = Some(item.download_url);
    }
    match fallback {
        Some(url) if single => Ok(url),
        _ => Err(WopanError::MissingLink { op: op.to_string() }),
    }
}
