//! `build`: flags into `berth_build::BuildOptions`; the base images come through the same
//! pull as `run`'s.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
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
    /// Set type of progress output (auto, plain, tty, quiet): berth prints Docker's step
    /// lines for the first three (stages built at the same time marked `[stage]`); quiet is -q.
    #[arg(long)]
    pub progress: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]").
    #[arg(long)]
    pub secret: Vec<String>,
    /// PATH (a folder), a tar archive of one, or "-" (a tar or a Dockerfile on stdin)
    pub context: String,
}

fn failure(message: String) -> Failure {
    Failure { code: 1, message }
}

pub fn build(app: &App, args: BuildArgs) -> Result<(), Failure> {
    if args.context.contains("://") {
        return Err(failure(format!(
            "berth build: context {:?}: a URL (git or http) can't be a build context yet",
            args.context
        )));
    }
    let quiet = match args.progress.as_deref() {
        None | Some("auto" | "plain" | "tty") => args.quiet,
        Some("quiet") => true,
        Some(other) => {
            return Err(Failure::usage(format!(
                "invalid argument \"{other}\" for \"--progress\" flag: use auto, plain, tty or quiet\nSee 'berth build --help'."
            )))
        }
    };
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
    // BuildKit takes SOURCE_DATE_EPOCH from the environment as a build arg.
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        build_args
            .entry("SOURCE_DATE_EPOCH".to_string())
            .or_insert(v);
    }
    if let Some(v) = build_args.get("SOURCE_DATE_EPOCH") {
        if v.trim().parse::<i64>().is_err() {
            return Err(failure(format!(
                "invalid SOURCE_DATE_EPOCH {v:?}: give seconds since 1970 (e.g. $(git log -1 --format=%ct))"
            )));
        }
    }
    let mut secrets = BTreeMap::new();
    for s in &args.secret {
        let (id, src) = parse_secret(s)?;
        secrets.insert(id, src);
    }
    let labels = args
        .label
        .iter()
        .map(|l| berth_engine::options::parse_label(l))
        .collect();
    let engine = berth_engine::Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| failure(format!("Error response from daemon: {e}")))?;
    // `-`: stdin is a tar of the context, or else the Dockerfile itself (empty context).
    let stdin_dir;
    let (context, dockerfile) = if args.context == "-" {
        stdin_dir = read_stdin_context(&engine)?;
        let tar = stdin_dir.path().join("context.tar");
        if tar.exists() {
            (tar, args.file.clone())
        } else {
            let ctx = stdin_dir.path().join("context");
            (ctx.clone(), Some(ctx.join("Dockerfile")))
        }
    } else {
        let context = std::path::PathBuf::from(&args.context);
        let dockerfile = args.file.clone().map(|f| {
            // Relative to the working directory for a folder (Docker's rule), inside it for a
            // tar context.
            if f.is_absolute() || context.is_file() {
                f
            } else if f.exists() {
                std::env::current_dir().map(|d| d.join(&f)).unwrap_or(f)
            } else {
                context.join(f)
            }
        });
        (context, dockerfile)
    };
    let interrupt = catch_interrupts()?;
    let options = berth_build::BuildOptions {
        context,
        dockerfile,
        tags,
        build_args,
        labels,
        network: args.network.clone(),
        target: args.target.clone(),
        quiet,
        no_cache: args.no_cache,
        platform: args.platform.clone(),
        secrets,
        interrupt: interrupt.clone(),
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
    let id =
        berth_build::build(&engine, &options, &pull, &mut out).map_err(|e| match e.inner() {
            // Docker prints a failed RUN as it is, without the daemon prefix.
            berth_build::Error::RunFailed { .. } => failure(e.to_string()),
            berth_build::Error::Interrupted => Failure {
                code: INTERRUPTED,
                message: format!("berth build: {e}"),
            },
            _ => failure(format!("Error response from daemon: {e}")),
        })?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id)
            .map_err(|e| failure(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}

#[derive(Args)]
pub struct ReaperArgs {
    /// The build's scratch folder under `<root>/tmp`.
    pub scratch: String,
}

/// `build-reaper`: waits for a build to end and cleans up if it was killed (see
/// `berth_build::reap_when_done`).
pub fn reaper(app: &App, args: ReaperArgs) -> Result<(), Failure> {
    let engine = berth_engine::Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| failure(format!("Error response from daemon: {e}")))?;
    berth_build::reap_when_done(&engine, &args.scratch)
        .map_err(|e| failure(format!("berth build-reaper: {e}")))
}

/// The exit status of a build stopped by Ctrl-C: a shell's for a process SIGINT ended.
const INTERRUPTED: u8 = 130;

/// Turns the first Ctrl-C, SIGTERM or SIGHUP into a request to stop the build cleanly (its RUN
/// container killed and removed, its scratch files deleted); a second one ends berth at once,
/// and the next build cleans up what that left.
fn catch_interrupts() -> Result<Arc<AtomicBool>, Failure> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // In this order: the second signal finds the flag set and takes the default action.
        signal_hook::flag::register_conditional_default(sig, flag.clone())
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()))
            .map_err(|e| failure(format!("berth build: catching signals: {e}")))?;
    }
    Ok(flag)
}

/// `--secret id=X,src=FILE` (also `source=` and `type=file`).
fn parse_secret(spec: &str) -> Result<(String, std::path::PathBuf), Failure> {
    let usage = |why: String| {
        Failure::usage(format!(
            "invalid argument \"{spec}\" for \"--secret\" flag: {why}; use id=NAME,src=FILE"
        ))
    };
    let mut id = None;
    let mut src = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) if !v.is_empty() => id = Some(v.to_string()),
            Some(("src" | "source", v)) if !v.is_empty() => src = Some(std::path::PathBuf::from(v)),
            Some(("type", "file")) => {}
            _ => return Err(usage(format!("unexpected {field:?}"))),
        }
    }
    let id = id.ok_or_else(|| usage("an id is required".into()))?;
    let src = src.ok_or_else(|| usage("src is required".into()))?;
    if !src.is_file() {
        return Err(failure(format!(
            "secret {id}: {} is not a readable file",
            src.display()
        )));
    }
    Ok((id, src))
}

/// Reads a `-` context from stdin into a scratch folder under the store: `context.tar` when it
/// is a tar (plain, gzip or zstd), else `context/Dockerfile` with an empty context.
/// The folder is a build scratch folder: locked while berth runs, so a build killed meanwhile
/// has it removed by the next one.
fn read_stdin_context(engine: &berth_engine::Engine) -> Result<berth_build::Scratch, Failure> {
    use std::io::Read;
    let dir = berth_build::Scratch::new(engine.root())
        .map_err(|e| failure(format!("reading the context from stdin: {e}")))?;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| failure(format!("reading the context from stdin: {e}")))?;
    let path = if berth_build::is_tar(&bytes) {
        dir.path().join("context.tar")
    } else {
        let ctx = dir.path().join("context");
        std::fs::create_dir_all(&ctx)
            .map_err(|e| failure(format!("reading the context from stdin: {e}")))?;
        ctx.join("Dockerfile")
    };
    std::fs::write(&path, bytes)
        .map_err(|e| failure(format!("writing {}: {e}", path.display())))?;
    Ok(dir)
}
