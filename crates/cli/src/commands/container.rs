//! `run` (foreground for now) and the hidden monitor entry point.

use std::sync::Arc;

use berth_engine::monitor::Streams;
use berth_engine::{Engine, RunOptions, State};
use berth_registry::{Platform, Reference};
use clap::Args;

use crate::app::App;
use crate::progress::{Direction, Display};
use crate::Failure;

#[derive(Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in Docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Connect a container to a network (bridge, none or host).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Publish a container's port(s) to the host: [ip:]hostport:containerport[/proto].
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Keep STDIN open (stdin is always passed through for now).
    #[arg(short, long)]
    pub interactive: bool,
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Allocate a pseudo-TTY (not supported yet).
    #[arg(short, long)]
    pub tty: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, allow_hyphen_values = true)]
    pub image_and_command: Vec<String>,
}

fn run_failure(message: String) -> Failure {
    Failure {
        code: 125,
        message: format!("berth: {message}"),
    }
}

pub fn run(app: &App, args: RunArgs) -> Result<(), Failure> {
    if args.tty {
        return Err(run_failure(
            "-t is not supported yet; run without a pseudo-terminal".into(),
        ));
    }
    if let Some(n) = args
        .network
        .as_deref()
        .filter(|n| !["bridge", "default", "none", "host"].contains(n))
    {
        return Err(run_failure(format!(
            "Error response from daemon: network {n} not found (berth has bridge, none and host for now)"
        )));
    }
    let mut publish = Vec::new();
    for p in &args.publish {
        let parsed = berth_network::parse_publish(p).map_err(|e| {
            run_failure(format!(
                "invalid argument \"{p}\" for \"-p, --publish\" flag: {e}\nSee 'berth run --help'."
            ))
        })?;
        publish.extend(parsed);
    }
    if !publish.is_empty() && matches!(args.network.as_deref(), Some("none") | Some("host")) {
        return Err(run_failure(format!(
            "Error response from daemon: published ports are discarded when using --network {}",
            args.network.as_deref().unwrap_or_default()
        )));
    }
    let engine = Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| run_failure(format!("Error response from daemon: {e}")))?;
    let image = args.image_and_command[0].clone();
    if engine.images.lookup(&image).is_err() {
        let reference = Reference::parse_with_default_tag(&image)
            .map_err(|e| run_failure(format!("{e}.\nSee 'berth run --help'.")))?;
        eprintln!(
            "Unable to find image '{}' locally",
            berth_image::display_ref(&reference.to_string())
        );
        let display = Arc::new(Display::on_stderr(Direction::Pull));
        engine
            .images
            .pull(app.registry()?, &reference, &Platform::host(), display)
            .map_err(|e| run_failure(format!("Error response from daemon: {e}")))?;
    }
    let env = args
        .env
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some(_) => Some(e.clone()),
            // `-e KEY` takes KEY from the caller's environment, or drops it, as Docker does.
            None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        })
        .collect();
    let options = RunOptions {
        image,
        cmd: args.image_and_command[1..].to_vec(),
        entrypoint: args.entrypoint,
        env,
        workdir: args.workdir,
        user: args.user,
        name: args.name,
        hostname: args.hostname,
        rm: args.rm,
        network: args.network,
        publish,
    };
    let id = engine.create(&options).map_err(|e| {
        let message = e.to_string();
        run_failure(format!(
            "Error response from daemon: {}.",
            message.trim_end_matches('.')
        ))
    })?;
    // The monitor is a fresh process: the runtime must start containers from a
    // single-threaded one, and the CLI may have threads (the pull above).
    let exe = std::env::current_exe().map_err(|e| run_failure(e.to_string()))?;
    let mut monitor = std::process::Command::new(exe);
    monitor
        .arg("--root")
        .arg(&app.global.root)
        .arg("--runroot")
        .arg(&app.global.runroot)
        .arg("container-monitor");
    if args.detach {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        // Its own process group, no terminal: it outlives this command.
        monitor
            .arg("--detached")
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        monitor
            .spawn()
            .map_err(|e| run_failure(format!("starting the container monitor: {e}")))?;
        return report_start(&engine, &id);
    }
    // A process group of its own, so the terminal's Ctrl-C reaches the container once,
    // through this process, not a second time through the monitor.
    let mut child = std::os::unix::process::CommandExt::process_group(monitor.arg(&id), 0)
        .spawn()
        .map_err(|e| run_failure(format!("starting the container monitor: {e}")))?;
    // Straight to the container's init once it runs: the monitor is busy starting it.
    let (root, container) = (app.global.root.clone(), id.clone());
    berth_engine::signals::install()
        .map_err(|e| run_failure(format!("installing signal forwarding: {e}")))?
        .forward_when_known(move || berth_engine::container::recorded_pid(&root, &container));
    let status = child
        .wait()
        .map_err(|e| run_failure(format!("waiting for the container monitor: {e}")))?;
    let code = status.code().unwrap_or(125);
    if code == 0 {
        Ok(())
    } else {
        Err(Failure {
            code: u8::try_from(code).unwrap_or(125),
            message: String::new(),
        })
    }
}

/// `run -d`: waits until the monitor has started the container (or failed to), then prints
/// the ID as Docker does, or the error with Docker's exit code.
fn report_start(engine: &Engine, id: &str) -> Result<(), Failure> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let record = engine
            .load(id)
            .map_err(|e| run_failure(format!("Error response from daemon: {e}")))?;
        if record.state != State::Created {
            if let Some(err) = record.error {
                return Err(Failure {
                    code: u8::try_from(record.exit_code.unwrap_or(125)).unwrap_or(125),
                    message: format!("berth: Error response from daemon: {err}."),
                });
            }
            println!("{id}");
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(run_failure(format!(
                "container {id} did not start within 30 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[derive(Args)]
pub struct MonitorArgs {
    /// Send the container's output to its log instead of this process's stdio.
    #[arg(long)]
    pub detached: bool,
    /// Container ID.
    pub id: String,
}

/// The monitor process (see `berth_engine::monitor`).
pub fn monitor(app: &App, args: MonitorArgs) -> Result<(), Failure> {
    let engine = Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| run_failure(format!("Error response from daemon: {e}")))?;
    let streams = if args.detached {
        Streams::Log
    } else {
        Streams::Inherit
    };
    let code = berth_engine::monitor::run(&engine, &args.id, streams);
    std::process::exit(code);
}
