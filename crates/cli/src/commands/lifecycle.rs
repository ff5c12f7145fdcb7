//! Containers after `create`/`run`: `ps`, `start`, `stop`, `restart`, `kill`, `rm`, `logs`,
//! `wait`, `attach`, `pause`, `unpause`, `rename`, `container prune`.

use std::io::Write;
use std::time::Duration;

use berth_engine::{ContainerRecord, Engine};
use clap::Args;
use serde_json::json;

use crate::app::App;
use crate::format::{ago, print_tabbed, print_table, Template};
use crate::Failure;

pub(crate) fn engine(app: &App) -> Result<Engine, Failure> {
    Engine::open(app.global.root.clone(), app.global.runroot.clone()).map_err(daemon)
}

/// An engine error as Docker's CLI prints it, exit 1.
pub(crate) fn daemon(e: berth_engine::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("Error response from daemon: {e}"),
    }
}

/// Runs `f` for each name, printing failures and carrying on, as Docker does; exit 1 if any
/// failed.
pub(crate) fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n) {
            eprintln!("{}", e.message);
            failed = true;
        }
    }
    if failed {
        Err(Failure {
            code: 1,
            message: String::new(),
        })
    } else {
        Ok(())
    }
}

/// Signal names and numbers as `docker kill -s` takes them.
pub(crate) fn parse_signal(s: &str) -> Result<i32, Failure> {
    berth_engine::options::parse_signal(s).map_err(daemon)
}

/// Go's `strconv.Quote`, which `docker ps` applies to COMMAND.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `0.0.0.0:5000->5000/tcp` for each published port of a running container.
fn ports(r: &ContainerRecord) -> String {
    if !r.is_running() {
        return String::new();
    }
    r.ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn state_word(r: &ContainerRecord) -> &'static str {
    r.status()
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

pub fn ps(app: &App, args: PsArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let mut all = engine.list().map_err(daemon)?;
    all.sort_by(|a, b| b.created.cmp(&a.created));
    let mut filters = Vec::new();
    for f in &args.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| Failure {
            code: 1,
            message: format!("Error response from daemon: invalid filter '{f}'"),
        })?;
        if !["status", "name", "id", "label", "exited"].contains(&k) {
            return Err(Failure {
                code: 1,
                message: format!("Error response from daemon: invalid filter '{k}'"),
            });
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let shown: Vec<&ContainerRecord> = all
        .iter()
        .filter(|r| {
            args.all
                || r.is_running()
                || filters.iter().any(|(k, _)| k == "status" || k == "exited")
        })
        .filter(|r| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "status" => state_word(r) == v,
                "name" => r.name.contains(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => r.options.labels.get(lk).is_some_and(|x| x == lv),
                    None => r.options.labels.contains_key(v.as_str()),
                },
                "exited" => {
                    r.status() == "exited"
                        && r.exit_code.map(|c| c.to_string()).as_deref() == Some(v)
                }
                _ => r.id.starts_with(v.as_str()),
            })
        })
        .collect();
    let id = |r: &ContainerRecord| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        }
    };
    if args.quiet {
        for r in &shown {
            println!("{}", id(r));
        }
        return Ok(());
    }
    let command = |r: &ContainerRecord| {
        let c = r.args.join(" ");
        let c = if args.no_trunc || c.chars().count() <= 20 {
            c
        } else {
            format!("{}…", c.chars().take(19).collect::<String>())
        };
        go_quote(&c)
    };
    if let Some(fmt) = args.format.as_deref().filter(|f| *f != "table") {
        let t = Template::parse(fmt);
        let mut lines = Vec::new();
        if t.is_table() {
            lines.push(t.header(&|f| match f {
                "ID" => "CONTAINER ID".into(),
                "RunningFor" => "CREATED".into(),
                other => other.to_uppercase(),
            }));
        }
        for r in &shown {
            let v = json!({
                "ID": id(r), "Image": r.options.image, "Command": command(r),
                "CreatedAt": r.created, "RunningFor": ago(Some(&r.created)),
                "Status": r.status_text(), "State": state_word(r), "Names": r.name,
                "Ports": ports(r),
                "Labels": r.options.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Mounts": r.options.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
                "Networks": r.endpoints().iter().map(|e| e.network.clone()).collect::<Vec<_>>().join(","),
            });
            lines.push(t.render(&v).map_err(Failure::usage)?);
        }
        if t.is_table() {
            print_tabbed(&lines);
        } else {
            for l in lines {
                println!("{l}");
            }
        }
        return Ok(());
    }
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for r in &shown {
        rows.push(vec![
            id(r),
            r.options.image.clone(),
            command(r),
            ago(Some(&r.created)),
            r.status_text(),
            ports(r),
            r.name.clone(),
        ]);
    }
    print_table(&rows);
    Ok(())
}

