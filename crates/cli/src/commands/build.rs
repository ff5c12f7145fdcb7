//! `build`: flags into `berth_build::BuildOptions`; the base images come through the same
//! pull as `run`'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_registry::{Platform, Reference};
use clap::Args;

use crate::app::App;
use crate::progress::{Direction, Display};
use crate::Failure;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format.
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile").
    #[arg(short, long)]
    pub file: Option<std::path::PathBuf>,
    /// Set build-time variables.
    #[arg(long)]
    pub build_arg: Vec<String>,
    /// Set metadata for an image.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build.
    #[arg(long)]
    pub network: Option<String>,
    /// Write the image ID to the file.
    #[arg(long)]
    pub iidfile: Option<std::path::PathBuf>,
    /// Set type of progress output (auto, plain, tty): berth prints Docker's step lines.
    #[arg(long)]
    pub progress: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// PATH (a folder)
    pub context: String,
}

fn failure(message: String) -> Failure {
    Failure { code: 1, message }
}

pub fn build(app: &App, args: BuildArgs) -> Result<(), Failure> {
    if args.context == "-" || args.context.contains("://") {
        return Err(failure(format!(
            "berth build: context {:?}: only a folder can be a build context yet",
            args.context
        )));
    }
    let mut tags = Vec::new();
    for t in &args.tag {
        tags.push(Reference::parse_with_default_tag(t).map_err(|e| {
            Failure::usage(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: {e}\nSee 'berth build --help'."
            ))
        })?);
    }
    let mut build_args = BTreeMap::new();
    for a in &args.build_arg {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            // `--build-arg NAME` takes NAME from the environment, as Docker does.
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let labels = args
        .label
        .iter()
        .map(|l| berth_engine::options::parse_label(l))
        .collect();
    let engine = berth_engine::Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| failure(format!("Error response from daemon: {e}")))?;
    let options = berth_build::BuildOptions {
        context: args.context.clone().into(),
        dockerfile: args.file.clone().map(|f| {
            if f.is_absolute() {
                f
            } else {
                std::path::Path::new(&args.context).join(f)
            }
        }),
        tags,
        build_args,
        labels,
        network: args.network.clone(),
        target: args.target.clone(),
        quiet: args.quiet,
        no_cache: args.no_cache,
    };
    let always_pull = args.pull;
    let pull = |image: &str| -> Result<String, berth_build::Error> {
        if !always_pull {
            if let Ok(id) = engine.images.lookup(image) {
                return Ok(id);
            }
        }
        let reference = Reference::parse_with_default_tag(image)
            .map_err(|e| berth_build::Error::Invalid(format!("{e}")))?;
        let registry = app
            .registry()
            .map_err(|f| berth_build::Error::Invalid(f.message))?;
        let display = Arc::new(Display::on_stderr(Direction::Pull));
        engine
            .images
            .pull(registry, &reference, &Platform::host(), display)?;
        Ok(engine.images.lookup(image)?)
    };
    let mut out = std::io::stdout();
    let id = berth_build::build(&engine, &options, &pull, &mut out).map_err(|e| {
        failure(match e {
            e @ berth_build::Error::RunFailed { .. } => e.to_string(),
            e => format!("Error response from daemon: {e}"),
        })
    })?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id)
            .map_err(|e| failure(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}
