//! The crate's error type: each variant names what it was working on.

use crate::apply::ApplyError;
use crate::diff::DiffError;

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, on which path.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Text that should be a digest is not one.
    #[error("invalid digest {digest:?}: expected sha256:<64 hex characters>")]
    InvalidDigest {
        /// The text.
        digest: String,
    },
    /// No image matches the name, ID or digest.
    #[error("No such image: {name}")]
    NoSuchImage {
        /// What the user asked for, as Docker prints it.
        name: String,
    },
    /// Bytes did not hash to (or were not the length of) the digest that named them.
    #[error("{what} failed verification: expected {expected}, got {actual}")]
    Verification {
        /// Which blob or layer.
        what: String,
        /// Expected digest or size.
        expected: String,
        /// What the bytes gave.
        actual: String,
    },
    /// A layer could not be unpacked.
    #[error("layer {layer}: {source}")]
    Apply {
        /// The layer's digest.
        layer: String,
        /// Why.
        source: ApplyError,
    },
    /// A directory could not be written as a layer.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// The registry side of a pull or push failed.
    #[error(transparent)]
    Registry(#[from] berth_registry::Error),
    /// A reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] berth_registry::ReferenceError),
    /// The request conflicts with the store's state (Docker's "conflict: …").
    #[error("conflict: {0}")]
    Conflict(String),
    /// An image's manifest, config or an archive is malformed.
    #[error("{what}: {cause}")]
    Malformed {
        /// Which document or archive.
        what: String,
        /// What is wrong with it.
        cause: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// A malformed-input error.
    pub(crate) fn malformed(what: impl Into<String>, cause: impl ToString) -> Error {
        Error::Malformed {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}