#[derive(Args)]
pub struct StopArgs {
    /// CONTAINER...
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container (default: its --stop-timeout, else 10).
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container (default: its stop signal).
    #[arg(short, long)]
    pub signal: Option<String>,
}

/// `docker stop` of one container: its stop signal, then SIGKILL after the grace time.
fn stop_one(
    engine: &Engine,
    name: &str,
    signal: Option<&str>,
    time: Option<i64>,
) -> Result<(), Failure> {
    let r = engine.find(name).map_err(daemon)?;
    let signal = parse_signal(signal.unwrap_or(&r.stop_signal()))?;
    // A negative time waits for ever, as in Docker.
    let grace = match time.unwrap_or_else(|| r.stop_timeout()) {
        t if t < 0 => Duration::from_secs(u64::MAX / 4),
        t => Duration::from_secs(t as u64),
    };
    engine.stop(&r, signal, grace).map_err(daemon)
}

pub fn stop(app: &App, args: StopArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        stop_one(&engine, n, args.signal.as_deref(), args.time)?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args)]
pub struct StartArgs {
    /// CONTAINER...
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Start every container that is not running (as Podman's `start --all`); with
    /// `--filter restart-policy=always --filter restart-policy=unless-stopped`, the ones
    /// Docker's daemon would bring back at boot.
    #[arg(long, conflicts_with_all = ["attach", "interactive"])]
    pub all: bool,
    /// With --all: only containers with this restart policy (`restart-policy=NAME`).
    #[arg(long, requires = "all")]
    pub filter: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
}

pub fn start(app: &App, args: StartArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    if args.attach {
        if args.containers.len() > 1 {
            return Err(Failure {
                code: 1,
                message: "you cannot start and attach multiple containers at once".into(),
            });
        }
        let r = engine.find(&args.containers[0]).map_err(daemon)?;
        forward_signals(&engine, &r.id)?;
        return match engine.start_attached(&r.id, args.interactive) {
            Ok(Some(code)) => crate::commands::container::exit_with(code),
            Ok(None) => Ok(()),
            Err(e) => Err(start_failure(e)),
        };
    }
    if args.all {
        let mut policies = Vec::new();
        for f in &args.filter {
            match f.split_once('=') {
                Some(("restart-policy", p))
                    if ["no", "always", "unless-stopped", "on-failure"].contains(&p) =>
                {
                    policies.push(p.to_string())
                }
                _ => {
                    return Err(Failure {
                        code: 125,
                        message: format!("invalid filter {f:?}: only restart-policy=no|always|unless-stopped|on-failure is known"),
                    })
                }
            }
        }
        let ids: Vec<String> = engine
            .startable(&policies)
            .map_err(daemon)?
            .into_iter()
            .map(|r| r.name)
            .collect();
        return each(&ids, |n| {
            let r = engine.find(n).map_err(daemon)?;
            engine.start_detached(&r.id).map_err(start_failure)?;
            println!("{n}");
            Ok(())
        });
    }
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        engine.start_detached(&r.id).map_err(start_failure)?;
        println!("{n}");
        Ok(())
    })
}

