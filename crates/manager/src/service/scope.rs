//! Who is calling, as far as the pools care (DESIGN §9): the admin, a client key with its
//! pools and rights, or a direct loopback peer when no client keys are configured.
//!
//! The HTTP layer decides who the caller is (`crate::auth`); the service decides what that
//! caller may do with each pool, lease and token, because only it knows which pool a lease
//! id or a token id belongs to.

use super::{ServiceError, ServiceResult};
use crate::config::ClientKey;
use std::sync::Arc;

/// What a caller may do on the client routes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Scope(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// How logs and events name the caller: `admin`, `loopback` or the key's name.
    name: String,
    /// `None` = every pool.
    pools: Option<Vec<String>>,
    report_by_id: bool,
}

impl Scope {
    /// The admin: every pool, every report form.
    pub fn admin() -> Scope {
        static ADMIN: std::sync::LazyLock<Scope> = std::sync::LazyLock::new(|| {
            Scope(Arc::new(Inner {
                name: "admin".into(),
                pools: None,
                report_by_id: true,
            }))
        });
        ADMIN.clone()
    }

    /// A direct loopback peer on a manager without client keys: every pool, reports by
    /// lease only.
    pub fn loopback() -> Scope {
        // One shared value: a loopback `get` allocates nothing for its scope.
        static LOOPBACK: std::sync::LazyLock<Scope> = std::sync::LazyLock::new(|| {
            Scope(Arc::new(Inner {
                name: "loopback".into(),
                pools: None,
                report_by_id: false,
            }))
        });
        LOOPBACK.clone()
    }

    /// A configured client key.
    pub fn key(key: &ClientKey) -> Scope {
        Scope(Arc::new(Inner {
            name: key.name.clone(),
            pools: key.pools.clone(),
            report_by_id: key.report_by_id,
        }))
    }

    /// The caller's name (never a key's value).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether the caller may use pool `pool`.
    pub fn allows(&self, pool: &str) -> bool {
        self.0
            .pools
            .as_ref()
            .is_none_or(|pools| pools.iter().any(|p| p == pool))
    }

    /// `Forbidden` unless the caller may use pool `pool`.
    pub fn check(&self, pool: &str) -> ServiceResult<()> {
        if self.allows(pool) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "the client key {:?} is not allowed to use pool {pool:?}",
                self.0.name
            )))
        }
    }

    /// The scope a proxied request leases with (DESIGN §10: a route's name is a pool scope):
    /// the caller's own when it may use `pool`; one limited to `pool` when it may use the
    /// route `route`; else `Forbidden`.
    pub fn for_route(&self, route: &str, pool: &str) -> ServiceResult<Scope> {
        if self.allows(pool) {
            return Ok(self.clone());
        }
        if self.allows(route) {
            return Ok(Scope(Arc::new(Inner {
                name: self.0.name.clone(),
                pools: Some(vec![pool.to_string()]),
                report_by_id: false,
            })));
        }
        Err(ServiceError::Forbidden(format!(
            "the client key {:?} is not allowed to use proxy route {route:?} (name it or its pool {pool:?} in the key's pools)",
            self.0.name
        )))
    }

    /// `Forbidden` unless the caller may report by token id or value.
    pub fn check_report_by_id(&self) -> ServiceResult<()> {
        if self.0.report_by_id {
            return Ok(());
        }
        Err(ServiceError::Forbidden(
            "reports by token id or value need the admin key or a client key with report_by_id = true; report the lease instead (\"lease\" from get)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_see_their_pools_only() {
        let key = ClientKey {
            pools: Some(vec!["wopan".into()]),
            ..ClientKey::bare("k".repeat(16).as_str(), 1)
        };
        let s = Scope::key(&key);
        assert!(s.allows("wopan"));
        assert!(!s.allows("default"));
        assert!(matches!(
            s.check("default"),
            Err(ServiceError::Forbidden(_))
        ));
        assert!(s.check_report_by_id().is_err());
        assert!(Scope::admin().allows("anything"));
        assert!(Scope::admin().check_report_by_id().is_ok());
        assert!(Scope::loopback().check_report_by_id().is_err());
        assert_eq!(s.name(), "key-1");
    }
}
