//! `volume create/ls/inspect/rm/prune`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::app::App;
use crate::commands::inspect::print_values;
use crate::commands::lifecycle::{daemon, each, engine};
use crate::format::{print_table, Template};
use crate::Failure;

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// VOLUME (a random name when left out).
    pub name: Option<String>,
    /// Set metadata for a volume.
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Specify volume driver name (only "local").
    #[arg(short, long, default_value = "local")]
    pub driver: String,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Provide filter values (dangling=true|false, name=…, label=…).
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// VOLUME...
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// VOLUME...
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(app: &App, command: VolumeCommand) -> Result<(), Failure> {
    match command {
        VolumeCommand::Create(a) => create(app, a),
        VolumeCommand::Ls(a) => ls(app, a),
        VolumeCommand::Inspect(a) => inspect(app, a),
        VolumeCommand::Rm(a) => rm(app, a),
        VolumeCommand::Prune(a) => prune(app, a),
    }
}

fn create(app: &App, args: CreateArgs) -> Result<(), Failure> {
    if args.driver != "local" {
        return Err(Failure {
            code: 1,
            message: format!(
                "Error response from daemon: create {}: error looking up volume plugin {}: plugin \"{}\" not found",
                args.name.as_deref().unwrap_or_default(),
                args.driver,
                args.driver
            ),
        });
    }
    let engine = engine(app)?;
    let (name, anonymous) = match args.name {
        Some(n) => (n, false),
        None => (berth_engine::container::random_id().map_err(daemon)?, true),
    };
    let labels: BTreeMap<String, String> = args
        .label
        .iter()
        .map(|l| berth_engine::options::parse_label(l))
        .collect();
    let v = engine
        .volumes()
        .create(&name, labels, anonymous)
        .map_err(daemon)?;
    println!("{}", v.name);
    Ok(())
}

fn value(engine: &berth_engine::Engine, v: &berth_engine::volume::Volume) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": engine.volumes().mountpoint(&v.name),
        "Name": v.name,
        "Options": null,
        "Scope": "local",
    })
}

fn ls(app: &App, args: LsArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let mut shown = Vec::new();
    for v in engine.volumes().list() {
        let mut keep = true;
        for f in &args.filter {
            let (k, val) = f.split_once('=').ok_or_else(|| Failure {
                code: 1,
                message: format!("Error response from daemon: invalid filter '{f}'"),
            })?;
            keep &= match k {
                "dangling" => {
                    let unused = engine.volume_users(&v.name).map_err(daemon)?.is_empty();
                    unused == matches!(val, "true" | "1")
                }
                "name" => v.name.contains(val),
                "label" => match val.split_once('=') {
                    Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
                    None => v.labels.contains_key(val),
                },
                _ => {
                    return Err(Failure {
                        code: 1,
                        message: format!("Error response from daemon: invalid filter '{k}'"),
                    })
                }
            };
        }
        if keep {
            shown.push(v);
        }
    }
    if args.quiet {
        for v in &shown {
            println!("{}", v.name);
        }
        return Ok(());
    }
    if let Some(fmt) = args.format.as_deref().filter(|f| *f != "table") {
        let t = Template::parse(fmt);
        for v in &shown {
            let mut val = value(&engine, v);
            val["Labels"] = json!(v
                .labels
                .iter()
                .map(|(k, x)| format!("{k}={x}"))
                .collect::<Vec<_>>()
                .join(","));
            println!("{}", t.render(&val).map_err(Failure::usage)?);
        }
        return Ok(());
    }
    let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
    for v in &shown {
        rows.push(vec!["local".into(), v.name.clone()]);
    }
    print_table(&rows);
    Ok(())
}

fn inspect(app: &App, args: InspectArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for n in &args.names {
        match engine.volumes().get(n) {
            Ok(v) => values.push(value(&engine, &v)),
            Err(_) => missing.push(n.clone()),
        }
    }
    print_values(&values, args.format.as_deref())?;
    crate::commands::inspect::missing_failure(&missing, |m| {
        format!("Error response from daemon: get {m}: no such volume")
    })
}

fn rm(app: &App, args: RmArgs) -> Result<(), Failure> {
    let engine = engine(app)?;
    each(&args.names, |n| {
        match engine.remove_volume(n, false) {
            Err(berth_engine::Error::NoSuchVolume(_)) if args.force => {}
            r => r.map_err(daemon)?,
        }
        println!("{n}");
        Ok(())
    })
}

fn prune(app: &App, args: PruneArgs) -> Result<(), Failure> {
    let what = if args.all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    };
    if !args.force
        && !crate::commands::confirm(&format!(
            "WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
        ))
    {
        return Ok(());
    }
    let engine = engine(app)?;
    let deleted = engine.prune_volumes(args.all).map_err(daemon)?;
    crate::commands::lifecycle::print_deleted("Volumes", &deleted);
    println!("Total reclaimed space: 0B");
    Ok(())
}
