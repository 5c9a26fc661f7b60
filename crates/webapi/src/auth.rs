//! The web API's key: what the write routes (DESIGN §11) require; reads stay open.
//!
//! The key comes from the configuration (`--api-key` / `TOKENLB_WEBAPI_KEY`) or, when none
//! is given, from `<data_dir>/webapi-key`, generated there (mode 0600, 32 random bytes as
//! hex) on first start, like the manager's admin key. A request carries it as
//! `Authorization: Bearer KEY` or `X-API-Key: KEY`; it is compared in constant time and
//! never logged. A missing or wrong key is `401` with `WWW-Authenticate: Bearer`.

use crate::error::ApiError;
use axum::http::{header, HeaderMap, StatusCode};
use rand::RngCore;
use std::path::Path;
use subtle::ConstantTimeEq;
use tokenlb_core::Secret;

/// The key file's name inside the data dir.
pub const KEY_FILE: &str = "webapi-key";

/// Reads the key file, or creates it with a new key.
pub fn read_or_generate(data_dir: &Path) -> std::io::Result<Secret> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        let value = text.trim();
        if value.is_empty() {
            return Err(std::io::Error::other(format!(
                "the web API key file {} is empty",
                path.display()
            )));
        }
        tracing::info!(path = %path.display(), "web API key read from {}", path.display());
        return Ok(Secret::new(value));
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = hex::encode(bytes);
    write_private(&path, &value)?;
    tracing::info!(path = %path.display(), "generated the web API key; it is in {}", path.display());
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

/// The key a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let text = v.to_str().ok()?;
        return text.strip_prefix("Bearer ").map(|k| k.trim().as_bytes());
    }
    headers.get("x-api-key").map(|v| v.as_bytes())
}

/// Checks a write request's key.
pub fn require(headers: &HeaderMap, key: &Secret) -> Result<(), Unauthorized> {
    match presented(headers) {
        None => Err(Unauthorized(
            "this route changes the drive and needs the web API key \
             (Authorization: Bearer KEY or X-API-Key: KEY)",
        )),
        Some(k) if bool::from(k.ct_eq(key.expose().as_bytes())) => Ok(()),
        Some(_) => Err(Unauthorized("the web API key is wrong")),
    }
}

/// A refused key (401 with the JSON error shape and `WWW-Authenticate`, through
/// [`ApiError`]).
#[derive(Debug)]
pub struct Unauthorized(pub &'static str);

impl From<Unauthorized> for ApiError {
    fn from(u: Unauthorized) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", u.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_are_checked() {
        let key = Secret::new("k-0123456789");
        let mut h = HeaderMap::new();
        assert!(require(&h, &key).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer k-0123456789"),
        );
        assert!(require(&h, &key).is_ok());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer k-012345678"),
        );
        assert!(require(&h, &key).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k-0123456789"));
        assert!(require(&h, &key).is_ok());
    }

    #[test]
    fn the_key_file_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = read_or_generate(dir.path()).unwrap();
        let b = read_or_generate(dir.path()).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
