//! Who may call what (DESIGN §3): the admin key, client keys, the admin password, and the
//! two extractors handlers use to demand them.
//!
//! - [`AdminAuth`] guards management routes: `Authorization: Bearer <admin key>`, or an admin
//!   session cookie — which must bring `X-CSRF-Token` on state-changing methods.
//! - [`ClientAuth`] guards get/report/stats: a client key (or the admin key, or an admin
//!   session) when client keys are configured; with none configured, loopback peers only.
//!
//! Keys are compared in constant time on their SHA-256 digests, so neither content nor
//! length leaks through timing. Secrets that are not configured are generated on first start
//! into 0600 files in the data dir; the log names the file, never the value. The password is
//! kept only as an argon2 hash and verified on a blocking thread.

use crate::config::Config;
use crate::error::ApiError;
use crate::session::{LoginLimiter, Sessions};
use crate::session::{Session, COOKIE_NAME};
use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
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
}

impl Auth {
    pub fn new(config: &Config, keys: Keys) -> Auth {
        let admin = &config.admin;
        Auth {
            keys,
            sessions: Sessions::new(admin.session_idle_minutes),
            login_limiter: LoginLimiter::new(admin.login_max_failures, admin.login_window_s),
            cookie_secure: admin.cookie_secure,
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
        if let Err(wait) = self.login_limiter.begin_attempt(ip) {
            tracing::warn!(client = %ip, "login refused: too many failed attempts");
            let message = format!("too many failed logins; try again in {wait} s");
            return Err(
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
                    .with_retry_after(wait),
            );
        }
        let ok = password.len() <= MAX_PASSWORD_BYTES
            && self.keys.verify_login(username, password).await;
        if !ok {
            tracing::warn!(client = %ip, "failed admin login");
            let message = "wrong user name or password";
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                message,
            ));
        }
        self.login_limiter.record_success(ip);
        if let Some(old) = old {
            self.sessions.remove(&old);
        }
        tracing::info!(client = %ip, "admin logged in");
        Ok(self.sessions.create(&self.keys.admin_user))
    }
}

/// The configured or generated credentials.
pub struct Keys {
    pub admin_user: String,
    admin_key: Secret,
    client_keys: Vec<Secret>,
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
            client_keys: config.client_keys.clone(),
            password_hash,
        })
    }

    pub fn is_admin_key(&self, presented: &str) -> bool {
        secrets_equal(self.admin_key.expose(), presented)
    }

    pub fn is_client_key(&self, presented: &str) -> bool {
        // Check every key so the time taken does not say which one matched.
        self.client_keys
            .iter()
            .fold(false, |hit, k| secrets_equal(k.expose(), presented) | hit)
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
        .map(|ci| ci.0.ip())
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
            .get("x-csrf-token")
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

/// A caller allowed on the client routes (get, report, stats).
#[derive(Debug, Clone, Copy)]
pub struct ClientAuth;

impl<S: Send + Sync> FromRequestParts<S> for ClientAuth
where
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Auth>::from_ref(state);
        let keyed = auth.keys.has_client_keys();
        if let Some(key) = bearer(parts)? {
            if auth.keys.is_admin_key(&key) || auth.keys.is_client_key(&key) {
                return Ok(ClientAuth);
            }
            if keyed {
                return Err(ApiError::unauthorized("wrong client key"));
            }
        }
        if session_auth(&auth, parts)?.is_some() {
            return Ok(ClientAuth);
        }
        if keyed {
            return Err(ApiError::unauthorized(
                "this route needs a client key (Authorization: Bearer <key>)",
            ));
        }
        match peer_ip(parts) {
            Some(ip) if ip.to_canonical().is_loopback() => Ok(ClientAuth),
            _ => Err(ApiError::unauthorized(
                "no client keys are configured, so only loopback clients may call this route",
            )),
        }
    }
}

/// The client's address, for the login limiter (`None` when unknown).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(peer_ip(parts)))
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
