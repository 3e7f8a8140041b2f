//! The runtime every huimin service shares: configuration, telemetry, the gRPC
//! server bootstrap, PostgreSQL and Redis helpers, authentication, error
//! mapping, personal-data protection, money in fen and uploaded tables.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod cache;
mod cache_conn;
mod cache_local;
pub mod cache_shared;
pub mod clock;
pub mod component;
pub mod config;
pub mod county;
pub mod db;
pub mod deadline;
pub mod error;
pub mod follower;
pub mod keyset;
pub mod money;
pub mod observe;
pub mod openid;
pub mod outbox;
pub mod page;
pub mod peer;
pub mod pii;
pub mod problems;
pub mod revocation;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod supervise;
pub mod table;
pub mod telemetry;
pub mod tls;
pub mod upload;
pub mod wire;
