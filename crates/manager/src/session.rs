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
    count: u32,
    window_start: Instant,
}

/// Failed logins per client address.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    map: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_s: u64) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window: Duration::from_secs(window_s.max(1)),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a login attempt from `addr` before the password is checked, so a burst of
    /// parallel guesses cannot slip past the limit while argon2 runs. `Err(seconds)` when
    /// this address must wait; a successful login clears the count ([`Self::record_success`]).
    pub fn begin_attempt(&self, addr: IpAddr) -> Result<(), u64> {
        let mut map = self.map.lock();
        let window = self.window;
        map.retain(|_, f| f.window_start.elapsed() < window);
        let entry = map.entry(addr).or_insert(Failures {
            count: 0,
            window_start: Instant::now(),
        });
        if entry.count >= self.max_failures {
            let left = window.saturating_sub(entry.window_start.elapsed());
            return Err(left.as_secs().max(1) + u64::from(left.subsec_millis() > 0));
        }
        entry.count = entry.count.saturating_add(1);
        Ok(())
    }

    pub fn record_success(&self, addr: IpAddr) {
        self.map.lock().remove(&addr);
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
            assert!(l.begin_attempt(ip).is_ok());
        }
        let wait = l.begin_attempt(ip).unwrap_err();
        assert!((1..=300).contains(&wait));
        assert!(l.begin_attempt(other).is_ok());
        l.record_success(ip);
        assert!(l.begin_attempt(ip).is_ok());
    }
}
