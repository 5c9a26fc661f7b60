//! The binary's surface without a running manager: help texts, usage errors, `config`.

use crate::common::{assert_no_panic, run, tokenlb};

#[test]
fn every_command_has_help_that_names_defaults_and_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["manager", "token", "config", "Exit codes"]),
        (
            &["manager"],
            &[
                "--listen",
                "127.0.0.1:8000",
                "TOKENLB_LISTEN",
                "--data-dir",
                "--config",
                "--tokens-file",
                "--store",
                "--log-format",
            ],
        ),
        (
            &["token"],
            &[
                "add",
                "remove",
                "list",
                "import",
                "export",
                "TOKENLB_MANAGER_URL",
                "TOKENLB_ADMIN_KEY",
            ],
        ),
        (
            &["token", "add"],
            &[
                "--name",
                "--pool",
                "--weight",
                "--expires-at",
                "--refresh-token",
                "stdin",
            ],
        ),
        (&["token", "remove"], &["--id", "stdin"]),
        (&["token", "list"], &["--pool", "--state", "--json"]),
        (
            &["token", "import"],
            &["--pool", "one token per line", "50000"],
        ),
        (&["token", "export"], &["--out", "0600"]),
        (&["config"], &["example", "check"]),
        (&["config", "example"], &["default"]),
        (&["config", "check"], &["--config", "TOKENLB_CONFIG"]),
    ];
    for (args, expected) in cases {
        let (code, out, err) = run(tokenlb(dir.path()).args(*args).arg("--help"));
        assert_eq!(code, 0, "{args:?} --help: {err}");
        for word in *expected {
            assert!(
                out.contains(word),
                "`tokenlb {args:?} --help` lacks {word:?}:\n{out}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_64_without_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["bogus"][..],
        &[],
        &["manager", "--listen", "not-an-address"],
        &["token", "add", "x", "--weight", "0"],
        &["token", "remove"],
        &["token", "list", "--state", "sleeping"],
        &["--log-format", "xml", "config", "example"],
    ] {
        let (code, _, err) = run(tokenlb(dir.path()).args(args));
        assert_eq!(code, 64, "{args:?}: {err}");
        assert_no_panic(&err);
    }
}

#[test]
fn the_printed_example_is_a_valid_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, example, err) = run(tokenlb(dir.path()).args(["config", "example"]));
    assert_eq!(code, 0, "{err}");
    let path = dir.path().join("tokenlb.toml");
    std::fs::write(&path, &example).expect("write example");
    // Picked up as ./tokenlb.toml without --config.
    let (code, out, err) = run(tokenlb(dir.path()).args(["config", "check"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("tokenlb.toml"), "{err}");
    assert!(out.contains("listen = \"127.0.0.1:8000\""), "{out}");
    assert!(out.contains("[pools.default.health]"), "{out}");
}

#[test]
fn a_bad_config_file_exits_64_naming_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:8000\"\n[admin]\nsession_idle_minute = 3\n",
    )
    .expect("write");
    for cmd in [
        &["config", "check", "--config"][..],
        &["manager", "--config"],
    ] {
        let (code, _, err) = run(tokenlb(dir.path()).args(cmd).arg(&path));
        assert_eq!(code, 64, "{err}");
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("admin.session_idle_minute"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one clear message: {err}");
        assert_no_panic(&err);
    }
    let (code, _, err) =
        run(tokenlb(dir.path()).args(["config", "check", "--config", "missing.toml"]));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn errors_point_at_the_key_and_host_names_are_addresses() {
    // Issue 14: a bad strategy in a pool was reported at the table's line, and
    // `--listen localhost:18110` was refused.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"localhost:18110\"\n\n[pools.default]\nlease_ttl_s = 30\nstrategy = \"bestest\"\n",
    )
    .expect("write");
    let (code, _, err) = run(tokenlb(dir.path())
        .args(["config", "check", "--config"])
        .arg(&path));
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("line 5, column 1, key `pools.default.strategy`"),
        "{err}"
    );
    assert_eq!(err.matches("bestest").count(), 1, "{err}");
    std::fs::write(&path, "listen = \"localhost:18110\"\n").expect("write");
    let (code, out, err) = run(tokenlb(dir.path())
        .args(["config", "check", "--config"])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:18110\""), "{out}");
    let (code, _, err) = run(tokenlb(dir.path()).args(["manager", "--listen", "localhost"]));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("HOST:PORT"), "{err}");
}

#[test]
fn environment_values_are_checked_and_secrets_stay_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = run(tokenlb(dir.path())
        .args(["config", "check"])
        .env("TOKENLB_STATS_FLUSH_MS", "5"));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("TOKENLB_STATS_FLUSH_MS"), "{err}");

    let key = "k3y-0123456789-abcdefghij-secret";
    let (code, out, err) = run(tokenlb(dir.path())
        .args(["config", "check"])
        .env("TOKENLB_ADMIN_KEY", key)
        .env("TOKENLB_LISTEN", "127.0.0.1:9100"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("127.0.0.1:9100"), "{out}");
    assert!(out.contains("key = \"k3y-…cret\""), "{out}");
    assert!(!out.contains(key) && !err.contains(key));
}
