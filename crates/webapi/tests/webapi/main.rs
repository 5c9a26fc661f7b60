//! The web API end to end: a real manager, the Wopan emulator and the web API on loopback;
//! reads, writes and uploads, faults and fallback, logs, and an upload's memory.

#![allow(dead_code)] // each module uses a different part of the support code

mod drive;
mod drive_client;
mod e2e;
mod faults;
mod logs;
mod support;
mod upload_memory;
