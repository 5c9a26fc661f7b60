//! Encryption at rest for token secrets, and keyed fingerprints for lookups by value.
//!
//! Every secret is sealed with AES-256-GCM under a fresh random 96-bit nonce and stored as
//! `v1:` + base64(nonce ‖ ciphertext ‖ tag). The token id is the associated data, so a
//! ciphertext copied onto another row does not decrypt. The version prefix lets a later format
//! live beside this one.
//!
//! Finding a token by its value (duplicate checks, merge by value) needs something the database
//! can index; a plain SHA-256 of a token would let anyone holding the file confirm a guessed
//! token. So the index holds an HMAC-SHA256 under a subkey derived from the master key: without
//! the key the fingerprints say nothing. The AES key and the HMAC key are both derived from the
//! master key with distinct labels, so neither use weakens the other.
//!
//! The master key comes from configuration (base64 of 32 bytes) or from `secret.key` in the data
//! directory, generated on first start and written atomically with mode 0600 (see the `keyfile` module).

pub(crate) mod keyfile;

pub use keyfile::KeySource;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};
use tokenlb_core::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Length of the master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes of the MAC a fingerprint keeps (see [`Cipher::fingerprint`]).
const FINGERPRINT_BYTES: usize = 16;
const PREFIX: &str = "v1:";

/// Errors of key handling and of sealing/opening values. Messages never contain a key or a
/// secret: only lengths, paths and causes.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid encryption key: {0}")]
    InvalidKey(String),
    #[error("key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}: {reason}")]
    KeyFileContents { path: PathBuf, reason: String },
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// The key that seals secrets at rest. Cheap to clone; `Debug` shows only a key id.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
    fingerprint_key: [u8; 32],
    key_id: String,
}

impl Cipher {
    /// A cipher from the raw 32-byte master key.
    pub fn from_key_bytes(key: &[u8; KEY_LEN]) -> Cipher {
        let enc = derive(key, b"tokenlb aes-256-gcm v1");
        let fingerprint_key = derive(key, b"tokenlb fingerprint v1");
        let key_id = hex::encode(&derive(key, b"tokenlb key id v1")[..4]);
        Cipher {
            aead: Aes256Gcm::new(&enc.into()),
            fingerprint_key,
            key_id,
        }
    }

