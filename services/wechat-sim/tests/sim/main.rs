//! The local WeChat's own tests: its API answers as WeChat does, and its
//! pushes are what a WeChat-compatible webhook accepts (checked by a tiny
//! recording webhook built on the same protocol crate as the gateway).

mod api;
mod helpers;
mod push;
