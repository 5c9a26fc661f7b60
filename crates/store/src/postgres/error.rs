//! Turning PostgreSQL failures into [`StoreError`]s that name the server (never the password)
//! and say what went wrong in words.

use crate::StoreError;

/// What a SQLSTATE class or code means for the user.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "53100" => "the database server's disk is full",
        "53200" | "53300" => "the database server is out of memory or connections",
        "3D000" => "the database does not exist",
        "42501" => "permission denied",
        "25006" => "the database is read-only (a standby?)",
        "57P01" | "57P02" | "57P03" => "the database server is shutting down or starting up",
        "40001" | "40P01" => "a concurrent transaction conflicted; retry",
        c if c.starts_with("28") => "authentication failed",
        c if c.starts_with("08") => "the connection to the database server failed",
        _ => return None,
    })
}

/// True when the error is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a driver error on `target` (a redacted description) to a [`StoreError`].
pub(crate) fn map(target: &str, e: sqlx::Error) -> StoreError {
    let code = match &e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let text = match code.as_deref().and_then(hint) {
        Some(h) => format!("{target}: {h} ({e})"),
        None => format!("{target}: {e}"),
    };
    let unavailable = matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    ) || code.as_deref().is_some_and(|c| {
        c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") || c == "25006"
    });
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
    fn hints_and_classes() {
        assert_eq!(hint("28P01"), Some("authentication failed"));
        assert_eq!(hint("08006"), hint("08001"));
        assert_eq!(hint("23505"), None);
        let e = map("postgres://u@h:5432/d", sqlx::Error::PoolTimedOut);
        assert!(matches!(&e, StoreError::Unavailable(m) if m.starts_with("postgres://u@h")));
    }
}
