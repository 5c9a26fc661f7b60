//! tokenlb-wopan: the Wopan (联通云盘, pan.wo.cn) dispatcher protocol.
//!
//! Three layers, one crate, so the client and the emulator share every byte-level rule:
//! - [`crypto`] and [`envelope`]: the MD5-signed header, AES-128-CBC `param`/`DATA`, the three
//!   forms of `RSP.DATA`, `STATUS`/`RSP_CODE` errors;
//! - [`client`]: a reqwest client of the operations tokenlb needs (user check, refresh,
//!   listings, path walk, download links, family, quota; create, rename, move, copy, delete,
//!   empty the recycle bin, multipart upload), with timeouts and a response cap; the `param`
//!   of each write is built in [`params`], the upload's form in [`multipart`];
//! - [`emulator`]: an axum server that answers like the real service, for tests, demos and
//!   fault injection (`tokenlb wopan-emulator`).
//!
//! Errors are [`WopanError`]; [`WopanError::outcome_class`] maps each to a
//! [`tokenlb_core::OutcomeClass`] (table in [`error`]). The protocol itself is described in
//! the project's research notes (`research/wopan-protocol.md`); nothing here is copied from
//! other clients.

pub mod client;
pub mod crypto;
pub mod emulator;
pub mod envelope;
pub mod error;
pub mod multipart;
pub mod params;
pub mod types;

pub use client::{ClientConfig, WopanClient};
pub use client::{Selection, UploadTarget};
pub use envelope::Channel;
pub use error::WopanError;
pub use types::{CloudUsage, FamilyInfo, FileEntry, Listing, Space, TokenPair, Uploaded, UserInfo};
