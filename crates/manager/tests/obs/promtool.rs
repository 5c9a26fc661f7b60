//! Running promtool (Debian's `prometheus` package; `scripts/test.sh` installs it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// False when `TOKENLB_SKIP_PROMTOOL=1`; otherwise promtool must be installed, and a test
/// that needs it fails with a message saying how to get it.
pub fn wanted() -> bool {
    if std::env::var("TOKENLB_SKIP_PROMTOOL").as_deref() == Ok("1") {
        eprintln!("TOKENLB_SKIP_PROMTOOL=1: not running promtool");
        return false;
    }
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "promtool is not installed: `apt-get install -y prometheus` (scripts/test.sh does), \
         or set TOKENLB_SKIP_PROMTOOL=1 to skip the promtool checks"
    );
    true
}

/// Runs `promtool ARGS` in `dir` with `stdin`; panics with its output unless it succeeds.
pub fn run(args: &[&str], dir: &Path, stdin: &str) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// The metric families of an exposition: (name, type) from its `# TYPE` lines.
pub fn families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}
