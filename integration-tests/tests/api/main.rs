//! End-to-end tests of huimin over real gRPC, PostgreSQL and Redis. All test
//! modules compile into this one binary to keep link times down.

#![allow(clippy::unwrap_used)]

mod citizen;
mod helpers;
mod proxy;
mod servers;

mod reports;
mod roll_register;
mod rolls;

mod bindings;
mod browser;
mod cache;
mod chat;
mod components;
mod cross_check_facts;
mod cross_checks;
mod drills;
mod facts;
mod fuzz_files;
mod h5;
mod health;
mod hostile_files;
mod ledger_crash;
mod ledger_import;
mod ledger_lookup;
mod ledger_programs;
mod login_throttle;
mod outbox;
mod persons;
mod pg_replica;
mod privacy;
mod redis_cluster;
mod reflection;
mod registry;
mod registry_public;
mod scale_servers;
mod seed_checks;
mod staff;
mod tls;
mod tokens;
mod usage;
mod webhook;
mod whistle_anonymity;
mod whistle_audit;
mod whistle_facts;
mod whistle_receipt;
mod whistle_s3;
mod whistle_submit;
mod whistle_workflow;
