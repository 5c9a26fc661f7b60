//! Admin UI sessions and the failed-login limiter.
//!
//! A session id is 256 random bits (hex), issued fresh at every login so an id planted
//! before login is worthless (session fixation). Each session carries its own CSRF token,
//! which the page sends back in `X-CSRF-Token` on every state-changing request. Sessions end
//! at logout or after `session_idle_minutes` without use; they live in memory only, so a
//! restart logs everyone out, which is the safe direction.
//!
//! The limiter counts failed logins per client address in a fixed window; once a client
//! reaches the limit it gets 429 with `Retry-After` until its window ends.

use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "tokenlb_session";

/// 256 random bits as 64 hex characters.
pub fn random_hex_256() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A logged-in admin.
#[derive(Clone, Debug)]
pub struct Session {
    pub username: String,
    pub csrf_token: String,
    last_seen: Instant,
}

/// The live sessions, by id.
pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle_minutes: u64) -> Self {
        Sessions {
            idle: Duration::from_secs(idle_minutes.max(1).saturating_mul(60)),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session and returns its fresh id and the session.
    pub fn create(&self, username: &str) -> (String, Session) {
        let id = random_hex_256();
        let session = Session {
            username: username.to_string(),
            csrf_token: random_hex_256(),
            last_seen: Instant::now(),
        };
        let mut map = self.map.lock();
        let idle = self.idle;
        map.retain(|_, s| s.last_seen.elapsed() < idle);
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session with that id if it exists and has not idled out; touching it resets the
    /// idle clock.
    pub fn touch(&self, id: &str) -> Option<Session> {
        self.touch_at(id, Instant::now())
    }

    /// [`Self::touch`] at a given instant (time is an argument, so idle expiry is testable).
    pub fn touch_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.map.lock();
        let session = map.get_mut(id)?;
        if now.saturating_duration_since(session.last_seen) >= self.idle {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().remove(id);
    }
}

impl Session {
    /// Constant-time check of a presented CSRF token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf_token.as_bytes().ct_eq(presented.as_bytes()))
    }
}

struct Failures {
    /// Failed attempts so far.
    count: u32,
    /// Attempts whose password is being checked now.
    pending: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Most (address, user) pairs remembered; beyond it only busy or locked pairs are kept.
const MAX_TRACKED: usize = 100_000;

type PairKey = (IpAddr, String);

fn pair(addr: IpAddr, user: &str) -> PairKey {
    (
        addr,
        user.chars().take(64).collect::<String>().to_lowercase(),
    )
}

/// Failed logins per client address *and* user name (DESIGN §9, issue 13 finding 9), with a
/// growing backoff: after `max_failures` failures each further one locks the pair for 1 s,
/// 2 s, 4 s… up to `window_s`; while a guess is being checked, a pair at its limit gets no
/// second one in parallel. A success clears the pair. Someone guessing from the admin's own
/// address therefore slows only that address's guesses for that user name, for as long as
/// they keep guessing, and a login with the admin key (checked before this limiter) always
/// gets in.
pub struct LoginLimiter {
    max_failures: u32,
    max_lock: Duration,
    map: Mutex<HashMap<PairKey, Failures>>,
}

/// One login attempt let through; say how it ended ([`Attempt::failed`] or
/// [`Attempt::succeeded`]). Dropped unresolved (the request was cancelled), it counts as
/// neither.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    key: Option<PairKey>,
}

impl Attempt<'_> {
    pub fn failed(mut self) {
        if let Some(key) = self.key.take() {
            self.limiter.resolve(key, false);
        }
    }

    pub fn succeeded(mut self) {
        if let Some(key) = self.key.take() {
            self.limiter.resolve(key, true);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Some(f) = self.limiter.map.lock().get_mut(&key) {
                f.pending = f.pending.saturating_sub(1);
            }
        }
    }
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_s: u64) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            max_lock: Duration::from_secs(window_s.max(1)),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Lets a login attempt for `user` from `addr` go on to the password check, or says how
    /// many seconds the pair must wait.
    pub fn begin_attempt(&self, addr: IpAddr, user: &str) -> Result<Attempt<'_>, u64> {
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= MAX_TRACKED {
            let max_lock = self.max_lock;
            map.retain(|_, f| {
                f.pending > 0
                    || f.locked_until.is_some_and(|t| t > now)
                    || now.duration_since(f.last) < max_lock
            });
            if map.len() >= MAX_TRACKED {
                map.retain(|_, f| f.pending > 0 || f.locked_until.is_some_and(|t| t > now));
            }
        }
        let key = pair(addr, user);
        let entry = map.entry(key.clone()).or_insert(Failures {
            count: 0,
            pending: 0,
            last: now,
            locked_until: None,
        });
        if let Some(until) = entry.locked_until.filter(|t| *t > now) {
            let left = until - now;
            return Err((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1));
        }
        // A pair quiet for the longest lock starts over.
        if entry.pending == 0 && now.duration_since(entry.last) >= self.max_lock {
            entry.count = 0;
        }
        if entry.pending > 0 && entry.count + entry.pending >= self.max_failures {
            return Err(1);
        }
        entry.pending += 1;
        entry.last = now;
        Ok(Attempt {
            limiter: self,
            key: Some(key),
        })
    }

    fn resolve(&self, key: PairKey, success: bool) {
        let mut map = self.map.lock();
        if success {
            map.remove(&key);
            return;
        }
        let Some(f) = map.get_mut(&key) else {
            return;
        };
        let now = Instant::now();
        f.pending = f.pending.saturating_sub(1);
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count >= self.max_failures {
            let doublings = (f.count - self.max_failures).min(20);
            let lock = Duration::from_secs(1u64 << doublings).min(self.max_lock);
            f.locked_until = Some(now + lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_fresh_and_removable() {
        let s = Sessions::new(30);
        let (a, sa) = s.create("admin");
        let (b, _) = s.create("admin");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.touch(&a).is_some());
        assert!(sa.csrf_matches(&sa.csrf_token));
        assert!(!sa.csrf_matches("nope"));
        s.remove(&a);
        assert!(s.touch(&a).is_none());
        assert!(s.touch(&b).is_some());
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let s = Sessions::new(30);
        let (id, _) = s.create("admin");
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(s.touch_at(&id, start + 29 * minute).is_some());
        assert!(
            s.touch_at(&id, start + 58 * minute).is_some(),
            "use resets the idle clock"
        );
        assert!(
            s.touch_at(&id, start + 89 * minute).is_none(),
            "30 idle minutes end it"
        );
        assert!(
            s.touch_at(&id, start + 89 * minute).is_none(),
            "and it stays gone"
        );
    }

    #[test]
    fn limiter_blocks_after_max_failures() {
        let l = LoginLimiter::new(3, 300);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            l.begin_attempt(ip, "admin").unwrap().failed();
        }
        let wait = l.begin_attempt(ip, "admin").err().unwrap();
        assert_eq!(wait, 1, "the first lock is one second");
        // Another address, or another user name from the same address, is not affected.
        l.begin_attempt(other, "admin").unwrap().succeeded();
        l.begin_attempt(ip, "operator").unwrap().failed();
        // Parallel guesses at the limit wait for the one being checked.
        let l = LoginLimiter::new(2, 300);
        l.begin_attempt(ip, "admin").unwrap().failed();
        let checking = l.begin_attempt(ip, "admin").unwrap();
        assert_eq!(l.begin_attempt(ip, "admin").err(), Some(1));
        checking.succeeded();
        assert!(
            l.begin_attempt(ip, "Admin").is_ok(),
            "a success clears the pair"
        );
    }

    #[test]
    fn the_lock_doubles_with_each_further_failure_up_to_the_window() {
        let l = LoginLimiter::new(1, 5);
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let key = pair(ip, "admin");
        let mut locks = Vec::new();
        for _ in 0..5 {
            // Step past the lock without sleeping: clear it by hand, as time would.
            if let Some(f) = l.map.lock().get_mut(&key) {
                f.locked_until = None;
            }
            l.begin_attempt(ip, "admin").unwrap().failed();
            let f = l.map.lock();
            let until = f[&key].locked_until.unwrap();
            locks.push((until - Instant::now()).as_secs_f64().round() as u64);
        }
        assert_eq!(locks, vec![1, 2, 4, 5, 5]);
    }
}
