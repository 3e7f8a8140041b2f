//! The runtime every huimin service shares: configuration, telemetry, the gRPC
//! server bootstrap, PostgreSQL and Redis helpers, authentication, error
//! mapping and personal-data protection.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod observe;
pub mod pii;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod telemetry;
