//! Turning SQLite failures into [`StoreError`]s a user can act on.
//!
//! Every message names the database file and says in words what went wrong (disk full,
//! read-only, not a database, locked …) before the driver's own text, because the person
//! reading it is usually starting the manager and needs to know which file to look at.

use crate::StoreError;
use std::path::Path;

/// What a SQLite primary result code means for the user.
fn hint(code: i64) -> Option<&'static str> {
    Some(match code & 0xff {
        5 | 6 => "the database is locked by another process",
        8 => "the database file or its directory is read-only",
        10 => "an I/O error occurred reading or writing the file",
        11 => "the database file is corrupt",
        13 => "the disk is full (or the database reached its size limit)",
        14 => "cannot open the file: its directory is missing or not writable, or access is denied",
        23 => "access to the file was denied",
        26 => "the file is not a SQLite database (corrupt, or another kind of file)",
        _ => return None,
    })
}

fn code_of(e: &sqlx::Error) -> Option<i64> {
    match e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse().ok()),
        _ => None,
    }
}

/// True when the error is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a driver error on the database at `path` to a [`StoreError`] naming the file.
pub(crate) fn map(path: &Path, e: sqlx::Error) -> StoreError {
    let code = code_of(&e);
    let text = match code.and_then(hint) {
        Some(h) => format!("{}: {h} ({e})", path.display()),
        None => format!("{}: {e}", path.display()),
    };
    let unavailable = matches!(
        (&e, code.map(|c| c & 0xff)),
        (_, Some(5 | 6))
            | (
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
                _
            )
    );
    let cause = crate::Cause::caused_by(text, e);
    if unavailable {
        StoreError::Unavailable(cause)
    } else {
        StoreError::Backend(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_hints_and_extended_codes_map_to_primary() {
        assert!(hint(13).unwrap().contains("disk is full"));
        assert!(hint(26).unwrap().contains("not a SQLite database"));
        // SQLITE_READONLY_DBMOVED = 8 | (4 << 8)
        assert_eq!(hint(8 | (4 << 8)), hint(8));
        assert_eq!(hint(1), None);
    }

    #[test]
    fn messages_name_the_file() {
        let e = map(Path::new("/data/tokenlb.db"), sqlx::Error::PoolTimedOut);
        assert!(matches!(&e, StoreError::Unavailable(m) if m.contains("/data/tokenlb.db")));
        // The driver's error is kept as the source, under the message that names the file.
        use std::error::Error;
        let cause = e.source().expect("the cause");
        let driver = cause.source().expect("the driver's error");
        assert!(driver.to_string().contains("timed out"), "{driver}");
    }
}
