//! The baseline server: the same HTTP stack as the manager and nothing else.
//!
//! It is the limit of any HTTP route on this machine: axum 0.8 on hyper 1, served by the
//! manager's own accept loop (`tokenlb_listen::serve`, shared with the web API: hyper-util's HTTP/1 builder
//! with its header-read timeout and head cap, `ConnectInfo` per request) on a default
//! multi-threaded Tokio runtime, exactly as `tokenlb manager` serves, answering every GET
//! with a fixed JSON body the size and shape of a `GET /api/token/get` answer. No
//! middleware, no state, no allocation beyond the stack's own: whatever the manager costs
//! above this is tokenlb's.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The fixed answer: the shape and about the size of a lease (`GET /api/token/get`).
pub const BODY: &str = concat!(
    r#"{"id":"t_0000001","lease":"0.1234567","lease_expires_at":"2026-01-01T00:00:00.000Z","#,
    r#""name":"token 1","pool":"default","token":"secret-0000001-0123456789abcdef"}"#
);

async fn answer() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], BODY)
}

/// The router: every path and method gets [`BODY`].
pub fn app() -> Router {
    Router::new().fallback(answer)
}

/// Which serving loop answers the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stack {
    /// `axum::serve`, as axum's own examples serve: the limit a user measures against.
    Axum,
    /// The manager's accept loop (`tokenlb_listen::serve`: timeouts, connection cap, Host
    /// check), so the gap between the two rows is the price of those guards.
    Listen,
}

impl Stack {
    /// The value of `serve-baseline --stack`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Stack::Axum => "axum",
            Stack::Listen => "listen",
        }
    }
}

/// Serves the baseline on `listener` with a plain `axum::serve` until `shutdown` resolves.
pub async fn serve_axum(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the baseline on `listener` until `shutdown` resolves, with the manager's serving
/// loop.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The manager's limits and Host check, so the baseline pays what the manager pays.
    let hosts = tokenlb_listen::Hosts::for_listener(listener.local_addr()?, &[]);
    tokenlb_listen::serve(
        listener,
        app(),
        shutdown,
        tokenlb_listen::Options::new(hosts),
    )
    .await;
    Ok(())
}

/// `tokenlb-bench serve-baseline`: the runtime the manager builds (multi-threaded, default
/// worker count = the CPUs this process may run on), bound to `listen`, until Ctrl-C or
/// SIGTERM. Prints `listening on ADDR` once bound.
pub fn main(listen: SocketAddr, stack: Stack) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        println!("listening on {}", listener.local_addr()?);
        match stack {
            Stack::Axum => serve_axum(listener, shutdown_signal()).await?,
            Stack::Listen => serve(listener, shutdown_signal()).await?,
        }
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_of_a_lease_shape() {
        let v: serde_json::Value = serde_json::from_str(BODY).unwrap();
        for key in ["id", "lease", "lease_expires_at", "name", "pool", "token"] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
