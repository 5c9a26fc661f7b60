//! Tests of the configuration layers, messages, pools, secrets and the example.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// A scratch directory removed on drop (the manager crate has no tempfile dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tokenlb-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_with(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let path = dir.path().join("tokenlb.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

fn load(text: &str, env: &[(&str, &str)], flags: &Overrides) -> Result<Config, ConfigError> {
    let (_dir, path) = file_with(text);
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(&ConfigFile::Explicit(path), &env, flags)
}

#[test]
fn the_example_parses_to_the_defaults() {
    let cfg = Config::from_toml_str(Config::example_toml(), Path::new("example.toml"))
        .expect("the example parses");
    assert_eq!(cfg, Config::default());
    Config::default().validate().expect("defaults are valid");
}

/// Every key a `Config` can serialize (with all optional values set) is named in the example,
/// set or commented out, so a new setting cannot be forgotten there.
#[test]
fn the_example_names_every_setting() {
    let mut cfg = Config {
        store: Some("postgres://x".into()),
        redis: Some("redis://x".into()),
        encryption_key: Some(Secret::new("k")),
        ..Config::default()
    };
    cfg.admin.password = Some(Secret::new("p"));
    cfg.admin.key = Some(Secret::new("k"));
    cfg.pools
        .get_mut("default")
        .expect("default pool")
        .health
        .url = Some("http://x".into());
    let table: toml::Table = cfg.to_masked_toml().parse().expect("masked toml parses");
    let mut keys = Vec::new();
    collect_keys(&table, &mut keys);
    let example = Config::example_toml();
    for key in keys {
        let set = example.lines().any(|l| {
            let l = l.trim_start_matches('#').trim();
            l.starts_with(&format!("{key} ="))
        });
        assert!(set, "the example does not mention `{key}`");
    }
}

fn collect_keys(table: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => collect_keys(t, out),
            _ => out.push(k.clone()),
        }
    }
}

#[test]
fn later_layers_win() {
    let text = "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/a\"\nstats_flush_ms = 500\n";
    let env = [
        ("TOKENLB_DATA_DIR", "/srv/b"),
        ("TOKENLB_STATS_FLUSH_MS", "200"),
        ("TOKENLB_CLIENT_KEYS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb,"),
    ];
    let flags = Overrides {
        data_dir: Some(PathBuf::from("/srv/c")),
        log_format: Some(LogFormat::Json),
        ..Overrides::default()
    };
    let cfg = load(text, &env, &flags).expect("valid");
    assert_eq!(cfg.listen.port(), 9000, "file beats default");
    assert_eq!(cfg.stats_flush_ms, 200, "env beats file");
    assert_eq!(cfg.data_dir, PathBuf::from("/srv/c"), "flag beats env");
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.client_keys.len(), 2);
    assert_eq!(cfg.client_keys[1].key.expose(), "bbbbbbbbbbbbbbbb");
}

