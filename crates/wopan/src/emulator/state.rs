//! The emulator's mutable state: tokens, fault settings, download links and call counts.
//!
//! One struct behind one `parking_lot::Mutex`, locked briefly and never across an `.await`
//! (handlers copy what they need out, then sleep or stream). The tree is immutable and lives
//! beside it, outside the lock.

use super::fixture::{ExpiresAt, Fixture, FixtureUser};
use super::tree::SpaceKey;
use super::EmulatorConfig;
use crate::client::now_ms;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokenlb_core::{secret::mask, Millis};

/// A per-token fault, set by fixture or control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenFault {
    /// Behaves normally (still expires at its `expires_at`).
    #[default]
    Ok,
    /// Answers the invalid-token code (9999 or 1001).
    Expired,
    /// Answers HTTP 429 (or 503) with `Retry-After`.
    RateLimited,
    /// Answers HTTP 509 (bandwidth / quota exceeded).
    Quota,
    /// Answers HTTP 500 (a backend failure tied to this token).
    Error,
}

/// The fault applied to downloads regardless of the link's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DownloadFault {
    #[default]
    Ok,
    RateLimited,
    Quota,
}

/// Settings that `POST /_emulator/control` changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub down: bool,
    pub latency_ms: u64,
    pub error_rate: f64,
    pub invalid_code: u32,
    pub link_ttl_s: u64,
    pub token_ttl_s: u64,
    pub rotate_refresh: bool,
    pub rate_limit_status: u16,
    pub retry_after_s: u64,
    pub downloads: DownloadFault,
}

impl Settings {
    pub fn from_config(c: &EmulatorConfig) -> Settings {
        Settings {
            down: false,
            latency_ms: 0,
            error_rate: 0.0,
            invalid_code: c.invalid_code,
            link_ttl_s: c.link_ttl_s,
            token_ttl_s: c.token_ttl_s,
            rotate_refresh: c.rotate_refresh,
            rate_limit_status: 429,
            retry_after_s: 30,
            downloads: DownloadFault::Ok,
        }
    }
}

/// A token the emulator knows.
#[derive(Clone, Debug)]
pub(crate) struct TokenRec {
    pub refresh: Option<String>,
    pub expires_at: Option<Millis>,
    pub family_id: Option<u64>,
    pub user: FixtureUser,
    pub fault: TokenFault,
}

/// What a token check found.
#[derive(Clone, Debug)]
pub(crate) enum TokenCheck {
    Valid(TokenRec),
    /// Unknown, expired, or fault `expired`.
    Invalid,
    RateLimited,
    Quota,
    /// Fault `error`: HTTP 500.
    Error,
}

/// A handed-out download link.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub space: SpaceKey,
    pub fid: String,
    pub expires: Instant,
    /// The access token that asked for it (its fault applies to the download).
    pub token: String,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub tokens: HashMap<String, TokenRec>,
    /// refresh token → access token
    pub refresh: HashMap<String, String>,
    pub links: HashMap<String, Link>,
    pub calls: BTreeMap<String, u64>,
    pub rng: StdRng,
    /// Uploads whose parts are still arriving, by `uniqueId`.
    pub uploads: HashMap<String, super::upload::Pending>,
    /// Bytes of finished uploads held in memory.
    pub stored_upload_bytes: u64,
    /// Finished uploads by `uniqueId`: (token, fid), so a part sent again after its answer
    /// was lost gets the same answer.
    pub finished_uploads: HashMap<String, (String, String)>,
}

/// Links kept before expired ones are swept.
const LINK_SWEEP_AT: usize = 10_000;

