//! What can go wrong in a build, with the step and the input that caused it.

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile has errors (each rendered with its line).
    #[error("failed to parse the Dockerfile:\n{0}")]
    Parse(String),
    /// The Dockerfile could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A RUN step failed, in Docker's words.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as Docker prints it (`/bin/sh -c …`).
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// A COPY/ADD source is missing from the context.
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotInContext(String),
    /// A COPY/ADD source climbs out of the context (`../x`).
    #[error("COPY failed: forbidden path outside the build context: {0}")]
    OutsideContext(String),
    /// The build was interrupted (Ctrl-C, SIGTERM); what it had started was undone.
    #[error("the build was interrupted; its RUN container and scratch files were removed")]
    Interrupted,
    /// A step failed: the file and line of its instruction, then why.
    #[error("{file}:{line}: {source}\n {line} | {text}")]
    At {
        /// The Dockerfile's name as the user gave it.
        file: String,
        /// The instruction's first line (1-based).
        line: usize,
        /// That line as written.
        text: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An instruction or form berth does not build yet.
    #[error("{0}")]
    Unsupported(String),
    /// Anything else wrong with an instruction's arguments.
    #[error("{0}")]
    Invalid(String),
    /// The engine failed (a container for RUN).
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// Reading the context or writing a layer failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// The error under any [`Error::At`] location.
    pub fn inner(&self) -> &Error {
        match self {
            Error::At { source, .. } => source.inner(),
            e => e,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
