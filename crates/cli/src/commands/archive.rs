//! `save`, `load` and `import`.

use std::io::{IsTerminal, Read};

use berth_image::archive::ArchiveFormat;
use berth_image::import::ImportOptions;
use berth_registry::{Platform, Reference};
use clap::Args;

use crate::app::App;
use crate::Failure;

#[derive(Args)]
pub struct SaveArgs {
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Archive format: docker-archive (default) or oci-archive.
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
}

pub fn save(app: &App, args: SaveArgs) -> Result<(), Failure> {
    let format = match args.format.as_str() {
        "docker-archive" | "docker" => ArchiveFormat::Docker,
        "oci-archive" | "oci" => ArchiveFormat::Oci,
        other => {
            return Err(Failure::usage(format!(
                "invalid --format {other:?}: use docker-archive or oci-archive"
            )))
        }
    };
    let store = app.store()?;
    match &args.output {
        Some(path) => {
            // Write beside the target and rename, so a failed save leaves no half archive.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = dir
                .unwrap_or(std::path::Path::new("."))
                .join(format!(".berth-save-{}.tmp", std::process::id()));
            let file = std::fs::File::create(&tmp).map_err(|e| {
                Failure::usage(format!("failed to save image: {}: {e}", path.display()))
            })?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let result = store.save(&args.images, format, &mut w);
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            drop(w);
            std::fs::rename(&tmp, path).map_err(|e| {
                Failure::usage(format!("failed to save image: {}: {e}", path.display()))
            })?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure {
                    code: 1,
                    message: "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                        .into(),
                });
            }
            let stdout = std::io::stdout();
            let w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            store.save(&args.images, format, w)?;
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<std::path::PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn load(app: &App, args: LoadArgs) -> Result<(), Failure> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| Failure {
            code: 1,
            message: format!("open {}: {e}", p.display()),
        })?),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure {
                    code: 1,
                    message: "requested load from stdin, but stdin is empty".into(),
                });
            }
            Box::new(std::io::stdin())
        }
    };
    let loaded = app.store()?.load(input)?;
    if !args.quiet {
        for image in loaded {
            if image.tags.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for t in image.tags {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ImportArgs {
    /// file|URL|- [REPOSITORY[:TAG]]
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
}

pub fn import(app: &App, args: ImportArgs) -> Result<(), Failure> {
    let tag = match &args.reference {
        Some(r) => Some(Reference::parse_with_default_tag(r)?),
        None => None,
    };
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).map_err(Failure::usage)?,
        None => Platform::host(),
    };
    let input: Box<dyn Read + Send> = if args.source == "-" {
        Box::new(std::io::stdin())
    } else if args.source.starts_with("http://") || args.source.starts_with("https://") {
        return Err(Failure::usage("berth import: importing from a URL is not supported yet; download the file and import it"));
    } else {
        Box::new(std::fs::File::open(&args.source).map_err(|e| Failure {
            code: 1,
            message: format!("Error response from daemon: open {}: {e}", args.source),
        })?)
    };
    let options = ImportOptions {
        changes: args.change.clone(),
        message: args.message.clone(),
        source: args.source.clone(),
        platform,
    };
    let id = app.store()?.import(input, &options, tag.as_ref())?;
    println!("{id}");
    Ok(())
}
