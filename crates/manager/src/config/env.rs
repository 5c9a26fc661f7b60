//! The environment layer: `TOKENLB_*` variables, read through [`EnvSource`].
//!
//! Each setting that can come from the environment is named by its key in the file
//! (`admin.key`); the variable is `TOKENLB_` + the key in upper case with dots as underscores
//! (`TOKENLB_ADMIN_KEY`). Pools are configured in the file only. An empty variable counts as
//! unset, as container tools often pass empty values for unset ones.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

/// Where environment variables come from. The process environment in the binary, a map in
/// tests, so no test ever touches (or races on) the real environment.
pub trait EnvSource {
    /// The raw value of a variable, if set.
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The real process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(OsString::from)
    }
}

impl EnvSource for HashMap<String, String> {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(OsString::from)
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| OsString::from(*v))
    }
}

/// Every key settable from the environment, in the order they are applied.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "tokens_file",
    "store",
    "redis",
    "client_keys",
    "allowed_hosts",
    "trusted_proxies",
    "max_connections",
    "max_waiters",
    "max_event_rows",
    "encryption_key",
    "stats_flush_ms",
    "max_body_bytes",
    "default_strategy",
    "log.format",
    "log.level",
    "admin.user",
    "admin.password",
    "admin.key",
    "admin.session_idle_minutes",
    "admin.login_max_failures",
    "admin.login_window_s",
    "admin.cookie_secure",
    "metrics.per_token",
];

/// The variable that sets `key`: `admin.key` → `TOKENLB_ADMIN_KEY`.
pub fn env_var_for(key: &str) -> String {
    format!("TOKENLB_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Reads the variable for `key`: `Ok(None)` when unset or empty.
pub(super) fn read(env: &dyn EnvSource, key: &str) -> Result<Option<String>, (String, String)> {
    let var = env_var_for(key);
    match env.var_os(&var) {
        None => Ok(None),
        Some(raw) => match raw.into_string() {
            Ok(s) if s.is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(_) => Err((var, "is not valid UTF-8".to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_keys() {
        assert_eq!(env_var_for("admin.key"), "TOKENLB_ADMIN_KEY");
        assert_eq!(env_var_for("client_keys"), "TOKENLB_CLIENT_KEYS");
        assert_eq!(env_var_for("log.format"), "TOKENLB_LOG_FORMAT");
    }

    #[test]
    fn empty_counts_as_unset() {
        let env = [("TOKENLB_STORE", ""), ("TOKENLB_LISTEN", "0.0.0.0:1")];
        assert_eq!(read(&env, "store"), Ok(None));
        assert_eq!(read(&env, "listen"), Ok(Some("0.0.0.0:1".to_string())));
        assert_eq!(read(&env, "redis"), Ok(None));
    }
}
