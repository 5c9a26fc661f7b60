//! The server-side (Lua) parts of cluster mode and the key layout.
//!
//! Keys, all under the cluster's prefix `P`:
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:feed` | pub/sub channel | state changes, token add/remove/patch, forwarded reports |
//! | `P:state` | hash token → JSON | the last published state of each token, with its deadline |
//! | `P:rr:POOL` | integer | the pool's rotation cursor (`INCR`) |
//! | `P:rpm:TOKEN:MINUTE` | integer | leases of the token in that minute (expires after 2 min) |
//! | `P:inflight:TOKEN` | sorted set lease → deadline | open leases of the token |
//! | `P:lease:LEASE` | string | `token \t pool \t owner \t kind` until the lease's deadline |
//! | `P:ctr:TOKEN` | hash class → count | cluster-wide outcome counters |
//!
//! [`ADMIT`] makes the rate-limit and in-flight decisions atomic on the server: two managers
//! asking at once for the last request of a minute cannot both get it. Expired leases leave
//! the in-flight set by their score, so a crashed instance's leases free themselves.
//! The scripts build key names from the prefix they are given (single Redis or a primary
//! with replicas; Redis Cluster sharding is not supported).

use std::sync::LazyLock;

/// KEYS: rpm counter, in-flight set, lease key. ARGV: rpm limit (0 = none), in-flight limit
/// (0 = none), now, lease deadline, lease TTL ms, lease record, lease id.
/// Returns 0 (admitted), 1 (rpm used up this minute) or 2 (in-flight limit reached).
pub static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local rpm = tonumber(ARGV[1])
local mif = tonumber(ARGV[2])
if mif > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
  if redis.call('ZCARD', KEYS[2]) >= mif then return 2 end
end
if rpm > 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], 120000) end
  if n > rpm then
    redis.call('DECR', KEYS[1])
    return 1
  end
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]) + 60000)
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[5])
return 0
"#,
    )
});

/// KEYS: lease key. ARGV: prefix, lease id. Deletes the lease and frees its in-flight slot;
/// returns its record, or nil when it is unknown (already reported or expired).
pub static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
local token = string.match(v, '^([^\t]*)')
redis.call('ZREM', ARGV[1] .. ':inflight:' .. token, ARGV[2])
return v
"#,
    )
});

/// What [`ADMIT`] answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Ok,
    RateFull,
    InFlightFull,
}

impl Admit {
    pub fn from_code(code: i64) -> Admit {
        match code {
            0 => Admit::Ok,
            1 => Admit::RateFull,
            _ => Admit::InFlightFull,
        }
    }
}

/// A lease record as [`ADMIT`] stores it and [`RELEASE`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub token: String,
    pub pool: String,
    pub owner: String,
    /// True when the owner holds a core lease (non-rotation strategies).
    pub core: bool,
}

impl LeaseRecord {
    pub fn encode(&self) -> String {
        let kind = if self.core { "core" } else { "rr" };
        format!("{}\t{}\t{}\t{kind}", self.token, self.pool, self.owner)
    }

    pub fn decode(text: &str) -> Option<LeaseRecord> {
        let mut it = text.split('\t');
        let (token, pool, owner, kind) = (it.next()?, it.next()?, it.next()?, it.next()?);
        Some(LeaseRecord {
            token: token.to_string(),
            pool: pool.to_string(),
            owner: owner.to_string(),
            core: kind == "core",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_round_trip() {
        let r = LeaseRecord {
            token: "t_abc".into(),
            pool: "default".into(),
            owner: "0badcafe".into(),
            core: true,
        };
        assert_eq!(LeaseRecord::decode(&r.encode()), Some(r));
        assert_eq!(LeaseRecord::decode("t_abc\tdefault"), None);
        assert_eq!(Admit::from_code(0), Admit::Ok);
        assert_eq!(Admit::from_code(1), Admit::RateFull);
        assert_eq!(Admit::from_code(2), Admit::InFlightFull);
    }
}
