//! runc's command line on top of this crate: what containerd's shim and dockerd call as an
//! OCI runtime binary (`berth-runc …`, or `berth runtime …`).
//!
//! **Design.** `args` holds runc's flags as clap structs and nothing else; `lifecycle` has
//! the verbs on containers (create, start, run, state, kill, delete, list, ps, pause,
//! resume, exec) and `info` the rest (spec, features, update, events). Each verb drives
//! youki's `libcontainer` with the same builder settings as [`crate::Runtime`] — berth's
//! own `run` — so a container started by containerd gets the same isolation.
//!
//! Errors follow runc: one line on standard error (and, with `--log`, a logrus-style line in
//! the log file, JSON with `--log-format json`, which the shims read back), exit status 1.
//! `run` and a foreground `exec` exit with the container process's status instead.
//!
//! Like the rest of the crate, this must run in a single-threaded process: libcontainer
//! starts containers with `clone3`.

mod args;
mod info;
mod lifecycle;
mod log;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

pub use args::Runc;

/// Why a runc command failed, in runc's words where runc has them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container with this ID under `--root`.
    #[error("container does not exist")]
    NotExist,
    /// `create`/`run` with an ID already in use.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// An ID libcontainer cannot use as a directory name.
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    /// `kill` with a signal that has no name or number.
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    /// The bundle has no config.json.
    #[error("JSON specification file {0} not found")]
    NoSpec(PathBuf),
    /// config.json is not a runtime spec.
    #[error("{path}: invalid runtime spec: {source}")]
    BadSpec {
        /// The config.json.
        path: PathBuf,
        /// serde's message (with line and column).
        source: serde_json::Error,
    },
    /// config.json is for a runtime-spec major version we do not implement.
    #[error("{path}: unsupported runtime spec version {version:?}: berth-runc runs 1.x bundles")]
    Version {
        /// The config.json.
        path: PathBuf,
        /// Its `ociVersion`.
        version: String,
    },
    /// The spec's root.path is missing.
    #[error("rootfs ({0:?}) does not exist")]
    NoRootfs(PathBuf),
    /// The container is not in a state that allows the command.
    #[error("{0}")]
    State(String),
    /// The command is not implemented by berth-runc.
    #[error("{0} is not supported by berth-runc")]
    Unsupported(&'static str),
    /// Bad input that is not one of the above.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// libcontainer failed; the message includes its causes.
    #[error("{op}: {message}")]
    Runtime {
        /// The verb.
        op: &'static str,
        /// libcontainer's error and its sources, joined.
        message: String,
    },
    /// Not an error: the container (or exec'd process) exited with this status.
    #[error("exit status {0}")]
    Exit(i32),
}

impl Error {
    /// libcontainer's error with its chain of causes (its top-level messages such as
    /// "io error" say little alone).
    fn runtime(op: &'static str) -> impl FnOnce(libcontainer::error::LibcontainerError) -> Error {
        move |e| Error::Runtime {
            op,
            message: chain(&e),
        }
    }
}

/// An error and its sources, `: `-separated, skipping repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Runs runc's command line `args` (without the program name) and returns the exit status.
pub fn main(program: &str, args: impl IntoIterator<Item = OsString>) -> u8 {
    let argv = std::iter::once(OsString::from(program)).chain(args);
    let cli = match Runc::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            return code;
        }
    };
    let logger = match log::Logger::open(&cli.global) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    logger.debug(&format!("{:?}", cli.command));
    match run(&cli) {
        Ok(()) => 0,
        Err(Error::Exit(code)) => u8::try_from(code).unwrap_or(1),
        Err(e) => {
            logger.error(&e.to_string());
            1
        }
    }
}

fn run(cli: &Runc) -> Result<(), Error> {
    use args::Command;
    let g = &cli.global;
    match &cli.command {
        Command::Create(a) => lifecycle::create(g, a),
        Command::Start(a) => lifecycle::start(g, &a.id),
        Command::Run(a) => lifecycle::run(g, a),
        Command::State(a) => lifecycle::state(g, &a.id),
        Command::Kill(a) => lifecycle::kill(g, a),
        Command::Delete(a) => lifecycle::delete(g, a),
        Command::List(a) => lifecycle::list(g, a),
        Command::Ps(a) => lifecycle::ps(g, a),
        Command::Pause(a) => lifecycle::pause(g, &a.id),
        Command::Resume(a) => lifecycle::resume(g, &a.id),
        Command::Exec(a) => lifecycle::exec(g, a),
        Command::Features => info::features(),
        Command::Spec(a) => info::spec(a),
        Command::Update(a) => info::update(g, a),
        Command::Events(a) => info::events(g, a),
        Command::Checkpoint(_) => Err(Error::Unsupported("checkpoint")),
        Command::Restore(_) => Err(Error::Unsupported("restore")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tree_is_valid() {
        use clap::CommandFactory;
        Runc::command().debug_assert();
    }

    #[test]
    fn messages_are_runcs() {
        assert_eq!(Error::NotExist.to_string(), "container does not exist");
        assert_eq!(
            Error::Exists("c1".into()).to_string(),
            "container with id exists: c1"
        );
        assert_eq!(
            Error::UnknownSignal("FOO".into()).to_string(),
            "unknown signal \"FOO\""
        );
    }
}