/// A failed start as Docker reports it (exit 1 for `start`).
fn start_failure(e: berth_engine::Error) -> Failure {
    Failure {
        code: 1,
        message: format!(
            "Error response from daemon: {}\nError: failed to start containers",
            berth_engine::monitor::docker_message(&e)
        ),
    }
}

/// Passes SIGINT, SIGTERM… on to the container's init, as Docker's `--sig-proxy`.
fn forward_signals(engine: &Engine, id: &str) -> Result<(), Failure> {
    let root = engine.root().to_path_buf();
    let container = id.to_string();
    berth_engine::signals::install()
        .map_err(|e| Failure::usage(format!("installing signal forwarding: {e}")))?
        .forward_when_known(move || berth_engine::container::recorded_pid(&root, &container));
    Ok(())
}

#[derive(Args)]
pub struct AttachArgs {
    /// CONTAINER
    pub container: String,
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true)]
    pub sig_proxy: bool,
}

pub fn attach(app: &App, args: AttachArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let r = engine.find(&args.container).map_err(daemon)?;
    if args.sig_proxy {
        forward_signals(&engine, &r.id)?;
    }
    let stdin = r.options.interactive && !args.no_stdin;
    match engine.attach(&r, stdin) {
        Ok(Some(code)) => crate::commands::container::exit_with(code),
        Ok(None) => Ok(()),
        Err(berth_engine::Error::Invalid(m)) => Err(Failure {
            code: 1,
            message: m,
        }),
        Err(e) => Err(daemon(e)),
    }
}

/// `restart`: `stop` (same flags), then start.
pub fn restart(app: &App, args: StopArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        stop_one(&engine, n, args.signal.as_deref(), args.time)?;
        let r = engine.find(n).map_err(daemon)?;
        engine.start_detached(&r.id).map_err(daemon)?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args)]
pub struct KillArgs {
    /// CONTAINER...
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

pub fn kill(app: &App, args: KillArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let signal = parse_signal(&args.signal)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        engine.kill(&r, signal).map_err(|e| match e {
            berth_engine::Error::NotRunning(id) => Failure {
                code: 1,
                message: format!(
                    "Error response from daemon: cannot kill container: {n}: container {id} is not running"
                ),
            },
            e => daemon(e),
        })?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args)]
pub struct RmArgs {
    /// CONTAINER...
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
}

/// Removes one container (stopping it first with `force`).
fn remove_one(
    engine: &Engine,
    r: &ContainerRecord,
    force: bool,
    volumes: bool,
) -> Result<(), Failure> {
    engine.remove_container(r, force, volumes).map_err(daemon)
}

pub fn rm(app: &App, args: RmArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        remove_one(&engine, &r, args.force, args.volumes)?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args)]
pub struct PauseArgs {
    /// CONTAINER...
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(app: &App, args: PauseArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        engine.pause(&r).map_err(daemon)?;
        println!("{n}");
        Ok(())
    })
}

pub fn unpause(app: &App, args: PauseArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        engine.unpause(&r).map_err(daemon)?;
        println!("{n}");
        Ok(())
    })
}

#[derive(Args)]
pub struct RenameArgs {
    /// CONTAINER
    pub container: String,
    /// NEW_NAME
    pub new_name: String,
}

