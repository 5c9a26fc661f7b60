//! The `tokenlb` binary's commands as a user runs them: help and config, manager, token,
//! up.

#![allow(dead_code)] // each module uses a different part of the support code

mod common;
mod help_and_config;
mod manager_cmd;
mod manager_durability;
mod token_cmd;
mod up;
