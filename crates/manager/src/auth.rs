//! Who may call what (DESIGN §3): the admin key, client keys, the admin password, and the
//! two extractors handlers use to demand them.
//!
//! - [`AdminAuth`] guards management routes: `Authorization: Bearer <admin key>`, or an admin
//!   session cookie — which must bring `X-CSRF-Token` on state-changing methods.
//! - [`ClientAuth`] guards get/report/stats: a client key (or the admin key, or an admin
//!   session) when client keys are configured; with none configured, direct loopback peers
//!   only (DESIGN §9: a request carrying `Forwarded`, `X-Forwarded-For` or `X-Real-IP` is not
//!   direct, unless it comes from one of `trusted_proxies`, whose headers then give the
//!   client's address). It carries the caller's [`Scope`] (pools, report form) to the
//!   service.
//!
//! Keys are compared in constant time on their SHA-256 digests, so neither content nor
//! length leaks through timing. Secrets that are not configured are generated on first start
//! into 0600 files in the data dir; the log names the file, never the value. The password is
//! kept only as an argon2 hash and verified on a blocking thread.

use crate::config::{ClientKey, Config};
use crate::error::ApiError;
use crate::service::Scope;
use crate::session::{LoginLimiter, Sessions};
use crate::session::{Session, COOKIE_NAME};
use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, Method, StatusCode};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokenlb_core::Secret;

/// Who may call what: keys, admin sessions, the failed-login limiter.
pub struct Auth {
    pub keys: Keys,
    pub sessions: Sessions,
    pub login_limiter: LoginLimiter,
    /// Session cookies get `Secure` (the UI is served over HTTPS by a proxy).
    pub cookie_secure: bool,
    /// Peers whose forwarded headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Auth {
    pub fn new(config: &Config, keys: Keys) -> Auth {
        let admin = &config.admin;
        Auth {
            keys,
            sessions: Sessions::new(admin.session_idle_minutes),
            login_limiter: LoginLimiter::new(admin.login_max_failures, admin.login_window_s),
            cookie_secure: admin.cookie_secure,
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

const MAX_PASSWORD_BYTES: usize = 1024;

impl Auth {
    /// A login attempt from `ip`: the failure limiter first (429 + Retry-After), then the
    /// password against its argon2 hash. Success drops the browser's old session and issues
    /// a fresh one (no session fixation): its id and the session.
    pub async fn login(
        &self,
        ip: std::net::IpAddr,
        username: &str,
        password: String,
        old: Option<String>,
    ) -> Result<(String, crate::session::Session), ApiError> {
        // The admin key as the password always gets in: it cannot be guessed, so a limit
        // someone else ran up on this address must not lock the operator out.
        let with_key = password.len() <= MAX_PASSWORD_BYTES
            && secrets_equal(&self.keys.admin_user, username)
            && self.keys.is_admin_key(&password);
        if with_key {
            tracing::info!(client = %ip, "admin logged in with the admin key");
            return Ok(self.fresh_session(old));
        }
        let attempt = match self.login_limiter.begin_attempt(ip, username) {
            Ok(attempt) => attempt,
            Err(wait) => {
                tracing::warn!(client = %ip, "login refused: too many failed attempts");
                let message = format!("too many failed logins for this user from this address; try again in {wait} s (the admin key, given as the password, always signs in)");
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    message,
                )
                .with_retry_after(wait));
            }
        };
        let ok = password.len() <= MAX_PASSWORD_BYTES
            && self.keys.verify_login(username, password).await;
        if !ok {
            attempt.failed();
            tracing::warn!(client = %ip, "failed admin login");
            let message = "wrong user name or password";
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                message,
            ));
        }
        attempt.succeeded();
        tracing::info!(client = %ip, "admin logged in");
        Ok(self.fresh_session(old))
    }

    /// Drops the browser's old session (no session fixation) and issues a new one.
    fn fresh_session(&self, old: Option<String>) -> (String, crate::session::Session) {
        if let Some(old) = old {
            self.sessions.remove(&old);
        }
        self.sessions.create(&self.keys.admin_user)
    }
}

/// The configured or generated credentials.
pub struct Keys {
    pub admin_user: String,
    admin_key: Secret,
    client_keys: Vec<(Secret, Scope)>,
    /// PHC string of the admin password's argon2 hash.
    password_hash: String,
}

/// Constant-time equality of two secrets (compares SHA-256 digests).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let da = Sha256::digest(a.as_bytes());
    let db = Sha256::digest(b.as_bytes());
    bool::from(da.ct_eq(&db))
}

