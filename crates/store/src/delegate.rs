//! [`Store`](crate::Store) for a backend type whose inherent methods carry the same names with
//! a suffix (`_q` for reads, `_tx` for writes): the trait impl is the same list of one-line
//! delegations for every backend, so it is written once here.

/// Implements `Store` for `$ty` by delegating to its `*_q` / `*_tx` inherent methods.
macro_rules! delegate_store {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            fn describe(&self) -> String {
                self.describe_q()
            }

            async fn load_tokens(&self) -> $crate::StoreResult<Vec<$crate::StoredToken>> {
                self.load_tokens_q().await
            }

            async fn insert_tokens(
                &self,
                tokens: &[$crate::StoredToken],
            ) -> $crate::StoreResult<()> {
                self.insert_tokens_tx(tokens).await
            }

            async fn merge_tokens(
                &self,
                tokens: &[$crate::StoredToken],
            ) -> $crate::StoreResult<Vec<tokenlb_core::TokenId>> {
                self.merge_tokens_tx(tokens).await
            }

            async fn find_by_secret(
                &self,
                secret: &tokenlb_core::Secret,
            ) -> $crate::StoreResult<Option<tokenlb_core::TokenId>> {
                self.find_by_secret_q(secret).await
            }

            async fn delete_token(&self, id: &tokenlb_core::TokenId) -> $crate::StoreResult<bool> {
                self.delete_token_tx(id).await
            }

            async fn update_token(
                &self,
                id: &tokenlb_core::TokenId,
                update: &$crate::TokenUpdate,
            ) -> $crate::StoreResult<()> {
                self.update_token_tx(id, update).await
            }

            async fn write_stats(&self, batch: &$crate::StatsBatch) -> $crate::StoreResult<()> {
                self.write_stats_tx(batch).await
            }

            async fn append_events(
                &self,
                events: &[$crate::EventRecord],
            ) -> $crate::StoreResult<Vec<$crate::EventRecord>> {
                self.append_events_tx(events).await
            }

            async fn events(
                &self,
                query: &$crate::EventQuery,
            ) -> $crate::StoreResult<Vec<$crate::EventRecord>> {
                self.events_q(query).await
            }

            async fn minutes(
                &self,
                query: &$crate::MinuteQuery,
            ) -> $crate::StoreResult<Vec<(u64, u32, u32)>> {
                self.minutes_q(query).await
            }

            async fn prune(
                &self,
                before_minute: u64,
                events_before: tokenlb_core::Millis,
                keep_events: u64,
            ) -> $crate::StoreResult<()> {
                self.prune_tx(before_minute, events_before, keep_events)
                    .await
            }

            async fn load_pools(&self) -> $crate::StoreResult<Vec<$crate::StoredPool>> {
                self.load_pools_q().await
            }

            async fn upsert_pool(&self, pool: &$crate::StoredPool) -> $crate::StoreResult<()> {
                self.upsert_pool_tx(pool).await
            }

            async fn reencrypt(&self, new: &$crate::Cipher) -> $crate::StoreResult<usize> {
                self.reencrypt_tx(new).await
            }

            async fn ping(&self) -> $crate::StoreResult<()> {
                self.ping_q().await
            }

            async fn fold_stats(&self) -> $crate::StoreResult<()> {
                self.fold_stats_tx().await
            }

            async fn close(&self) {
                <$ty>::close(self).await
            }
        }
    };
}

pub(crate) use delegate_store;
