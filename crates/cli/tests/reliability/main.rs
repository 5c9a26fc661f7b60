//! The reliability tests (RELIABILITY.md): the real binary as a child process, its log in a
//! file, faults injected from outside.

#![allow(dead_code)] // each module uses a different part of the support code

mod access;
mod crash;
mod keys;
mod limits;
mod load;
mod secrets;
mod storage;
mod support;
mod upstream;
