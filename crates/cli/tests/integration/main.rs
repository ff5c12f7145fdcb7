//! Integration tests: the real `berth` binary against real registries, as root.
//!
//! One test binary, so the registries and fixture images are set up once (see `common`).

mod common;

mod api;
mod archives;
mod auth;
mod build;
mod cgroup2;
mod containers;
mod crash;
mod errors;
mod hostile;
mod images;
mod lifecycle;
mod network;
mod pull;
mod push;
mod run;
mod runc;
mod serve;