impl Inner {
    pub fn new(config: &EmulatorConfig, fixture: &Fixture) -> Inner {
        let start = now_ms();
        let default_user = fixture.user.clone().unwrap_or_default();
        let mut tokens = HashMap::new();
        let mut refresh = HashMap::new();
        for t in &fixture.tokens {
            let expires_at = match &t.expires_at {
                Some(ExpiresAt::Millis(ms)) => Some(*ms),
                Some(ExpiresAt::Rfc3339(s)) => chrono::DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|d| d.timestamp_millis().max(0) as u64),
                None => t
                    .ttl_s
                    .map(|s| start.saturating_add(s.saturating_mul(1000))),
            };
            if let Some(r) = &t.refresh_token {
                refresh.insert(r.clone(), t.access_token.clone());
            }
            tokens.insert(
                t.access_token.clone(),
                TokenRec {
                    refresh: t.refresh_token.clone(),
                    expires_at,
                    family_id: t.family_id,
                    user: t.user.clone().unwrap_or_else(|| default_user.clone()),
                    fault: TokenFault::Ok,
                },
            );
        }
        Inner {
            settings: Settings::from_config(config),
            tokens,
            refresh,
            links: HashMap::new(),
            calls: BTreeMap::new(),
            rng: StdRng::from_entropy(),
            uploads: HashMap::new(),
            stored_upload_bytes: 0,
            finished_uploads: HashMap::new(),
        }
    }

    pub fn count(&mut self, op: &str) {
        *self.calls.entry(op.to_string()).or_insert(0) += 1;
    }

    pub fn check_token(&self, access: &str) -> TokenCheck {
        let Some(rec) = self.tokens.get(access) else {
            return TokenCheck::Invalid;
        };
        if rec.expires_at.is_some_and(|e| e <= now_ms()) {
            return TokenCheck::Invalid;
        }
        match rec.fault {
            TokenFault::Ok => TokenCheck::Valid(rec.clone()),
            TokenFault::Expired => TokenCheck::Invalid,
            TokenFault::RateLimited => TokenCheck::RateLimited,
            TokenFault::Quota => TokenCheck::Quota,
            TokenFault::Error => TokenCheck::Error,
        }
    }

    /// Exchanges a refresh token for a new pair; the old access token stops working.
    pub fn refresh(&mut self, refresh_token: &str) -> Option<(String, String, u64)> {
        let old_access = self.refresh.get(refresh_token)?.clone();
        let mut rec = self.tokens.remove(&old_access)?;
        let new_access = uuid::Uuid::new_v4().to_string();
        let new_refresh = if self.settings.rotate_refresh {
            self.refresh.remove(refresh_token);
            uuid::Uuid::new_v4().to_string()
        } else {
            refresh_token.to_string()
        };
        let ttl = self.settings.token_ttl_s;
        rec.refresh = Some(new_refresh.clone());
        rec.expires_at = Some(now_ms().saturating_add(ttl.saturating_mul(1000)));
        rec.fault = TokenFault::Ok;
        self.refresh.insert(new_refresh.clone(), new_access.clone());
        self.tokens.insert(new_access.clone(), rec);
        Some((new_access, new_refresh, ttl))
    }

    /// Registers a link and returns its opaque id.
    pub fn new_link(&mut self, space: SpaceKey, fid: &str, token: &str) -> String {
        if self.links.len() >= LINK_SWEEP_AT {
            let now = Instant::now();
            self.links.retain(|_, l| l.expires > now);
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let id: String = (0..48)
            .map(|_| ALPHABET[self.rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        let ttl = Duration::from_secs(self.settings.link_ttl_s);
        self.links.insert(
            id.clone(),
            Link {
                space,
                fid: fid.to_string(),
                expires: Instant::now() + ttl,
                token: token.to_string(),
            },
        );
        id
    }

    /// Should this call fail with an injected 500?
    pub fn roll_error(&mut self) -> bool {
        let p = self.settings.error_rate;
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    /// The state report: settings, masked tokens, counts.
    pub fn report(&self) -> serde_json::Value {
        let now = now_ms();
        let mut tokens: Vec<serde_json::Value> = self
            .tokens
            .iter()
            .map(|(access, r)| {
                serde_json::json!({
                    "access_token": mask(access),
                    "refresh_token": r.refresh.as_deref().map(mask),
                    "fault": r.fault,
                    "expires_at": r.expires_at,
                    "expired": r.expires_at.is_some_and(|e| e <= now),
                    "family_id": r.family_id,
                    "user": r.user.phone,
                })
            })
            .collect();
        tokens.sort_by(|a, b| a["access_token"].as_str().cmp(&b["access_token"].as_str()));
        let live = Instant::now();
        serde_json::json!({
            "settings": self.settings,
            "tokens": tokens,
            "calls": self.calls,
            "links_active": self.links.values().filter(|l| l.expires > live).count(),
            "uploads_pending": self.uploads.len(),
            "uploaded_bytes": self.stored_upload_bytes,
        })
    }
}
