//! The platform ARGs BuildKit predefines (`TARGETPLATFORM`, `BUILDARCH`, …) and
//! `SOURCE_DATE_EPOCH`. berth builds for the machine it runs on only, so target and build
//! platform are both the host's, and `--platform` may name only that.

use std::collections::BTreeMap;

use berth_registry::Platform;

use crate::{Builder, Error};

/// `os/arch[/variant]`.
fn render(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The predefined ARGs in global scope (a stage sees them after `ARG NAME`).
pub(crate) fn predefined_args() -> BTreeMap<String, String> {
    let host = Platform::host();
    let mut args = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        args.insert(format!("{prefix}PLATFORM"), render(&host));
        args.insert(format!("{prefix}OS"), host.os.clone());
        args.insert(format!("{prefix}ARCH"), host.architecture.clone());
        args.insert(
            format!("{prefix}VARIANT"),
            host.variant.clone().unwrap_or_default(),
        );
    }
    args
}

/// Refuses a `--platform` (or `FROM --platform=`) other than the host's.
pub(crate) fn check(platform: Option<&str>) -> Result<(), Error> {
    let Some(p) = platform.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let host = Platform::host();
    let mut parts = p.split('/');
    let os = parts.next().unwrap_or_default();
    let arch = parts.next().unwrap_or(&host.architecture);
    let variant = parts.next();
    let same = os == host.os
        && arch == host.architecture
        && (variant.is_none() || variant == host.variant.as_deref());
    if same {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "platform {p:?} is not this machine's ({}): berth builds for the host platform only",
            render(&host)
        )))
    }
}

impl Builder<'_> {
    /// `SOURCE_DATE_EPOCH` from `--build-arg` (the CLI passes the environment's there).
    pub(crate) fn source_date_epoch(&self) -> Option<i64> {
        self.options
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_platform() {
        let host = render(&Platform::host());
        assert!(check(Some(&host)).is_ok());
        assert!(check(None).is_ok());
        assert!(check(Some("linux/s390x")).is_err());
        assert!(check(Some("windows/amd64")).is_err());
        assert_eq!(predefined_args()["TARGETPLATFORM"], host);
    }
}