impl Keys {
    /// Reads or generates the admin key and password; hashes the password.
    pub fn load(config: &crate::config::Config) -> anyhow::Result<Keys> {
        let dir = &config.data_dir;
        let admin_key = match &config.admin.key {
            Some(k) => k.clone(),
            None => read_or_generate(&dir.join("admin-key"), "admin key", || random_b64(32))?,
        };
        let password = match &config.admin.password {
            Some(p) => p.clone(),
            None => read_or_generate(&dir.join("admin-password"), "admin password", || {
                random_b64(18)
            })?,
        };
        let password_hash = hash_password(password.expose())?;
        Ok(Keys {
            admin_user: config.admin.user.clone(),
            admin_key,
            client_keys: config
                .client_keys
                .iter()
                .map(|k: &ClientKey| (k.key.clone(), Scope::key(k)))
                .collect(),
            password_hash,
        })
    }

    pub fn is_admin_key(&self, presented: &str) -> bool {
        secrets_equal(self.admin_key.expose(), presented)
    }

    /// The scope of the client key `presented` is, if it is one.
    pub fn client_key(&self, presented: &str) -> Option<Scope> {
        // Check every key so the time taken does not say which one matched.
        self.client_keys.iter().fold(None, |hit, (k, scope)| {
            let equal = secrets_equal(k.expose(), presented);
            if equal && hit.is_none() {
                Some(scope.clone())
            } else {
                hit
            }
        })
    }

    pub fn has_client_keys(&self) -> bool {
        !self.client_keys.is_empty()
    }

    /// Verifies user and password on a blocking thread (argon2 is deliberately slow).
    pub async fn verify_login(&self, username: &str, password: String) -> bool {
        let user_ok = secrets_equal(&self.admin_user, username);
        let hash = self.password_hash.clone();
        let pass_ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        user_ok & pass_ok
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the admin password: {e}"))
}

/// Reads a secret file, or creates it (mode 0600) with a generated value.
fn read_or_generate(
    path: &Path,
    what: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<Secret> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
        let value = text.trim();
        anyhow::ensure!(
            !value.is_empty(),
            "the {what} file {} is empty",
            path.display()
        );
        tracing::info!(path = %path.display(), "{what} read from {}", path.display());
        return Ok(Secret::new(value));
    }
    let value = generate();
    write_private(path, &value)
        .with_context(|| format!("cannot write the {what} file {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the {what}; it is in {}", path.display());
    Ok(Secret::new(value))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The peer's address: the connection's, as the accept loop recorded it.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_canonical())
}

/// Where a request says it was forwarded from. Typed names: a `&str` name is parsed into a
/// header name on every lookup, which cost more than the rest of the check.
const FORWARDED_HEADERS: [HeaderName; 3] = [
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-real-ip"),
];
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const X_CSRF_TOKEN: HeaderName = HeaderName::from_static("x-csrf-token");

/// Which of the headers [`ClientAuth`] reads a request carries, from one pass over its
/// header names: a service's request has a handful of headers and none of these, and the
/// pass costs less than one of the seven hashed lookups it saves (about 1,000 instructions
/// of every `get`). A request with many headers gets the lookups, as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Present {
    authorization: bool,
    cookie: bool,
    forwarded: bool,
    /// `Origin` or `Sec-Fetch-Site` (what [`refuse_browser`] reads).
    browser: bool,
}

impl Present {
    const ALL: Present = Present {
        authorization: true,
        cookie: true,
        forwarded: true,
        browser: true,
    };

    fn scan(headers: &axum::http::HeaderMap) -> Present {
        if headers.keys_len() > 16 {
            return Present::ALL;
        }
        let mut p = Present {
            authorization: false,
            cookie: false,
            forwarded: false,
            browser: false,
        };
        for name in headers.keys() {
            if *name == header::AUTHORIZATION {
                p.authorization = true;
            } else if *name == header::COOKIE {
                p.cookie = true;
            } else if FORWARDED_HEADERS.contains(name) {
                p.forwarded = true;
            } else if *name == header::ORIGIN || *name == SEC_FETCH_SITE {
                p.browser = true;
            }
        }
        p
    }
}

