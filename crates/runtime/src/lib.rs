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

pub mod cli;
mod oom;
mod seal;
mod signals;
mod warm;

pub use seal::read_only_cgroup_mounts;
pub use warm::warm_cgroup_lock;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
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
    /// The read-only cgroup mount could not be made read-only: the container is not started.
    #[error("container {id}: making its cgroup mount read-only: {source}")]
    Seal {
        /// The container ID.
        id: String,
        /// The errno.
        source: std::io::Error,
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

/// Where a container's standard streams go; `None` inherits this process's.
#[derive(Default)]
pub struct Stdio {
    /// Standard input.
    pub stdin: Option<OwnedFd>,
    /// Standard output.
    pub stdout: Option<OwnedFd>,
    /// Standard error.
    pub stderr: Option<OwnedFd>,
    /// With `process.terminal`: the unix socket the runtime sends the pty master to (runc's
    /// `--console-socket`); the three streams are then the pty's.
    pub console: Option<PathBuf>,
}

/// Whether `fd` is the null device.
fn is_dev_null(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use nix::sys::stat::{fstat, major, minor, SFlag};
    fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3
    })
}

/// libcontainer 0.7 replaces a standard stream that is the null device by the container's
/// own `/dev/null` opened read-only (`reopen_dev_null`), so a container whose output went to
/// the caller's `/dev/null` (`berth run … >/dev/null`) failed every write with EBADF. Such
/// an output stream gets a pipe instead, whose other end [`drain`] empties once the
/// container runs — what Docker does anyway, whose containers always write to a pipe.
pub(crate) fn discard_pipes(stdio: &mut Stdio) -> Vec<std::io::PipeReader> {
    use std::os::fd::AsFd;
    let mut readers = Vec::new();
    for (slot, inherited) in [
        (
            &mut stdio.stdout,
            std::io::stdout().as_fd().try_clone_to_owned().ok(),
        ),
        (
            &mut stdio.stderr,
            std::io::stderr().as_fd().try_clone_to_owned().ok(),
        ),
    ] {
        if stdio.console.is_some() {
            break;
        }
        let null = match slot {
            Some(fd) => is_dev_null(fd.as_fd()),
            None => inherited.as_ref().is_some_and(|fd| is_dev_null(fd.as_fd())),
        };
        if !null {
            continue;
        }
        if let Ok((r, w)) = std::io::pipe() {
            *slot = Some(w.into());
            readers.push(r);
        }
    }
    readers
}

/// Empties the pipes of [`discard_pipes`] on threads (the clone is behind us).
pub(crate) fn drain(readers: Vec<std::io::PipeReader>) {
    for mut r in readers {
        std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
    }
}

/// Runs OCI bundles, keeping per-container runtime state under `state_root`.
pub struct Runtime {
    state_root: PathBuf,
    read_only_cgroups: Vec<PathBuf>,
}

/// A started container, to wait for.
pub struct Running {
    id: String,
    container: Container,
}

fn runtime_error(
    id: &str,
    stage: &'static str,
) -> impl FnOnce(libcontainer::error::LibcontainerError) -> Error {
    let id = id.to_string();
    move |source| Error::Runtime {
        id,
        stage,
        source: Box::new(source),
    }
}

impl Runtime {
    /// A runtime whose state (one directory per running container) lives in `state_root`,
    /// which should be on a tmpfs such as `/run`, since it dies with the processes.
    pub fn new(state_root: PathBuf) -> Runtime {
        Runtime {
            state_root,
            read_only_cgroups: Vec::new(),
        }
    }

    /// Makes the `cgroup` mount at each of `destinations` read-only, all the way down,
    /// before the container starts: the spec's `ro`, which libcontainer applies on cgroup v2
    /// but not to v1's tmpfs and controller mounts.
    pub fn read_only_cgroups(mut self, destinations: Vec<PathBuf>) -> Runtime {
        self.read_only_cgroups = destinations;
        self
    }

