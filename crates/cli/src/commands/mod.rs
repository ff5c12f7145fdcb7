//! One module per group of Docker commands; each function takes parsed flags and the `App`.

pub mod archive;
pub mod auth;
pub mod container;
pub mod image;
pub mod lifecycle;
pub mod transfer;
