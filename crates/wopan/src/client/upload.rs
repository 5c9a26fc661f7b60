//! `upload2C`: a file sent in parts to the upload host that `GetZoneInfo` names.
//!
//! The protocol (research notes §5.2): every part is one `multipart/form-data` POST to
//! `{zone}/openapi/client/upload2C` carrying the same `uniqueId` (ms timestamp + `_` + six
//! letters), the token as the `accessToken` field, `fileName`, `fileSize`, `totalPart`,
//! `partSize` (this part's bytes), `partIndex` (1-based), `channel:"wocloud"`, `directoryId`,
//! `psToken:"undefined"`, the `fileInfo` JSON encrypted with the wohome key, and the bytes as
//! the `file` part. The answer is not the dispatcher envelope but
//! `{"code":"0000","msg":"上传成功","data":{"fid":"…"}}`; the last part's answer carries the new
//! file's `fid`. What the real host answers for the parts before the last is not captured:
//! any `code:"0000"` is taken as accepted.
//!
//! The body is read from a stream one part at a time ([`ClientConfig::upload_part_size`],
//! 8 MiB like the SDK; as in the SDK, the parts are `size / 8 MiB` and the last carries the
//! remainder, so it holds 8 MiB to 16 MiB less a byte), so an upload of any size holds
//! about two parts in memory. Each part
//! is retried on its own: after a transient failure (network, timeout, 5xx, garbage) and
//! after the 400/405 that the upload hosts are known to answer now and then (AList #6915), up
//! to [`ClientConfig::upload_part_attempts`] tries with a growing pause; after a rate limit
//! (429/503) it waits the `Retry-After` (5 s when absent) and sends the same part again on
//! the same token, for at most [`ClientConfig::upload_max_wait`] per part. The token cannot
//! change mid-upload: the parts are joined by `uniqueId` under the account that sent them.
//! When that wait is used up the upload fails with the rate-limit error, whose class tells the
//! caller's pool what happened.
//!
//! [`ClientConfig::upload_part_size`]: super::ClientConfig::upload_part_size
//! [`ClientConfig::upload_part_attempts`]: super::ClientConfig::upload_part_attempts
//! [`ClientConfig::upload_max_wait`]: super::ClientConfig::upload_max_wait

use super::transport::{net_error, read_capped, retry_after};
use super::{now_ms, WopanClient, BROWSER_UA};
use crate::crypto::{self, ChannelKey};
use crate::error::WopanError;
use crate::multipart::FormBuilder;
use crate::params;
use crate::types::{Space, UploadAnswer, Uploaded};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, ORIGIN, REFERER, USER_AGENT};
use std::fmt::Display;
use std::time::Duration;
use tokenlb_core::{OutcomeClass, Secret};

/// The operation name in errors and logs.
pub const UPLOAD_OP: &str = "upload2C";
/// Largest answer read from the upload host.
const MAX_ANSWER: usize = 64 * 1024;
/// Wait after a rate limit that names no `Retry-After`.
const DEFAULT_RATE_WAIT_S: u64 = 5;

/// Where an upload goes and what it is.
#[derive(Clone, Debug)]
pub struct UploadTarget<'a> {
    pub space: &'a Space,
    /// The folder's id (`"0"` for the root).
    pub dir_id: &'a str,
    pub name: &'a str,
    /// The exact number of bytes the stream will yield.
    pub size: u64,
}

/// What every part of one upload repeats.
struct Session {
    url: reqwest::Url,
    unique_id: String,
    file_info: String,
    total_parts: u64,
}

