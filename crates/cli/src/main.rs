//! `berth`: Docker's command line, daemonless.
//!
//! This crate only translates: flags into calls on `berth-image` and `berth-registry`, and
//! their results and errors into Docker's output and exit codes. It holds no engine logic.

mod app;
mod commands;
mod format;
mod progress;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands::{
    archive, auth, build, container, image, inspect, lifecycle, network, serve, transfer, volume,
};

/// A daemonless container engine with Docker's command line.
#[derive(Parser)]
#[command(name = "berth", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// Where images and containers are stored.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: std::path::PathBuf,
    /// Where state that dies with a reboot is kept.
    #[arg(long, global = true, default_value = "/run/berth")]
    pub runroot: std::path::PathBuf,
    /// Show debug output.
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Download an image from a registry.
    Pull(transfer::PullArgs),
    /// Upload an image to a registry.
    Push(transfer::PushArgs),
    /// List images.
    Images(image::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image::TagArgs),
    /// Remove one or more images.
    Rmi(image::RmiArgs),
    /// Return low-level information on containers and images.
    Inspect(inspect::InspectArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(archive::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(archive::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(archive::ImportArgs),
    /// Log in to a registry.
    Login(auth::LoginArgs),
    /// Log out from a registry.
    Logout(auth::LogoutArgs),
    /// Create and run a new container from an image.
    Run(container::RunArgs),
    /// Create a new container.
    Create(container::CreateArgs),
    /// Start one or more stopped containers.
    Start(lifecycle::StartArgs),
    /// Restart one or more containers.
    Restart(lifecycle::StopArgs),
    /// Attach to a running container's output.
    Attach(lifecycle::AttachArgs),
    /// Execute a command in a running container.
    Exec(inspect::ExecArgs),
    /// List containers.
    Ps(lifecycle::PsArgs),
    /// Stop one or more running containers.
    Stop(lifecycle::StopArgs),
    /// Kill one or more running containers.
    Kill(lifecycle::KillArgs),
    /// Remove one or more containers.
    Rm(lifecycle::RmArgs),
    /// Fetch the logs of a container.
    Logs(lifecycle::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(lifecycle::WaitArgs),
    /// Pause all processes within one or more containers.
    Pause(lifecycle::PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(lifecycle::PauseArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// List port mappings or a specific mapping for the container.
    Port(inspect::PortArgs),
    /// Display the running processes of a container.
    Top(inspect::TopArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(inspect::CpArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(inspect::StatsArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage berth.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Runs one container to its end (started by `run`; not for direct use).
    #[command(hide = true)]
    ContainerMonitor(container::MonitorArgs),
    /// Serve the Docker Engine API, for the docker CLI, docker-py and compose.
    Serve(serve::ServeArgs),
    /// Cleans up after a build if it is killed (started by `build`; not for direct use).
    #[command(hide = true)]
    BuildReaper(build::ReaperArgs),
    /// berth's OCI runtime with runc's command line (also reached as `berth-runc`).
    Runtime(RuntimeArgs),
    /// Answers a user network's names over DNS (started by its first container; not for
    /// direct use).
    #[command(hide = true)]
    NetworkDns(network::DnsArgs),
}

/// `berth runtime ARGS…`: handed to the runtime crate's runc command line unparsed.
#[derive(Args)]
struct RuntimeArgs {
    /// runc's global flags, command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<std::ffi::OsString>,
}

/// The program name under which the binary is runc (a symlink given to containerd or
/// dockerd as a runtime binary).
const RUNC_NAME: &str = "berth-runc";

/// runc's command line, when asked for by name (`berth-runc …`) or as `berth runtime …`.
/// Checked before the docker-style parser, whose flags (`--root`, `--debug`) differ.
fn runc_args() -> Option<(String, Vec<std::ffi::OsString>)> {
    let mut args = std::env::args_os();
    let argv0 = args.next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if name == RUNC_NAME {
        return Some((name, args.collect()));
    }
    let rest: Vec<_> = args.collect();
    if rest.first().is_some_and(|a| a == "runtime") {
        return Some(("berth runtime".into(), rest[1..].to_vec()));
    }
    None
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image.
    Run(container::RunArgs),
    /// Create a new container.
    Create(container::CreateArgs),
    /// Start one or more stopped containers.
    Start(lifecycle::StartArgs),
    /// Stop one or more running containers.
    Stop(lifecycle::StopArgs),
    /// Restart one or more containers.
    Restart(lifecycle::StopArgs),
    /// Kill one or more running containers.
    Kill(lifecycle::KillArgs),
    /// Remove one or more containers.
    #[command(alias = "remove")]
    Rm(lifecycle::RmArgs),
    /// List containers.
    #[command(visible_alias = "ps", alias = "list")]
    Ls(lifecycle::PsArgs),
    /// Fetch the logs of a container.
    Logs(lifecycle::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(lifecycle::WaitArgs),
    /// Display detailed information on one or more containers.
    Inspect(inspect::InspectArgs),
    /// Execute a command in a running container.
    Exec(inspect::ExecArgs),
    /// Attach to a running container's output.
    Attach(lifecycle::AttachArgs),
    /// List port mappings or a specific mapping for the container.
    Port(inspect::PortArgs),
    /// Display the running processes of a container.
    Top(inspect::TopArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(inspect::CpArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(inspect::StatsArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// Pause all processes within one or more containers.
    Pause(lifecycle::PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(lifecycle::PauseArgs),
    /// Remove all stopped containers.
    Prune(lifecycle::PruneArgs),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Remove unused data.
    Prune(lifecycle::SystemPruneArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// List images.
    #[command(visible_alias = "list")]
    Ls(image::ImagesArgs),
    /// Download an image from a registry.
    Pull(transfer::PullArgs),
    /// Upload an image to a registry.
    Push(transfer::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image::TagArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(image::RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(inspect::InspectArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Remove unused images.
    Prune(image::PruneArgs),
    /// Save one or more images to a tar archive.
    Save(archive::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(archive::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(archive::ImportArgs),
}

/// A failed command: what to print and which exit code Docker would use.
pub struct Failure {
    /// Docker's exit status.
    pub code: u8,
    /// The message, already in Docker's words.
    pub message: String,
}

impl Failure {
    /// A usage problem found by berth itself (exit 125, like Docker's flag errors).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 125,
            message: message.into(),
        }
    }
}

/// Errors from the engine libraries print as Docker prints daemon errors, and exit 1. This is
/// the one place errors become exit codes.
impl<E: Into<berth_image::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        let e: berth_image::Error = e.into();
        Failure {
            code: 1,
            message: format!("Error response from daemon: {e}"),
        }
    }
}

/// The monitor's command line exactly as `Engine::spawn_monitor` writes it
/// (`--root R --runroot RR container-monitor [--wait-attach] [--detached] ID`), read without
/// building clap's whole command tree: one process start per container is on the hot path
/// of every `run`. Anything else goes through clap as usual.
fn monitor_args() -> Option<(GlobalArgs, container::MonitorArgs)> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [root_flag, root, runroot_flag, runroot, command, rest @ ..] = args.as_slice() else {
        return None;
    };
    if root_flag != "--root" || runroot_flag != "--runroot" || command != "container-monitor" {
        return None;
    }
    let (id, flags) = rest.split_last()?;
    let (mut detached, mut wait_attach) = (false, false);
    for f in flags {
        match f.to_str()? {
            "--detached" => detached = true,
            "--wait-attach" => wait_attach = true,
            _ => return None,
        }
    }
    let id = id.to_str().filter(|i| !i.starts_with('-'))?.to_string();
    Some((
        GlobalArgs {
            root: root.into(),
            runroot: runroot.into(),
            debug: false,
        },
        container::MonitorArgs {
            detached,
            wait_attach,
            id,
        },
    ))
}

fn main() -> ExitCode {
    if let Some((global, args)) = monitor_args() {
        let app = app::App::new(global);
        return finish(container::monitor(&app, args));
    }
    if let Some((program, args)) = runc_args() {
        return ExitCode::from(berth_runtime::cli::main(&program, args));
    }
    commands()
}

/// Every command but the monitor's and the runtime's. Not inlined: its frame is kilobytes
/// (the whole command tree's dispatch), and `main`'s frame sits on the stack of every
/// resident monitor for the container's life.
#[inline(never)]
fn commands() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.global.debug {
        std::env::set_var("BERTH_DEBUG", "1");
    }
    let app = app::App::new(cli.global.clone());
    let result = match cli.command {
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(&app, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => transfer::pull(&app, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => transfer::push(&app, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&app, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&app, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&app, a),
        Command::Image(ImageCommand::Inspect(a)) => inspect::inspect(&app, a, Some("image")),
        Command::Inspect(a) => inspect::inspect(&app, a, None),
        Command::Container(ContainerCommand::Inspect(a)) => {
            inspect::inspect(&app, a, Some("container"))
        }
        Command::History(a) | Command::Image(ImageCommand::History(a)) => image::history(&app, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&app, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => archive::save(&app, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => archive::load(&app, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => archive::import(&app, a),
        Command::Login(a) => auth::login(&app, a),
        Command::Logout(a) => auth::logout(&app, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => container::run(&app, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::create(&app, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            lifecycle::start(&app, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            lifecycle::restart(&app, a)
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            lifecycle::attach(&app, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => inspect::exec(&app, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => lifecycle::ps(&app, a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            lifecycle::stop(&app, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            lifecycle::kill(&app, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => lifecycle::rm(&app, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            lifecycle::logs(&app, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            lifecycle::wait(&app, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            lifecycle::pause(&app, a)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            lifecycle::unpause(&app, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            lifecycle::rename(&app, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => inspect::port(&app, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => inspect::top(&app, a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => inspect::cp(&app, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            inspect::stats(&app, a)
        }
        Command::Container(ContainerCommand::Prune(a)) => lifecycle::prune(&app, a),
        Command::Volume(c) => volume::run(&app, c),
        Command::Network(c) => network::run(&app, c),
        Command::System(SystemCommand::Prune(a)) => lifecycle::system_prune(&app, a),
        Command::ContainerMonitor(a) => container::monitor(&app, a),
        Command::Serve(a) => serve::serve(&app, a),
        Command::BuildReaper(a) => build::reaper(&app, a),
        Command::NetworkDns(a) => network::dns(&app, a),
        Command::Runtime(a) => {
            return ExitCode::from(berth_runtime::cli::main("berth runtime", a.args));
        }
    };
    finish(result)
}

/// The one place a command's failure becomes its message on stderr and its exit code.
fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_monitor_command_line_parses_as_clap_would() {
        use clap::Parser;
        let line = [
            "berth",
            "--root",
            "/r",
            "--runroot",
            "/rr",
            "container-monitor",
            "--wait-attach",
            "--detached",
            "abc",
        ];
        let cli = super::Cli::try_parse_from(line).unwrap();
        assert_eq!(cli.global.root, std::path::PathBuf::from("/r"));
        let super::Command::ContainerMonitor(a) = cli.command else {
            panic!("not the monitor");
        };
        assert!(a.detached && a.wait_attach && a.id == "abc");
    }

    #[test]
    fn command_tree_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
