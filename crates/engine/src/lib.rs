//! berth's containers: what `docker run` does between "the image is here" and "the process
//! runs", and the bookkeeping after.
//!
//! - [`container`]: container records (`containers/<id>/container.json`, written atomically),
//!   IDs and Docker-style random names, name conflicts.
//! - [`spec`]: image config + run options → an OCI runtime spec with Docker's defaults
//!   (namespaces, the 14 default capabilities, masked and read-only paths, /dev, /dev/shm,
//!   hostname, environment).
//! - [`user`]: `--user` resolved against the image's `/etc/passwd` and `/etc/group`, read
//!   inside the root filesystem without following links out of it and without running
//!   container code.
//! - [`rootfs`]: the overlay mount of image snapshots plus a writable upper layer, and the
//!   generated `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
//! - [`monitor`]: the per-container process that mounts, runs (through `berth-runtime`),
//!   records the exit, applies the restart policy, and cleans up; [`attach`] is the socket
//!   it serves clients on, [`tty`] the pseudo-terminals it hands out.
//! - [`options`]: what `run`/`create` ask for and the parsers of Docker's flag syntax, shared
//!   with the Engine API to come; [`lifecycle`], [`exec`], [`copy`], [`stats`], [`prune`],
//!   [`inspect`]: the verbs on containers; [`volume`] and [`networks`]: what containers use.
//!
//! ```no_run
//! use berth_engine::{Engine, RunOptions};
//! let engine = Engine::open("/var/lib/berth".into(), "/run/berth".into())?;
//! let id = engine.create(&RunOptions { image: "busybox".into(), cmd: vec!["true".into()], ..Default::default() })?;
//! # Ok::<(), berth_engine::Error>(())
//! ```
//!
//! **Architecture invariant:** the container-creation path is synchronous and runs in a
//! single-threaded process: the monitor (a fresh exec of the binary) for containers, the CLI
//! before it starts threads for `exec`; `cli` and `api` only create records, start monitors
//! and attach. This crate knows nothing of registries' wire formats or HTTP.
#![deny(missing_docs)]

pub mod attach;
pub mod container;
pub mod copy;
mod error;
pub mod exec;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod networks;
pub mod options;
pub mod prune;
mod pump;
pub mod rootfs;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod stats;
pub mod tty;
pub mod user;
pub mod volume;

pub use container::{ContainerRecord, Engine, State};
pub use error::Error;
pub use options::RunOptions;