impl WopanClient {
    /// Uploads `body` (exactly `target.size` bytes) into `target.dir_id`, asking
    /// `GetZoneInfo` for the upload host first.
    pub async fn upload<S, E>(
        &self,
        token: &Secret,
        target: UploadTarget<'_>,
        body: S,
    ) -> Result<Uploaded, WopanError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let zone = self.zone_url(token).await?;
        self.upload_to(&zone, token, target, body).await
    }

    /// As [`WopanClient::upload`], to a known upload host (from [`WopanClient::zone_url`]).
    pub async fn upload_to<S, E>(
        &self,
        zone_url: &str,
        token: &Secret,
        target: UploadTarget<'_>,
        body: S,
    ) -> Result<Uploaded, WopanError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        if target.name.is_empty() || target.name.contains('/') {
            return Err(WopanError::UploadSource {
                reason: "file name must be non-empty and without '/'".into(),
            });
        }
        let key = ChannelKey::wohome(token.expose())
            .map_err(|e| WopanError::TokenTooShort { len: e.len })?;
        let session = self.session(zone_url, &key, &target)?;
        let part_size = self.cfg.upload_part_size as u64;
        let mut reader = PartReader::new(body, target.size);
        let mut retries = 0;
        let mut fid = String::new();
        for index in 1..=session.total_parts {
            let len = part_len(target.size, part_size, session.total_parts, index);
            let data = reader.next_part(len as usize).await?;
            let form = part_form(token, &target, &session, index, &data);
            drop(data);
            let (answer, again) = self.send_part(&session.url, &form, index).await?;
            retries += again;
            if index == session.total_parts {
                fid = answer.data.map(|d| d.fid).unwrap_or_default();
            }
        }
        reader.expect_end().await?;
        if fid.is_empty() {
            return Err(WopanError::malformed(
                UPLOAD_OP,
                "last part's answer has no fid",
            ));
        }
        tracing::debug!(
            parts = session.total_parts,
            bytes = target.size,
            retries,
            "wopan upload finished"
        );
        Ok(Uploaded {
            fid,
            size: target.size,
            parts: session.total_parts,
            retries,
        })
    }

    fn session(
        &self,
        zone_url: &str,
        key: &ChannelKey,
        t: &UploadTarget<'_>,
    ) -> Result<Session, WopanError> {
        let url = reqwest::Url::parse(zone_url.trim_end_matches('/'))
            .and_then(|u| u.join("/openapi/client/upload2C"))
            .map_err(|_| WopanError::Config("upload host is not a URL".into()))?;
        let part_size = self.cfg.upload_part_size as u64;
        let total_parts = part_count(t.size, part_size);
        let info = params::file_info(t.space, t.dir_id, &batch_no(), t.name, t.size);
        let plain = serde_json::to_vec(&info).unwrap_or_default();
        Ok(Session {
            url,
            unique_id: unique_id(),
            file_info: crypto::encrypt(key, &plain),
            total_parts,
        })
    }

    /// Sends one part, retrying it as the module documentation says; the answer and how many
    /// times the part was sent again.
    async fn send_part(
        &self,
        url: &reqwest::Url,
        form: &(String, Bytes),
        index: u64,
    ) -> Result<(UploadAnswer, u64), WopanError> {
        let mut failures = 0u32;
        let mut waited = Duration::ZERO;
        let mut again = 0u64;
        loop {
            let err = match self.post_part(url, form).await {
                Ok(answer) => return Ok((answer, again)),
                Err(e) => e,
            };
            let class = err.outcome_class();
            tracing::debug!(part = index, class = %class, error = %err, "upload part failed");
            if class == OutcomeClass::RateLimited {
                let wait =
                    Duration::from_secs(err.retry_after_s().unwrap_or(DEFAULT_RATE_WAIT_S).max(1));
                if waited + wait > self.cfg.upload_max_wait {
                    return Err(err);
                }
                waited += wait;
                tokio::time::sleep(wait).await;
            } else {
                failures += 1;
                if !part_retryable(&err) || failures >= self.cfg.upload_part_attempts {
                    return Err(err);
                }
                tokio::time::sleep(self.cfg.upload_retry_pause * failures).await;
            }
            again += 1;
        }
    }

    async fn post_part(
        &self,
        url: &reqwest::Url,
        (content_type, body): &(String, Bytes),
    ) -> Result<UploadAnswer, WopanError> {
        let req = self
            .http
            .post(url.clone())
            .timeout(self.cfg.upload_part_timeout)
            .header(CONTENT_TYPE, content_type.as_str())
            .header(ORIGIN, "https://pan.wo.cn")
            .header(REFERER, "https://pan.wo.cn/")
            .header(USER_AGENT, BROWSER_UA)
            .body(body.clone());
        let exchange = async {
            let resp = req.send().await.map_err(|e| net_error(UPLOAD_OP, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(WopanError::Http {
                    op: UPLOAD_OP.to_string(),
                    status: status.as_u16(),
                    retry_after_s: retry_after(&resp),
                });
            }
            let bytes = read_capped(UPLOAD_OP, resp, MAX_ANSWER).await?;
            parse_answer(&bytes)
        };
        match tokio::time::timeout(self.cfg.upload_part_timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(WopanError::Timeout {
                op: UPLOAD_OP.to_string(),
            }),
        }
    }
}

