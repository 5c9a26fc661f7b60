//! [`Store`] for [`SqliteStore`]: each method delegates to the module that implements it
//! (`tokens` for token rows and keys, `records` for stats, events, minutes and pools).

use super::SqliteStore;
use crate::crypto::Cipher;
use crate::{
    EventQuery, EventRecord, MinuteQuery, StatsBatch, Store, StoreResult, StoredPool, StoredToken,
    TokenUpdate,
};
use async_trait::async_trait;
use tokenlb_core::{Millis, Secret, TokenId};

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn load_tokens(&self) -> StoreResult<Vec<StoredToken>> {
        self.load_tokens_q().await
    }

    async fn insert_tokens(&self, tokens: &[StoredToken]) -> StoreResult<()> {
        self.insert_tokens_tx(tokens).await
    }

    async fn merge_tokens(&self, tokens: &[StoredToken]) -> StoreResult<Vec<TokenId>> {
        self.merge_tokens_tx(tokens).await
    }

    async fn find_by_secret(&self, secret: &Secret) -> StoreResult<Option<TokenId>> {
        self.find_by_secret_q(secret).await
    }

    async fn delete_token(&self, id: &TokenId) -> StoreResult<bool> {
        self.delete_token_tx(id).await
    }

    async fn update_token(&self, id: &TokenId, update: &TokenUpdate) -> StoreResult<()> {
        self.update_token_tx(id, update).await
    }

    async fn write_stats(&self, batch: &StatsBatch) -> StoreResult<()> {
        self.write_stats_tx(batch).await
    }

    async fn append_events(&self, events: &[EventRecord]) -> StoreResult<Vec<EventRecord>> {
        self.append_events_tx(events).await
    }

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.events_q(query).await
    }

    async fn minutes(&self, query: &MinuteQuery) -> StoreResult<Vec<(u64, u32, u32)>> {
        self.minutes_q(query).await
    }

    async fn prune(&self, before_minute: u64, events_before: Millis) -> StoreResult<()> {
        self.prune_tx(before_minute, events_before).await
    }

    async fn load_pools(&self) -> StoreResult<Vec<StoredPool>> {
        self.load_pools_q().await
    }

    async fn upsert_pool(&self, pool: &StoredPool) -> StoreResult<()> {
        self.upsert_pool_tx(pool).await
    }

    async fn reencrypt(&self, new: &Cipher) -> StoreResult<usize> {
        self.reencrypt_tx(new).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.ping_q().await
    }

    async fn close(&self) {
        SqliteStore::close(self).await
    }
}
