//! Input rules shared by the routes and the importer (DESIGN §2 limits).
//!
//! Each function returns a message fit for a 400 answer; none echoes a secret back.

/// A refused input: a message fit for a 400 answer, never echoing a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<&str> for Invalid {
    fn from(m: &str) -> Self {
        Invalid(m.to_string())
    }
}

impl From<String> for Invalid {
    fn from(m: String) -> Self {
        Invalid(m)
    }
}

/// For the importer, which collects refusals as text per entry.
impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.0
    }
}

/// Weight of a token added without one.
pub const DEFAULT_WEIGHT: u32 = 100;
pub const MAX_SECRET_LEN: usize = 4096;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_POOL_CHARS: usize = 64;
/// Longest `wait_ms` a `get` may ask for.
pub const MAX_WAIT_MS: u64 = 30_000;

pub fn secret(value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err("token must not be empty".into());
    }
    if value.len() > MAX_SECRET_LEN {
        return Err(format!("token is longer than {MAX_SECRET_LEN} bytes").into());
    }
    if value.chars().any(char::is_control) {
        return Err("token must not contain control characters".into());
    }
    if value.trim() != value {
        return Err("token must not start or end with whitespace".into());
    }
    Ok(())
}

/// What an imported token must look like in its pool, so a bulk import cannot slip junk
/// into rotation (issue 14: `short`, `has space in it 1234567890` and `{"token":"x"}`
/// imported as tokens). Refusals name the rule, never the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRules {
    /// 16 to 4,096 characters, none of them whitespace or control characters.
    Generic,
    /// Wopan's shape: UUID text such as `c3f0362b-0000-4997-a9c2-0478702a5fea`.
    Wopan,
}

/// Shortest token the generic rule accepts.
pub const MIN_TOKEN_CHARS: usize = 16;

impl TokenRules {
    /// The rules of a pool checked with `kind`: Wopan pools take Wopan tokens.
    pub fn for_health(kind: crate::config::HealthKind) -> TokenRules {
        match kind {
            crate::config::HealthKind::Wopan => TokenRules::Wopan,
            _ => TokenRules::Generic,
        }
    }

    /// Checks `value` (already through [`secret`]).
    pub fn check(self, value: &str) -> Result<(), String> {
        match self {
            TokenRules::Generic => {
                let n = value.chars().count();
                if n < MIN_TOKEN_CHARS {
                    return Err(format!(
                        "token has {n} characters; tokens have at least {MIN_TOKEN_CHARS}"
                    ));
                }
                if value.chars().any(char::is_whitespace) {
                    return Err("token contains whitespace".to_string());
                }
                if value.starts_with('{') || value.starts_with('[') {
                    return Err(
                        "this looks like JSON, not a token (a tokens.json file must start with {)"
                            .to_string(),
                    );
                }
                Ok(())
            }
            TokenRules::Wopan => {
                let uuid = value.len() == 36
                    && value.char_indices().all(|(i, c)| match i {
                        8 | 13 | 18 | 23 => c == '-',
                        _ => c.is_ascii_hexdigit(),
                    });
                if uuid {
                    Ok(())
                } else {
                    Err("not a Wopan token: Wopan tokens are UUID text such as c3f0362b-0000-4997-a9c2-0478702a5fea".to_string())
                }
            }
        }
    }
}

pub fn name(value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name is longer than {MAX_NAME_CHARS} characters").into());
    }
    if value.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}

pub fn pool_name(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= MAX_POOL_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pool must be 1–{MAX_POOL_CHARS} characters of letters, digits, '_', '-' or '.'"
        )
        .into())
    }
}

pub fn weight(value: u32) -> Result<(), Invalid> {
    if (1..=1000).contains(&value) {
        Ok(())
    } else {
        Err("weight must be between 1 and 1000".into())
    }
}

/// Per-token limits: each one, when set, must be at least 1 (0 would make the token
/// unusable; unlimited is "not set").
pub fn limits(value: &tokenlb_core::Limits) -> Result<(), Invalid> {
    if value.rpm == Some(0) {
        return Err("limits.rpm must be at least 1 (omit it for no limit)".into());
    }
    if value.max_in_flight == Some(0) {
        return Err("limits.max_in_flight must be at least 1 (omit it for no limit)".into());
    }
    Ok(())
}