    /// libcontainer's builder for container `id`, with its state under our root and the
    /// given streams.
    fn builder(
        &self,
        id: &str,
        stage: &'static str,
        stdio: Stdio,
    ) -> Result<ContainerBuilder, Error> {
        signals::default_for_children();
        let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(runtime_error(id, stage))?
            .with_console_socket(stdio.console.as_deref());
        if let Some(fd) = stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            builder = builder.with_stderr(fd);
        }
        Ok(builder)
    }

    /// Creates and starts the container of `bundle`. Must be called from a single-threaded
    /// process (threads may be started once this returns).
    pub fn start(&self, id: &str, bundle: &Path, mut stdio: Stdio) -> Result<Running, Error> {
        // The caller starts `id` anew: state left under its name is a dead run's, whose
        // monitor was killed before it could delete it.
        let stale = self.state_root.join(id);
        if stale.exists() {
            if let Ok(mut old) = Container::load(stale.clone()) {
                let _ = old.delete(true);
            }
            let _ = std::fs::remove_dir_all(&stale);
        }
        let console = stdio.console.is_some();
        let discarded = discard_pipes(&mut stdio);
        let mut container = self
            .builder(id, "create", stdio)?
            .as_init(bundle)
            .with_systemd(false)
            // libcontainer insists on "detached" exactly when a console socket is given.
            .with_detach(console)
            .build()
            .map_err(runtime_error(id, "create"))?;
        if let Some(pid) = container.pid() {
            if let Err(e) = seal::read_only_in(pid.as_raw(), &self.read_only_cgroups) {
                let _ = container.delete(true);
                return Err(Error::Seal {
                    id: id.to_string(),
                    source: e,
                });
            }
        }
        if let Err(e) = container.start() {
            let _ = container.delete(true);
            return Err(runtime_error(id, "start")(e));
        }
        drain(discarded);
        Ok(Running {
            id: id.to_string(),
            container,
        })
    }

    /// Starts `process` (an OCI `process` object in a JSON file) inside running container
    /// `id`, joining its namespaces, cgroup, capabilities and seccomp filter; returns its
    /// host PID, a child of this process, for [`wait_pid`]. Must be called from a
    /// single-threaded process, like [`Runtime::start`].
    pub fn exec(&self, id: &str, process: &Path, mut stdio: Stdio) -> Result<i32, Error> {
        let console = stdio.console.is_some();
        let discarded = discard_pipes(&mut stdio);
        let pid = self
            .builder(id, "exec", stdio)?
            .as_tenant()
            .with_process(Some(process))
            .with_detach(console)
            .build()
            .map_err(runtime_error(id, "exec"))?;
        drain(discarded);
        Ok(pid.as_raw())
    }

    /// Freezes container `id` (cgroup freezer).
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        Container::load(self.state_root.join(id))
            .and_then(|mut c| c.pause())
            .map_err(runtime_error(id, "pause"))
    }

    /// Thaws container `id`.
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        Container::load(self.state_root.join(id))
            .and_then(|mut c| c.resume())
            .map_err(runtime_error(id, "resume"))
    }

    /// Creates, starts and waits for a container with this process's stdio; returns its
    /// exit code.
    pub fn run(&self, id: &str, bundle: &Path) -> Result<i32, Error> {
        Ok(self.start(id, bundle, Stdio::default())?.wait()?.code)
    }
}

/// Waits for a child process (an exec'd one) and returns its exit code as a shell reports it.
pub fn wait_pid(pid: i32) -> Result<i32, Error> {
    let pid = nix::unistd::Pid::from_raw(pid);
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(Error::Wait {
                    id: pid.to_string(),
                    source,
                })
            }
        }
    }
}

/// How a container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code as a shell reports it (128+N for signal N).
    pub code: i32,
    /// Whether the kernel's OOM killer killed a process of the container while it ran
    /// (Docker's `State.OOMKilled`).
    pub oom_killed: bool,
}

impl Running {
    /// The host PID of the container's init process.
    pub fn pid(&self) -> Option<i32> {
        self.container.pid().map(|p| p.as_raw())
    }

    /// Waits for the init process, deletes the container's runtime state and cgroup, and
    /// says how the container ended.
    pub fn wait(mut self) -> Result<Exit, Error> {
        let code = match self.container.pid() {
            Some(pid) => loop {
                match waitpid(pid, None) {
                    Ok(WaitStatus::Exited(_, code)) => break Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => break Ok(128 + sig as i32),
                    Ok(_) | Err(nix::Error::EINTR) => continue,
                    Err(source) => {
                        break Err(Error::Wait {
                            id: self.id.clone(),
                            source,
                        })
                    }
                }
            },
            None => Ok(0),
        };
        // The cgroup's counters go with it: read them first.
        let oom_killed = self
            .container
            .spec()
            .is_ok_and(|spec| oom::oom_kills(&spec.cgroup_path) > 0);
        // Delete even after a failed wait, keeping the first error.
        let deleted = self
            .container
            .delete(true)
            .map_err(runtime_error(&self.id, "delete"));
        let code = code?;
        deleted?;
        Ok(Exit { code, oom_killed })
    }
}
