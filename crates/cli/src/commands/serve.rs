//! `berth serve`: the Docker Engine API, in the foreground, until SIGTERM.

use clap::Args;

use crate::app::App;
use crate::Failure;

/// The socket Docker clients are pointed at (`DOCKER_HOST=unix:///run/berth/berth.sock`).
const DEFAULT_SOCKET: &str = "unix:///run/berth/berth.sock";

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen: unix:///path (mode 0660) or tcp://IP:PORT (unauthenticated: only on
    /// a trusted address). May be given several times.
    #[arg(short = 'H', long = "host", default_value = DEFAULT_SOCKET)]
    pub hosts: Vec<String>,
}

pub fn serve(app: &App, args: ServeArgs) -> Result<(), Failure> {
    let listens = args
        .hosts
        .iter()
        .map(|h| berth_api::Listen::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::usage)?;
    let engine = berth_engine::Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(crate::commands::lifecycle::daemon)?;
    let state = berth_api::State::new(engine, App::config_path());
    berth_api::serve(state, listens).map_err(|e| Failure {
        code: 1,
        message: format!("berth serve: {e}"),
    })
}
