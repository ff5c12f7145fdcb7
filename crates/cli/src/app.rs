//! What every command needs: the store and a registry client, made on first use, with the
//! daemon.json settings applied.

use std::path::PathBuf;
use std::sync::OnceLock;

use berth_image::Store;
use berth_registry::{Registry, RegistryOptions};

use crate::{Failure, GlobalArgs};

/// Default location of Docker-compatible engine settings.
const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

/// The command's context.
pub struct App {
    pub global: GlobalArgs,
    store: OnceLock<Store>,
    registry: OnceLock<Registry>,
}

impl App {
    pub fn new(global: GlobalArgs) -> App {
        App {
            global,
            store: OnceLock::new(),
            registry: OnceLock::new(),
        }
    }

    /// The image store under `--root`.
    pub fn store(&self) -> Result<&Store, Failure> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = Store::open(&self.global.root)?;
        Ok(self.store.get_or_init(|| s))
    }

    /// `BERTH_CONFIG`, else `/etc/berth/daemon.json`.
    pub fn config_path() -> PathBuf {
        std::env::var_os("BERTH_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// Registry options from daemon.json.
    pub fn registry_options() -> Result<RegistryOptions, Failure> {
        RegistryOptions::from_daemon_json(&Self::config_path()).map_err(Failure::from)
    }

    /// A registry client configured from daemon.json.
    pub fn registry(&self) -> Result<&Registry, Failure> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let r = Registry::new(Self::registry_options()?)?;
        Ok(self.registry.get_or_init(|| r))
    }
}
