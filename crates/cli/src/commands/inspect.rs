//! Looking into containers: `inspect` (containers first, then images, as `docker inspect`),
//! `exec`, `port`, `top`.

use berth_engine::exec::ExecOptions;
use clap::Args;
use serde_json::Value;

use crate::app::App;
use crate::commands::lifecycle::{daemon, engine};
use crate::format::Template;
use crate::Failure;

#[derive(Args)]
pub struct InspectArgs {
    /// NAME|ID...
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container or image).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes (accepted; sizes are not computed).
    #[arg(short, long)]
    pub size: bool,
}

/// Prints inspect values as a JSON array, or each through `--format`.
pub fn print_values(values: &[Value], format: Option<&str>) -> Result<(), Failure> {
    match format {
        Some(fmt) => {
            let t = Template::parse(fmt);
            for v in values {
                println!("{}", t.render(v).map_err(Failure::usage)?);
            }
        }
        None => println!(
            "{}",
            crate::commands::image::to_docker_json(&Value::Array(values.to_vec()))
        ),
    }
    Ok(())
}

/// `inspect` (any object; `only` is `None`), `container inspect` and `image inspect`.
pub fn inspect(app: &App, args: InspectArgs, only: Option<&str>) -> Result<(), Failure> {
    let kind = only.or(args.kind.as_deref());
    match kind {
        None | Some("container") | Some("image") => {}
        Some(k) => {
            return Err(Failure::usage(format!(
                "\"{k}\" is not a valid value for --type"
            )))
        }
    }
    let engine = engine(app)?;
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        if kind != Some("image") {
            if let Ok(r) = engine.find(name) {
                values.push(engine.inspect(&r));
                continue;
            }
        }
        if kind != Some("container") {
            if let Ok(info) = engine
                .images
                .lookup(name)
                .and_then(|id| engine.images.info(&id))
            {
                values.push(crate::commands::image::inspect_value(app, &info)?);
                continue;
            }
        }
        missing.push(name.clone());
    }
    print_values(&values, args.format.as_deref())?;
    let what = match kind {
        Some("container") => "container",
        Some("image") => "image",
        _ => "object",
    };
    missing_failure(&missing, |m| format!("Error: No such {what}: {m}"))
}

/// Exit 1 with one line per name `inspect` could not find, after printing what it found.
pub fn missing_failure(missing: &[String], line: impl Fn(&str) -> String) -> Result<(), Failure> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure {
        code: 1,
        message: missing
            .iter()
            .map(|m| line(m))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

#[derive(Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., allow_hyphen_values = true)]
    pub container_and_command: Vec<String>,
}

pub fn exec(app: &App, args: ExecArgs) -> Result<(), Failure> {
    if args.tty && args.interactive && !berth_engine::tty::stdin_is_terminal() {
        return Err(Failure {
            code: 1,
            message: "the input device is not a TTY".into(),
        });
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for f in &args.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Failure::usage(format!("berth: open {f}: {e}")))?;
        env.extend(berth_engine::options::parse_env_file(&text, lookup));
    }
    env.extend(args.env.iter().filter_map(|e| match e.split_once('=') {
        Some(_) => Some(e.clone()),
        None => lookup(e).map(|v| format!("{e}={v}")),
    }));
    let engine = engine(app)?;
    let record = engine
        .find(&args.container_and_command[0])
        .map_err(daemon)?;
    let options = ExecOptions {
        cmd: args.container_and_command[1..].to_vec(),
        env,
        user: args.user,
        workdir: args.workdir,
        interactive: args.interactive,
        detach: args.detach,
        tty: args.tty,
    };
    match engine.exec(&record, &options) {
        Ok(code) => crate::commands::container::exit_with(code),
        Err(berth_engine::Error::StartFailed { message, code }) => Err(Failure {
            code: u8::try_from(code).unwrap_or(126),
            message,
        }),
        Err(e) => Err(daemon(e)),
    }
}

