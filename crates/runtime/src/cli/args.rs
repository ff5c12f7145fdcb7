//! runc's command line as clap structs: only the arguments, no behaviour (youki keeps these in
//! `liboci-cli` for the same reason: the flags are a contract with containerd's shim and
//! dockerd, and should be readable in one place).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth's OCI runtime with runc's command line.
#[derive(Parser, Debug)]
#[command(name = "berth-runc", version, disable_help_subcommand = true)]
pub struct Runc {
    /// Global flags.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes (before the command's name, as with runc).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Root directory for container state (should be on a tmpfs).
    #[arg(long, global = true, default_value = "/run/berth-runc")]
    pub root: PathBuf,
    /// Log file for errors and debug lines (default: standard error).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; cgroups are managed through cgroupfs.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

/// How log lines are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus' text format: `time="…" level=error msg="…"`.
    Text,
    /// One JSON object a line, as containerd's shim parses.
    Json,
}

/// runc's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits for `start`).
    Create(Create),
    /// Start the user process of a created container.
    Start(Id),
    /// Create and start a container, wait for it and exit with its status.
    Run(Run),
    /// Output the state of a container (runtime-spec JSON).
    State(Id),
    /// Send a signal to the container's init (or all its processes).
    Kill(Kill),
    /// Delete a container's resources.
    Delete(Delete),
    /// List containers started with this root.
    List(List),
    /// List the processes of a container.
    Ps(Ps),
    /// Freeze all processes of a container.
    Pause(Id),
    /// Thaw a paused container.
    Resume(Id),
    /// Run a new process inside a container.
    Exec(Exec),
    /// Show what this runtime supports (JSON).
    Features,
    /// Write a default config.json.
    Spec(Spec),
    /// Change a container's resource limits.
    Update(Update),
    /// Show container events (`--stats`: one resource-usage object).
    Events(Events),
    /// Not supported.
    Checkpoint(Unsupported),
    /// Not supported.
    Restore(Unsupported),
}

/// A command taking only a container ID.
#[derive(Args, Debug)]
pub struct Id {
    /// The container ID.
    pub id: String,
}

/// `create`.
#[derive(Args, Debug)]
pub struct Create {
    /// Path to the bundle (the directory holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (for `terminal: true`).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Number of extra file descriptors (from 3) passed into the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// The container ID.
    pub id: String,
}

/// `run`.
#[derive(Args, Debug)]
pub struct Run {
    /// create's flags.
    #[command(flatten)]
    pub create: Create,
    /// Do not wait: print nothing, exit once the container runs.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (accepted; it is deleted without --detach).
    #[arg(long)]
    pub keep: bool,
}

/// `kill`.
#[derive(Args, Debug)]
pub struct Kill {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    pub all: bool,
    /// The container ID.
    pub id: String,
    /// Signal name (with or without SIG) or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete`.
#[derive(Args, Debug)]
pub struct Delete {
    /// Kill a running container first; succeed if it does not exist.
    #[arg(short, long)]
    pub force: bool,
    /// The container ID.
    pub id: String,
}

/// Output format of `list` and `ps`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table.
    Table,
    /// JSON.
    Json,
}

/// `list`.
#[derive(Args, Debug)]
pub struct List {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `ps`.
#[derive(Args, Debug)]
pub struct Ps {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The container ID.
    pub id: String,
    /// Options for ps(1) (default `-ef`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `exec`.
#[derive(Args, Debug)]
pub struct Exec {
    /// An OCI `process` object in a JSON file (instead of the flags below).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (sent over --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    /// Environment variables (KEY=VALUE), added to the container's.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group IDs.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Number of extra file descriptors (from 3) passed into the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Accepted for compatibility.
    #[arg(long)]
    pub no_new_privs: bool,
    /// The container ID.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `spec`.
#[derive(Args, Debug)]
pub struct Spec {
    /// Directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for rootless containers (refused: not supported).
    #[arg(long)]
    pub rootless: bool,
}

/// `update`.
#[derive(Args, Debug)]
pub struct Update {
    /// A runtime-spec `linux.resources` JSON file, `-` for standard input.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(short, long)]
    pub memory: Option<i64>,
    /// Maximum number of pids (-1: unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// CPU CFS quota in microseconds.
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// The container ID.
    pub id: String,
}

/// `events`.
#[derive(Args, Debug)]
pub struct Events {
    /// Print one resource-usage object and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats (only with the streaming form, which is not supported).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// The container ID.
    pub id: String,
}

/// checkpoint and restore: accepted, then refused.
#[derive(Args, Debug)]
pub struct Unsupported {
    /// Whatever runc would take.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
