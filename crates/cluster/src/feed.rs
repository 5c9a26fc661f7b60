//! The change feed: what one instance tells the others, over Redis pub/sub.
//!
//! Pub/sub rather than a stream: a message is only useful to instances that are connected
//! now (one that was not catches up by reconciling: it re-reads `P:state` and the token list),
//! and delivery is one server hop, well under the 100 ms the design asks for. State changes
//! are also written to the `P:state` hash in the same pipeline, so the hash is the durable
//! (while Redis lives) copy of the live state and the channel is the notification.
//!
//! The [`publisher`] task drains an unbounded channel, so the request path never waits on
//! Redis; while Redis is down it keeps the messages (the newest state per token, every token
//! change) in [`Cluster::pending`](super::Cluster) for [`super::apply::reconcile`] to send.

use super::Cluster;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokenlb_core::{Millis, OutcomeClass, TokenId, TokenState};
use tokenlb_manager::service::TokenService;
use tokenlb_manager::shutdown::stopped;
use tokenlb_store::EventRecord;
use tokio::sync::{mpsc, watch};

/// One feed message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    /// The sending instance (receivers skip their own messages).
    pub from: String,
    #[serde(flatten)]
    pub body: Body,
}

/// What happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A token changed state (cooling carries its end).
    State {
        pool: String,
        token: TokenId,
        to: TokenState,
        until: Option<Millis>,
        at: Millis,
    },
    /// A token was added, removed, patched or refreshed: the receiver reads it from the store.
    Token {
        pool: String,
        token: TokenId,
        what: String,
    },
    /// Many tokens changed (an import): the receiver diffs its pools against the store.
    Resync,
    /// A report that reached another instance for a lease `owner` holds in its core pool.
    Report {
        owner: String,
        pool: String,
        lease: u64,
        outcome: WireOutcome,
    },
}

/// An outcome on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireOutcome {
    pub class: OutcomeClass,
    pub latency_ms: Option<u32>,
    pub status: Option<u16>,
    pub retry_after_s: Option<u64>,
    pub error: Option<String>,
}

impl From<&tokenlb_core::Outcome> for WireOutcome {
    fn from(o: &tokenlb_core::Outcome) -> Self {
        WireOutcome {
            class: o.class,
            latency_ms: o.latency_ms,
            status: o.status,
            retry_after_s: o.retry_after_s,
            error: o.error.clone(),
        }
    }
}

impl From<WireOutcome> for tokenlb_core::Outcome {
    fn from(o: WireOutcome) -> Self {
        tokenlb_core::Outcome {
            class: o.class,
            latency_ms: o.latency_ms,
            status: o.status,
            retry_after_s: o.retry_after_s,
            error: o.error,
        }
    }
}

impl Cluster {
    /// Hook of `record_changes`: this instance's state changes go to the others.
    /// (A cooling end is filled in by the publisher task, which may lock the pool.)
    pub fn publish_changes(&self, events: &[EventRecord]) {
        for e in events {
            let Some(to) = e.to else { continue };
            self.note_change(&e.token_id, e.at);
            self.invalidate(&e.pool);
            self.send(Body::State {
                pool: e.pool.clone(),
                token: e.token_id.clone(),
                to,
                until: None,
                at: e.at,
            });
        }
    }

    /// Hook of `record_admin`: added / removed / patched / refreshed tokens.
    pub fn publish_admin(&self, event: &EventRecord) {
        self.invalidate(&event.pool);
        if matches!(
            event.kind.as_str(),
            "added" | "removed" | "patched" | "refreshed"
        ) {
            self.send(Body::Token {
                pool: event.pool.clone(),
                token: event.token_id.clone(),
                what: event.kind.clone(),
            });
        }
    }

    /// Sends one message now; `false` when Redis did not take it.
    pub async fn deliver(&self, m: &Message) -> bool {
        let Ok(json) = serde_json::to_string(m) else {
            return true;
        };
        let feed = self.key("feed");
        let mut pipe = redis::pipe();
        if let Body::State { token, .. } = &m.body {
            pipe.hset(self.key("state"), token.as_str(), &json).ignore();
        }
        pipe.publish(feed, &json).ignore();
        self.link
            .call(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
            .is_some()
    }
}

/// Sends queued messages; keeps them for reconciliation while Redis is down.
pub async fn publisher(
    svc: TokenService,
    c: Arc<Cluster>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let m = tokio::select! {
            m = rx.recv() => m,
            _ = stopped(&mut stop) => None,
        };
        let Some(mut m) = m else { return };
        fill_until(&svc, &mut m);
        if !c.link.is_up() || !c.deliver(&m).await {
            c.keep_pending(m);
        }
    }
}

/// Puts the local cooling end into a cooling message.
fn fill_until(svc: &TokenService, m: &mut Message) {
    if let Body::State {
        token,
        to: TokenState::Cooling,
        until,
        ..
    } = &mut m.body
    {
        *until = svc
            .token_pool(token)
            .and_then(|h| h.view(token))
            .and_then(|v| v.state_until);
    }
}

/// Listens to the feed and applies the other instances' messages; resubscribes (and
/// reconciles) after a lost connection.
pub async fn subscriber(svc: TokenService, c: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    loop {
        if !c.link.is_up() {
            tokio::select! {
                _ = tokio::time::sleep(super::link::RETRY) => continue,
                _ = stopped(&mut stop) => return,
            }
        }
        let channel = c.key("feed");
        let connected = async {
            let mut ps = c.link.client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        let ps = match tokio::time::timeout(super::link::CALL_TIMEOUT * 3, connected).await {
            Ok(Ok(ps)) => ps,
            _ => {
                c.link.mark_down("cannot subscribe to the feed");
                continue;
            }
        };
        // What was sent while this instance was not listening (or before it started) is
        // caught up here, after subscribing so that nothing falls in between.
        super::apply::reconcile(&svc, &c).await;
        let mut stream = ps.into_on_message();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        let Ok(text) = msg.get_payload::<String>() else { continue };
                        match serde_json::from_str::<Message>(&text) {
                            Ok(m) if m.from != c.instance => super::apply::apply(&svc, &c, m).await,
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "ignoring a malformed cluster feed message"),
                        }
                    }
                    None => {
                        c.link.mark_down("the feed connection closed");
                        break;
                    }
                },
                _ = stopped(&mut stop) => return,
            }
        }
    }
}
