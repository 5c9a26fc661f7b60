//! tokenlb-bench: measures tokenlb's hot paths side by side with the best this machine can
//! do, in one run (issue 6).
//!
//! - [`baseline`]: a bare axum/hyper server on the manager's runtime settings, answering a
//!   fixed JSON body — the limit of any HTTP route here.
//! - [`load`] over [`http1`]: a closed-loop keep-alive load client cheap enough not to be
//!   the bottleneck; [`summary`]: exact percentiles.
//! - [`procs`] and [`servers`]: the real binaries as separate, CPU-pinned processes.
//! - [`plan`] and [`run`]: what is measured in which order; [`report`], [`goals`] and
//!   [`svg`]: the table, the JSON, the goal check and the plot under `bench/out/`.
//!
//! The binary (`tokenlb-bench`, `tokenlb-bench --quick`, `tokenlb-bench serve-baseline`) is
//! described in BENCHMARKS.md at the repository root.

pub mod baseline;
pub mod goals;
pub mod http1;
pub mod load;
pub mod machine;
pub mod plan;
pub mod procs;
pub mod report;
pub mod run;
pub mod servers;
pub mod setup;
pub mod summary;
pub mod svg;
pub mod wrk;