/// How many parts a file of `size` bytes is sent in: `size / part_size` whole parts, at least
/// one; the remainder rides with the last (the SDK's rule, which AList uses against the real
/// host, so the last part holds from `part_size` up to twice that, less one byte).
pub fn part_count(size: u64, part_size: u64) -> u64 {
    (size / part_size).max(1)
}

/// The bytes of part `index` (1-based) of `total`.
pub fn part_len(size: u64, part_size: u64, total: u64, index: u64) -> u64 {
    if index == total {
        size - (total - 1) * part_size
    } else {
        part_size
    }
}

/// A part may be sent again after a transient failure, or after the 400/405 that upload
/// hosts answer now and then.
fn part_retryable(e: &WopanError) -> bool {
    e.outcome_class() == OutcomeClass::Transient
        || matches!(
            e,
            WopanError::Http {
                status: 400 | 405,
                ..
            }
        )
}

/// Reads `upload2C`'s own answer shape; `code` other than `0000` is a business error.
pub fn parse_answer(bytes: &[u8]) -> Result<UploadAnswer, WopanError> {
    let answer: UploadAnswer = serde_json::from_slice(bytes)
        .map_err(|e| WopanError::json(UPLOAD_OP, "upload answer", &e))?;
    if answer.code.is_empty() {
        return Err(WopanError::malformed(
            UPLOAD_OP,
            "upload answer has no code",
        ));
    }
    if answer.code != "0000" {
        return Err(WopanError::api(UPLOAD_OP, &answer.code, &answer.msg));
    }
    Ok(answer)
}

/// The form of one part: its content type and whole body.
fn part_form(
    token: &Secret,
    t: &UploadTarget<'_>,
    s: &Session,
    index: u64,
    data: &[u8],
) -> (String, Bytes) {
    let mut f = FormBuilder::new();
    f.text("uniqueId", &s.unique_id)
        .text("accessToken", token.expose())
        .text("fileName", t.name)
        .text("psToken", "undefined")
        .text("fileSize", &t.size.to_string())
        .text("totalPart", &s.total_parts.to_string())
        .text("partSize", &data.len().to_string())
        .text("partIndex", &index.to_string())
        .text("channel", "wocloud")
        .text("directoryId", t.dir_id)
        .text("fileInfo", &s.file_info);
    let content_type = f.content_type();
    (content_type, f.finish_with_file("file", t.name, data))
}

