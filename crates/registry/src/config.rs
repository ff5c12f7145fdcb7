//! Registry settings, read from Docker's `daemon.json` keys so a Docker user's file works as is.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::reference::is_loopback_host;
use crate::Error;

/// Where registries are, which may use plain HTTP, and where credentials live.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Mirrors tried, in order, before `docker.io` itself (`registry-mirrors`).
    pub mirrors: Vec<String>,
    /// Hosts (`host:port`) or CIDRs allowed to use plain HTTP or unverified TLS
    /// (`insecure-registries`). Loopback hosts are always insecure, as in Docker.
    pub insecure: Vec<String>,
    /// The Docker CLI config file holding `auths` (default `~/.docker/config.json`).
    pub auth_file: Option<PathBuf>,
    /// How many blobs move at once (Docker's default is 3).
    pub max_concurrent: usize,
}

#[derive(Deserialize, Default)]
struct DaemonJson {
    #[serde(default, rename = "registry-mirrors")]
    registry_mirrors: Vec<String>,
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
    #[serde(default, rename = "max-concurrent-downloads")]
    max_concurrent_downloads: Option<usize>,
}

impl RegistryOptions {
    /// Reads the registry keys of a daemon.json; a missing file means defaults.
    pub fn from_daemon_json(path: &Path) -> Result<RegistryOptions, Error> {
        let bad = |cause: String| Error::Config {
            path: path.display().to_string(),
            cause,
        };
        let parsed: DaemonJson = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("invalid daemon.json: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DaemonJson::default(),
            Err(e) => return Err(bad(e.to_string())),
        };
        for m in &parsed.registry_mirrors {
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                return Err(bad(format!(
                    "registry-mirrors entry {m:?} must start with http:// or https://"
                )));
            }
        }
        Ok(RegistryOptions {
            mirrors: parsed.registry_mirrors,
            insecure: parsed.insecure_registries,
            auth_file: None,
            max_concurrent: parsed.max_concurrent_downloads.unwrap_or(3),
        })
    }

    /// Whether `host` may be spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_loopback_host(host)
            || self.insecure.iter().any(|entry| {
                let entry = entry
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/');
                entry == host || in_cidr(entry, host)
            })
    }

    /// The credentials file in use.
    pub fn auth_path(&self) -> PathBuf {
        self.auth_file
            .clone()
            .unwrap_or_else(crate::auth::default_config_path)
    }
}

fn in_cidr(cidr: &str, host: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let (Ok(net), Ok(bits), Ok(ip)) = (
        net.parse::<std::net::Ipv4Addr>(),
        bits.parse::<u32>(),
        host.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(net) & mask == u32::from(ip) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let o = RegistryOptions {
            insecure: vec!["myreg:5000".into(), "10.1.0.0/16".into()],
            ..Default::default()
        };
        assert!(o.is_insecure("127.0.0.1:5000"));
        assert!(o.is_insecure("myreg:5000"));
        assert!(o.is_insecure("10.1.2.3:5000"));
        assert!(!o.is_insecure("10.2.0.1:5000"));
        assert!(!o.is_insecure("docker.io"));
    }

    #[test]
    fn daemon_json_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("berth-dj-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("daemon.json");
        std::fs::write(&f, r#"{"registry-mirrors": ["127.0.0.1:5000"]}"#).unwrap();
        let e = RegistryOptions::from_daemon_json(&f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("daemon.json") && e.contains("must start with http://"),
            "{e}"
        );
        std::fs::write(&f, "{not json").unwrap();
        let e = RegistryOptions::from_daemon_json(&f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid daemon.json"), "{e}");
        std::fs::write(
            &f,
            r#"{"registry-mirrors": ["http://127.0.0.1:5000"], "debug": true}"#,
        )
        .unwrap();
        let o = RegistryOptions::from_daemon_json(&f).unwrap();
        assert_eq!(o.mirrors, vec!["http://127.0.0.1:5000"]);
        assert!(RegistryOptions::from_daemon_json(&dir.join("missing")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