/// Runs of at least this many token-like characters in an error sample are masked.
const OPAQUE_RUN: usize = 24;
/// Characters of a reported error looked at (the pool keeps at most 300 of the result, after
/// cutting out the token's own secret).
const MAX_SAMPLE_INPUT: usize = 1000;

/// A reported error sample (DESIGN §9): control characters dropped, then every run of at
/// least [`OPAQUE_RUN`] key-like characters (letters and digits with `-_.=+~`; a `/` or `:`
/// inside such a run does not end it, so `abc/def…` is one run) masked as `abcd…wxyz`. In a
/// URL (`scheme://host/path`) the host and each path segment count on their own, so they
/// stay readable for diagnosis while a long opaque segment is still masked. The token's own
/// secret, whatever its length, is cut out by the pool that knows it.
pub fn error_sample(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SAMPLE_INPUT)
        .collect();
    let key_like = |c: char| c.is_alphanumeric() || "-_.=+~/:".contains(c);
    let mut out = String::with_capacity(clean.len());
    let mut run = String::new();
    for c in clean.chars() {
        if key_like(c) {
            run.push(c);
        } else {
            push_run(&run, &mut out);
            run.clear();
            out.push(c);
        }
    }
    push_run(&run, &mut out);
    out
}

/// One run of key-like characters, masked as [`error_sample`] says.
fn push_run(run: &str, out: &mut String) {
    if run.chars().count() < OPAQUE_RUN {
        out.push_str(run);
        return;
    }
    let Some((scheme, rest)) = run.split_once("://") else {
        out.push_str(&tokenlb_core::secret::mask(run));
        return;
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
    {
        out.push_str(&tokenlb_core::secret::mask(run));
        return;
    }
    out.push_str(scheme);
    out.push_str("://");
    for (i, segment) in rest.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.chars().count() >= OPAQUE_RUN {
            out.push_str(&tokenlb_core::secret::mask(segment));
        } else {
            out.push_str(segment);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused() {
        use tokenlb_core::Limits;
        assert!(limits(&Limits::default()).is_ok());
        assert!(limits(&Limits {
            rpm: Some(1),
            max_in_flight: Some(1)
        })
        .is_ok());
        assert!(limits(&Limits {
            rpm: Some(0),
            max_in_flight: None
        })
        .is_err());
        assert!(limits(&Limits {
            rpm: None,
            max_in_flight: Some(0)
        })
        .is_err());
    }

    #[test]
    fn rules() {
        assert!(secret("abc").is_ok());
        assert!(secret("").is_err());
        assert!(secret("a\nb").is_err());
        assert!(secret(&"x".repeat(4097)).is_err());
        assert!(name("主Token").is_ok());
        assert!(name(" ").is_err());
        assert!(name(&"名".repeat(201)).is_err());
        assert!(pool_name("default").is_ok());
        assert!(pool_name("a b").is_err());
        assert!(weight(0).is_err() && weight(1001).is_err() && weight(1000).is_ok());
        assert_eq!(error_sample("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(
            error_sample("HTTP 401: token c3f0362b-0000-4997-a9c2-0478702a5fea rejected"),
            "HTTP 401: token c3f0…5fea rejected"
        );
        assert_eq!(
            error_sample("connection refused (os error 111)"),
            "connection refused (os error 111)"
        );
    }

    /// DESIGN §9, issue 13 finding 6: a `/` inside a key-like run does not split it into
    /// short, unmasked pieces; URLs keep their host and path readable.
    #[test]
    fn slashes_do_not_split_secrets_and_urls_stay_readable() {
        let slashed = "AbCd/EfGh/IjKl/MnOp/QrSt/UvWx";
        let out = error_sample(&format!("upstream said: bad key {slashed}"));
        assert!(!out.contains("EfGh/IjKl"), "{out}");
        assert!(out.starts_with("upstream said: bad key AbCd…"), "{out}");
        let url = "GET https://panservice.mail.wo.cn/wohome/dispatcher failed: 502";
        assert_eq!(error_sample(url), url);
        let leaky = format!("GET https://pan.example/api/{} failed", "k".repeat(40));
        let out = error_sample(&leaky);
        assert!(
            out.starts_with("GET https://pan.example/api/kkkk…kkkk"),
            "{out}"
        );
        assert!(!out.contains(&"k".repeat(9)), "{out}");
        assert!(error_sample(&"x ".repeat(2000)).chars().count() <= 1000);
    }
}
