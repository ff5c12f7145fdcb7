//! `berth serve`: the Docker Engine API on a unix socket, so that the tools people already
//! use — the `docker` CLI, docker-py, docker-compose, testcontainers — drive berth.
//!
//! ```no_run
//! let engine = berth_engine::Engine::open("/var/lib/berth".into(), "/run/berth".into())?;
//! let state = berth_api::State::new(engine, "/etc/berth/daemon.json".into());
//! berth_api::serve(state, vec![berth_api::Listen::Unix("/run/berth/berth.sock".into())])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Design.** A thin adapter: every endpoint translates a request into calls of the same
//! `engine`, `image` and `build` functions the CLI uses, so a container made through the
//! API shows in `berth ps` and the other way round; the server keeps no state of its own
//! except what Docker's daemon keeps in memory too (exec sessions, and attach connections
//! made before their container starts). HTTP/1.1 by hyper on tokio; the engine is
//! synchronous, so engine calls run on threads of their own ([`http::blocking`]), and
//! anything that must clone a container (start, exec) goes through a freshly executed
//! `berth` process, as the CLI's does, never a fork of this multi-threaded one.
//!
//! **Architecture invariant:** knows nothing of how containers are made; no endpoint
//! reaches below `engine`'s public API.
#![deny(missing_docs)]
#![recursion_limit = "256"]

mod attach;
mod containers;
mod create;
mod error;
mod events;
mod exec;
mod http;
mod images;
mod images_build;
mod networks;
mod router;
mod server;
mod system;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use error::ApiError;
pub use server::{serve, Listen, API_VERSION, MIN_API_VERSION};

/// What the server holds: the engine, where registry settings live, and the in-memory state
/// Docker's daemon keeps too.
pub struct State {
    engine: Arc<berth_engine::Engine>,
    config: PathBuf,
    exec: Mutex<HashMap<String, exec::Session>>,
    pending: attach::Pending,
}

impl State {
    /// A server over `engine`; registry settings (mirrors, insecure registries, logins) come
    /// from the daemon.json at `config`, as for the CLI.
    pub fn new(engine: berth_engine::Engine, config: PathBuf) -> State {
        State {
            engine: Arc::new(engine),
            config,
            exec: Mutex::new(HashMap::new()),
            pending: attach::Pending::default(),
        }
    }

    fn registry(&self) -> Result<berth_registry::Registry, ApiError> {
        let options = berth_registry::RegistryOptions::from_daemon_json(&self.config)?;
        Ok(berth_registry::Registry::new(options)?)
    }
}
