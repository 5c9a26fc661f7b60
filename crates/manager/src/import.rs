//! Token import: the seed's `tokens.json` or a plain list, one token per line.
//!
//! Shared by the start-up import of `--tokens-file` and `POST /api/tokens/import` (which the
//! CLI's `tokenlb token import` calls). Parsing is all-or-nothing only for a malformed JSON
//! document (an error naming line and column); a bad entry (empty token, control characters,
//! absurd length) is reported by its line or entry number and skipped. Applying an import is
//! one store transaction (`merge_tokens`, merge by token value) followed by inserting the new
//! tokens into their pools, so 100,000 tokens cost one commit, not 100,000.

use crate::service::now_ms;
use crate::validate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tokenlb_core::{Counters, Limits, Millis, Secret, TokenId, TokenState};
use tokenlb_store::StoredToken;

/// One token to import.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// Line (text) or 1-based entry number (JSON), for messages.
    pub at: Position,
    pub secret: Secret,
    pub name: Option<String>,
    pub active: bool,
    pub pool: Option<String>,
    pub weight: Option<u32>,
    pub expires_at: Option<Millis>,
    pub refresh: Option<Secret>,
}

/// Where an item came from in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Line(usize),
    Entry(usize),
}

/// A skipped item and why.
#[derive(Debug, Clone, Serialize)]
pub struct ItemError {
    #[serde(flatten)]
    pub at: Position,
    pub message: String,
}

/// The parsed input.
#[derive(Debug, Default)]
pub struct Parsed {
    pub items: Vec<ImportItem>,
    pub errors: Vec<ItemError>,
}

/// A document that is not valid JSON (or not the seed's shape).
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct MalformedJson {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct Document {
    tokens: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Entry {
    token: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Parses tokens.json (when the text starts with `{`) or a list of tokens, one per line
/// (blank lines and lines starting with `#` are skipped).
pub fn parse(text: &str) -> Result<Parsed, MalformedJson> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        Ok(parse_lines(text))
    }
}

/// serde_json's reason without its own " at line L column C" (callers name the position
/// once, in their own words).
pub fn json_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_string(),
        None => message,
    }
}

fn parse_json(text: &str) -> Result<Parsed, MalformedJson> {
    let doc: Document = serde_json::from_str(text).map_err(|e| MalformedJson {
        line: e.line(),
        column: e.column(),
        message: json_reason(&e),
    })?;
    let mut parsed = Parsed::default();
    for (i, value) in doc.tokens.into_iter().enumerate() {
        let at = Position::Entry(i + 1);
        match entry_item(at, value) {
            Ok(item) => parsed.items.push(item),
            Err(message) => parsed.errors.push(ItemError { at, message }),
        }
    }
    Ok(parsed)
}

fn entry_item(at: Position, value: serde_json::Value) -> Result<ImportItem, String> {
    // Checked before serde, whose messages quote the value they refused: a token given as a
    // number would be echoed whole into the answer and the log.
    let Some(fields) = value.as_object() else {
        return Err("each entry must be an object with a \"token\" string".into());
    };
    for key in ["token", "refresh_token"] {
        match fields.get(key) {
            Some(v) if !(v.is_string() || key == "refresh_token" && v.is_null()) => {
                return Err(format!("{key} must be a string"));
            }
            _ => {}
        }
    }
    let e: Entry = serde_json::from_value(value).map_err(|e| e.to_string())?;
    validate::secret(&e.token)?;
    if let Some(n) = &e.name {
        validate::name(n)?;
    }
    if let Some(p) = &e.pool {
        validate::pool_name(p)?;
    }
    if let Some(w) = e.weight {
        validate::weight(w)?;
    }
    let expires_at = e
        .expires_at
        .as_deref()
        .map(crate::views::parse_time)
        .transpose()?;
    let refresh = match e.refresh_token {
        Some(r) => {
            validate::secret(&r).map_err(|m| format!("refresh_token: {m}"))?;
            Some(Secret::new(r))
        }
        None => None,
    };
    Ok(ImportItem {
        at,
        secret: Secret::new(e.token),
        name: e.name,
        active: e.is_active.unwrap_or(true),
        pool: e.pool,
        weight: e.weight,
        expires_at,
        refresh,
    })
}