pub fn rename(app: &App, args: RenameArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    engine
        .rename(&args.container, &args.new_name)
        .map_err(daemon)
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (label=…).
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(app: &App, args: PruneArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    if !args.force && !crate::commands::confirm(
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
    ) {
        return Ok(());
    }
    let mut labels = Vec::new();
    for f in &args.filter {
        match f.strip_prefix("label=") {
            Some(l) => labels.push(l.to_string()),
            None => {
                return Err(Failure {
                    code: 1,
                    message: format!("Error response from daemon: invalid filter '{f}'"),
                })
            }
        }
    }
    let deleted = engine.prune_containers(&labels).map_err(daemon)?;
    print_deleted("Containers", &deleted);
    println!("Total reclaimed space: 0B");
    Ok(())
}

/// Docker's `Deleted X:` section of prune output (nothing when nothing went).
pub(crate) fn print_deleted(what: &str, deleted: &[String]) {
    if !deleted.is_empty() {
        println!("Deleted {what}:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
}

#[derive(Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
}

/// `system prune`: stopped containers (and the leftovers of killed monitors), unused
/// networks, dangling (or, with -a, unused) images, and with --volumes anonymous volumes.
pub fn system_prune(app: &App, args: SystemPruneArgs) -> Result<(), Failure> {
    if !args.force {
        let mut items = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if args.volumes {
            items.push("all anonymous volumes not used by at least one container");
        }
        items.push(if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        let list: String = items.iter().map(|i| format!("  - {i}\n")).collect();
        if !crate::commands::confirm(&format!(
            "WARNING! This will remove:\n{list}\nAre you sure you want to continue? [y/N] "
        )) {
            return Ok(());
        }
    }
    let engine = engine(app)?;
    // Builds killed with -9 first: their RUN containers may still run, their views be mounted.
    let mut containers = berth_build::clean_stale(&engine).map_err(|e| Failure {
        code: 1,
        message: format!("Error response from daemon: {e}"),
    })?;
    containers.extend(engine.prune_containers(&[]).map_err(daemon)?);
    print_deleted("Containers", &containers);
    print_deleted("Networks", &engine.prune_networks().map_err(daemon)?);
    if args.volumes {
        print_deleted("Volumes", &engine.prune_volumes(false).map_err(daemon)?);
    }
    let reclaimed = crate::commands::image::prune_images(app, args.all)?;
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(reclaimed)
    );
    Ok(())
}

#[derive(Args)]
pub struct LogsArgs {
    /// CONTAINER
    pub container: String,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    pub until: Option<String>,
}

pub fn logs(app: &App, args: LogsArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let r = engine.find(&args.container).map_err(daemon)?;
    let path = engine.log_path(&r.id);
    let now = chrono::Utc::now();
    let bound = |v: &Option<String>| {
        v.as_deref()
            .map(|s| berth_engine::logs::parse_time(s, now))
            .transpose()
            .map_err(daemon)
    };
    let (since, until) = (bound(&args.since)?, bound(&args.until)?);
    let in_window = |e: &berth_engine::logs::Entry| {
        let t = chrono::DateTime::parse_from_rfc3339(&e.time)
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok();
        match t {
            Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
            None => true,
        }
    };
    let all = berth_engine::logs::read(&path);
    let total = all.len();
    let entries: Vec<_> = all.into_iter().filter(|e| in_window(e)).collect();
    let skip = match args.tail.as_str() {
        "all" => 0,
        n => {
            let n: usize = n
                .parse()
                .map_err(|_| Failure::usage(format!("invalid value for --tail: {n}")))?;
            entries.len().saturating_sub(n)
        }
    };
    let print = |e: &berth_engine::logs::Entry| print_entry(e, args.timestamps);
    let mut seen = total;
    entries.iter().skip(skip).for_each(print);
    if args.follow {
        loop {
            let running = engine
                .load(&r.id)
                .map(|x| x.monitor_alive())
                .unwrap_or(false);
            let all = berth_engine::logs::read(&path);
            all.iter()
                .skip(seen)
                .filter(|e| in_window(e))
                .for_each(print);
            seen = all.len();
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Writes one log entry to stdout or stderr, as it was written.
fn print_entry(e: &berth_engine::logs::Entry, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    if e.stream == "stderr" {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

#[derive(Args)]
pub struct WaitArgs {
    /// CONTAINER...
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn wait(app: &App, args: WaitArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        let done = engine
            .wait_stopped(&r.id, Duration::from_secs(u64::MAX / 4))
            .map_err(daemon)?
            .expect("no timeout");
        println!("{}", done.exit_code.unwrap_or(-1));
        Ok(())
    })
}
