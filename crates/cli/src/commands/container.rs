//! `create` and `run` (their flags translate into `berth_engine::RunOptions`), and the hidden
//! monitor entry point.

use std::sync::Arc;

use berth_engine::lifecycle::Attach;
use berth_engine::monitor::Streams;
use berth_engine::options as opts;
use berth_engine::{Engine, RunOptions};
use berth_registry::{Platform, Reference};
use clap::Args;

use crate::app::App;
use crate::progress::{Direction, Display};
use crate::Failure;

/// The flags `create` and `run` share.
#[derive(Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct CreateArgs {
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
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Set meta data on a container.
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long)]
    pub label_file: Vec<String>,
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
    /// Connect a container to a network (bridge, host, none or one made by `network create`).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long, alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host: [ip:][hostport:]containerport[/proto].
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Bind mount a volume: [SRC:]DST[:ro].
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory: PATH[:OPTIONS].
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=…,target=…[,readonly].
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (no-new-privileges).
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short, long)]
    pub cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, allow_hyphen_values = true)]
    pub image_and_command: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

fn run_failure(message: String) -> Failure {
    Failure {
        code: 125,
        message: format!("berth: {message}"),
    }
}

/// An engine error as `docker run`/`create` prints it: exit 125 (126/127 when the command
/// cannot run).
fn daemon_failure(e: berth_engine::Error) -> Failure {
    Failure {
        code: u8::try_from(e.run_exit_code()).unwrap_or(125),
        message: format!(
            "berth: Error response from daemon: {}.",
            berth_engine::monitor::docker_message(&e)
        ),
    }
}

/// A flag value Docker's CLI itself refuses.
fn flag_failure(command: &str, e: berth_engine::Error) -> Failure {
    run_failure(format!(
        "{}.\nSee 'berth {command} --help'.",
        berth_engine::monitor::docker_message(&e)
    ))
}

fn read_lines(path: &str, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| run_failure(format!("open {path}: {e} ({what})")))
}