fn parse_lines(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        let at = Position::Line(i + 1);
        match validate::secret(token) {
            Ok(()) => parsed.items.push(ImportItem {
                at,
                secret: Secret::new(token),
                name: None,
                active: true,
                pool: None,
                weight: None,
                expires_at: None,
                refresh: None,
            }),
            Err(message) => parsed.errors.push(ItemError {
                at,
                message: message.into(),
            }),
        }
    }
    parsed
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// Tokens added (with `dry_run`: that would be added).
    pub added: usize,
    pub skipped: usize,
    pub errors: Vec<ItemError>,
    /// Nothing was written: the counts say what the import would do.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Turns items into store records with fresh ids; drops repeats inside the input (counted).
pub(crate) fn build_records(
    items: Vec<ImportItem>,
    default_pool: &str,
) -> (Vec<StoredToken>, usize) {
    let now = now_ms();
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    let mut duplicates = 0;
    let mut rng = rand::thread_rng();
    for item in items {
        if !seen.insert(item.secret.expose().to_string()) {
            duplicates += 1;
            continue;
        }
        let id = TokenId::random(&mut rng);
        let (state, reason) = if item.active {
            (TokenState::Active, None)
        } else {
            (
                TokenState::Disabled,
                Some("imported as inactive".to_string()),
            )
        };
        records.push(StoredToken {
            name: item.name.unwrap_or_else(|| id.to_string()),
            id,
            pool: item.pool.unwrap_or_else(|| default_pool.to_string()),
            secret: item.secret,
            refresh_secret: item.refresh,
            weight: item.weight.unwrap_or(validate::DEFAULT_WEIGHT),
            expires_at: item.expires_at,
            limits: Limits::default(),
            state,
            state_reason: reason,
            state_until: None,
            created_at: now,
            counters: Counters::default(),
        });
    }
    (records, duplicates)
}

/// Tokens as a tokens.json document (the seed's format plus pool, weight, expiry and refresh
/// token), which [`parse`] reads back.
pub fn to_json(tokens: &[StoredToken]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| {
            let mut e = serde_json::json!({
                "token": t.secret.expose(),
                "name": t.name,
                "is_active": t.state != TokenState::Disabled,
                "pool": t.pool,
                "weight": t.weight,
            });
            if let Some(at) = t.expires_at {
                e["expires_at"] = crate::views::time(at);
            }
            if let Some(r) = &t.refresh_secret {
                e["refresh_token"] = serde_json::Value::String(r.expose().to_string());
            }
            e
        })
        .collect();
    serde_json::json!({ "tokens": entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_json_and_lines() {
        let p = parse(r#"{"tokens":[{"token":"aaaaaaaaaaaaaaaa","name":"主Token","is_active":true},{"token":""}]}"#).unwrap();
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].name.as_deref(), Some("主Token"));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].at, Position::Entry(2));
        let p = parse("tok-one-123456\n\n# comment\ntok\u{7}bad\n  tok-two-123456  \n").unwrap();
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.items[1].secret.expose(), "tok-two-123456");
        assert_eq!(p.errors[0].at, Position::Line(4));
    }

    /// A token that is not a string is refused without its value (serde would quote it).
    #[test]
    fn a_numeric_token_is_refused_without_echoing_it() {
        let p = parse(r#"{"tokens":[{"token":98765432109876543},{"token":"ok-token-0123456789","refresh_token":1234567890123},98765432109876543]}"#)
            .unwrap();
        assert!(p.items.is_empty());
        let messages: Vec<&str> = p.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "token must be a string",
                "refresh_token must be a string",
                "each entry must be an object with a \"token\" string"
            ]
        );
        for m in messages {
            assert!(!m.contains("98765") && !m.contains("1234567890"), "{m}");
        }
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = parse("{\"tokens\": [\n  {\"token\": \"x\",}\n]}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.column > 1);
        // The position is said once (issue 14: "line 3, column 36 … at line 3 column 36").
        assert_eq!(e.to_string().matches("line").count(), 1, "{e}");
    }
}