/// Who the client is (DESIGN §9). From a peer in `trusted`, the address its forwarded
/// headers name: the nearest `X-Forwarded-For` entry that is not itself a trusted proxy, else
/// `Forwarded: for=`, else `X-Real-IP`, else the peer. From any other peer, the peer, and
/// whether the request carried forwarded headers (which make it not direct).
pub fn client_of(parts: &Parts, trusted: &[ipnet::IpNet]) -> Client {
    let forwarded = FORWARDED_HEADERS
        .iter()
        .any(|h| parts.headers.contains_key(h));
    client_given(parts, trusted, forwarded)
}

/// [`client_of`] once whether forwarded headers are present is known.
fn client_given(parts: &Parts, trusted: &[ipnet::IpNet], forwarded: bool) -> Client {
    let peer = peer_ip(parts);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    match peer {
        Some(p) if forwarded && is_trusted(&p) => {
            let named = forwarded_for(parts, &is_trusted);
            Client {
                ip: Some(named.unwrap_or(p)),
                direct: true,
            }
        }
        _ => Client {
            ip: peer,
            direct: !forwarded,
        },
    }
}

/// A client as [`client_of`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<IpAddr>,
    /// Not relayed by an untrusted proxy (no forwarded headers, or a trusted proxy's).
    pub direct: bool,
}

impl Client {
    /// What the loopback rule accepts: a direct client on a loopback address.
    pub fn is_local(&self) -> bool {
        self.direct && self.ip.is_some_and(|ip| ip.is_loopback())
    }
}

fn forwarded_for(parts: &Parts, is_trusted: &dyn Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let header = |name: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let xff = header("x-forwarded-for");
    if !xff.is_empty() {
        // Right to left: the first address our trusted proxies did not add themselves. A
        // malformed entry stops the walk (anything left of it is the client's to invent).
        for entry in xff.iter().rev() {
            let ip = parse_node(entry)?;
            if !is_trusted(&ip) {
                return Some(ip);
            }
        }
        return None;
    }
    let forwarded = header("forwarded");
    for element in forwarded.iter().rev() {
        for pair in element.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k.eq_ignore_ascii_case("for") {
                    let ip = parse_node(v.trim_matches('"'))?;
                    if !is_trusted(&ip) {
                        return Some(ip);
                    }
                }
            }
        }
    }
    header("x-real-ip").first().and_then(|v| parse_node(v))
}

/// An address from a forwarded header: `1.2.3.4`, `1.2.3.4:5`, `[::1]`, `[::1]:5`, `::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match text.strip_prefix("Bearer ") {
        Some(key) => Ok(Some(key.trim().to_string())),
        None => Err(ApiError::unauthorized(
            "Authorization must be \"Bearer <key>\"",
        )),
    }
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A valid session from the cookie, with the CSRF rule applied. `Ok(None)` = no session.
fn session_auth(auth: &Auth, parts: &Parts) -> Result<Option<Session>, ApiError> {
    let Some(id) = session_cookie(parts) else {
        return Ok(None);
    };
    let Some(session) = auth.sessions.touch(&id) else {
        return Ok(None);
    };
    if is_unsafe(&parts.method) {
        let presented = parts
            .headers
            .get(X_CSRF_TOKEN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session.csrf_matches(presented) {
            return Err(ApiError::forbidden(
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
    }
    Ok(Some(session))
}

/// How an admin request was authenticated.
#[derive(Debug, Clone)]
pub enum AdminAuth {
    Key,
    Session(Session),
}

impl<S: Send + Sync> FromRequestParts<S> for AdminAuth
where
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Auth>::from_ref(state);
        if let Some(key) = bearer(parts)? {
            return if auth.keys.is_admin_key(&key) {
                Ok(AdminAuth::Key)
            } else {
                Err(ApiError::unauthorized("wrong admin key"))
            };
        }
        match session_auth(&auth, parts)? {
            Some(session) => Ok(AdminAuth::Session(session)),
            None => Err(ApiError::unauthorized(
                "this route needs the admin key (Authorization: Bearer <key>) or an admin session",
            )),
        }
    }
}

/// A caller allowed on the client routes (get, report, stats), with what it may do.
#[derive(Debug, Clone)]
pub struct ClientAuth(pub Scope);

impl<S: Send + Sync> FromRequestParts<S> for ClientAuth
where
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Auth>::from_ref(state);
        let keyed = auth.keys.has_client_keys();
        let present = Present::scan(&parts.headers);
        if let Some(key) = present
            .authorization
            .then(|| bearer(parts))
            .transpose()?
            .flatten()
        {
            if auth.keys.is_admin_key(&key) {
                return Ok(ClientAuth(Scope::admin()));
            }
            if let Some(scope) = auth.keys.client_key(&key) {
                return Ok(ClientAuth(scope));
            }
            if keyed {
                return Err(ApiError::unauthorized("wrong client key"));
            }
        }
        if present.cookie && session_auth(&auth, parts)?.is_some() {
            return Ok(ClientAuth(Scope::admin()));
        }
        if keyed {
            return Err(ApiError::unauthorized(
                "this route needs a client key (Authorization: Bearer <key>)",
            ));
        }
        let client = client_given(parts, &auth.trusted_proxies, present.forwarded);
        if client.is_local() {
            if present.browser {
                refuse_browser(parts)?;
            }
            return Ok(ClientAuth(Scope::loopback()));
        }
        Err(ApiError::unauthorized(if client.direct {
            "no client keys are configured, so only loopback clients may call this route"
        } else {
            "this request was forwarded by a proxy that is not in trusted_proxies, so it counts as remote: present a client key, or add the proxy to trusted_proxies"
        }))
    }
}

