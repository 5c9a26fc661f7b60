//! tokenlb-client against a real manager on loopback: leasing, background reports, the
//! manager going down and coming back, lease renewal.

#![allow(dead_code)] // each module uses a different part of the support code

mod background;
mod manager;
mod outage;
mod renew;
mod support;
