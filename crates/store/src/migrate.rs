//! What both backends' migration runners share: the migration list's shape, the runner's
//! errors, and the rule for what to apply next. Each backend keeps only its dialect: how the
//! bookkeeping table looks, how runners on one database are serialised, how a file of
//! several statements is executed.
//!
//! sqlx's `migrate!` macro needs the macros feature, which this workspace does not use; the
//! files are compiled in with `include_str!`. A database newer than this binary is refused
//! instead of being written by code that does not know its schema.

/// One migration file.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Errors of a runner: a driver error, or a schema newer than this binary knows.
pub(crate) enum MigrateError {
    Sql(sqlx::Error),
    TooNew { found: i64, known: i64 },
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// The migrations still to apply to a database at version `current`, oldest first; an
/// error when the database is newer than `all` knows.
pub(crate) fn pending(
    all: &'static [Migration],
    current: i64,
) -> Result<Vec<&'static Migration>, MigrateError> {
    let known = all.last().map_or(0, |m| m.version);
    if current > known {
        return Err(MigrateError::TooNew {
            found: current,
            known,
        });
    }
    Ok(all.iter().filter(|m| m.version > current).collect())
}

/// The log line of an applied migration.
pub(crate) fn applied(m: &Migration) {
    tracing::info!(
        version = m.version,
        name = m.name,
        "applied schema migration"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Migration] = &[
        Migration {
            version: 1,
            name: "a",
            sql: "",
        },
        Migration {
            version: 2,
            name: "b",
            sql: "",
        },
    ];

    #[test]
    fn pending_is_what_comes_after_and_a_newer_database_is_refused() {
        let names = |c| {
            pending(ALL, c)
                .ok()
                .map(|v| v.iter().map(|m| m.name).collect::<Vec<_>>())
        };
        assert_eq!(names(0), Some(vec!["a", "b"]));
        assert_eq!(names(1), Some(vec!["b"]));
        assert_eq!(names(2), Some(vec![]));
        assert!(matches!(
            pending(ALL, 3),
            Err(MigrateError::TooNew { found: 3, known: 2 })
        ));
    }
}
