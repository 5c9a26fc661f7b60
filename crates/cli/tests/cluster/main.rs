//! Cluster mode end to end: `tokenlb manager` processes on one PostgreSQL and one Redis
//! (docs/cluster.md).

#![allow(dead_code)] // each module uses a different part of the support code

mod cluster;
mod cluster_outages;
mod cluster_support;
