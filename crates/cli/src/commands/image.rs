//! `images`, `tag`, `rmi`, `inspect`, `history` and `image prune`.

use std::collections::HashSet;

use berth_image::{short_id, ImageInfo};
use berth_registry::Reference;
use clap::Args;
use serde_json::{json, Value};

use crate::app::App;
use crate::format::{ago, human_size, print_tabbed, print_table, Template};
use crate::Failure;

#[derive(Args)]
pub struct ImagesArgs {
    /// Show only images matching REPOSITORY[:TAG].
    pub reference: Option<String>,
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE').
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One row of `images`: an image under one of its tags (or `<none>`).
struct Row<'a> {
    image: &'a ImageInfo,
    repository: String,
    tag: String,
    digest: String,
}

/// The filters `images` understands, checked before anything is listed.
struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    before: Option<String>,
    since: Option<String>,
}

fn parse_filters(app: &App, raw: &[String]) -> Result<Filters, Failure> {
    let mut f = Filters {
        dangling: None,
        references: Vec::new(),
        labels: Vec::new(),
        before: None,
        since: None,
    };
    let bad = |m: String| Failure {
        code: 1,
        message: format!("Error response from daemon: {m}"),
    };
    for item in raw {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid filter '{item}'")))?;
        match k {
            "dangling" => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => f.dangling = Some(true),
                "false" | "0" => f.dangling = Some(false),
                _ => return Err(bad(format!("Invalid filter 'dangling={v}'"))),
            },
            "reference" => f.references.push(v.to_string()),
            "label" => f.labels.push(match v.split_once('=') {
                Some((a, b)) => (a.to_string(), Some(b.to_string())),
                None => (v.to_string(), None),
            }),
            "before" => f.before = Some(app.store()?.lookup(v)?),
            "since" => f.since = Some(app.store()?.lookup(v)?),
            _ => return Err(bad(format!("invalid filter '{k}'"))),
        }
    }
    Ok(f)
}

fn created_of(i: &ImageInfo) -> Option<String> {
    i.config.created().clone()
}

pub fn images(app: &App, args: ImagesArgs) -> Result<(), Failure> {
    let filters = parse_filters(app, &args.filter)?;
    let store = app.store()?;
    let all = store.list()?;
    let created = |id: &str| {
        all.iter()
            .find(|i| i.id == id)
            .and_then(created_of)
            .unwrap_or_default()
    };
    let mut rows = Vec::new();
    for image in &all {
        let labels = image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default();
        if filters.dangling.is_some_and(|d| d != image.tags.is_empty()) {
            continue;
        }
        if !filters.labels.iter().all(|(k, v)| match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        }) {
            continue;
        }
        let mine = created_of(image).unwrap_or_default();
        if filters
            .before
            .as_deref()
            .is_some_and(|b| mine >= created(b))
        {
            continue;
        }
        if filters.since.as_deref().is_some_and(|s| mine <= created(s)) {
            continue;
        }
        let digest = image
            .record
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
            .unwrap_or_else(|| "<none>".into());
        if image.tags.is_empty() {
            rows.push(Row {
                image,
                repository: "<none>".into(),
                tag: "<none>".into(),
                digest: digest.clone(),
            });
        }
        for t in &image.tags {
            let r = Reference::parse(t)?;
            rows.push(Row {
                image,
                repository: r.familiar_name(),
                tag: r.tag().unwrap_or("<none>").to_string(),
                digest: digest.clone(),
            });
        }
    }
    let matches = |row: &Row, pattern: &str| {
        let full = format!("{}:{}", row.repository, row.tag);
        berth_image::glob(pattern, &full) || berth_image::glob(pattern, &row.repository)
    };
    rows.retain(|row| {
        filters.references.iter().all(|p| matches(row, p))
            && args.reference.as_deref().is_none_or(|p| {
                if p.contains(':') {
                    let r = Reference::parse_with_default_tag(p);
                    r.is_ok_and(|r| {
                        r.familiar_name() == row.repository && r.tag() == Some(row.tag.as_str())
                    })
                } else {
                    Reference::parse(p).is_ok_and(|r| r.familiar_name() == row.repository)
                }
            })
    });
    let id_of = |row: &Row| {
        if args.no_trunc {
            row.image.id.clone()
        } else {
            short_id(&row.image.id)
        }
    };
    if args.quiet {
        let mut seen = HashSet::new();
        for row in &rows {
            if seen.insert(row.image.id.clone()) {
                println!("{}", id_of(row));
            }
        }
        return Ok(());
    }
    let value = |row: &Row| {
        json!({
            "Containers": "N/A",
            "CreatedAt": created_of(row.image).unwrap_or_default(),
            "CreatedSince": ago(created_of(row.image).as_deref()),
            "Digest": row.digest,
            "ID": id_of(row),
            "Repository": row.repository,
            "SharedSize": "N/A",
            "Size": human_size(row.image.size),
            "Tag": row.tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(row.image.size),
        })
    };
    if let Some(fmt) = args.format.as_deref().filter(|f| *f != "table") {
        return render(fmt, rows.iter().map(value).collect(), &|f| match f {
            "ID" => "IMAGE ID".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedAt" => "CREATED AT".into(),
            other => other.to_uppercase(),
        });
    }
    let mut table = vec![];
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    table.push(header.iter().map(|s| s.to_string()).collect());
    for row in &rows {
        let mut cells = vec![row.repository.clone(), row.tag.clone()];
        if args.digests {
            cells.push(row.digest.clone());
        }
        cells.push(id_of(row));
        cells.push(ago(created_of(row.image).as_deref()));
        cells.push(human_size(row.image.size));
        table.push(cells);
    }
    print_table(&table);
    Ok(())
}

