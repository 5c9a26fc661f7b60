//! [`Store`](crate::Store) for [`SqliteStore`]: each method delegates to the module that
//! implements it (`tokens` for token rows and keys, `records` for stats, events, minutes, pools).

use super::SqliteStore;

crate::delegate::delegate_store!(SqliteStore);

impl SqliteStore {
    pub(super) fn describe_q(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
