//! Token administration: add, remove, patch, import (DESIGN §3).
//!
//! Every change is durable in the store before it is applied to the pool and answered; a
//! patch the store refuses is undone in the pool. Input is validated here, so every door
//! (HTTP, `tokens.json`, the launcher's demo) refuses the same things the same way.

use super::events::admin_event;
use super::registry::{PoolHandle, TokenMeta};
use super::{ServiceError, ServiceResult, TokenService};
use crate::import::{self, ImportSummary, Parsed};
use crate::service::now_ms;
use crate::validate;
use crate::views;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokenlb_core::{
    Counters, Limits, Secret, TokenId, TokenPatch, TokenSpec, TokenState, TokenView,
};
use tokenlb_store::{StoredToken, TokenUpdate};

/// A token to add (`POST /api/token/add`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub token: String,
    pub name: Option<String>,
    pub pool: Option<String>,
    pub weight: Option<u32>,
    pub expires_at: Option<String>,
    pub refresh_token: Option<String>,
    pub limits: Option<Limits>,
    /// The seed's tokens.json field; `false` adds the token disabled.
    pub is_active: Option<bool>,
    /// Who adds it, when not the admin (the route sets it), for the event.
    #[serde(skip)]
    pub by: Option<String>,
}

/// "the admin" for `admin`, else the name as given ("a loopback service").
fn who(by: &str) -> &str {
    if by == "admin" {
        "the admin"
    } else {
        by
    }
}

/// A token named by value or by id (`remove`, the seed's report form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    pub token: Option<String>,
    pub id: Option<TokenId>,
    /// Who removes it, when not the admin (the route sets it), for the event.
    #[serde(skip)]
    pub by: Option<String>,
}

/// `null` → `Some(None)`, absent → `None` (via `#[serde(default)]`).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What a patch changes (`PATCH /api/tokens/{id}`); absent fields stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenChanges {
    /// Who asks, when not the admin (not part of the API: the launcher sets it), for the
    /// event: "enabled by the launcher".
    #[serde(skip)]
    pub by: Option<String>,
    pub name: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<String>>,
    pub limits: Option<Limits>,
}

impl NewToken {
    /// Checks every field; the store record to insert.
    fn into_record(self) -> ServiceResult<StoredToken> {
        validate::secret(&self.token)?;
        if let Some(n) = &self.name {
            validate::name(n)?;
        }
        let pool = self
            .pool
            .unwrap_or_else(|| crate::config::DEFAULT_POOL.to_string());
        validate::pool_name(&pool)?;
        let weight = self.weight.unwrap_or(validate::DEFAULT_WEIGHT);
        validate::weight(weight)?;
        let expires_at = self
            .expires_at
            .as_deref()
            .map(views::parse_time)
            .transpose()?;
        if let Some(l) = &self.limits {
            validate::limits(l)?;
        }
        if let Some(r) = &self.refresh_token {
            validate::secret(r)
                .map_err(|m| ServiceError::Invalid(format!("refresh_token: {m}")))?;
        }
        let id = TokenId::random(&mut rand::thread_rng());
        let (state, state_reason) = match self.is_active {
            Some(false) => (TokenState::Disabled, Some("added as inactive".to_string())),
            _ => (TokenState::Active, None),
        };
        Ok(StoredToken {
            name: self.name.unwrap_or_else(|| id.to_string()),
            id,
            pool,
            secret: Secret::new(self.token),
            refresh_secret: self.refresh_token.map(Secret::new),
            weight,
            expires_at,
            limits: self.limits.unwrap_or_default(),
            state,
            state_reason,
            state_until: None,
            created_at: now_ms(),
            counters: Counters::default(),
        })
    }
}

impl TokenChanges {
    /// Checks every field; the core's patch.
    fn to_patch(&self) -> ServiceResult<TokenPatch> {
        if let Some(n) = &self.name {
            validate::name(n)?;
        }
        if let Some(w) = self.weight {
            validate::weight(w)?;
        }
        let expires_at = match &self.expires_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => Some(Some(views::parse_time(t)?)),
        };
        Ok(TokenPatch {
            name: self.name.clone(),
            weight: self.weight,
            expires_at,
            limits: self.limits.clone(),
            enabled: self.enabled,
            by: self.by.clone(),
        })
    }
}

impl TokenService {
    /// Adds one token: stored first, then pooled. Returns its pool and view.
    pub async fn add(&self, new: NewToken) -> ServiceResult<(Arc<PoolHandle>, TokenView)> {
        let by = new.by.clone().unwrap_or_else(|| "admin".to_string());
        let record = new.into_record()?;
        let handle = self.pool_or_create(&record.pool)?;
        let (id, name) = (record.id.clone(), record.name.clone());
        self.store()
            .insert_tokens(std::slice::from_ref(&record))
            .await?;
        self.insert_many(vec![record])?;
        tracing::info!(token = %id, pool = %handle.name, "token added: {name} ({id})");
        let event = admin_event(
            "added",
            &id,
            &name,
            &handle.name,
            format!("added by {}", who(&by)),
        );
        let event = super::events::with_param(event, "by", &by);
        self.record_admin(event);
        let view = handle
            .view(&id)
            .ok_or_else(|| ServiceError::internal("token vanished after add"))?;
        Ok((handle, view))
    }

