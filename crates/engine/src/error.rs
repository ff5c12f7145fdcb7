//! The engine's error type, and which exit code each kind means to `docker run`.

/// What went wrong with a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or mount operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, on which path.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The image store failed (missing image, damaged store).
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// The OCI runtime failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    /// Networking failed (a port in use, a missing tool).
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    /// No container has this name or ID.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// The name is taken (Docker's wording).
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict {
        /// The name.
        name: String,
        /// The container holding it.
        id: String,
    },
    /// No network has this name or ID.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// Docker refuses this (403): predefined networks, endpoints in use.
    #[error("{0}")]
    Forbidden(String),
    /// No volume has this name.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// A volume that containers use cannot be removed.
    #[error("remove {name}: volume is in use - [{containers}]")]
    VolumeInUse {
        /// The volume.
        name: String,
        /// IDs of the containers using it, comma separated.
        containers: String,
    },
    /// The container must run for this (exec, pause, kill…).
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The monitor could not start the container; its message and `docker run`'s code.
    #[error("{message}")]
    StartFailed {
        /// What the monitor recorded.
        message: String,
        /// 125, 126 or 127.
        code: i32,
    },
    /// A flag value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The object's state forbids the request (removing a running container): Docker's
    /// 409 Conflict.
    #[error("{0}")]
    Conflict(String),
    /// The command cannot be found in the container (exit 127).
    #[error("failed to create task for container: unable to start container process: exec: \"{0}\": executable file not found in $PATH: unknown")]
    NotFound(String),
    /// The command is not executable (exit 126).
    #[error("failed to create task for container: unable to start container process: exec: \"{0}\": permission denied: unknown")]
    NotExecutable(String),
}

impl Error {
    /// The exit status `docker run` uses when the container could not run: 127 for a missing
    /// command, 126 for one that cannot be executed, 125 for everything else.
    pub fn run_exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => 127,
            Error::NotExecutable(_) => 126,
            Error::StartFailed { code, .. } => *code,
            _ => 125,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
