//! What `huimin-bench` and `huimin-soak` share: the scratch database and the in-process app,
//! the closed-loop load driver, the synthetic county and roll, and the report's rows.

#![forbid(unsafe_code)]

pub mod checks;
pub mod export;
pub mod import;
pub mod keyspace;
pub mod lookup;
pub mod progress;
pub mod report;
pub mod roll;
pub mod scratch;
pub mod soak;
pub mod webhook;