/// The seed's `add` and `remove`: the admin (key or session), or, with no client keys
/// configured, a service under the loopback rule (the seed's "`/api/*` needs no
/// authentication for service calls", DESIGN §9). A client key does not grant them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedAdminAuth {
    /// The admin (key or session).
    Admin,
    /// A service on this machine, under the loopback rule.
    Loopback,
}

impl SeedAdminAuth {
    /// Who, for the event: `None` for the admin.
    pub fn by(self) -> Option<String> {
        match self {
            SeedAdminAuth::Admin => None,
            SeedAdminAuth::Loopback => Some("a service on this machine (loopback)".to_string()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SeedAdminAuth
where
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Auth>::from_ref(state);
        let open = !auth.keys.has_client_keys()
            && bearer(parts)?.is_none()
            && session_cookie(parts).is_none()
            && client_of(parts, &auth.trusted_proxies).is_local();
        if open {
            refuse_browser(parts)?;
            return Ok(SeedAdminAuth::Loopback);
        }
        AdminAuth::from_request_parts(parts, state)
            .await
            .map(|_| SeedAdminAuth::Admin)
    }
}

/// The loopback rule is for services on this machine, not for web pages in the operator's
/// browser: a request a browser marks as coming from a page (`Origin`, or `Sec-Fetch-Site`
/// other than `none`) must sign in like the admin UI does. curl, the clients and the web API
/// send neither header.
fn refuse_browser(parts: &Parts) -> Result<(), ApiError> {
    let site = parts
        .headers
        .get(SEC_FETCH_SITE)
        .and_then(|v| v.to_str().ok());
    if parts.headers.contains_key(header::ORIGIN) || site.is_some_and(|s| s != "none") {
        return Err(ApiError::forbidden(
            "browser_origin",
            "a web page may not use the loopback rule: sign in to the admin UI, or send a key",
        ));
    }
    Ok(())
}

/// The client's address, for the login limiter and logs (`None` when unknown): the peer,
/// or what a trusted proxy's headers name ([`client_of`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp
where
    Arc<Auth>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Auth>::from_ref(state);
        Ok(PeerIp(client_of(parts, &auth.trusted_proxies).ip))
    }
}

/// The session cookie's id, if the request carries one (valid or not).
#[derive(Debug, Clone)]
pub struct SessionCookie(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SessionCookie(session_cookie(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn with(names: &[&str]) -> Present {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1"));
        for n in names {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
        }
        Present::scan(&h)
    }

    /// The one-pass scan sees every header the access checks read, in any spelling, and
    /// falls back to "everything present" (the lookups) for a request with many headers.
    #[test]
    fn the_scan_sees_what_the_lookups_would() {
        let none = with(&["user-agent", "accept"]);
        assert_eq!(
            none,
            Present {
                authorization: false,
                cookie: false,
                forwarded: false,
                browser: false
            }
        );
        assert!(with(&["Authorization"]).authorization);
        assert!(with(&["COOKIE"]).cookie);
        for f in ["Forwarded", "X-Forwarded-For", "x-real-ip"] {
            let p = with(&[f]);
            assert!(p.forwarded && !p.browser && !p.cookie, "{f}");
        }
        assert!(with(&["Origin"]).browser);
        assert!(with(&["Sec-Fetch-Site"]).browser);
        let many: Vec<String> = (0..20).map(|i| format!("x-h{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(with(&many), Present::ALL);
    }
}
