//! tokenlb-store's integration tests: the conformance story over SQLite and PostgreSQL, key
//! rotation, and crash safety.

mod key_rotation;
mod postgres_story;
mod sqlite_crash;
mod sqlite_story;