#[test]
fn a_missing_default_file_is_fine_but_a_named_one_is_not() {
    let dir = TempDir::new();
    let missing = dir.path().join("nope.toml");
    let cfg = Config::load(
        &ConfigFile::IfPresent(missing.clone()),
        &no_env(),
        &Overrides::default(),
    );
    assert_eq!(cfg.expect("defaults"), Config::default());
    let err = Config::load(
        &ConfigFile::Explicit(missing),
        &no_env(),
        &Overrides::default(),
    )
    .expect_err("named file must exist")
    .to_string();
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn an_unknown_key_names_file_line_column_and_key() {
    let err = load(
        "listen = \"127.0.0.1:1\"\n\n[admin]\nusr = \"x\"\n",
        &[],
        &Overrides::default(),
    )
    .expect_err("typo");
    let msg = err.to_string();
    assert!(msg.contains("tokenlb.toml"), "{msg}");
    assert!(msg.contains("line 4, column 1"), "{msg}");
    assert!(msg.contains("admin.usr"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let err = load(
        "listen = \"127.0.0.1:1\"\nstats_flush_ms = = 3\n",
        &[],
        &Overrides::default(),
    )
    .expect_err("syntax");
    match err {
        ConfigError::Parse { line, column, .. } => {
            assert_eq!(line, Some(2));
            assert!(column.is_some());
        }
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn a_wrong_type_names_the_key() {
    let msg = load(
        "[pools.default.health]\ntimeout_ms = \"soon\"\n",
        &[],
        &Overrides::default(),
    )
    .expect_err("wrong type")
    .to_string();
    assert!(msg.contains("pools.default.health.timeout_ms"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn invalid_values_name_their_origin() {
    let msg = load("stats_flush_ms = 5\n", &[], &Overrides::default())
        .expect_err("out of range")
        .to_string();
    assert!(
        msg.contains("tokenlb.toml") && msg.contains("stats_flush_ms"),
        "{msg}"
    );

    let env = [("TOKENLB_STATS_FLUSH_MS", "5000")];
    let msg = load("", &env, &Overrides::default())
        .expect_err("range")
        .to_string();
    assert!(msg.contains("TOKENLB_STATS_FLUSH_MS"), "{msg}");

    let env = [("TOKENLB_LISTEN", "localhost")];
    let msg = load("", &env, &Overrides::default())
        .expect_err("parse")
        .to_string();
    assert!(
        msg.contains("TOKENLB_LISTEN") && msg.contains("localhost"),
        "{msg}"
    );
}

#[test]
fn secrets_never_appear_in_errors_debug_or_output() {
    let env = [("TOKENLB_ADMIN_KEY", "short-key")];
    let msg = load("", &env, &Overrides::default())
        .expect_err("too short")
        .to_string();
    assert!(
        msg.contains("TOKENLB_ADMIN_KEY") && !msg.contains("short-key"),
        "{msg}"
    );

    let key = "0123456789abcdef-secret-admin-key";
    let env = [("TOKENLB_ADMIN_KEY", key), ("TOKENLB_CLIENT_KEYS", key)];
    let cfg = load("", &env, &Overrides::default()).expect("valid");
    assert_eq!(cfg.admin.key.as_ref().map(Secret::expose), Some(key));
    assert!(!format!("{cfg:?}").contains(key));
    assert!(!cfg.to_masked_toml().contains(key));
}

#[test]
fn pools_inherit_the_default_strategy_unless_they_set_one() {
    let text = "default_strategy = \"round_robin\"\n\
                [pools.fast]\nstrategy = \"latency\"\nconsecutive_failures = 2\n\
                [pools.slow]\nlease_ttl_s = 10\n[pools.slow.health]\nkind = \"http\"\nurl = \"http://127.0.0.1:1/me\"\n";
    let cfg = load(text, &[], &Overrides::default()).expect("valid");
    assert_eq!(cfg.pools["fast"].policy.strategy, Strategy::Latency);
    assert_eq!(cfg.pools["fast"].policy.consecutive_failures, 2);
    assert_eq!(cfg.pools["slow"].policy.strategy, Strategy::RoundRobin);
    assert_eq!(cfg.pools["slow"].health.kind, HealthKind::Http);
    assert_eq!(cfg.pools["default"].policy.strategy, Strategy::RoundRobin);
}

#[test]
fn pool_typos_and_bad_health_are_caught() {
    let msg = load(
        "[pools.a]\nconsecutive_failure = 3\n",
        &[],
        &Overrides::default(),
    )
    .expect_err("typo")
    .to_string();
    assert!(
        msg.contains("consecutive_failure") && msg.contains("pools.a"),
        "{msg}"
    );

    let msg = load(
        "[pools.a.health]\nkind = \"http\"\n",
        &[],
        &Overrides::default(),
    )
    .expect_err("no url")
    .to_string();
    assert!(msg.contains("pools.a.health.url"), "{msg}");

    let msg = load("[pools.\"a b\"]\n", &[], &Overrides::default())
        .expect_err("bad name")
        .to_string();
    assert!(msg.contains("pool names"), "{msg}");
}

#[test]
fn encryption_key_must_be_32_bytes_of_base64() {
    let env = [("TOKENLB_ENCRYPTION_KEY", "c2hvcnQ=")];
    let msg = load("", &env, &Overrides::default())
        .expect_err("short")
        .to_string();
    assert!(
        msg.contains("32 bytes") && !msg.contains("c2hvcnQ"),
        "{msg}"
    );
    let env = [(
        "TOKENLB_ENCRYPTION_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )];
    load("", &env, &Overrides::default()).expect("32 bytes");
}

#[test]
fn store_passwords_are_masked_in_the_output() {
    let flags = Overrides {
        store: Some("postgres://tokenlb:hunter2-db-pass@db.internal/tokenlb".into()),
        ..Overrides::default()
    };
    let cfg = load("", &[], &flags).expect("valid");
    let shown = cfg.to_masked_toml();
    assert!(!shown.contains("hunter2-db-pass"), "{shown}");
    assert!(
        shown.contains("postgres://tokenlb:****@db.internal/tokenlb"),
        "{shown}"
    );
}