/// `yyyyMMddHHmmss` in China time (UTC+8), as the web client stamps its batches.
pub fn batch_no() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Milliseconds, `_`, six letters (the SDK's form).
fn unique_id() -> String {
    let mut rng = rand::thread_rng();
    let letters: String = (0..6)
        .map(|_| (b'a' + rng.gen_range(0..26u8)) as char)
        .collect();
    format!("{}_{letters}", now_ms())
}

/// Cuts a byte stream into parts of exact sizes.
struct PartReader<S> {
    stream: S,
    leftover: Bytes,
    declared: u64,
    read: u64,
}

impl<S, E> PartReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    fn new(stream: S, declared: u64) -> Self {
        PartReader {
            stream,
            leftover: Bytes::new(),
            declared,
            read: 0,
        }
    }

    fn short(&self) -> WopanError {
        WopanError::UploadSource {
            reason: format!(
                "body ended after {} of {} declared bytes",
                self.read, self.declared
            ),
        }
    }

    async fn chunk(&mut self) -> Result<Option<Bytes>, WopanError> {
        if !self.leftover.is_empty() {
            return Ok(Some(std::mem::take(&mut self.leftover)));
        }
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(WopanError::UploadSource {
                reason: format!("reading the body failed: {e}"),
            }),
        }
    }

    /// Exactly `len` bytes.
    async fn next_part(&mut self, len: usize) -> Result<BytesMut, WopanError> {
        let mut part = BytesMut::with_capacity(len);
        while part.len() < len {
            let Some(mut chunk) = self.chunk().await? else {
                return Err(self.short());
            };
            let want = len - part.len();
            if chunk.len() > want {
                self.leftover = chunk.split_off(want);
            }
            self.read += chunk.len() as u64;
            part.extend_from_slice(&chunk);
        }
        Ok(part)
    }

    /// The stream must hold nothing more.
    async fn expect_end(&mut self) -> Result<(), WopanError> {
        while let Some(chunk) = self.chunk().await? {
            if !chunk.is_empty() {
                return Err(WopanError::UploadSource {
                    reason: format!("body is longer than the {} declared bytes", self.declared),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    #[tokio::test]
    async fn parts_cut_across_chunks() {
        let mut r = PartReader::new(stream(vec![b"abc", b"defgh", b"", b"ij"]), 10);
        assert_eq!(&r.next_part(4).await.unwrap()[..], b"abcd");
        assert_eq!(&r.next_part(4).await.unwrap()[..], b"efgh");
        assert_eq!(&r.next_part(2).await.unwrap()[..], b"ij");
        r.expect_end().await.unwrap();
    }

    #[tokio::test]
    async fn short_and_long_bodies_are_the_callers_fault() {
        let mut r = PartReader::new(stream(vec![b"abc"]), 5);
        let e = r.next_part(5).await.unwrap_err();
        assert_eq!(e.outcome_class(), OutcomeClass::ClientError);
        assert!(e.to_string().contains("3 of 5"), "{e}");
        let mut r = PartReader::new(stream(vec![b"abcdef"]), 5);
        r.next_part(5).await.unwrap();
        assert!(r.expect_end().await.is_err());
    }

    #[test]
    fn parts_follow_the_sdk() {
        const M: u64 = 8 * 1024 * 1024;
        assert_eq!(part_count(0, M), 1);
        assert_eq!(part_count(M - 1, M), 1);
        assert_eq!(part_count(M, M), 1);
        assert_eq!(part_count(2 * M - 1, M), 1);
        assert_eq!(part_count(20 * 1024 * 1024, M), 2);
        assert_eq!(part_len(20 * 1024 * 1024, M, 2, 1), M);
        assert_eq!(part_len(20 * 1024 * 1024, M, 2, 2), 12 * 1024 * 1024);
        assert_eq!(part_len(5, M, 1, 1), 5);
        for size in [0, 1, M, M + 1, 3 * M + 7] {
            let n = part_count(size, M);
            let sum: u64 = (1..=n).map(|i| part_len(size, M, n, i)).sum();
            assert_eq!(sum, size);
        }
    }

    #[test]
    fn answers() {
        let ok = r#"{"code":"0000","data":{"fid":"73Vc"},"msg":"上传成功"}"#.as_bytes();
        assert_eq!(parse_answer(ok).unwrap().data.unwrap().fid, "73Vc");
        let e = parse_answer(br#"{"code":"9999","msg":"x"}"#).unwrap_err();
        assert!(e.is_token_expired());
        let e = parse_answer(b"<html>").unwrap_err();
        assert_eq!(e.outcome_class(), OutcomeClass::Transient);
        assert!(parse_answer(br#"{"msg":"x"}"#).is_err());
        assert_eq!(batch_no().len(), 14);
        assert!(unique_id().contains('_'));
    }
}
