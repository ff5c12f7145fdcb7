//! `ps`, `stop`, `kill`, `rm`, `logs`, `wait`: containers after `run`.

use std::io::Write;
use std::time::Duration;

use berth_engine::{ContainerRecord, Engine, State};
use clap::Args;
use serde_json::json;

use crate::app::App;
use crate::format::{ago, human_duration, print_tabbed, print_table, Template};
use crate::Failure;

fn engine(app: &App) -> Result<Engine, Failure> {
    Engine::open(app.global.root.clone(), app.global.runroot.clone()).map_err(daemon)
}

/// An engine error as Docker's CLI prints it, exit 1.
fn daemon(e: berth_engine::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("Error response from daemon: {e}"),
    }
}

/// Runs `f` for each name, printing failures and carrying on, as Docker does; exit 1 if any
/// failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), Failure>) -> Result<(), Failure> {
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
fn parse_signal(s: &str) -> Result<i32, Failure> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => {
            return Err(Failure {
                code: 1,
                message: format!("Error response from daemon: Invalid signal: {s}"),
            })
        }
    };
    Ok(n)
}

fn status_text(r: &ContainerRecord) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
            .unwrap_or(0)
    };
    if r.is_running() {
        format!("Up {}", human_duration(since(&r.started_at)))
    } else if r.state == State::Created {
        "Created".into()
    } else {
        format!(
            "Exited ({}) {} ago",
            r.exit_code.unwrap_or(-1),
            human_duration(since(&r.finished_at))
        )
    }
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
    r.options
        .publish
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
    if r.is_running() {
        "running"
    } else if r.state == State::Created {
        "created"
    } else {
        "exited"
    }
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
        if !["status", "name", "id"].contains(&k) {
            return Err(Failure {
                code: 1,
                message: format!("Error response from daemon: invalid filter '{k}'"),
            });
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let shown: Vec<&ContainerRecord> = all
        .iter()
        .filter(|r| args.all || r.is_running() || filters.iter().any(|(k, _)| k == "status"))
        .filter(|r| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "status" => state_word(r) == v,
                "name" => r.name.contains(v.as_str()),
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
                "Status": status_text(r), "State": state_word(r), "Names": r.name,
                "Ports": ports(r), "Labels": "", "Mounts": "", "Networks": "",
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
            status_text(r),
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
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = 10)]
    pub time: u64,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
}

/// Sends `signal`, waits up to `grace`, then SIGKILL, as `docker stop` does.
fn stop_one(engine: &Engine, name: &str, signal: i32, grace: Duration) -> Result<(), Failure> {
    let r = engine.find(name).map_err(daemon)?;
    if !r.is_running() {
        return Ok(());
    }
    let _ = engine.signal(&r, signal);
    if engine.wait_stopped(&r.id, grace).map_err(daemon)?.is_none() {
        let _ = engine.signal(&r, 9);
        engine
            .wait_stopped(&r.id, Duration::from_secs(30))
            .map_err(daemon)?;
    }
    Ok(())
}

pub fn stop(app: &App, args: StopArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let signal = parse_signal(args.signal.as_deref().unwrap_or("TERM"))?;
    each(&args.containers, |n| {
        stop_one(&engine, n, signal, Duration::from_secs(args.time))?;
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
        if !r.is_running() {
            return Err(Failure {
                code: 1,
                message: format!(
                    "Error response from daemon: cannot kill container: {n}: container {} is not running",
                    r.id
                ),
            });
        }
        engine.signal(&r, signal).map_err(daemon)?;
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
    /// Remove anonymous volumes (none exist yet).
    #[arg(short, long)]
    pub volumes: bool,
}

pub fn rm(app: &App, args: RmArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.containers, |n| {
        let r = engine.find(n).map_err(daemon)?;
        if r.is_running() {
            if !args.force {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "Error response from daemon: cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                        r.name
                    ),
                });
            }
            stop_one(&engine, n, 9, Duration::ZERO)?;
        } else if r.state == State::Running {
            // Recorded as running but its monitor is gone (killed): clean up after it.
            engine.reap_orphan(&r).map_err(daemon)?;
        }
        // A --rm container is already gone once its monitor finished.
        if engine.dir(&r.id).exists() {
            engine.remove(&r.id).map_err(daemon)?;
        }
        println!("{n}");
        Ok(())
    })
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
}

pub fn logs(app: &App, args: LogsArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let r = engine.find(&args.container).map_err(daemon)?;
    let path = engine.log_path(&r.id);
    let entries = berth_engine::logs::read(&path);
    let skip = match args.tail.as_str() {
        "all" => 0,
        n => {
            let n: usize = n
                .parse()
                .map_err(|_| Failure::usage(format!("invalid value for --tail: {n}")))?;
            entries.len().saturating_sub(n)
        }
    };
    let print = |e: &berth_engine::logs::Entry| {
        let text = if args.timestamps {
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
    };
    let mut seen = entries.len();
    entries.iter().skip(skip).for_each(print);
    if args.follow {
        loop {
            let running = engine.load(&r.id).map(|x| x.is_running()).unwrap_or(false);
            let now = berth_engine::logs::read(&path);
            now.iter().skip(seen).for_each(print);
            seen = now.len();
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
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