#[derive(Args)]
pub struct PortArgs {
    /// CONTAINER
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub fn port(app: &App, args: PortArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let r = engine.find(&args.container).map_err(daemon)?;
    let wanted = args.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut lines = Vec::new();
    let ports = if r.is_running() {
        r.ports.clone()
    } else {
        Vec::new()
    };
    for m in &ports {
        let key = format!("{}/{}", m.container_port, m.protocol.as_str());
        let addr = format!(
            "{}:{}",
            m.host_ip.as_deref().unwrap_or("0.0.0.0"),
            m.host_port
        );
        match &wanted {
            Some(w) if *w == key => lines.push(addr),
            Some(_) => {}
            None => lines.push(format!("{key} -> {addr}")),
        }
    }
    if let (Some(w), true) = (&wanted, lines.is_empty()) {
        return Err(Failure {
            code: 1,
            message: format!(
                "Error: No public port '{w}' published for {}",
                args.container
            ),
        });
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

#[derive(Args)]
pub struct TopArgs {
    /// CONTAINER
    pub container: String,
    /// ps options (default -ef).
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    pub ps_args: Vec<String>,
}

pub fn top(app: &App, args: TopArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let r = engine.find(&args.container).map_err(daemon)?;
    let pids = engine.processes(&r).map_err(daemon)?;
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| Failure::usage(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(Failure {
            code: 1,
            message: format!(
                "Error response from daemon: ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Failure {
            code: 1,
            message: "Error response from daemon: Couldn't find PID field in ps output".into(),
        })?;
    let mut rows = vec![header
        .split_whitespace()
        .map(String::from)
        .collect::<Vec<_>>()];
    let columns = rows[0].len();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            // The last column (the command) keeps its spaces.
            let mut row: Vec<String> = fields[..columns.saturating_sub(1).min(fields.len())]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[row.len()..].join(" "));
            rows.push(row);
        }
    }
    crate::format::print_table(&rows);
    Ok(())
}

#[derive(Args)]
pub struct CpArgs {
    /// Archive mode (accepted; ownership is root's, as without it).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH (accepted).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH or -
    pub src: String,
    /// CONTAINER:DEST_PATH or DEST_PATH or -
    pub dest: String,
}

/// `CONTAINER:PATH` as Docker reads it: a colon before any slash.
fn container_path(arg: &str) -> Option<(&str, &str)> {
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

pub fn cp(app: &App, args: CpArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let usage = || {
        Failure::usage(
            "berth: copying between containers or between two host paths is not supported; give one side as CONTAINER:PATH\nSee 'berth cp --help'.",
        )
    };
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some((c, path)), None) => {
            let r = engine.find(c).map_err(daemon)?;
            let path = if path.is_empty() { "/" } else { path };
            if args.dest == "-" {
                let out = std::io::stdout();
                engine.copy_out_tar(&r, path, out.lock()).map_err(daemon)
            } else {
                engine
                    .copy_out(&r, path, std::path::Path::new(&args.dest))
                    .map_err(daemon)
            }
        }
        (None, Some((c, path))) => {
            let r = engine.find(c).map_err(daemon)?;
            let path = if path.is_empty() { "/" } else { path };
            if args.src == "-" {
                engine
                    .copy_in_tar(&r, path, std::io::stdin().lock())
                    .map_err(daemon)
            } else {
                engine
                    .copy_in(&r, std::path::Path::new(&args.src), path)
                    .map_err(daemon)
            }
        }
        _ => Err(usage()),
    }
}

#[derive(Args)]
pub struct StatsArgs {
    /// CONTAINER... (default: every running container)
    pub containers: Vec<String>,
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

/// Docker's `units.BytesSize`: binary units, four significant digits (`1.465MiB`).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    let digits = if size >= 1000.0 {
        0
    } else if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{size:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

pub fn stats(app: &App, args: StatsArgs) -> Result<(), Failure> {
    use crate::format::human_size;
    let engine = engine(app)?;
    let records = if args.containers.is_empty() {
        let mut all = engine.list().map_err(daemon)?;
        all.retain(|r| args.all || r.is_running());
        all.sort_by(|a, b| b.created.cmp(&a.created));
        all
    } else {
        args.containers
            .iter()
            .map(|n| engine.find(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(daemon)?
    };
    let template = args
        .format
        .as_deref()
        .filter(|f| *f != "table")
        .map(Template::parse);
    loop {
        // Two readings half a second apart give the CPU share, as Docker's first frame does.
        let first: Vec<_> = records.iter().map(|r| engine.sample(r).ok()).collect();
        let start = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let wall = start.elapsed().as_nanos().max(1) as f64;
        let mut lines = Vec::new();
        for (r, before) in records.iter().zip(first) {
            let now = engine.sample(r).ok();
            let id = if args.no_trunc {
                r.id.clone()
            } else {
                r.id[..12].to_string()
            };
            let (cpu, mem, memperc, net, block, pids) = match (&before, &now) {
                (Some(b), Some(n)) => (
                    format!(
                        "{:.2}%",
                        n.cpu_ns.saturating_sub(b.cpu_ns) as f64 / wall * 100.0
                    ),
                    format!(
                        "{} / {}",
                        binary_size(n.memory),
                        binary_size(n.memory_limit)
                    ),
                    format!(
                        "{:.2}%",
                        n.memory as f64 / n.memory_limit.max(1) as f64 * 100.0
                    ),
                    format!("{} / {}", human_size(n.net.0), human_size(n.net.1)),
                    format!("{} / {}", human_size(n.block.0), human_size(n.block.1)),
                    n.pids.to_string(),
                ),
                _ => (
                    "0.00%".into(),
                    "0B / 0B".into(),
                    "0.00%".into(),
                    "0B / 0B".into(),
                    "0B / 0B".into(),
                    "0".into(),
                ),
            };
            let v = serde_json::json!({
                "Container": id, "ID": id, "Name": r.name, "CPUPerc": cpu, "MemUsage": mem,
                "MemPerc": memperc, "NetIO": net, "BlockIO": block, "PIDs": pids,
            });
            lines.push(match &template {
                Some(t) => t.render(&v).map_err(Failure::usage)?,
                None => [&id, &r.name, &cpu, &mem, &memperc, &net, &block, &pids]
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("\t"),
            });
        }
        if !args.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        if template.is_none() {
            let mut rows = vec![[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS",
            ]
            .map(String::from)
            .to_vec()];
            rows.extend(
                lines
                    .iter()
                    .map(|l| l.split('\t').map(String::from).collect()),
            );
            crate::format::print_table(&rows);
        } else {
            for l in &lines {
                println!("{l}");
            }
        }
        if args.no_stream {
            return Ok(());
        }
    }
}
