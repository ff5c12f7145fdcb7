//! `/networks/…`: list, inspect, create, remove, connect, disconnect and prune, each the
//! engine call `berth network …` makes. Only bridge networks exist (and the predefined
//! `host` and `none`); what berth cannot do (IPv6, internal networks, other drivers) is
//! refused by name rather than ignored.

use std::collections::{BTreeMap, HashMap};

use berth_engine::networks::NetworkDef;
use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{blocking, empty, json, ok, read_json, Reply};
use crate::router::Ctx;

/// Docker's `network inspect` JSON (the engine builds it for the CLI and the API alike).
fn value(engine: &Engine, def: &NetworkDef) -> Result<Value, ApiError> {
    engine.network_json(def).map_err(ApiError::from)
}

/// Whether a `label=KEY[=VALUE]` filter value holds for `labels`.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Docker's network filters: each key must hold for one of its values.
fn matches(def: &NetworkDef, filters: &HashMap<String, Vec<String>>) -> Result<bool, ApiError> {
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let hit = match key.as_str() {
            "name" => values.iter().any(|v| def.name.contains(v.as_str())),
            "id" => values.iter().any(|v| def.id.starts_with(v.as_str())),
            "driver" => values.contains(&def.driver),
            "label" => values.iter().all(|v| label_matches(&def.labels, v)),
            "scope" => values.iter().any(|v| v == "local"),
            "type" => values.iter().any(|v| match v.as_str() {
                "builtin" => def.predefined(),
                "custom" => !def.predefined(),
                _ => false,
            }),
            // Docker answers 400 for an unknown filter key.
            other => return Err(ApiError::bad(format!("invalid filter '{other}'"))),
        };
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /networks?filters=`: `name`, `id`, `label`, `driver`, `scope`, `type`.
pub async fn list(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    let engine = ctx.engine();
    let v = blocking(move || {
        let mut out = Vec::new();
        for def in engine.networks() {
            if matches(&def, &filters)? {
                out.push(value(&engine, &def)?);
            }
        }
        Ok(Value::Array(out))
    })
    .await?;
    ok(v)
}

/// `GET /networks/{id}` (a name, an ID or a unique ID prefix).
pub async fn inspect(ctx: Ctx, id: &str) -> Reply {
    let (engine, id) = (ctx.engine(), id.to_string());
    let v = blocking(move || {
        let def = engine.network(&id)?;
        value(&engine, &def)
    })
    .await?;
    ok(v)
}

/// `POST /networks/create` with `{Name, Driver, Labels, IPAM:{Config:[{Subnet, Gateway}]},
/// Internal, Attachable, EnableIPv6, CheckDuplicate}` → 201 `{Id, Warning}`; a taken name
/// is 409, as Docker answers since API 1.44 whatever CheckDuplicate says.
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> Reply {
    let body = read_json(req.into_body()).await?;
    let name = body["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("network name (Name) is required"))?
        .to_string();
    let driver = body["Driver"].as_str().unwrap_or("").to_string();
    if !driver.is_empty() && driver != "bridge" {
        return Err(ApiError::not_found(format!(
            "plugin \"{driver}\" not found (berth has the bridge driver)"
        )));
    }
    if body["EnableIPv6"].as_bool() == Some(true) {
        return Err(ApiError::bad(
            "IPv6 networks are not supported by berth yet (EnableIPv6)",
        ));
    }
    if body["Internal"].as_bool() == Some(true) {
        return Err(ApiError::bad(
            "internal networks (no outside access) are not supported by berth yet",
        ));
    }
    let configs = body["IPAM"]["Config"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad(
            "berth networks have one IPv4 subnet: give at most one IPAM Config",
        ));
    }
    let subnet = configs
        .first()
        .and_then(|c| c["Subnet"].as_str())
        .filter(|s| !s.is_empty())
        .map(String::from);
    let gateway = configs
        .first()
        .and_then(|c| c["Gateway"].as_str())
        .filter(|s| !s.is_empty())
        .map(String::from);
    if configs
        .first()
        .is_some_and(|c| c["IPRange"].as_str().is_some_and(|r| !r.is_empty()))
    {
        return Err(ApiError::bad(
            "IPAM IPRange is not supported by berth yet; give a Subnet only",
        ));
    }
    let mut labels = BTreeMap::new();
    if let Some(m) = body["Labels"].as_object() {
        for (k, v) in m {
            labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    let engine = ctx.engine();
    let id = blocking(move || {
        if engine.networks().iter().any(|n| n.name == name) {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let def = engine.create_network(&name, subnet.as_deref(), labels)?;
        if let Some(gw) = gateway {
            let actual = engine.network_bridge(&def)?.gateway().to_string();
            if actual != gw {
                let _ = engine.remove_network(&def.id);
                return Err(ApiError::bad(format!(
                    "gateway {gw}: berth's bridge networks use the subnet's first address ({actual}) as gateway"
                )));
            }
        }
        Ok(def.id)
    })
    .await?;
    json(StatusCode::CREATED, &json!({ "Id": id, "Warning": "" }))
}

/// `DELETE /networks/{id}` → 204; 403 for predefined networks and networks with running
/// containers, as in Docker.
pub async fn remove(ctx: Ctx, id: &str) -> Reply {
    let (engine, id) = (ctx.engine(), id.to_string());
    blocking(move || Ok(engine.remove_network(&id)?)).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /networks/{id}/connect` (`{Container, EndpointConfig:{Aliases}}`) and
/// `/disconnect` (`{Container, Force}`).
pub async fn connect(ctx: Ctx, req: Request<Incoming>, id: &str, connect: bool) -> Reply {
    let body = read_json(req.into_body()).await?;
    let container = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("Container is required"))?
        .to_string();
    let aliases: Vec<String> = body["EndpointConfig"]["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    if connect {
        let ipam = &body["EndpointConfig"]["IPAMConfig"];
        if ["IPv4Address", "IPv6Address"]
            .iter()
            .any(|k| ipam[k].as_str().is_some_and(|a| !a.is_empty()))
        {
            return Err(ApiError::bad(
                "static container addresses (IPAMConfig) are not supported by berth yet",
            ));
        }
    }
    let (engine, id) = (ctx.engine(), id.to_string());
    blocking(move || {
        // Docker checks the network first: an unknown one is 404 whatever the container.
        engine.network(&id)?;
        engine.find(&container)?;
        if connect {
            engine.connect(&id, &container, aliases)?;
        } else {
            engine.disconnect(&id, &container)?;
        }
        Ok(())
    })
    .await?;
    empty(StatusCode::OK)
}

/// `POST /networks/prune?filters=`: user networks no container names (`label` filters
/// narrow it down); `{"NetworksDeleted": [names]}`.
pub async fn prune(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    let mut labels = Vec::new();
    for (key, values) in filters {
        match key.as_str() {
            "label" => labels.extend(values),
            other => {
                return Err(ApiError::bad(format!(
                    "network prune: the {other:?} filter is not supported yet (only label)"
                )))
            }
        }
    }
    let engine = ctx.engine();
    let deleted = blocking(move || {
        if labels.is_empty() {
            return Ok(engine.prune_networks()?);
        }
        let mut deleted = Vec::new();
        for n in engine.networks() {
            if n.predefined()
                || !labels.iter().all(|l| label_matches(&n.labels, l))
                || !engine.network_users(&n.name)?.is_empty()
            {
                continue;
            }
            engine.remove_network(&n.name)?;
            deleted.push(n.name);
        }
        Ok(deleted)
    })
    .await?;
    ok(json!({ "NetworksDeleted": deleted }))
}
