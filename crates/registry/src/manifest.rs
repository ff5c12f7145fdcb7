//! Manifests, indexes and platform choice.
//!
//! Docker schema2 manifests and manifest lists have the same shape as OCI manifests and
//! indexes, so both parse into `oci_spec` types; only the media types differ. Schema 1 is
//! refused with a clear error, as Docker 28 does.

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::{Error, Reference};

/// Media types berth reads and writes.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI layer, gzip.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI layer, zstd.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI layer, uncompressed.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Docker schema2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer, gzip.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker schema1 (refused).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// The `Accept` header for manifest requests, most preferred first.
    pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

    /// Whether a media type names an index or manifest list.
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_LIST
    }
}

/// An OS/architecture/variant triple (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8`, `v7`, or none.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine, which Docker pulls by default.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`, normalising aliases as containerd does.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"
            ));
        }
        let arch = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "i386" | "i686" => "386".to_string(),
            a => a.to_string(),
        };
        let mut variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        if arch == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: arch,
            variant,
        })
    }

    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let variant = match (arch, variant) {
            ("arm64", Some("v8")) => None,
            (_, v) => v,
        };
        self.os == os
            && self.architecture == arch
            && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A reference resolved to one platform's manifest and config, ready for blob transfer.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as asked.
    pub reference: Reference,
    /// Repository path on the endpoint that answered (same as the reference's for mirrors).
    pub repository: String,
    /// Base URL of the endpoint that answered (a mirror or the registry).
    pub endpoint: String,
    /// Digest of the index or manifest the tag points to: Docker's "repo digest".
    pub repo_digest: String,
    /// The index bytes, when the reference named an index.
    pub index: Option<Vec<u8>>,
    /// Digest of the platform manifest.
    pub manifest_digest: String,
    /// Media type of the platform manifest.
    pub manifest_media_type: String,
    /// Raw manifest bytes, verified against `manifest_digest`.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// Raw config bytes, verified against the manifest's config descriptor.
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfiguration,
}

impl ResolvedImage {
    /// The layer descriptors, bottom first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }
}

/// Picks the manifest for `platform` out of an index.
pub(crate) fn select_platform(
    reference: &Reference,
    index: &ImageIndex,
    platform: &Platform,
) -> Result<Descriptor, Error> {
    let mut available = Vec::new();
    for m in index.manifests() {
        let Some(p) = m.platform() else { continue };
        let arch = p.architecture().to_string();
        let os = p.os().to_string();
        let variant = p.variant().as_deref();
        available.push(match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
        if platform.matches(&os, &arch, variant) {
            return Ok(m.clone());
        }
    }
    Err(Error::NoPlatform {
        reference: reference.to_string(),
        platform: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// Parses manifest bytes according to their media type, refusing what berth cannot run.
pub(crate) fn parse_manifest(
    reference: &Reference,
    media_type: &str,
    bytes: &[u8],
) -> Result<ImageManifest, Error> {
    let bad = |cause: String| Error::BadManifest {
        reference: reference.to_string(),
        cause,
    };
    if media_type == media_types::DOCKER_SCHEMA1
        || media_type == "application/vnd.docker.distribution.manifest.v1+json"
    {
        return Err(bad("Docker schema 1 manifests are not supported; push the image again with a current client".into()));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
    if manifest.schema_version() != 2 {
        return Err(bad(format!(
            "schemaVersion {} is not supported",
            manifest.schema_version()
        )));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse() {
        let p = |s: &str| Platform::parse(s).map(|p| p.to_string());
        assert_eq!(p("linux/amd64").unwrap(), "linux/amd64");
        assert_eq!(p("linux/x86_64").unwrap(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").unwrap(), "linux/arm64");
        assert_eq!(p("linux/arm/v7").unwrap(), "linux/arm/v7");
        assert!(p("linux").unwrap_err().contains("expected os/arch"));
        assert!(p("linux//").is_err());
    }

    #[test]
    fn platform_match() {
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(arm.matches("linux", "arm64", Some("v8")));
        assert!(arm.matches("linux", "arm64", None));
        assert!(!arm.matches("linux", "amd64", None));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches("linux", "arm", Some("v6")));
    }
}
