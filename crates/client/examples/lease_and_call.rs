//! Leases a token from a running tokenlb manager, reports on it, and runs one `call`.
//!
//! Run a manager first (for example `cargo run -- manager` or `cargo run -- up --demo`),
//! then:
//!
//! ```text
//! TOKENLB_MANAGER_URL=http://127.0.0.1:8000 TOKENLB_CLIENT_KEY=... \
//!     cargo run -p tokenlb-client --example lease_and_call -- [URL]
//! ```
//!
//! With a URL, the `call` sends `GET URL` with `Authorization: Bearer <token>` and classifies
//! the HTTP status (401/403 auth, 429 rate limited, 5xx transient …), retrying on another
//! token. Without one, the operation only checks that a token came back. The token is never
//! printed whole; only its masked form is.

use std::time::{Duration, Instant};
use tokenlb_client::{Classify, Client, ClientConfig, Outcome, OutcomeClass, Secret};

/// The failure of the example's operation.
#[derive(Debug)]
enum FetchError {
    Status(u16, Option<u64>),
    Network(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status(s, _) => write!(f, "HTTP {s}"),
            FetchError::Network(m) => write!(f, "network: {m}"),
        }
    }
}

impl Classify for FetchError {
    fn class(&self) -> OutcomeClass {
        match self {
            FetchError::Status(s, ra) => OutcomeClass::from_http_status(*s, ra.is_some()),
            FetchError::Network(_) => OutcomeClass::Transient,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status(_, ra) => ra.map(Duration::from_secs),
            FetchError::Network(_) => None,
        }
    }
    fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status(s, _) => Some(*s),
            FetchError::Network(_) => None,
        }
    }
    fn message(&self) -> Option<String> {
        Some(self.to_string())
    }
}

async fn fetch(
    http: &reqwest::Client,
    url: Option<&str>,
    token: &Secret,
) -> Result<usize, FetchError> {
    let Some(url) = url else {
        return Ok(token.len());
    };
    let resp = http
        .get(url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| FetchError::Network(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if !resp.status().is_success() {
        return Err(FetchError::Status(status, retry_after));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| FetchError::Network(e.to_string()))?;
    Ok(body.len())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager =
        std::env::var("TOKENLB_MANAGER_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let mut config = ClientConfig::new(manager);
    config.client_key = std::env::var("TOKENLB_CLIENT_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    let client = Client::new(config)?;

    let lease = client.lease().await?;
    println!(
        "leased {} ({}), token {}",
        lease.name(),
        lease.token_id(),
        lease.secret()
    );
    let started = Instant::now();
    let mut outcome = Outcome::success();
    outcome.latency_ms = Some(started.elapsed().as_millis() as u32);
    client.report(&lease, outcome).await?;
    println!(
        "reported success for lease {}",
        lease.lease_id().unwrap_or_default()
    );

    let url = std::env::args().nth(1);
    let http = reqwest::Client::new();
    let result = client
        .call(|token| {
            let http = http.clone();
            let url = url.clone();
            async move { fetch(&http, url.as_deref(), &token.secret).await }
        })
        .await;
    match result {
        Ok(bytes) => println!("call succeeded: {bytes} bytes"),
        Err(e) => println!("call failed: {e}"),
    }
    // `call` reports a success in the background: wait for it before the process exits.
    client.flush().await;
    Ok(())
}
