//! `network create/ls/inspect/rm/prune/connect/disconnect`.

use std::collections::BTreeMap;

use berth_engine::networks::NetworkDef;
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::app::App;
use crate::commands::inspect::print_values;
use crate::commands::lifecycle::{daemon, each, engine};
use crate::format::{print_table, Template};
use crate::Failure;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// NETWORK
    pub name: String,
    /// Driver to manage the Network (only "bridge").
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Option<String>,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Provide filter values (name=…, label=…, driver=…).
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// NETWORK...
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// NETWORK...
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
}

#[derive(Args)]
pub struct DisconnectArgs {
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(app: &App, command: NetworkCommand) -> Result<(), Failure> {
    let engine = engine(app)?;
    match command {
        NetworkCommand::Create(a) => create(&engine, a),
        NetworkCommand::Ls(a) => ls(&engine, a),
        NetworkCommand::Inspect(a) => inspect(&engine, a),
        NetworkCommand::Rm(a) => each(&a.names, |n| {
            match engine.remove_network(n) {
                Err(berth_engine::Error::NoSuchNetwork(_)) if a.force => {}
                r => r.map_err(daemon)?,
            }
            println!("{n}");
            Ok(())
        }),
        NetworkCommand::Prune(a) => prune(&engine, a),
        NetworkCommand::Connect(a) => engine
            .connect(&a.network, &a.container, a.alias)
            .map_err(daemon),
        NetworkCommand::Disconnect(a) => {
            engine.disconnect(&a.network, &a.container).map_err(daemon)
        }
    }
}

fn create(engine: &Engine, args: CreateArgs) -> Result<(), Failure> {
    if args.driver != "bridge" {
        return Err(Failure {
            code: 1,
            message: format!(
                "Error response from daemon: plugin \"{}\" not found (berth has the bridge driver)",
                args.driver
            ),
        });
    }
    let labels: BTreeMap<String, String> = args
        .label
        .iter()
        .map(|l| berth_engine::options::parse_label(l))
        .collect();
    let def = engine
        .create_network(&args.name, args.subnet.as_deref(), labels)
        .map_err(daemon)?;
    println!("{}", def.id);
    Ok(())
}

/// Docker's `network inspect` JSON (the engine builds it for the CLI and the API alike).
fn value(engine: &Engine, def: &NetworkDef) -> Result<Value, Failure> {
    engine.network_json(def).map_err(daemon)
}

fn ls(engine: &Engine, args: LsArgs) -> Result<(), Failure> {
    let mut shown = Vec::new();
    for n in engine.networks() {
        let mut keep = true;
        for f in &args.filter {
            let (k, v) = f.split_once('=').ok_or_else(|| Failure {
                code: 1,
                message: format!("Error response from daemon: invalid filter '{f}'"),
            })?;
            keep &= match k {
                "name" => n.name.contains(v),
                "driver" => n.driver == v,
                "id" => n.id.starts_with(v),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                    None => n.labels.contains_key(v),
                },
                "type" => (v == "builtin") == n.predefined(),
                _ => {
                    return Err(Failure {
                        code: 1,
                        message: format!("Error response from daemon: invalid filter '{k}'"),
                    })
                }
            };
        }
        if keep {
            shown.push(n);
        }
    }
    let id = |n: &NetworkDef| {
        if args.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        }
    };
    if args.quiet {
        for n in &shown {
            println!("{}", id(n));
        }
        return Ok(());
    }
    if let Some(fmt) = args.format.as_deref().filter(|f| *f != "table") {
        let t = Template::parse(fmt);
        for n in &shown {
            let v = json!({"ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": "local",
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")});
            println!("{}", t.render(&v).map_err(Failure::usage)?);
        }
        return Ok(());
    }
    let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
        .map(String::from)
        .to_vec()];
    for n in &shown {
        rows.push(vec![
            id(n),
            n.name.clone(),
            n.driver.clone(),
            "local".into(),
        ]);
    }
    print_table(&rows);
    Ok(())
}

fn inspect(engine: &Engine, args: InspectArgs) -> Result<(), Failure> {
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for n in &args.names {
        match engine.network(n) {
            Ok(def) => values.push(value(engine, &def)?),
            Err(_) => missing.push(n.clone()),
        }
    }
    print_values(&values, args.format.as_deref())?;
    crate::commands::inspect::missing_failure(&missing, |m| {
        format!("Error response from daemon: network {m} not found")
    })
}

fn prune(engine: &Engine, args: PruneArgs) -> Result<(), Failure> {
    if !args.force
        && !crate::commands::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ",
        )
    {
        return Ok(());
    }
    let deleted = engine.prune_networks().map_err(daemon)?;
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in deleted {
            println!("{d}");
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct DnsArgs {
    /// The network's ID or name.
    pub network: String,
}

/// `network-dns`: the DNS server of a user network (started by the network's first
/// container; see `Engine::serve_dns`).
pub fn dns(app: &App, args: DnsArgs) -> Result<(), Failure> {
    engine(app)?.serve_dns(&args.network).map_err(daemon)
}
