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

use crate::commands::{archive, auth, container, image, lifecycle, transfer};

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
    /// Return low-level information on images.
    Inspect(image::InspectArgs),
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
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Runs one container to its end (started by `run`; not for direct use).
    #[command(hide = true)]
    ContainerMonitor(container::MonitorArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
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
    Inspect(image::InspectArgs),
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

fn main() -> ExitCode {
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
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => transfer::pull(&app, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => transfer::push(&app, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&app, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&app, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&app, a),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => image::inspect(&app, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => image::history(&app, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&app, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => archive::save(&app, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => archive::load(&app, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => archive::import(&app, a),
        Command::Login(a) => auth::login(&app, a),
        Command::Logout(a) => auth::logout(&app, a),
        Command::Run(a) => container::run(&app, a),
        Command::Ps(a) => lifecycle::ps(&app, a),
        Command::Stop(a) => lifecycle::stop(&app, a),
        Command::Kill(a) => lifecycle::kill(&app, a),
        Command::Rm(a) => lifecycle::rm(&app, a),
        Command::Logs(a) => lifecycle::logs(&app, a),
        Command::Wait(a) => lifecycle::wait(&app, a),
        Command::ContainerMonitor(a) => container::monitor(&app, a),
    };
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
    fn command_tree_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
