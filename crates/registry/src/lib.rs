//! berth's client for the OCI distribution spec: what `docker pull`/`push`/`login` say to a
//! registry.
//!
//! It parses and normalises references ([`Reference`]), reads Docker's `daemon.json` registry
//! keys and `~/.docker/config.json` credentials ([`RegistryOptions`], [`auth`]), answers
//! bearer-token and basic-auth challenges, resolves a reference to one platform's manifest and
//! config ([`Registry::resolve`]), and moves blobs in parallel ([`Registry::fetch_blob`],
//! [`Registry::push_image`]).
//!
//! ```no_run
//! use berth_registry::{Reference, Registry, RegistryOptions, Platform};
//! let registry = Registry::new(RegistryOptions::default())?;
//! let reference = Reference::parse_with_default_tag("busybox")?;
//! let image = registry.resolve(&reference, &Platform::host())?;
//! println!("{} has {} layers", image.manifest_digest, image.manifest.layers().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Design.** The crate knows nothing of how or where blobs are kept: bytes leave it through
//! the [`BlobSink`] trait and enter it through `std::io::Read`, so the store (`berth-image`)
//! decides about files, digests on disk and unpacking. Async (tokio + reqwest) stays inside:
//! [`Registry`] owns its runtime and offers blocking methods, because the rest of berth — the
//! store, and later the container-creation path — is synchronous. Small JSON documents
//! (manifests, configs) are held in memory and verified; layers are only ever streamed.
#![deny(missing_docs)]

pub mod auth;
mod client;
mod config;
mod error;
mod manifest;
mod pull;
mod push;
mod reference;

pub use client::Registry;
pub use config::RegistryOptions;
pub use error::Error;
pub use manifest::{media_types, Platform, ResolvedImage};
pub use pull::{BlobJob, BlobSink, Progress, ProgressEvent};
pub use push::{PushBlob, PushImage};
pub use reference::{familiar, is_loopback_host, Reference, ReferenceError, DEFAULT_DOMAIN};

/// Re-exported so callers share its version of the OCI types.
pub use oci_spec;

/// An error from a caller-provided sink or source, carried through unchanged.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
