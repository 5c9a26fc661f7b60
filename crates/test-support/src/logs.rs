//! Log capture: a `tracing` subscriber that writes plain text (no colours) into a buffer the
//! test reads.
//!
//! [`Logs::capture`] installs it for the current thread (a `#[tokio::test]` runs its servers
//! on the test's own single-threaded runtime, so their logs land there too);
//! [`Logs::global`] installs it for the whole process (for servers on other threads), once.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing::subscriber::DefaultGuard;

/// The captured text; cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's logs at `level` and below until the guard is dropped.
    pub fn capture(level: tracing::Level) -> (Logs, DefaultGuard) {
        let logs = Logs::default();
        let guard = tracing::subscriber::set_default(logs.subscriber(level));
        (logs, guard)
    }

    /// Captures the whole process's logs at `level` and below (installed once; later calls
    /// return the same capture).
    pub fn global(level: tracing::Level) -> Logs {
        static GLOBAL: OnceLock<Logs> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let logs = Logs::default();
                tracing::subscriber::set_global_default(logs.subscriber(level))
                    .expect("no other global subscriber in this test binary");
                logs
            })
            .clone()
    }

    fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// Whether the captured text contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_this_threads_logs_only_while_guarded() {
        let (logs, guard) = Logs::capture(tracing::Level::INFO);
        tracing::info!("seen");
        tracing::debug!("below the level");
        drop(guard);
        tracing::info!("after the guard");
        assert!(logs.contains("seen"));
        assert!(!logs.contains("below the level"));
        assert!(!logs.contains("after the guard"));
    }
}
