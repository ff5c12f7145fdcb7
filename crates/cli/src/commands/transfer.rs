//! `pull` and `push`.

use std::sync::Arc;

use berth_registry::{Platform, Reference};
use clap::Args;

use crate::app::App;
use crate::progress::{Direction, Display};
use crate::Failure;

#[derive(Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    pub name: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Download all tagged images in the repository (not supported).
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
}

pub fn pull(app: &App, args: PullArgs) -> Result<(), Failure> {
    if args.all_tags {
        return Err(Failure::usage(
            "berth pull: --all-tags is not supported yet",
        ));
    }
    let parsed = Reference::parse(&args.name).map_err(Failure::from)?;
    let defaulted = parsed.tag().is_none() && parsed.digest().is_none();
    let reference = Reference::parse_with_default_tag(&args.name)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).map_err(|e| Failure {
            code: 1,
            message: format!("Error response from daemon: {e}"),
        })?,
        None => Platform::host(),
    };
    if !args.quiet {
        if defaulted {
            println!("Using default tag: latest");
        }
        let selector = reference.tag().or(reference.digest()).unwrap_or("latest");
        println!("{selector}: Pulling from {}", reference.path());
    }
    let store = app.store()?;
    let registry = app.registry()?;
    let display = Arc::new(Display::new(Direction::Pull, args.quiet));
    let outcome = store.pull(registry, &reference, &platform, display)?;
    if !args.quiet {
        println!("Digest: {}", outcome.repo_digest);
        let shown = berth_image::display_ref(&reference.to_string());
        if outcome.downloaded || outcome.changed {
            println!("Status: Downloaded newer image for {shown}");
        } else {
            println!("Status: Image is up to date for {shown}");
        }
    }
    println!("{reference}");
    Ok(())
}

#[derive(Args)]
pub struct PushArgs {
    /// NAME[:TAG]
    pub name: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Push all tags (not supported).
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
}

pub fn push(app: &App, args: PushArgs) -> Result<(), Failure> {
    if args.all_tags {
        return Err(Failure::usage(
            "berth push: --all-tags is not supported yet",
        ));
    }
    let reference = Reference::parse_with_default_tag(&args.name)?;
    let store = app.store()?;
    if !args.quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let display = Arc::new(Display::new(Direction::Push, args.quiet));
    let (digest, size) = store.push(app.registry()?, &reference, display)?;
    if args.quiet {
        println!("{reference}");
    } else {
        println!(
            "{}: digest: {digest} size: {size}",
            reference.tag().unwrap_or("latest")
        );
    }
    Ok(())
}
