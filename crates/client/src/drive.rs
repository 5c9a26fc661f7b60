//! A client for the web API's cloud drive (DESIGN §5 reads, §11 writes): list folders and
//! files, get a download link, create folders, rename, move, copy, delete, upload, and read
//! the quota — through `tokenlb webapi`, so every call gets the pool's failover, its cache
//! fallback for reads, and its cached listings refreshed after writes.
//!
//! Reads are open; writes send the web API's key (`--api-key` / `TOKENLB_WEBAPI_KEY`, or the
//! generated `webapi-key` file in its data dir) as `Authorization: Bearer`. An upload streams
//! its body: give [`DriveClient::upload`] a [`reqwest::Body`] (for example
//! `Body::wrap_stream` over a file) and its length; nothing is kept in memory here.
//!
//! Every refusal is a [`DriveError::Http`] with the web API's status and error code
//! (`name_taken`, `not_found`, `upstream_rate_limited`, …) and, for a 503, its
//! `Retry-After`; the key never appears in an error or a log line.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokenlb_core::Secret;

/// How a drive call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The web API answered with an error status.
    #[error("the web API answered {status} {code}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The web API's machine-readable error code, or `http_error` for a body that was
        /// not its JSON error.
        code: String,
        /// The web API's message (at most 300 characters).
        message: String,
        /// Its `Retry-After`, when it sent one (503: no token, or Wopan rate limiting).
        retry_after: Option<Duration>,
    },
    /// The web API could not be reached, or the connection broke.
    #[error("cannot reach the web API: {0}")]
    Transport(String),
    /// The answer was not the JSON this client expects.
    #[error("unexpected answer from the web API: {0}")]
    Decode(String),
    /// A write was asked for without a key.
    #[error("writing to the drive needs the web API key (DriveClient::with_key)")]
    NoKey,
}

/// One entry of a folder, as the web API lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DriveEntry {
    /// Wopan's id of the entry.
    pub id: String,
    /// Its name inside its folder.
    pub name: String,
    /// `"folder"` or `"file"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// The file's content id (files only), which download links are made from.
    pub fid: Option<String>,
    /// Wopan's file type code.
    pub file_type: String,
    /// When Wopan says the entry was created, as Wopan writes it.
    pub create_time: String,
}

impl DriveEntry {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.kind == "folder"
    }
}

/// A folder's listing and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The folder listed (`""` for the root).
    pub folder: String,
    /// Its entries: every entry for [`DriveClient::files`], folders only for
    /// [`DriveClient::folders`].
    pub entries: Vec<DriveEntry>,
    /// `"realtime"` (Wopan answered now) or `"cache"`.
    pub source: String,
    /// When the listing was fetched from Wopan (RFC 3339).
    pub cached_at: Option<String>,
    /// Served from the cache because the realtime call failed.
    pub stale: bool,
}

/// A download link.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DownloadLink {
    /// The file's path.
    pub url: String,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The link itself (short-lived; fetch it soon).
    pub download_url: String,
}

/// What a create, rename or upload made: the entry and its path.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Written {
    /// The entry's path after the write.
    pub path: String,
    /// The entry as the drive now lists it.
    pub entry: DriveEntry,
}

/// One moved or copied entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Transferred {
    /// Where it was.
    pub from: String,
    /// Where it is (or where the copy is).
    pub to: String,
}

/// The drive's quota.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use.
    pub used_bytes: u64,
    /// Bytes available in all.
    pub total_bytes: u64,
    /// `"realtime"` or `"cache"`.
    pub source: String,
    /// When the figures were read from Wopan.
    pub cached_at: Option<String>,
}

/// A client of one `tokenlb webapi`. Cheap to clone.
#[derive(Clone)]
pub struct DriveClient {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
}

impl std::fmt::Debug for DriveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriveClient")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

#[derive(Deserialize)]
struct ListingBody {
    folder: String,
    #[serde(default)]
    files: Option<Vec<DriveEntry>>,
    #[serde(default)]
    folders: Option<Vec<DriveEntry>>,
    source: String,
    cached_at: Option<String>,
    #[serde(default)]
    stale: bool,
}

