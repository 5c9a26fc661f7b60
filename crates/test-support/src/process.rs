//! Child processes of the `tokenlb` binary.
//!
//! The binary's path comes from the calling crate (`env!("CARGO_BIN_EXE_tokenlb")` in the
//! cli crate's tests), so this crate does not depend on the binary.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// `bin` with no inherited `TOKENLB_*` or `RUST_LOG` variables, run in `dir`, with no
/// standard input: what a user's shell would run, minus the test runner's environment.
pub fn clean_command(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("TOKENLB_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs to completion; (exit code, stdout, stderr). A signal counts as exit code -1.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the command runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Asserts the output shows no panic or backtrace.
pub fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

/// The `HOST:PORT` of a log line saying "… listening on http://HOST:PORT …", if it is one.
pub fn listening_addr(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    let rest = line.split("http://").nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '/' | ','))
        .collect();
    (!addr.is_empty()).then_some(addr)
}

/// Collects the lines of a child's output on a thread of their own; every address it says
/// it listens on is sent on the returned channel as it appears.
pub fn collect_lines(
    out: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, Receiver<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(addr) = listening_addr(&line) {
                let _ = tx.send(addr);
            }
            sink.lock().expect("line lock").push(line);
        }
    });
    (lines, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_scraped_from_listening_lines_only() {
        let line = "INFO token manager listening on http://127.0.0.1:43211 addr=127.0.0.1:43211";
        assert_eq!(listening_addr(line).as_deref(), Some("127.0.0.1:43211"));
        assert_eq!(
            listening_addr("web API listening on http://[::1]:5000/ now").as_deref(),
            Some("[::1]:5000")
        );
        assert_eq!(listening_addr("calling http://127.0.0.1:1/x"), None);
        assert_eq!(listening_addr("listening on http://"), None);
    }

    #[test]
    fn lines_and_addresses_are_collected() {
        let text = "a\nlistening on http://127.0.0.1:9 \nb\n";
        let (lines, rx) = collect_lines(std::io::Cursor::new(text.as_bytes().to_vec()));
        assert_eq!(rx.recv().unwrap(), "127.0.0.1:9");
        // The reader thread ends at EOF; wait for the last line.
        for _ in 0..200 {
            if lines.lock().unwrap().len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(lines.lock().unwrap().len(), 3);
    }
}
