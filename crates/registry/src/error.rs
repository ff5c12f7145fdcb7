//! The crate's one error type. Every variant names the reference or registry involved, because
//! a user with three registry mirrors needs to know which one said no.

use crate::{BoxError, ReferenceError};

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference text is invalid.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No endpoint could be reached at all.
    #[error("cannot reach registry {registry}: {cause}")]
    Unreachable {
        /// Host (and port) that was tried.
        registry: String,
        /// The connection error.
        cause: String,
    },
    /// The registry does not have this repository, tag or digest.
    #[error("manifest for {reference} not found: manifest unknown (tried {tried})")]
    NotFound {
        /// The normalised reference.
        reference: String,
        /// Registries (mirrors first) that were asked.
        tried: String,
    },
    /// Credentials were missing or refused.
    #[error("access to {reference} on {registry} denied: {cause}; if the repository is private, run 'berth login {registry}'")]
    Unauthorized {
        /// What was asked for.
        reference: String,
        /// The registry that refused.
        registry: String,
        /// What it said.
        cause: String,
    },
    /// Login was refused.
    #[error("login to {registry} failed: {cause}")]
    LoginFailed {
        /// The registry.
        registry: String,
        /// What it said.
        cause: String,
    },
    /// The registry answered something that is not a usable manifest.
    #[error("malformed manifest for {reference}: {cause}")]
    BadManifest {
        /// The reference.
        reference: String,
        /// What was wrong.
        cause: String,
    },
    /// No manifest in the index matches the requested platform.
    #[error("no matching manifest for {platform} in the manifest list entries of {reference} (available: {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// What the index offers.
        available: String,
    },
    /// Bytes did not hash to the digest that named them.
    #[error("{what} {expected} from {registry} failed verification: got {actual}")]
    DigestMismatch {
        /// Manifest, config or blob.
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// What the bytes hash to.
        actual: String,
        /// Where they came from.
        registry: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("{registry} answered {status} to {what}: {body}")]
    Status {
        /// The registry.
        registry: String,
        /// The request in words.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, often a JSON error.
        body: String,
    },
    /// The caller's sink or source failed.
    #[error("{what}: {source}")]
    Sink {
        /// What was being stored or read.
        what: String,
        /// The caller's error.
        source: BoxError,
    },
    /// A local file (credentials, daemon.json) could not be read or written.
    #[error("{path}: {cause}")]
    Config {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
    /// An HTTP-level error after the connection was made.
    #[error("{registry}: {source}")]
    Http {
        /// The registry.
        registry: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
}
