//! `[[proxy]]` routes (DESIGN §10): an upstream HTTP API served at `/proxy/NAME/…`, a pool
//! token injected into every forwarded request, the answer classified and reported.
//!
//! The tables are plain data, checked once at start ([`check_proxy`]) like every other
//! section; what the routes do lives in `crate::proxy` (forwarding, HTTP layer) and
//! `crate::service::proxy` (classification, service layer).

use serde::{Deserialize, Serialize};
use tokenlb_core::{OutcomeClass, Strategy};

use super::validate::{problem, range, Problem};

/// The most retries a route may ask for (each on another token).
pub const MAX_RETRIES: u32 = 10;

/// One `[[proxy]]` route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Served at `/proxy/NAME/…`; also a pool scope for scoped client keys. Required.
    pub name: String,
    /// `http(s)://host[:port][/base]`; the caller's path and query are appended. Required.
    pub upstream: String,
    /// The pool whose tokens are injected. The route's name when left out.
    #[serde(default)]
    pub pool: Option<String>,
    /// Strategy of the picks; the pool's default when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Where the token goes: `{ header = "Authorization", value = "Bearer {token}" }` or
    /// `{ query = "key" }`. Required.
    pub inject: Inject,
    /// Other tokens tried for auth / rate_limited / quota_exhausted / transient, 0..=10. 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds to wait for the upstream's answer head, and at most between two chunks of
    /// its body, 1..=3600. 60.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// How long a request waits for an eligible token before the 503, 0..=30000 ms. 0.
    #[serde(default)]
    pub wait_ms: u64,
    /// Classification rules, first match wins; the defaults apply after them.
    #[serde(default)]
    pub rules: Vec<ProxyRule>,
}

fn default_retries() -> u32 {
    2
}

fn default_timeout_s() -> u64 {
    60
}

impl ProxyConfig {
    /// The pool the route leases from.
    pub fn pool_name(&self) -> &str {
        self.pool.as_deref().unwrap_or(&self.name)
    }

    /// A route with the defaults (tests, the demo).
    pub fn new(name: &str, upstream: &str, pool: &str, inject: Inject) -> ProxyConfig {
        ProxyConfig {
            name: name.to_string(),
            upstream: upstream.to_string(),
            pool: Some(pool.to_string()),
            strategy: None,
            inject,
            retries: default_retries(),
            timeout_s: default_timeout_s(),
            wait_ms: 0,
            rules: Vec::new(),
        }
    }
}

/// Where a route puts the token: a header (`value` with `{token}` replaced; default
/// `"{token}"`) or a query parameter. Exactly one of `header` and `query`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl Inject {
    /// `header: value` with `{token}` in the value.
    pub fn header(name: &str, value: &str) -> Inject {
        Inject {
            header: Some(name.to_string()),
            value: Some(value.to_string()),
            query: None,
        }
    }

    /// `?name=<token>`.
    pub fn query(name: &str) -> Inject {
        Inject {
            query: Some(name.to_string()),
            ..Inject::default()
        }
    }
}

/// One classification rule: every condition given must hold; at least one is required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRule {
    /// `"403"`, `"500-599"` or `"4xx"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Text looked for (case-sensitive) in the first 64 KiB of the answer's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A header the answer must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Text the value of `header` must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_contains: Option<String>,
    /// The class given to a matching answer.
    pub outcome: OutcomeClass,
}

/// A status condition: `"403"`, `"500-599"`, `"4xx"`, as an inclusive range.
pub fn parse_status(text: &str) -> Option<(u16, u16)> {
    let t = text.trim();
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    if let Some(d) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        let d = d.parse::<u16>().ok().filter(|d| (1..=5).contains(d))?;
        return Some((d * 100, d * 100 + 99));
    }
    match t.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (code(lo)?, code(hi)?);
            (lo <= hi).then_some((lo, hi))
        }
        None => code(t).map(|c| (c, c)),
    }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn header_name_ok(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

/// Checks route `i` (whose name must not be in `seen`).
pub(super) fn check_proxy(
    i: usize,
    p: &ProxyConfig,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(), Problem> {
    let key = |k: &str| format!("proxy[{i}].{k}");
    if !name_ok(&p.name) {
        return Err(problem(
            key("name"),
            "route names are 1 to 64 ASCII letters, digits, _ or -",
        ));
    }
    if !seen.insert(p.name.clone()) {
        return Err(problem(
            key("name"),
            format!("{:?} names another route too", p.name),
        ));
    }
    match reqwest::Url::parse(&p.upstream) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.query().is_some() || u.fragment().is_some() {
                return Err(problem(
                    key("upstream"),
                    "must not carry a query or fragment (the caller's are appended)",
                ));
            }
        }
        Ok(_) => {
            return Err(problem(
                key("upstream"),
                "must be an http:// or https:// URL",
            ))
        }
        Err(e) => {
            return Err(problem(
                key("upstream"),
                format!("is not a valid URL ({e})"),
            ))
        }
    }
    if !name_ok(p.pool_name()) {
        return Err(problem(
            key("pool"),
            "pool names are 1 to 64 ASCII letters, digits, _ or -",
        ));
    }
    check_inject(&key("inject"), &p.inject)?;
    range(&key("retries"), p.retries, 0, MAX_RETRIES)?;
    range(&key("timeout_s"), p.timeout_s, 1, 3600)?;
    range(&key("wait_ms"), p.wait_ms, 0, crate::validate::MAX_WAIT_MS)?;
    for (j, rule) in p.rules.iter().enumerate() {
        check_rule(&key(&format!("rules[{j}]")), rule)?;
    }
    Ok(())
}

