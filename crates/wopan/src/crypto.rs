//! The two primitives of the Wopan envelope: the MD5 request signature and the AES-128-CBC
//! cipher used for `body.param` and `RSP.DATA`.
//!
//! Both are fixed by the public clients (research notes §2–§3): the signature is the lowercase
//! hex MD5 of `key ‖ resTime ‖ reqSeq ‖ channel ‖ version` joined with no separator; the cipher
//! is AES-128-CBC with PKCS#7 padding, the fixed IV `wNSOYIB1k1DjY5lA` and standard base64
//! (with `=` padding). The key depends on the channel: the public client secret on `api-user`,
//! the first 16 characters of the access token on `wohome`. The key is a small value type,
//! [`ChannelKey`], so a short token fails once, clearly, where the key is derived — never with a
//! panic inside the cipher.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::{Digest, Md5};
use std::fmt;

/// The fixed CBC initialisation vector every client uses.
pub const IV: &[u8; 16] = b"wNSOYIB1k1DjY5lA";
/// The public client secret of the PC web client; the `api-user` key.
pub const CLIENT_SECRET: &str = "XFmi9GS2hzk98jGX";
/// The public client id of the PC web client.
pub const CLIENT_ID: &str = "1001000021";

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;

/// Lowercase hex MD5 of the five header values joined with no separator.
pub fn sign(key: &str, res_time: u64, req_seq: u64, channel: &str, version: &str) -> String {
    let mut h = Md5::new();
    h.update(key.as_bytes());
    h.update(res_time.to_string().as_bytes());
    h.update(req_seq.to_string().as_bytes());
    h.update(channel.as_bytes());
    h.update(version.as_bytes());
    hex::encode(h.finalize())
}

/// A 16-byte AES key for one channel. `Debug` never shows it (on `wohome` it is part of the
/// access token).
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey([u8; 16]);

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKey(****)")
    }
}

/// Why a key could not be derived from an access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access token has {len} bytes; the wohome key needs its first 16")]
pub struct ShortToken {
    /// Length of the token in bytes (never the token itself).
    pub len: usize,
}

impl ChannelKey {
    /// The `api-user` key: the public client secret.
    pub fn api_user() -> Self {
        let mut k = [0u8; 16];
        k.copy_from_slice(CLIENT_SECRET.as_bytes());
        ChannelKey(k)
    }

    /// The `wohome` key: the first 16 bytes of the access token (UUID text, dashes included).
    pub fn wohome(access_token: &str) -> Result<Self, ShortToken> {
        let bytes = access_token.as_bytes();
        if bytes.len() < 16 {
            return Err(ShortToken { len: bytes.len() });
        }
        let mut k = [0u8; 16];
        k.copy_from_slice(&bytes[..16]);
        Ok(ChannelKey(k))
    }
}

/// Why a ciphertext could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext does not decrypt with this key (bad length or padding)")]
    Padding,
    #[error("plaintext is not UTF-8")]
    Utf8,
}

/// Encrypts `plaintext` and returns standard base64.
pub fn encrypt(key: &ChannelKey, plaintext: &[u8]) -> String {
    let ct = Enc::new(&key.0.into(), IV.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    STANDARD.encode(ct)
}

/// Decodes standard base64 and decrypts it to UTF-8 text.
pub fn decrypt(key: &ChannelKey, b64: &str) -> Result<String, CipherError> {
    let ct = STANDARD
        .decode(b64.trim().as_bytes())
        .map_err(|_| CipherError::Base64)?;
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(CipherError::Padding);
    }
    let pt = Dec::new(&key.0.into(), IV.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ct)
        .map_err(|_| CipherError::Padding)?;
    String::from_utf8(pt).map_err(|_| CipherError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let k = ChannelKey::wohome("c3f0362b-0000-4997-a9c2-0478702a5fea").unwrap();
        let ct = encrypt(&k, br#"{"a":1}"#);
        assert_eq!(decrypt(&k, &ct).unwrap(), r#"{"a":1}"#);
        let other = ChannelKey::api_user();
        assert!(decrypt(&other, &ct).is_err() || decrypt(&other, &ct).unwrap() != r#"{"a":1}"#);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let k = ChannelKey::api_user();
        assert_eq!(decrypt(&k, "not base64!!"), Err(CipherError::Base64));
        assert_eq!(decrypt(&k, ""), Err(CipherError::Padding));
        assert_eq!(decrypt(&k, "AAAA"), Err(CipherError::Padding));
        assert_eq!(ChannelKey::wohome("short"), Err(ShortToken { len: 5 }));
        assert!(format!("{k:?}").contains("****"));
    }
}
