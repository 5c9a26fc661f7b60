//! The accept loop: HTTP/1.1 and HTTP/2 with the limits `axum::serve` does not expose.
//!
//! - A header-read timeout ([`HEADER_READ_TIMEOUT`]): a client that trickles its request head
//!   (slowloris) is cut off instead of holding a connection and a task forever.
//! - A cap on the request head ([`MAX_HEAD_BYTES`]): hyper answers a larger head with
//!   `431 Request Header Fields Too Large` (hyper's default buffer is about 400 KiB).
//!
//! Each connection is served by hyper-util's auto builder in its own task, with the peer
//! address inserted as `ConnectInfo<SocketAddr>` exactly as
//! `Router::into_make_service_with_connect_info` would. On shutdown the loop stops accepting
//! and waits for the open connections to finish their requests (hyper's graceful shutdown).
//!
//! One crate so the manager, the web API and the benchmark's baseline serve through the
//! same loop (the baseline must be served exactly as the manager is). Tested end to end by
//! `crates/cli/tests/reliability_limits.rs` (slow heads, oversized heads, on both services).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;

/// How long a client may take to send a whole request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(req.map(Body::new)).await }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
