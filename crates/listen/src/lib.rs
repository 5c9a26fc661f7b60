//! The accept loop: HTTP/1.1 and HTTP/2 with the limits `axum::serve` does not expose
//! (DESIGN §9, "Connections" and "Host check").
//!
//! - **Header timeout, from accept.** A connection must deliver a whole request head within
//!   [`Options::header_read_timeout`] (10 s) of being accepted, and within the same time of
//!   its previous request ending once it has been idle for [`Options::idle_timeout`]. hyper's
//!   own HTTP/1 header timeout only starts after hyper-util has detected the protocol, so a
//!   socket that sends nothing, or only the HTTP/2 preface, used to stay open for ever; here a
//!   per-connection watchdog closes any connection that has no request in flight (its
//!   response body included) for longer than the limit.
//! - **A cap on open connections** ([`Options::max_connections`], 4,096): beyond it a new
//!   connection is closed at accept. Refusals and accept errors (out of file descriptors) are
//!   logged at most once per [`LOG_EVERY`] with the number since the last line, never once per
//!   connection.
//! - **A cap on the request head** ([`MAX_HEAD_BYTES`]): hyper answers a larger head with
//!   `431 Request Header Fields Too Large`; HTTP/2 gets the same cap on its header list.
//! - **HTTP/2 keep-alive pings** every 20 s, closing a connection whose peer stops answering.
//! - **Host check** ([`Hosts`]): a request whose `Host` (or HTTP/2 `:authority`) names none of
//!   the listener's own names gets `421 Misdirected Request` with the JSON error shape. This
//!   is what stops DNS rebinding: a web page that re-points its own domain at 127.0.0.1 still
//!   sends its domain as `Host`.
//!
//! Each connection is served by hyper-util's auto builder in its own task, with the peer
//! address inserted as `ConnectInfo<SocketAddr>` exactly as
//! `Router::into_make_service_with_connect_info` would. On shutdown the loop stops accepting
//! and waits for the open connections to finish their requests (hyper's graceful shutdown).
//!
//! One crate so the manager, the web API and the benchmark's baseline serve through the
//! same loop (the baseline must be served exactly as the manager is). Tested by this crate's
//! `tests/listen.rs` (short limits) and end to end by `crates/cli/tests/reliability/limits.rs`.

mod addr;
mod answer_log;
mod hosts;
mod watch;

pub use addr::parse_addr;
pub use answer_log::{log_answer, ErrorNote};
pub use hosts::Hosts;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;
use watch::{Activity, Every};

/// How long a client may take to send a whole request head (default of
/// [`Options::header_read_timeout`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit between requests (default of
/// [`Options::idle_timeout`]).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections open at once (default of [`Options::max_connections`]).
pub const MAX_CONNECTIONS: usize = 4096;
/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// At most one log line per this long for refused connections and accept errors.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Interval of HTTP/2 keep-alive pings (and how long an answer may take).
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// An answer body at most this long, known in full, leaves with its head (it fits any
/// socket buffer), so it needs no in-flight bookkeeping while it is sent.
const SMALL_BODY: u64 = 16 * 1024;

/// The limits of one listener.
#[derive(Clone, Debug)]
pub struct Options {
    /// A new connection must bring its first request head within this; an idle one its next.
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
    /// The names `Host` may carry.
    pub hosts: Hosts,
}

impl Options {
    /// The default limits with `hosts` as the allow-list.
    pub fn new(hosts: Hosts) -> Options {
        Options {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            hosts,
        }
    }
}

/// Serves `app` (an axum `Router`, or any service that answers axum requests as one does
/// and, like a `Router`, is always ready: it is called without `poll_ready`) on `listener`
/// until `shutdown` resolves, then drains open connections.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()>,
    options: Options,
) where
    S: Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let hosts = Arc::new(options.hosts.clone());
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let refused = Every::new(LOG_EVERY);
    let failed = Every::new(LOG_EVERY);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    if let Some(more) = failed.tick() {
                        tracing::warn!(error = %e, more, "accepting a connection failed ({more} more since the last line)");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            if let Some(more) = refused.tick() {
                tracing::warn!(
                    max_connections = options.max_connections,
                    more,
                    "refusing connections: {} are open (max_connections); {more} more refused since the last line",
                    options.max_connections
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let service = {
            let app = app.clone();
            let hosts = hosts.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = activity.begin();
                let mut app = app.clone();
                let allowed = hosts.allows_request(&req);
                async move {
                    let response = if allowed {
                        app.call(req.map(Body::new)).await?
                    } else {
                        hosts::misdirected()
                    };
                    // The request counts as in flight until its body has been sent (or
                    // dropped). A small body already in memory goes out with the head, so
                    // it is not wrapped (the wrapper was a box and a poll on every answer).
                    let small = response
                        .body()
                        .size_hint()
                        .exact()
                        .is_some_and(|n| n <= SMALL_BODY);
                    if small {
                        drop(busy);
                        return Ok::<_, std::convert::Infallible>(response);
                    }
                    Ok(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &busy;
                            frame
                        }))
                    }))
                }
            })
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        let limits = (options.header_read_timeout, options.idle_timeout);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = conn => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                () = activity.idle_for(limits.0, limits.1) => {
                    tracing::debug!(%peer, "closing an idle connection");
                }
            }
        });
    }
    graceful.shutdown().await;
}