/// Translates `create`/`run` flags into the engine's options.
fn run_options(args: &CreateArgs, command: &str, detach: bool) -> Result<RunOptions, Failure> {
    let bad = |e| flag_failure(command, e);
    let mut publish = Vec::new();
    for p in &args.publish {
        let parsed = berth_network::parse_publish(p).map_err(|e| {
            run_failure(format!(
                "invalid argument \"{p}\" for \"-p, --publish\" flag: {e}\nSee 'berth {command} --help'."
            ))
        })?;
        publish.extend(parsed);
    }
    if (!publish.is_empty() || args.publish_all)
        && matches!(args.network.as_deref(), Some("none") | Some("host"))
    {
        return Err(run_failure(format!(
            "Error response from daemon: published ports are discarded when using --network {}",
            args.network.as_deref().unwrap_or_default()
        )));
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for f in &args.env_file {
        env.extend(opts::parse_env_file(&read_lines(f, "--env-file")?, lookup));
    }
    env.extend(args.env.iter().filter_map(|e| match e.split_once('=') {
        Some(_) => Some(e.clone()),
        // `-e KEY` takes KEY from the caller's environment, or drops it, as Docker does.
        None => lookup(e).map(|v| format!("{e}={v}")),
    }));
    let mut labels = std::collections::BTreeMap::new();
    for f in &args.label_file {
        for l in read_lines(f, "--label-file")?.lines() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                labels.extend([opts::parse_label(l)]);
            }
        }
    }
    labels.extend(args.label.iter().map(|l| opts::parse_label(l)));
    for h in &args.add_host {
        opts::parse_add_host(h).map_err(bad)?;
    }
    let mut mounts = args
        .volume
        .iter()
        .map(|v| opts::parse_volume(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let mut tmpfs = args.tmpfs.clone();
    for t in &args.tmpfs {
        opts::parse_tmpfs(t).map_err(bad)?;
    }
    for m in &args.mount {
        match opts::parse_mount(m).map_err(bad)? {
            opts::Mount::Mount(spec) => mounts.push(spec),
            opts::Mount::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let cap_add = args
        .cap_add
        .iter()
        .map(|c| opts::parse_capability(c, "CapAdd"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(daemon_failure)?;
    let cap_drop = args
        .cap_drop
        .iter()
        .map(|c| opts::parse_capability(c, "CapDrop"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(daemon_failure)?;
    let mut no_new_privileges = false;
    for s in &args.security_opt {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privileges = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => no_new_privileges = false,
            _ => {
                return Err(run_failure(format!(
                    "Error response from daemon: invalid --security-opt: {s:?} (berth supports no-new-privileges)"
                )))
            }
        }
    }
    if let Some(s) = &args.stop_signal {
        crate::commands::lifecycle::parse_signal(s)?;
    }
    let ulimits = args
        .ulimit
        .iter()
        .map(|u| opts::parse_ulimit(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let size = |s: &Option<String>| -> Result<Option<i64>, Failure> {
        match s.as_deref() {
            None => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(v) => opts::parse_bytes(v).map(Some).map_err(bad),
        }
    };
    let resources = opts::Resources {
        memory: size(&args.memory)?,
        memory_swap: size(&args.memory_swap)?,
        nano_cpus: args
            .cpus
            .as_deref()
            .map(opts::parse_cpus)
            .transpose()
            .map_err(bad)?,
        cpu_shares: args.cpu_shares,
        pids_limit: args.pids_limit,
    };
    let restart = args
        .restart
        .as_deref()
        .map(opts::parse_restart)
        .transpose()
        .map_err(bad)?
        .unwrap_or_default();
    Ok(RunOptions {
        image: args.image_and_command[0].clone(),
        cmd: args.image_and_command[1..].to_vec(),
        entrypoint: args.entrypoint.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        name: args.name.clone(),
        hostname: args.hostname.clone(),
        rm: args.rm,
        network: args.network.clone(),
        network_aliases: args.network_alias.clone(),
        publish,
        publish_all: args.publish_all,
        labels,
        add_hosts: args.add_host.clone(),
        mounts,
        tmpfs,
        read_only: args.read_only,
        cap_add,
        cap_drop,
        privileged: args.privileged,
        no_new_privileges,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        ulimits,
        resources,
        restart,
        init: args.init,
        interactive: args.interactive,
        tty: args.tty,
        attach: opts::AttachStreams::parse(&args.attach, args.interactive, detach).map_err(bad)?,
        transient: false,
    })
}

fn open_engine(app: &App) -> Result<Engine, Failure> {
    Engine::open(app.global.root.clone(), app.global.runroot.clone()).map_err(daemon_failure)
}

/// Makes the container record, pulling the image first if the store lacks it (as
/// `docker run` and `docker create` do).
fn create_container(app: &App, engine: &Engine, options: &RunOptions) -> Result<String, Failure> {
    if engine.images.lookup(&options.image).is_err() {
        let reference = Reference::parse_with_default_tag(&options.image)
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
    engine.create(options).map_err(daemon_failure)
}

pub fn create(app: &App, args: CreateArgs) -> Result<(), Failure> {
    let options = run_options(&args, "create", false)?;
    let engine = open_engine(app)?;
    let id = create_container(app, &engine, &options)?;
    println!("{id}");
    Ok(())
}

pub fn run(app: &App, args: RunArgs) -> Result<(), Failure> {
    let options = run_options(&args.create, "run", args.detach)?;
    if options.tty && options.interactive && !args.detach && !berth_engine::tty::stdin_is_terminal()
    {
        return Err(Failure {
            code: 1,
            message: "the input device is not a TTY".into(),
        });
    }
    let engine = open_engine(app)?;
    let id = create_container(app, &engine, &options)?;
    if args.detach {
        engine.start_detached(&id).map_err(daemon_failure)?;
        println!("{id}");
        return Ok(());
    }
    // Straight to the container's init once it runs: the monitor is busy starting it.
    let (root, container) = (app.global.root.clone(), id.clone());
    let proxy = berth_engine::signals::install()
        .map_err(|e| run_failure(format!("installing signal forwarding: {e}")))?;
    if options.tty {
        // Through the monitor's attach socket: the output is logged too, and Ctrl-P Ctrl-Q
        // leaves the container running.
        proxy.forward_when_known(move || berth_engine::container::recorded_pid(&root, &container));
        return match engine.start_attached(&id, options.interactive) {
            Ok(Some(code)) => exit_with(code),
            Ok(None) => Ok(()),
            Err(e) => Err(daemon_failure(e)),
        };
    }
    // The monitor is a fresh process: the runtime must start containers from a
    // single-threaded one, and the CLI may have threads (the pull above).
    let mut child = engine
        .spawn_monitor(&id, Attach::Foreground)
        .map_err(daemon_failure)?;
    proxy.forward_when_known(move || berth_engine::container::recorded_pid(&root, &container));
    let status = child
        .wait()
        .map_err(|e| run_failure(format!("waiting for the container monitor: {e}")))?;
    exit_with(status.code().unwrap_or(125))
}

/// Ends the command with a container's exit code, printing nothing more.
pub fn exit_with(code: i32) -> Result<(), Failure> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failure {
            code: u8::try_from(code).unwrap_or(125),
            message: String::new(),
        })
    }
}

#[derive(Args)]
pub struct MonitorArgs {
    /// Send the container's output to its log instead of this process's stdio.
    #[arg(long)]
    pub detached: bool,
    /// Start the container only once a client has attached (`run -it`, `start -a`).
    #[arg(long)]
    pub wait_attach: bool,
    /// Container ID.
    pub id: String,
}

/// The monitor process (see `berth_engine::monitor`).
pub fn monitor(app: &App, args: MonitorArgs) -> Result<(), Failure> {
    let engine = open_engine(app)?;
    let streams = match (args.detached, args.wait_attach) {
        (true, true) => Streams::LogAfterAttach,
        (true, false) => Streams::Log,
        (false, _) => Streams::Inherit,
    };
    let code = berth_engine::monitor::run(&engine, &args.id, streams);
    std::process::exit(code);
}