/// Prints values through a `--format` template (with a header for `table …`).
fn render(fmt: &str, values: Vec<Value>, titles: &dyn Fn(&str) -> String) -> Result<(), Failure> {
    let template = Template::parse(fmt);
    let mut lines = Vec::new();
    if template.is_table() {
        lines.push(template.header(titles));
    }
    for v in &values {
        lines.push(template.render(v).map_err(Failure::usage)?);
    }
    if template.is_table() {
        print_tabbed(&lines);
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

pub fn tag(app: &App, args: TagArgs) -> Result<(), Failure> {
    app.store()?.tag(&args.source, &args.target)?;
    Ok(())
}

#[derive(Args)]
pub struct RmiArgs {
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents (accepted for compatibility).
    #[arg(long)]
    pub no_prune: bool,
}

/// Images that containers (of any state) were made from: their layers are, or will be,
/// mounted, so they must outlive `rmi` and `prune`.
fn images_in_use(app: &App) -> Result<HashSet<String>, Failure> {
    let engine = berth_engine::Engine::open(app.global.root.clone(), app.global.runroot.clone())
        .map_err(|e| Failure {
            code: 1,
            message: format!("Error response from daemon: {e}"),
        })?;
    let records = engine.list().map_err(|e| Failure {
        code: 1,
        message: format!("Error response from daemon: {e}"),
    })?;
    Ok(records.into_iter().map(|r| r.image_id).collect())
}

pub fn rmi(app: &App, args: RmiArgs) -> Result<(), Failure> {
    let store = app.store()?;
    let in_use = images_in_use(app)?;
    let mut failed = false;
    for name in &args.images {
        match store.remove(name, args.force, &in_use) {
            Ok(out) => {
                for u in out.untagged {
                    println!("Untagged: {u}");
                }
                for d in out.deleted {
                    println!("Deleted: {d}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("{}", Failure::from(e).message);
            }
        }
    }
    if failed {
        return Err(Failure {
            code: 1,
            message: String::new(),
        });
    }
    Ok(())
}

/// `docker image inspect` JSON for one image (built by the image crate, which the Engine
/// API uses too).
pub fn inspect_value(app: &App, image: &ImageInfo) -> Result<Value, Failure> {
    Ok(berth_image::inspect::image_json(app.store()?, image))
}

/// JSON indented with four spaces, as the Docker CLI prints it.
pub fn to_docker_json(v: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("JSON serialises");
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[derive(Args)]
pub struct HistoryArgs {
    /// IMAGE
    pub image: String,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

pub fn history(app: &App, args: HistoryArgs) -> Result<(), Failure> {
    let store = app.store()?;
    let id = store.lookup(&args.image)?;
    let info = store.info(&id)?;
    let raw: Value = serde_json::from_slice(&info.config_bytes).unwrap_or(Value::Null);
    let history = raw
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut sizes = info.layer_sizes.iter();
    let mut entries: Vec<Value> = history
        .iter()
        .map(|h| {
            let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
            let size = if empty { 0 } else { *sizes.next().unwrap_or(&0) };
            let created = h.get("created").and_then(Value::as_str).map(str::to_string);
            json!({
                "CreatedAt": created.clone().unwrap_or_default(),
                "CreatedSince": if args.human { ago(created.as_deref()) } else { created.unwrap_or_default() },
                "CreatedBy": h.get("created_by").and_then(Value::as_str).unwrap_or(""),
                "Comment": h.get("comment").and_then(Value::as_str).unwrap_or(""),
                "Size": if args.human { human_size(size) } else { size.to_string() },
                "ID": "<missing>",
            })
        })
        .collect();
    entries.reverse();
    if let Some(first) = entries.first_mut() {
        first["ID"] = json!(if args.no_trunc {
            id.clone()
        } else {
            short_id(&id)
        });
    }
    if args.quiet {
        for e in &entries {
            println!("{}", e["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    if let Some(fmt) = args.format.as_deref().filter(|f| *f != "table") {
        return render(fmt, entries, &|f| match f {
            "ID" => "IMAGE".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedBy" => "CREATED BY".into(),
            "CreatedAt" => "CREATED AT".into(),
            other => other.to_uppercase(),
        });
    }
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for e in &entries {
        let by = e["CreatedBy"]
            .as_str()
            .unwrap_or_default()
            .replace('\t', " ");
        let by = if args.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        table.push(vec![
            e["ID"].as_str().unwrap_or_default().to_string(),
            e["CreatedSince"].as_str().unwrap_or_default().to_string(),
            by,
            e["Size"].as_str().unwrap_or_default().to_string(),
            e["Comment"].as_str().unwrap_or_default().to_string(),
        ]);
    }
    print_table(&table);
    Ok(())
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (not supported yet).
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(app: &App, args: PruneArgs) -> Result<(), Failure> {
    if !args.filter.is_empty() {
        return Err(Failure::usage(
            "berth image prune: --filter is not supported yet",
        ));
    }
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        if !crate::commands::confirm(&format!(
            "WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
        )) {
            return Ok(());
        }
    }
    let reclaimed = prune_images(app, args.all)?;
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(())
}

/// Removes dangling images (all unused ones with `all`), printing Docker's `Deleted
/// Images:` section; returns the bytes freed (`image prune`, `system prune`).
pub(crate) fn prune_images(app: &App, all: bool) -> Result<u64, Failure> {
    let in_use = images_in_use(app)?;
    let out = app.store()?.prune(all, &in_use)?;
    if !out.untagged.is_empty() || !out.deleted.is_empty() {
        println!("Deleted Images:");
        for u in &out.untagged {
            println!("untagged: {u}");
        }
        for d in &out.deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    Ok(out.reclaimed)
}
