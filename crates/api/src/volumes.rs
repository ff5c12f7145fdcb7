//! `/volumes/…`: list, create, inspect, remove and prune, each the engine call
//! `berth volume …` makes. Only the `local` driver exists.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use berth_engine::volume::Volume;
use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{blocking, empty, json, ok, read_json, Reply};
use crate::router::Ctx;
use crate::server::Version;

/// Docker's volume JSON.
fn value(engine: &Engine, v: &Volume) -> Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": engine.volumes().mountpoint(&v.name),
        "CreatedAt": v.created,
        "Labels": v.labels,
        "Scope": "local",
        "Options": null,
    })
}

/// Whether a `label=KEY[=VALUE]` filter value holds for `labels`.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

fn truthy(v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad(format!("invalid filter value {v:?}"))),
    }
}

/// `GET /volumes?filters=`: `name`, `label`, `dangling`, `driver` →
/// `{"Volumes": […], "Warnings": []}`.
pub async fn list(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    for key in filters.keys() {
        if !["name", "label", "dangling", "driver"].contains(&key.as_str()) {
            return Err(ApiError::bad(format!("invalid filter '{key}'")));
        }
    }
    let engine = ctx.engine();
    let volumes = blocking(move || {
        let mut out = Vec::new();
        for v in engine.volumes().list() {
            if !keep(&engine, &v, &filters)? {
                continue;
            }
            out.push(value(&engine, &v));
        }
        Ok(out)
    })
    .await?;
    ok(json!({ "Volumes": volumes, "Warnings": [] }))
}

fn keep(
    engine: &Engine,
    v: &Volume,
    filters: &HashMap<String, Vec<String>>,
) -> Result<bool, ApiError> {
    for (key, values) in filters {
        for val in values {
            let hit = match key.as_str() {
                "name" => v.name.contains(val.as_str()),
                "label" => label_matches(&v.labels, val),
                "driver" => val == "local",
                "dangling" => engine.volume_users(&v.name)?.is_empty() == truthy(val)?,
                _ => true,
            };
            if !hit {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// `POST /volumes/create` with `{Name, Driver, DriverOpts, Labels}` → 201 with the volume;
/// an existing name answers that volume, as Docker does. No name makes an anonymous one.
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> Reply {
    let body = read_json(req.into_body()).await?;
    let name = body["Name"].as_str().unwrap_or("").to_string();
    let driver = body["Driver"].as_str().unwrap_or("");
    if !driver.is_empty() && driver != "local" {
        return Err(ApiError::not_found(format!(
            "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    if body["DriverOpts"]
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        return Err(ApiError::bad(format!(
            "create {name}: driver options (DriverOpts: type, device, o) are not supported by berth yet"
        )));
    }
    let mut labels = BTreeMap::new();
    if let Some(m) = body["Labels"].as_object() {
        for (k, v) in m {
            labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    let engine = ctx.engine();
    let v = blocking(move || {
        let (name, anonymous) = if name.is_empty() {
            (berth_engine::container::random_id()?, true)
        } else {
            (name, false)
        };
        let v = engine.volumes().create(&name, labels, anonymous)?;
        Ok(value(&engine, &v))
    })
    .await?;
    json(StatusCode::CREATED, &v)
}

/// `GET /volumes/{name}`.
pub async fn inspect(ctx: Ctx, name: &str) -> Reply {
    let (engine, name) = (ctx.engine(), name.to_string());
    let v = blocking(move || {
        let v = engine.volumes().get(&name)?;
        Ok(value(&engine, &v))
    })
    .await?;
    ok(v)
}

/// `DELETE /volumes/{name}?force=` → 204; 409 while a container names it (force or not:
/// Docker's force only forgives a missing volume or a failing driver).
pub async fn remove(ctx: Ctx, name: &str) -> Reply {
    let force = ctx.query.flag("force");
    let (engine, name) = (ctx.engine(), name.to_string());
    blocking(move || match engine.remove_volume(&name, false) {
        Err(berth_engine::Error::NoSuchVolume(_)) if force => Ok(()),
        r => Ok(r?),
    })
    .await?;
    empty(StatusCode::NO_CONTENT)
}

/// Bytes under `path` (files' apparent sizes; links not followed).
fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// `POST /volumes/prune?filters=`: unused anonymous volumes, or every unused one with
/// `all=true` (API < 1.42: always every unused one); `label` filters narrow it down.
pub async fn prune(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    let mut all = ctx.version < Version(1, 42);
    let mut labels = Vec::new();
    for (key, values) in filters {
        match key.as_str() {
            "all" => {
                for v in &values {
                    all |= truthy(v)?;
                }
            }
            "label" => labels.extend(values),
            other => {
                return Err(ApiError::bad(format!(
                    "volume prune: the {other:?} filter is not supported yet (all, label)"
                )))
            }
        }
    }
    let engine = ctx.engine();
    let (deleted, reclaimed) = blocking(move || {
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for v in engine.volumes().list() {
            if !(all || v.anonymous)
                || !labels.iter().all(|l| label_matches(&v.labels, l))
                || !engine.volume_users(&v.name)?.is_empty()
            {
                continue;
            }
            let size = dir_size(&engine.volumes().data(&v.name));
            engine.remove_volume(&v.name, false)?;
            reclaimed += size;
            deleted.push(v.name);
        }
        Ok((deleted, reclaimed))
    })
    .await?;
    ok(json!({ "VolumesDeleted": deleted, "SpaceReclaimed": reclaimed }))
}