impl DriveClient {
    /// A client of the web API at `base_url` (e.g. `http://127.0.0.1:5000`), for reads.
    pub fn new(base_url: &str) -> Result<DriveClient, DriveError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DriveError::Transport(e.to_string()))?;
        Ok(DriveClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            key: None,
        })
    }

    /// The same client with the web API's key, for writes.
    pub fn with_key(mut self, key: Secret) -> DriveClient {
        self.key = Some(key);
        self
    }

    /// The folders in the root, or in `parent`; `realtime` asks Wopan now (the web API falls
    /// back to its cache if that fails), otherwise the cache may answer.
    pub async fn folders(
        &self,
        parent: Option<&str>,
        realtime: bool,
    ) -> Result<Listing, DriveError> {
        let mut query = vec![("realtime", realtime.to_string())];
        if let Some(p) = parent {
            query.push(("folder", p.to_string()));
        }
        let rb = self.http.get(self.url("/api/folders")).query(&query);
        listing(self.send::<ListingBody>(rb).await?)
    }

    /// Every entry of `folder` (a path such as `A/B`).
    pub async fn files(&self, folder: &str, realtime: bool) -> Result<Listing, DriveError> {
        let query = [
            ("folder", folder.to_string()),
            ("realtime", realtime.to_string()),
        ];
        let rb = self.http.get(self.url("/api/files")).query(&query);
        listing(self.send::<ListingBody>(rb).await?)
    }

    /// A download link for the file at `path`.
    pub async fn download_link(&self, path: &str) -> Result<DownloadLink, DriveError> {
        let rb = self
            .http
            .get(self.url("/api/download/"))
            .query(&[("url", path)]);
        self.send(rb).await
    }

    /// Creates the folder `path` (its parent must exist).
    pub async fn create_folder(&self, path: &str) -> Result<Written, DriveError> {
        let rb = self.http.post(self.url("/api/folders"));
        self.send(self.keyed(rb)?.json(&json!({ "path": path })))
            .await
    }

    /// Renames the entry at `path` to `name` (in the same folder).
    pub async fn rename(&self, path: &str, name: &str) -> Result<Written, DriveError> {
        let rb = self.http.post(self.url("/api/rename"));
        let body = json!({ "path": path, "name": name });
        self.send(self.keyed(rb)?.json(&body)).await
    }

    /// Moves the entries at `paths` into the folder `to`.
    pub async fn move_to(&self, paths: &[&str], to: &str) -> Result<Vec<Transferred>, DriveError> {
        self.transfer("/api/move", "moved", paths, to).await
    }

    /// Copies the entries at `paths` into the folder `to`.
    pub async fn copy_to(&self, paths: &[&str], to: &str) -> Result<Vec<Transferred>, DriveError> {
        self.transfer("/api/copy", "copied", paths, to).await
    }

    /// Deletes the entries at `paths` (into Wopan's recycle bin); returns what was deleted.
    pub async fn delete(&self, paths: &[&str]) -> Result<Vec<String>, DriveError> {
        let rb = self.http.delete(self.url("/api/files"));
        let v: Value = self
            .send(self.keyed(rb)?.json(&json!({ "paths": paths })))
            .await?;
        field(v, "deleted")
    }

    /// Uploads `body` (`len` bytes) as the file `path`, streamed: one token holds the whole
    /// upload on the web API's side.
    pub async fn upload(
        &self,
        path: &str,
        len: u64,
        body: reqwest::Body,
    ) -> Result<Written, DriveError> {
        let rb = self
            .http
            .put(self.url("/api/upload"))
            .query(&[("path", path)]);
        let rb = self.keyed(rb)?;
        self.send(rb.header(reqwest::header::CONTENT_LENGTH, len).body(body))
            .await
    }

    /// The drive's quota.
    pub async fn usage(&self, realtime: bool) -> Result<Usage, DriveError> {
        let rb = self
            .http
            .get(self.url("/api/usage"))
            .query(&[("realtime", realtime)]);
        self.send(rb).await
    }

    async fn transfer(
        &self,
        route: &str,
        key: &str,
        paths: &[&str],
        to: &str,
    ) -> Result<Vec<Transferred>, DriveError> {
        let rb = self.http.post(self.url(route));
        let body = json!({ "paths": paths, "to": to });
        let v: Value = self.send(self.keyed(rb)?.json(&body)).await?;
        field(v, key)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn keyed(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, DriveError> {
        let key = self.key.as_ref().ok_or(DriveError::NoKey)?;
        Ok(rb.bearer_auth(key.expose()))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, DriveError> {
        let r = rb
            .send()
            .await
            .map_err(|e| DriveError::Transport(e.without_url().to_string()))?;
        let status = r.status();
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = r
            .bytes()
            .await
            .map_err(|e| DriveError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(http_error(status.as_u16(), &bytes, retry_after));
        }
        serde_json::from_slice(&bytes).map_err(|e| DriveError::Decode(e.to_string()))
    }
}

fn listing(b: ListingBody) -> Result<Listing, DriveError> {
    let entries = b
        .files
        .or(b.folders)
        .ok_or_else(|| DriveError::Decode("a listing without files or folders".into()))?;
    Ok(Listing {
        folder: b.folder,
        entries,
        source: b.source,
        cached_at: b.cached_at,
        stale: b.stale,
    })
}

fn field<T: DeserializeOwned>(mut v: Value, key: &str) -> Result<T, DriveError> {
    let inner = v
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| DriveError::Decode(format!("no {key:?} in the answer")))?;
    serde_json::from_value(inner).map_err(|e| DriveError::Decode(e.to_string()))
}

fn http_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> DriveError {
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_string(),
                e.get("message")?.as_str()?.to_string(),
            ))
        });
    let (code, message) = parsed.unwrap_or_else(|| ("http_error".into(), format!("HTTP {status}")));
    DriveError::Http {
        status,
        code,
        message: message.chars().take(300).collect(),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_web_apis_code_or_say_http() {
        let body = br#"{"error":{"code":"name_taken","message":"A/f.bin already exists"}}"#;
        match http_error(409, body, None) {
            DriveError::Http {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!((status, code.as_str()), (409, "name_taken"));
                assert!(message.contains("already exists"));
            }
            other => panic!("{other:?}"),
        }
        match http_error(
            502,
            b"<html>bad gateway</html>",
            Some(Duration::from_secs(3)),
        ) {
            DriveError::Http {
                code,
                message,
                retry_after,
                ..
            } => {
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("http_error", "HTTP 502")
                );
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let c = DriveClient::new("http://127.0.0.1:5000/")
            .unwrap()
            .with_key(Secret::new("drive-key-0123456789abcdef"));
        let text = format!("{c:?}");
        assert!(!text.contains("drive-key"), "{text}");
        assert_eq!(c.url("/api/usage"), "http://127.0.0.1:5000/api/usage");
    }

    #[tokio::test]
    async fn writes_without_a_key_are_refused_before_sending() {
        let c = DriveClient::new("http://127.0.0.1:9").unwrap();
        assert!(matches!(c.create_folder("A").await, Err(DriveError::NoKey)));
        assert!(matches!(c.delete(&["A"]).await, Err(DriveError::NoKey)));
    }
}
