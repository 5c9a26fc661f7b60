//! Single-flight: identical concurrent upstream calls are merged into one.
//!
//! The first caller for a key starts the work in its own task; callers that arrive while it
//! runs wait for the same result instead of calling Wopan again (AList does the same with Go's
//! singleflight). The work runs in a spawned task, so it finishes (and fills the cache) even
//! if every waiting request is cancelled, and the key is forgotten as soon as it finishes, so
//! a later caller starts a fresh call.

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;
/// Running calls by key, each with the sequence number that owns the key.
type Running<V> = Arc<Mutex<HashMap<String, (u64, Flight<V>)>>>;

/// Merges concurrent calls by key. `V` is cloned to every waiter.
pub struct Flights<V: Clone + Send + Sync + 'static> {
    map: Running<V>,
    seq: AtomicU64,
}

impl<V: Clone + Send + Sync + 'static> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            map: Arc::new(Mutex::new(HashMap::new())),
            seq: AtomicU64::new(0),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Flights<V> {
    /// Runs `make()` unless a call with this key is already running; returns its result and
    /// whether this caller joined another's call. `None` if the work panicked.
    pub async fn run<F, Fut>(&self, key: &str, make: F) -> (Option<V>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let (flight, joined) = {
            let mut map = self.map.lock();
            match map.get(key) {
                Some((_, f)) => (f.clone(), true),
                None => {
                    let id = self.seq.fetch_add(1, Ordering::Relaxed);
                    let work = make();
                    let owner = self.map.clone();
                    let k = key.to_string();
                    let task = tokio::spawn(async move {
                        let v = work.await;
                        let mut map = owner.lock();
                        if map.get(&k).is_some_and(|(i, _)| *i == id) {
                            map.remove(&k);
                        }
                        v
                    });
                    let flight = async move { task.await.ok() }.boxed().shared();
                    map.insert(key.to_string(), (id, flight.clone()));
                    (flight, false)
                }
            }
        };
        (flight.await, joined)
    }

    /// Calls running now (for tests and metrics).
    pub fn running(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_calls_share_one_execution() {
        let flights: Arc<Flights<u32>> = Arc::new(Flights::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut handles = Vec::new();
        for _ in 0..5 {
            let flights = flights.clone();
            let calls = calls.clone();
            let mut rx = rx.clone();
            handles.push(tokio::spawn(async move {
                flights
                    .run("k", move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.wait_for(|go| *go).await;
                        7
                    })
                    .await
            }));
        }
        // Let every caller reach the flight before the work may finish.
        while flights.running() == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tx.send(true).unwrap();
        let mut joined = 0;
        for h in handles {
            let (v, j) = h.await.unwrap();
            assert_eq!(v, Some(7));
            joined += j as usize;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(joined, 4);
        assert_eq!(flights.running(), 0);
        let (v, j) = flights.run("k", || async { 8 }).await;
        assert_eq!((v, j), (Some(8), false));
    }
}
