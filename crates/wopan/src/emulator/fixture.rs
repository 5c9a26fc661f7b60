//! The emulator's data: tokens and the tree of folders and files, from a JSON fixture file or
//! the built-in demo.
//!
//! Format (every field but `name` optional; see also `crates/wopan/README.md`):
//!
//! ```json
//! {
//!   "user":   { "phone": "186****0000", "name": "wo_demo" },
//!   "tokens": [
//!     { "access_token": "…uuid…", "refresh_token": "…uuid…",
//!       "expires_at": "2030-01-01T00:00:00Z",   // or Unix ms, or "ttl_s": 604799 from start
//!       "family_id": 9263097, "user": { "phone": "…", "name": "…" } }
//!   ],
//!   "personal": [
//!     { "name": "BD-another", "children": [ { "name": "01.mp4", "size": 5242880 } ] },
//!     { "name": "Photos", "generate": { "count": 250, "prefix": "IMG_", "suffix": ".jpg", "size": 2048 } }
//!   ],
//!   "families": [ { "id": 9263097, "name": "演示家庭", "files": [ … same entries … ] } ]
//! }
//! ```
//!
//! An entry is a folder when it has `children` or `generate`, otherwise a file of `size`
//! bytes. `create_time` (`yyyyMMddHHmmss`) and `file_type` ("1" image … "5" other) default
//! sensibly; ids and fids are derived from the path, so they are stable across restarts.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The account a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureUser {
    /// Masked phone: AppQueryUser `userId` and the `creator` of entries.
    pub phone: String,
    /// AppQueryUser `userName`.
    pub name: String,
}

impl Default for FixtureUser {
    fn default() -> Self {
        FixtureUser {
            phone: "186****0000".into(),
            name: "wo_demo".into(),
        }
    }
}

/// When a token expires: an RFC 3339 time or Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpiresAt {
    Millis(u64),
    Rfc3339(String),
}

/// One token the emulator knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureToken {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Absolute expiry; wins over `ttl_s`.
    #[serde(default)]
    pub expires_at: Option<ExpiresAt>,
    /// Lifetime from emulator start, seconds. Neither field: never expires.
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// The user's (default) family; family calls for other ids get 120002.
    #[serde(default)]
    pub family_id: Option<u64>,
    /// Defaults to the fixture's `user`.
    #[serde(default)]
    pub user: Option<FixtureUser>,
}

/// Files generated into a folder (for listings of many pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub count: u32,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
    #[serde(default)]
    pub size: u64,
}

/// A folder or a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureEntry {
    pub name: String,
    /// The entry's id; derived from the path when absent. Lets a fixture hold the ids of
    /// captured requests so they can be replayed verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<FixtureEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
}

impl FixtureEntry {
    pub fn is_folder(&self) -> bool {
        self.children.is_some() || self.generate.is_some()
    }

    pub fn file(name: &str, size: u64) -> Self {
        FixtureEntry {
            name: name.into(),
            id: None,
            size: Some(size),
            children: None,
            generate: None,
            create_time: None,
            file_type: None,
        }
    }

    pub fn folder(name: &str, children: Vec<FixtureEntry>) -> Self {
        FixtureEntry {
            name: name.into(),
            id: None,
            size: None,
            children: Some(children),
            generate: None,
            create_time: None,
            file_type: None,
        }
    }
}

/// A family space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFamily {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub files: Vec<FixtureEntry>,
}

/// A whole fixture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub user: Option<FixtureUser>,
    #[serde(default)]
    pub tokens: Vec<FixtureToken>,
    #[serde(default)]
    pub personal: Vec<FixtureEntry>,
    #[serde(default)]
    pub families: Vec<FixtureFamily>,
}

/// Why a fixture was refused.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("fixture {path} is not valid: {reason}")]
    Parse { path: String, reason: String },
    #[error("fixture is not valid: {0}")]
    Invalid(String),
}

/// Most entries a fixture may describe (generated ones included).
pub const MAX_ENTRIES: usize = 200_000;

impl Fixture {
    /// Reads and validates a JSON fixture file.
    pub fn from_file(path: &Path) -> Result<Fixture, FixtureError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: shown.clone(),
            source,
        })?;
        let fixture: Fixture = serde_json::from_str(&text).map_err(|e| FixtureError::Parse {
            path: shown,
            reason: e.to_string(),
        })?;
        fixture.validate()?;
        Ok(fixture)
    }

    /// Checks what the types cannot: unique, usable tokens; sane names; bounded size.
    pub fn validate(&self) -> Result<(), FixtureError> {
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.access_token.len() < 16 {
                return Err(FixtureError::Invalid(format!(
                    "tokens[{i}]: access_token must have at least 16 characters"
                )));
            }
            if !seen.insert(t.access_token.as_str()) {
                return Err(FixtureError::Invalid(format!(
                    "tokens[{i}]: duplicate access_token"
                )));
            }
            if let Some(r) = &t.refresh_token {
                if r.is_empty() || !seen.insert(r.as_str()) {
                    return Err(FixtureError::Invalid(format!(
                        "tokens[{i}]: refresh_token empty or not unique"
                    )));
                }
            }
            if let Some(ExpiresAt::Rfc3339(s)) = &t.expires_at {
                chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                    FixtureError::Invalid(format!("tokens[{i}]: expires_at is not RFC 3339"))
                })?;
            }
        }
        let mut count = 0usize;
        check_entries(&self.personal, "personal", &mut count)?;
        check_ids(
            &self.personal,
            "personal",
            &mut std::collections::HashSet::new(),
        )?;
        for f in &self.families {
            check_ids(
                &f.files,
                &format!("family {}", f.id),
                &mut std::collections::HashSet::new(),
            )?;
        }
        let mut families = std::collections::HashSet::new();
        for f in &self.families {
            if !families.insert(f.id) {
                return Err(FixtureError::Invalid(format!(
                    "family {} listed twice",
                    f.id
                )));
            }
            check_entries(&f.files, &format!("family {}", f.id), &mut count)?;
        }
        Ok(())
    }
}

/// Explicit ids: 1–64 characters of `[0-9A-Za-z]`, unique within a space, never "0".
fn check_ids<'a>(
    entries: &'a [FixtureEntry],
    at: &str,
    seen: &mut std::collections::HashSet<&'a str>,
) -> Result<(), FixtureError> {
    for e in entries {
        if let Some(id) = &e.id {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id != "0"
                && id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok || !seen.insert(id) {
                return Err(FixtureError::Invalid(format!(
                    "{at}/{}: id must be 1–64 letters or digits, not \"0\", unique in its space",
                    e.name
                )));
            }
        }
        check_ids(e.children.as_deref().unwrap_or_default(), at, seen)?;
    }
    Ok(())
}

fn check_entries(
    entries: &[FixtureEntry],
    at: &str,
    count: &mut usize,
) -> Result<(), FixtureError> {
    for e in entries {
        if e.name.is_empty() || e.name.contains('/') || e.name.len() > 255 {
            return Err(FixtureError::Invalid(format!(
                "{at}: entry name {:?} must be 1–255 bytes without '/'",
                e.name
            )));
        }
        if e.size.is_some() && e.is_folder() {
            return Err(FixtureError::Invalid(format!(
                "{at}/{}: a folder has no size",
                e.name
            )));
        }
        *count += 1;
        if let Some(g) = &e.generate {
            *count += g.count as usize;
        }
        if *count > MAX_ENTRIES {
            return Err(FixtureError::Invalid(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        if let Some(children) = &e.children {
            check_entries(children, &format!("{at}/{}", e.name), count)?;
        }
    }
    Ok(())
}