    /// Resolves `{"token"}` or `{"id"}` to a known token id.
    pub async fn resolve(&self, by: &TokenRef) -> ServiceResult<TokenId> {
        let id = match (&by.id, &by.token) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(token)) => {
                self.store()
                    .find_by_secret(&Secret::new(token.clone()))
                    .await?
            }
            (None, None) => return Err(ServiceError::invalid("give \"token\" or \"id\"")),
        };
        id.filter(|id| self.token_meta(id).is_some())
            .ok_or(ServiceError::UnknownToken(None))
    }

    /// Removes a token: from the store first, then from its pool. Returns its id and name.
    pub async fn remove(&self, by: &TokenRef) -> ServiceResult<(TokenId, String)> {
        let id = self.resolve(by).await?;
        let handle = self
            .token_pool(&id)
            .ok_or(ServiceError::UnknownToken(None))?;
        if !self.store().delete_token(&id).await? {
            return Err(ServiceError::UnknownToken(None));
        }
        let name = self
            .forget(&handle, &id)
            .map(|v| v.name)
            .unwrap_or_default();
        tracing::info!(token = %id, "token removed: {name} ({id})");
        let event = admin_event(
            "removed",
            &id,
            &name,
            &handle.name,
            format!("removed by {}", who(by.by.as_deref().unwrap_or("admin"))),
        );
        let event = super::events::with_param(event, "by", by.by.as_deref().unwrap_or("admin"));
        self.record_admin(event);
        Ok((id, name))
    }

    /// Changes a token's settings (and with `enabled`, its state); durable before it
    /// answers, undone in the pool when the store refuses.
    pub async fn patch(
        &self,
        id: &TokenId,
        changes: &TokenChanges,
    ) -> ServiceResult<(Arc<PoolHandle>, TokenView)> {
        let unknown = || ServiceError::UnknownToken(Some(id.clone()));
        let handle = self.token_pool(id).ok_or_else(unknown)?;
        let patch = changes.to_patch()?;
        let expires_at = patch.expires_at;
        let writes = self.state_writes().await;
        let ((old, new), events) = self.change(&handle, |pool| {
            let old = pool.get(id).ok_or_else(unknown)?;
            let changes = pool.patch(id, patch, now_ms()).map_err(|e| match e {
                tokenlb_core::PoolError::UnknownToken(_) => unknown(),
                tokenlb_core::PoolError::Invalid(m) => ServiceError::Invalid(m),
                other => ServiceError::Invalid(other.to_string()),
            })?;
            Ok::<_, ServiceError>(((old, pool.get(id)), changes))
        })?;
        let new = new.ok_or_else(unknown)?;
        let update = TokenUpdate {
            name: changes.name.clone(),
            weight: changes.weight,
            expires_at,
            limits: changes.limits.clone(),
            state: Some((new.state, new.state_reason.clone(), new.state_until)),
            ..TokenUpdate::default()
        };
        if let Err(e) = self.store().update_token(id, &update).await {
            let undo = TokenPatch {
                name: Some(old.name.clone()),
                weight: Some(old.weight),
                expires_at: Some(old.expires_at),
                limits: Some(old.limits.clone()),
                enabled: None,
                by: None,
            };
            let _ = handle.lock().patch(id, undo, now_ms());
            return Err(e.into());
        }
        drop(writes);
        let by = changes.by.as_deref().unwrap_or("the admin");
        tracing::info!("token {} ({id}) changed by {by}", new.name);
        let event = admin_event(
            "patched",
            id,
            &new.name,
            &handle.name,
            format!("changed by {by}"),
        );
        let event = super::events::with_param(event, "by", by);
        self.record_admin(event);
        if !self.record(&handle, events) {
            // A new weight or limit may make the token eligible for a waiting caller.
            self.wake(&handle);
        }
        Ok((handle, new))
    }

    /// An import as uploaded: UTF-8 text, parsed off the async threads (megabytes of JSON
    /// are CPU work), then [`TokenService::import`]ed.
    pub async fn import_bytes(
        &self,
        body: bytes::Bytes,
        default_pool: &str,
        dry_run: bool,
    ) -> ServiceResult<ImportSummary> {
        validate::pool_name(default_pool)?;
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ServiceError::invalid("the import must be UTF-8 text"))?;
        let parsed = tokio::task::spawn_blocking(move || import::parse(&text))
            .await
            .map_err(ServiceError::internal)?
            .map_err(|e| ServiceError::MalformedImport(format!("tokens.json: {e}")))?;
        self.import_with(parsed, default_pool, dry_run).await
    }

    /// Stores the new tokens of an import in one transaction and puts them into their
    /// pools; tokens already present are skipped (merge by value).
    pub async fn import(&self, parsed: Parsed, default_pool: &str) -> ServiceResult<ImportSummary> {
        self.import_with(parsed, default_pool, false).await
    }

    /// [`TokenService::import`]; with `dry_run` nothing is written and the summary says what
    /// would happen. Each item must pass its pool's [`validate::TokenRules`].
    pub async fn import_with(
        &self,
        parsed: Parsed,
        default_pool: &str,
        dry_run: bool,
    ) -> ServiceResult<ImportSummary> {
        validate::pool_name(default_pool)?;
        let mut summary = ImportSummary {
            errors: parsed.errors,
            dry_run,
            ..ImportSummary::default()
        };
        let config = self.config();
        let mut items = Vec::with_capacity(parsed.items.len());
        for item in parsed.items {
            let pool = item.pool.as_deref().unwrap_or(default_pool);
            let rules = validate::TokenRules::for_health(config.health_of(pool).kind);
            match rules.check(item.secret.expose()) {
                Ok(()) => items.push(item),
                Err(message) => summary.errors.push(import::ItemError {
                    at: item.at,
                    message,
                }),
            }
        }
        summary.errors.sort_by_key(|e| match e.at {
            import::Position::Line(n) | import::Position::Entry(n) => n,
        });
        let (records, duplicates) = import::build_records(items, default_pool);
        summary.skipped += duplicates;
        if records.is_empty() {
            return Ok(summary);
        }
        if dry_run {
            let known = self.known_secrets();
            let (old, new): (Vec<_>, Vec<_>) = records
                .iter()
                .partition(|r| known.contains(r.secret.expose()));
            summary.skipped += old.len();
            summary.added = new.len();
            return Ok(summary);
        }
        let skipped: std::collections::HashSet<TokenId> = self
            .store()
            .merge_tokens(&records)
            .await?
            .into_iter()
            .collect();
        summary.skipped += skipped.len();
        let fresh: Vec<StoredToken> = records
            .into_iter()
            .filter(|r| !skipped.contains(&r.id))
            .collect();
        summary.added = fresh.len();
        self.insert_many(fresh)?;
        if summary.added > 0 {
            self.coordinator().publish_resync();
        }
        Ok(summary)
    }

    /// Every secret the pools hold (a dry run's "already there"; cluster peers' tokens are
    /// in the pools too).
    fn known_secrets(&self) -> std::collections::HashSet<String> {
        let mut known = std::collections::HashSet::new();
        for handle in self.pools() {
            for v in handle.views() {
                if let Some(secret) = handle.secret(&v.id) {
                    known.insert(secret.expose().to_string());
                }
            }
        }
        known
    }

    /// Every token in the seed's tokens.json format, secrets included (the only way out for
    /// a full secret: an admin's download).
    pub async fn export(&self) -> ServiceResult<serde_json::Value> {
        let tokens = self.store().load_tokens().await?;
        let document = import::to_json(&tokens);
        tracing::info!("exported {} tokens", tokens.len());
        Ok(document)
    }

    /// Puts stored tokens into their pools (start-up load, import, a peer's additions): one
    /// lock per chunk of a pool, not per token.
    pub fn insert_many(&self, tokens: Vec<StoredToken>) -> ServiceResult<()> {
        let mut by_pool: BTreeMap<String, Vec<StoredToken>> = BTreeMap::new();
        for t in tokens {
            by_pool.entry(t.pool.clone()).or_default().push(t);
        }
        let now = now_ms();
        for (pool, tokens) in by_pool {
            let handle = self.pool_or_create(&pool)?;
            let mut metas = Vec::with_capacity(tokens.len());
            let mut tokens = tokens.into_iter().peekable();
            while tokens.peek().is_some() {
                // Chunks keep each lock short, so leases go on during a big import.
                let mut pool = handle.lock();
                for t in tokens.by_ref().take(1024) {
                    let meta = TokenMeta {
                        pool: handle.index,
                        created_at: t.created_at,
                        has_refresh: t.refresh_secret.is_some(),
                    };
                    let id = t.id.clone();
                    pool.insert(spec_of(t), now)
                        .map_err(|e| ServiceError::internal(format!("pool insert: {e}")))?;
                    metas.push((id, meta));
                }
            }
            self.0.registry.set_token_metas(metas);
            self.wake(&handle);
        }
        Ok(())
    }
}

fn spec_of(t: StoredToken) -> TokenSpec {
    TokenSpec {
        id: t.id,
        name: t.name,
        secret: t.secret,
        weight: t.weight,
        expires_at: t.expires_at,
        limits: t.limits,
        state: t.state,
        state_reason: t.state_reason,
        state_until: t.state_until,
        counters: t.counters,
    }
}
