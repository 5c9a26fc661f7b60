//! Where the master key comes from: configuration first, else `secret.key` in the data dir.
//!
//! A generated key is written so that no reader ever sees a half-written file and two managers
//! starting at once agree on one key: the key goes to a temporary file created with mode 0600,
//! is synced, and is then hard-linked to `secret.key` (link fails if the name exists, unlike
//! rename), after which the loser of a race reads the winner's key. A key file that group or
//! others may read is still used — refusing would lock the owner out of their data — but is
//! reported through `KeySource::File { loose_permissions: true, .. }` for the caller's warning.
//! This module logs nothing itself: the caller writes the one log line, naming the path.

use super::{Cipher, CryptoError};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokenlb_core::Secret;

/// File name of the generated key inside the data directory.
pub const KEY_FILE: &str = "secret.key";

/// File name of a key being rotated in: written before the database is re-encrypted, renamed
/// over [`KEY_FILE`] after (see `crate::keys`).
pub const NEXT_KEY_FILE: &str = "secret.key.next";

/// Which key is in use, for a log line (names the path, never the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// From configuration (`encryption_key` / `TOKENLB_ENCRYPTION_KEY`).
    Configured,
    /// From the key file in the data directory.
    File {
        path: PathBuf,
        /// True when this start generated the file.
        created: bool,
        /// True when group or others may read the file (mode & 0o077 != 0): warn the user.
        loose_permissions: bool,
    },
}

pub(super) fn load_or_create(
    data_dir: &Path,
    configured: Option<&Secret>,
) -> Result<(Cipher, KeySource), CryptoError> {
    if let Some(key) = configured {
        return Ok((Cipher::from_key_b64(key.expose())?, KeySource::Configured));
    }
    let path = data_dir.join(KEY_FILE);
    let io_err = |source| CryptoError::KeyFileIo {
        path: path.clone(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(text) => return read_existing(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    fs::create_dir_all(data_dir).map_err(|source| CryptoError::KeyFileIo {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let (cipher, key_b64) = Cipher::generate();
    match write_new(data_dir, &path, &key_b64) {
        Ok(()) => Ok((
            cipher,
            KeySource::File {
                path,
                created: true,
                loose_permissions: false,
            },
        )),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(&path).map_err(io_err)?;
            read_existing(&path, &text)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn read_existing(path: &Path, text: &str) -> Result<(Cipher, KeySource), CryptoError> {
    let cipher = Cipher::from_key_b64(text).map_err(|e| CryptoError::KeyFileContents {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let loose_permissions = is_loose(path);
    Ok((
        cipher,
        KeySource::File {
            path: path.to_path_buf(),
            created: false,
            loose_permissions,
        },
    ))
}

#[cfg(unix)]
fn is_loose(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_loose(_path: &Path) -> bool {
    false
}

/// Writes the key to a private temporary file, syncs it, and links it into place.
fn write_new(dir: &Path, path: &Path, key_b64: &Secret) -> std::io::Result<()> {
    let tmp = write_temp(dir, KEY_FILE, key_b64)?;
    let result = fs::hard_link(&tmp, path).and_then(|()| sync_dir(dir));
    let _ = fs::remove_file(&tmp);
    result
}

/// A synced private temporary file holding the key, next to its final name.
fn write_temp(dir: &Path, name: &str, key_b64: &Secret) -> std::io::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_file(&tmp)?;
        file.write_all(key_b64.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes `dir/name` atomically, replacing any file of that name: temp file, fsync, rename,
/// fsync of the directory. A crash leaves either the old file or the new one.
pub(crate) fn write_replace(dir: &Path, name: &str, key_b64: &Secret) -> Result<(), CryptoError> {
    let path = dir.join(name);
    let io_err = |source| CryptoError::KeyFileIo {
        path: path.clone(),
        source,
    };
    let tmp = write_temp(dir, name, key_b64).map_err(io_err)?;
    let result = fs::rename(&tmp, &path).and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

/// Reads a key file if it exists.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Cipher>, CryptoError> {
    match fs::read_to_string(path) {
        Ok(text) => read_existing(path, &text).map(|(c, _)| Some(c)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Renames `NEXT_KEY_FILE` over `KEY_FILE` (atomic) and syncs the directory.
pub(crate) fn promote_next(dir: &Path) -> Result<(), CryptoError> {
    let path = dir.join(KEY_FILE);
    fs::rename(dir.join(NEXT_KEY_FILE), &path)
        .and_then(|()| sync_dir(dir))
        .map_err(|source| CryptoError::KeyFileIo { path, source })
}

/// Removes `NEXT_KEY_FILE` (a rotation that never reached the database).
pub(crate) fn discard_next(dir: &Path) -> Result<(), CryptoError> {
    let path = dir.join(NEXT_KEY_FILE);
    match fs::remove_file(&path).and_then(|()| sync_dir(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CryptoError::KeyFileIo { path, source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path); // a leftover from a crash of this same pid number
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    fn encode_key(key: &[u8]) -> String {
        B64.encode(key)
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/data");
        let (c1, src) = load_or_create(&dir, None).unwrap();
        let path = dir.join(KEY_FILE);
        assert_eq!(
            src,
            KeySource::File {
                path: path.clone(),
                created: true,
                loose_permissions: false
            }
        );
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let (c2, src2) = load_or_create(&dir, None).unwrap();
        assert!(matches!(src2, KeySource::File { created: false, .. }));
        assert_eq!(c1.key_id(), c2.key_id());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn configured_key_wins_and_bad_file_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let key = encode_key(&[9u8; 32]);
        let (c, src) = load_or_create(tmp.path(), Some(&Secret::new(key.clone()))).unwrap();
        assert_eq!(src, KeySource::Configured);
        assert_eq!(c.key_id(), Cipher::from_key_b64(&key).unwrap().key_id());
        assert!(!tmp.path().join(KEY_FILE).exists());

        fs::write(tmp.path().join(KEY_FILE), "short\n").unwrap();
        let e = load_or_create(tmp.path(), None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(KEY_FILE) && msg.contains("expected"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(KEY_FILE);
        fs::write(&path, encode_key(&[1u8; 32])).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let (_, src) = load_or_create(tmp.path(), None).unwrap();
        assert!(matches!(
            src,
            KeySource::File {
                loose_permissions: true,
                created: false,
                ..
            }
        ));
    }
}