fn check_inject(key: &str, inject: &Inject) -> Result<(), Problem> {
    match (&inject.header, &inject.query) {
        (Some(h), None) => {
            if !header_name_ok(h) {
                return Err(problem(format!("{key}.header"), "must be a valid HTTP header name"));
            }
            let value = inject.value.as_deref().unwrap_or("{token}");
            if !value.contains("{token}") {
                return Err(problem(format!("{key}.value"), "must contain {token}"));
            }
            Ok(())
        }
        (None, Some(q)) => {
            if inject.value.is_some() {
                return Err(problem(format!("{key}.value"), "goes with `header`, not `query`"));
            }
            let ok = !q.is_empty()
                && q.len() <= 64
                && q.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
            if !ok {
                return Err(problem(
                    format!("{key}.query"),
                    "must be a query parameter name (letters, digits, - _ . ~)",
                ));
            }
            Ok(())
        }
        _ => Err(problem(
            key,
            "give exactly one of { header = \"…\", value = \"Bearer {token}\" } or { query = \"…\" }",
        )),
    }
}

fn check_rule(key: &str, rule: &ProxyRule) -> Result<(), Problem> {
    if rule.status.is_none() && rule.body_contains.is_none() && rule.header.is_none() {
        return Err(problem(
            key,
            "needs at least one of status, body_contains, header",
        ));
    }
    if let Some(s) = &rule.status {
        if parse_status(s).is_none() {
            return Err(problem(
                format!("{key}.status"),
                "must be a status (\"403\"), a range (\"500-599\") or a class (\"4xx\")",
            ));
        }
    }
    if rule.body_contains.as_deref() == Some("") {
        return Err(problem(format!("{key}.body_contains"), "must not be empty"));
    }
    if let Some(h) = &rule.header {
        if !header_name_ok(h) {
            return Err(problem(
                format!("{key}.header"),
                "must be a valid HTTP header name",
            ));
        }
    }
    if rule.header_contains.is_some() && rule.header.is_none() {
        return Err(problem(
            format!("{key}.header_contains"),
            "goes with `header`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<crate::config::Config, String> {
        crate::config::Config::from_toml_str(text, std::path::Path::new("t.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn routes_load_with_their_defaults_and_pools() {
        let c = load(
            "[[proxy]]\nname = \"maps\"\nupstream = \"https://maps.example.com/api\"\ninject = { query = \"key\" }\n",
        )
        .unwrap();
        let p = &c.proxy[0];
        assert_eq!(
            (p.pool_name(), p.retries, p.timeout_s, p.wait_ms),
            ("maps", 2, 60, 0)
        );
        assert!(
            c.pools.contains_key("maps"),
            "the route's pool exists after loading"
        );
    }

    #[test]
    fn bad_routes_are_refused_with_file_line_and_key() {
        let e = load("[[proxy]]\nname = \"a\"\nupstream = \"http://u\"\ninject = { query = \"k\" }\nretry = 3\n")
            .unwrap_err();
        assert!(
            e.contains("t.toml") && e.contains("line 5") && e.contains("proxy.retry"),
            "{e}"
        );
        let e =
            load("[[proxy]]\nname = \"a\"\nupstream = \"ftp://u\"\ninject = { query = \"k\" }\n")
                .unwrap_err();
        assert!(
            e.contains("t.toml") && e.contains("proxy[0].upstream"),
            "{e}"
        );
        let e = load("[[proxy]]\nname = \"a\"\nupstream = \"http://u\"\ninject = { header = \"Authorization\", value = \"Bearer\" }\n")
            .unwrap_err();
        assert!(
            e.contains("proxy[0].inject.value") && e.contains("{token}"),
            "{e}"
        );
        let e = load("[[proxy]]\nname = \"a\"\nupstream = \"http://u\"\ninject = { query = \"k\" }\nrules = [ { status = \"6xx\", outcome = \"auth\" } ]\n")
            .unwrap_err();
        assert!(e.contains("proxy[0].rules[0].status"), "{e}");
        let two = "[[proxy]]\nname = \"a\"\nupstream = \"http://u\"\ninject = { query = \"k\" }\n";
        let e = load(&format!("{two}{two}")).unwrap_err();
        assert!(e.contains("proxy[1].name"), "{e}");
    }

    #[test]
    fn status_conditions_parse() {
        assert_eq!(parse_status("403"), Some((403, 403)));
        assert_eq!(parse_status("500-599"), Some((500, 599)));
        assert_eq!(parse_status("4xx"), Some((400, 499)));
        for bad in ["", "99", "600", "5xx0", "599-500", "abc", "0xx"] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }
}
