//! tokenlb-wopan's integration tests: known answers from the captures, the client against the
//! emulator (reads, writes, uploads, refresh), the emulator's refusals, and the logs.

#![allow(dead_code)] // each module uses a different part of the support code

mod captures;
mod client_emulator;
mod client_errors;
mod client_write;
mod common;
mod emulator_captures;
mod emulator_rejects;
mod fixture_file;
mod kat;
mod kat_write;
mod no_secrets_in_logs;
mod refresh;