    /// A cipher from base64 of 32 bytes (config `encryption_key`, `TOKENLB_ENCRYPTION_KEY`).
    /// Surrounding whitespace is ignored; the error says what is wrong, never the value.
    pub fn from_key_b64(value: &str) -> Result<Cipher, CryptoError> {
        // The decoder's own message names the offending character and its offset: a piece of
        // the key. Say only what kind of problem it is.
        let bytes = B64.decode(value.trim()).map_err(|_| {
            CryptoError::InvalidKey("not valid base64; expected base64 of 32 bytes".into())
        })?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            CryptoError::InvalidKey(format!(
                "decodes to {} bytes; expected 32 (generate one with `openssl rand -base64 32`)",
                bytes.len()
            ))
        })?;
        Ok(Cipher::from_key_bytes(&key))
    }

    /// A fresh random key, as the cipher and as the base64 text to store or print.
    pub fn generate() -> (Cipher, Secret) {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        (Cipher::from_key_bytes(&key), Secret::new(B64.encode(key)))
    }

    /// The configured key if there is one; else `data_dir/secret.key`, created with mode 0600
    /// (and the directory with it) when absent. [`KeySource`] says which, for a log line.
    pub fn load_or_create(
        data_dir: &Path,
        configured: Option<&Secret>,
    ) -> Result<(Cipher, KeySource), CryptoError> {
        keyfile::load_or_create(data_dir, configured)
    }

    /// A short public id of the key (8 hex digits of a keyed hash), to tell keys apart in logs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seals `plain`, bound to `context` (the token id): `v1:` + base64(nonce ‖ ciphertext).
    pub fn encrypt(&self, plain: &Secret, context: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        // ThreadRng: a CSPRNG seeded (and reseeded) from the OS, without a getrandom system
        // call per value (an import of 1,000,000 tokens made a million of them).
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain.expose().as_bytes(),
            aad: context.as_bytes(),
        };
        let sealed = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Encrypt("value too long".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// Opens a value sealed by [`Cipher::encrypt`] with the same `context`. Fails with
    /// `Decrypt` on a wrong key, a different context, or any change to the stored text.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<Secret, CryptoError> {
        let body = stored
            .strip_prefix(PREFIX)
            .ok_or_else(|| CryptoError::Decrypt("unknown format (no v1: prefix)".into()))?;
        let raw = B64
            .decode(body)
            .map_err(|_| CryptoError::Decrypt("stored value is not valid base64".into()))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Decrypt("stored value is truncated".into()));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: context.as_bytes(),
        };
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                CryptoError::Decrypt(format!(
                    "authentication failed for {context} (wrong key, key id {}, or corrupt data)",
                    self.key_id
                ))
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CryptoError::Decrypt("decrypted value is not UTF-8".into()))
    }

    /// A keyed fingerprint of a secret value (the first 128 bits of HMAC-SHA256 under a derived
    /// subkey, in hex), equal for equal values under one key; the database indexes this instead
    /// of the value. 128 bits: half the index of the full MAC, which every import writes at
    /// random places, and still no collision by chance (about 1e-27 at a million tokens).
    pub fn fingerprint(&self, secret: &Secret) -> String {
        let mut mac = new_mac(&self.fingerprint_key);
        mac.update(secret.expose().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..FINGERPRINT_BYTES])
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("key", &"<redacted>")
            .field("key_id", &self.key_id)
            .finish()
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// A 32-byte subkey: HMAC-SHA256(master, label).
fn derive(master: &[u8; KEY_LEN], label: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(master);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "c3f0362b-1111-4997-a9c2-0478702a5fea";

    #[test]
    fn round_trip_and_fresh_nonce_per_value() {
        let (c, _) = Cipher::generate();
        let s = Secret::new(TOKEN);
        let a = c.encrypt(&s, "t_1").unwrap();
        let b = c.encrypt(&s, "t_1").unwrap();
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "same value must not give the same ciphertext");
        assert!(!a.contains(TOKEN));
        assert_eq!(c.decrypt(&a, "t_1").unwrap(), s);
        assert_eq!(c.decrypt(&b, "t_1").unwrap(), s);
    }

    #[test]
    fn wrong_key_or_wrong_context_fails() {
        let (c1, _) = Cipher::generate();
        let (c2, _) = Cipher::generate();
        let sealed = c1.encrypt(&Secret::new(TOKEN), "t_1").unwrap();
        assert!(matches!(
            c2.decrypt(&sealed, "t_1"),
            Err(CryptoError::Decrypt(_))
        ));
        assert!(matches!(
            c1.decrypt(&sealed, "t_2"),
            Err(CryptoError::Decrypt(_))
        ));
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let (c, _) = Cipher::generate();
        let sealed = c.encrypt(&Secret::new(TOKEN), "t_1").unwrap();
        let mut raw = B64.decode(&sealed[3..]).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 0x01;
            let tampered = format!("v1:{}", B64.encode(&raw));
            assert!(matches!(
                c.decrypt(&tampered, "t_1"),
                Err(CryptoError::Decrypt(_))
            ));
            raw[i] ^= 0x01;
        }
        for bad in ["", "v1:", "v1:!!!", "v2:AAAA", "v1:AAAA"] {
            assert!(matches!(
                c.decrypt(bad, "t_1"),
                Err(CryptoError::Decrypt(_))
            ));
        }
    }

    #[test]
    fn key_from_base64_and_clear_errors() {
        let (c, key) = Cipher::generate();
        let again = Cipher::from_key_b64(&format!(" {}\n", key.expose())).unwrap();
        assert_eq!(c.key_id(), again.key_id());
        let sealed = c.encrypt(&Secret::new(TOKEN), "t").unwrap();
        assert_eq!(again.decrypt(&sealed, "t").unwrap().expose(), TOKEN);

        let e = Cipher::from_key_b64("not base64 at all!").unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        assert!(
            !e.to_string().contains('!') && !e.to_string().contains("offset"),
            "{e}"
        );
        let e = Cipher::from_key_b64(&B64.encode([7u8; 16])).unwrap_err();
        assert!(e.to_string().contains("16 bytes"), "{e}");
    }

    #[test]
    fn fingerprint_is_keyed_and_stable() {
        let (c1, key) = Cipher::generate();
        let (c2, _) = Cipher::generate();
        let s = Secret::new(TOKEN);
        let fp = c1.fingerprint(&s);
        assert_eq!(fp.len(), 2 * FINGERPRINT_BYTES);
        assert_eq!(
            fp,
            Cipher::from_key_b64(key.expose()).unwrap().fingerprint(&s)
        );
        assert_ne!(fp, c2.fingerprint(&s));
        assert_ne!(fp, c1.fingerprint(&Secret::new("other")));
        use sha2::Digest;
        assert_ne!(fp, hex::encode(Sha256::digest(TOKEN.as_bytes())));
    }

    #[test]
    fn debug_redacts_the_key() {
        let key = [0x41u8; KEY_LEN];
        let c = Cipher::from_key_bytes(&key);
        let dbg = format!("{c:?}");
        assert!(dbg.contains("<redacted>") && dbg.contains(c.key_id()));
        assert!(!dbg.contains(&B64.encode(key)) && !dbg.contains(&hex::encode(key)));
    }
}
