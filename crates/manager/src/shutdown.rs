//! The stop signal every background loop shares: a `watch` channel that turns `true` once.

use tokio::sync::watch;

/// Waits until the stop signal is set (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
