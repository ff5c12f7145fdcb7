//! `/containers/…`: create, list, inspect, the lifecycle verbs, wait, logs, top, stats,
//! archives and prune, each a call of the engine the CLI makes too.

use std::collections::HashMap;
use std::time::Duration;

use berth_engine::{ContainerRecord, Engine, State};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{blocking, empty, json, ok, read_body, read_json, stream, Reply};
use crate::router::Ctx;

/// The record of `name_or_id` (a name, a full ID or a unique prefix), on a worker thread.
pub async fn find(ctx: &Ctx, name_or_id: &str) -> Result<ContainerRecord, ApiError> {
    let (engine, n) = (ctx.engine(), name_or_id.to_string());
    blocking(move || Ok(engine.find(&n)?)).await
}

/// `POST /containers/create?name=`.
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> Reply {
    let body = read_json(req.into_body()).await?;
    let options = crate::create::run_options(&body, ctx.query.get("name"))?;
    let engine = ctx.engine();
    let id = blocking(move || {
        // Docker's daemon never pulls on create: the client pulls on a 404 and retries.
        let image = options.image.clone();
        engine.images.lookup(&image).map_err(|_| {
            ApiError::not_found(format!(
                "No such image: {}",
                berth_registry::Reference::parse_with_default_tag(&image)
                    .map(|r| berth_image::display_ref(&r.to_string()))
                    .unwrap_or(image)
            ))
        })?;
        Ok(engine.create(&options)?)
    })
    .await?;
    json(StatusCode::CREATED, &json!({ "Id": id, "Warnings": [] }))
}

/// `GET /containers/json?all=&limit=&filters=`.
pub async fn list(ctx: Ctx) -> Reply {
    let all = ctx.query.flag("all");
    let limit = ctx.query.int("limit")?.filter(|l| *l > 0);
    let filters = ctx.query.filters()?;
    let engine = ctx.engine();
    let listed = blocking(move || {
        let mut records = engine.list()?;
        records.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for r in records {
            if !all && !filters.contains_key("status") && !r.is_running() {
                continue;
            }
            if !matches(&engine, &r, &filters) {
                continue;
            }
            out.push(summary(&engine, &r));
            if limit.is_some_and(|l| out.len() as i64 >= l) {
                break;
            }
        }
        Ok(out)
    })
    .await?;
    ok(Value::Array(listed))
}

/// Docker's container filters: `id`, `name`, `label`, `status`, `ancestor`, `network`,
/// `volume`, `exited`.
fn matches(engine: &Engine, r: &ContainerRecord, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|v| match key.as_str() {
                "id" => r.id.starts_with(v.as_str()),
                "name" => r.name.contains(v.trim_start_matches('/')),
                "label" => berth_engine::prune::label_matches(r, v),
                "status" => r.status() == v,
                "exited" => {
                    r.state == State::Exited
                        && r.exit_code.map(|c| c.to_string()) == Some(v.clone())
                }
                "ancestor" => {
                    r.options.image == *v
                        || r.image_id.starts_with(v.as_str())
                        || r.image_id
                            .trim_start_matches("sha256:")
                            .starts_with(v.as_str())
                        || engine.images.lookup(v).is_ok_and(|id| id == r.image_id)
                }
                "network" => {
                    r.endpoints().iter().any(|e| e.network == *v)
                        || (r.options.network.as_deref() == Some(v.as_str()))
                }
                "volume" => r
                    .options
                    .mounts
                    .iter()
                    .any(|m| m.source == *v || m.target == *v),
                _ => true,
            })
    })
}

/// One entry of `GET /containers/json`.
fn summary(engine: &Engine, r: &ContainerRecord) -> Value {
    let inspect = engine.inspect(r);
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let ports: Vec<Value> = if r.is_running() {
        r.ports
            .iter()
            .map(|p| {
                json!({
                    "IP": p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    "PrivatePort": p.container_port,
                    "PublicPort": p.host_port,
                    "Type": p.protocol.as_str(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let command = inspect["Path"]
        .as_str()
        .map(|p| {
            let mut parts = vec![p.to_string()];
            if let Some(a) = inspect["Args"].as_array() {
                parts.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
            }
            parts.join(" ")
        })
        .unwrap_or_default();
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.options.image,
        "ImageID": r.image_id,
        "Command": command,
        "Created": created,
        "Ports": ports,
        "Labels": r.options.labels,
        "State": r.status(),
        "Status": r.status_text(),
        "HostConfig": { "NetworkMode": inspect["HostConfig"]["NetworkMode"] },
        "NetworkSettings": { "Networks": inspect["NetworkSettings"]["Networks"] },
        "Mounts": inspect["Mounts"],
    })
}

/// `GET /containers/{id}/json`.
pub async fn inspect(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let engine = ctx.engine();
    ok(blocking(move || Ok(engine.inspect(&r))).await?)
}

/// `POST /containers/{id}/start`: 304 when it runs already. Attach connections made while
/// it was only created are served by its monitor from the first byte.
pub async fn start(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    if r.is_running() {
        return empty(StatusCode::NOT_MODIFIED);
    }
    let pending = ctx.state.pending.take(&r.id);
    let engine = ctx.engine();
    if pending.is_empty() {
        let id = r.id.clone();
        blocking(move || Ok(engine.start_detached(&id)?)).await?;
    } else {
        crate::attach::start_with(ctx.state.clone(), &r, pending).await?;
    }
    empty(StatusCode::NO_CONTENT)
}

/// The signal and grace time of a `stop`/`restart`: `?signal=` and `?t=` (API ≥ 1.42
/// spells it `t`, as older ones did).
fn stop_params(ctx: &Ctx, r: &ContainerRecord) -> Result<(i32, Duration), ApiError> {
    let signal = match ctx.query.get("signal") {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => r.stop_signal(),
    };
    let signal = berth_engine::options::parse_signal(&signal)?;
    let grace = match ctx.query.int("t")?.unwrap_or_else(|| r.stop_timeout()) {
        t if t < 0 => Duration::from_secs(u64::MAX / 4),
        t => Duration::from_secs(t as u64),
    };
    Ok((signal, grace))
}

/// `POST /containers/{id}/stop?t=&signal=`: 304 when it is not running.
pub async fn stop(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    if !r.is_running() {
        return empty(StatusCode::NOT_MODIFIED);
    }
    let (signal, grace) = stop_params(&ctx, &r)?;
    let engine = ctx.engine();
    blocking(move || Ok(engine.stop(&r, signal, grace)?)).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/restart?t=`.
pub async fn restart(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let (signal, grace) = stop_params(&ctx, &r)?;
    let engine = ctx.engine();
    blocking(move || {
        engine.stop(&r, signal, grace)?;
        engine.start_detached(&r.id)?;
        Ok(())
    })
    .await?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill?signal=` (default SIGKILL).
pub async fn kill(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let signal = berth_engine::options::parse_signal(ctx.query.get("signal").unwrap_or("KILL"))?;
    if !r.is_running() {
        return Err(ApiError::conflict(format!(
            "cannot kill container: {id}: container {} is not running",
            r.id
        )));
    }
    let engine = ctx.engine();
    blocking(move || Ok(engine.kill(&r, signal)?)).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub async fn pause(ctx: Ctx, id: &str, pause: bool) -> Reply {
    let r = find(&ctx, id).await?;
    let engine = ctx.engine();
    blocking(move || {
        if pause {
            engine.pause(&r)?;
        } else {
            engine.unpause(&r)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::BAD_REQUEST => ApiError::conflict(e.message),
        _ => e,
    })?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(ctx: Ctx, id: &str) -> Reply {
    let name = ctx
        .query
        .required("name")?
        .trim_start_matches('/')
        .to_string();
    let (engine, id) = (ctx.engine(), id.to_string());
    blocking(move || Ok(engine.rename(&id, &name)?)).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let (force, volumes) = (ctx.query.flag("force"), ctx.query.flag("v"));
    let engine = ctx.engine();
    blocking(move || Ok(engine.remove_container(&r, force, volumes)?)).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: the headers go
/// at once (the docker CLI waits for them before it starts the container), the status
/// once the condition holds.
pub async fn wait(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let condition = ctx
        .query
        .get("condition")
        .unwrap_or("not-running")
        .to_string();
    if !matches!(
        condition.as_str(),
        "not-running" | "next-exit" | "removed" | ""
    ) {
        return Err(ApiError::bad(format!(
            "invalid condition: {condition:?}: use not-running, next-exit or removed"
        )));
    }
    let (reply, tx) = stream(StatusCode::OK, "application/json");
    let engine = ctx.engine();
    std::thread::spawn(move || {
        let code = wait_for(&engine, &r, &condition, || tx.is_closed());
        if let Some(code) = code {
            let _ = tx.blocking_send(Bytes::from(format!(
                "{}\n",
                json!({ "StatusCode": code, "Error": null })
            )));
        }
    });
    reply
}

/// Polls the record until `condition` holds; the exit code then, `None` if the client left.
fn wait_for(
    engine: &Engine,
    first: &ContainerRecord,
    condition: &str,
    gone: impl Fn() -> bool,
) -> Option<i64> {
    let id = &first.id;
    let finished_before = first.finished_at.clone();
    let mut last_code = first.exit_code;
    let started = std::time::Instant::now();
    loop {
        if gone() {
            return None;
        }
        match engine.load(id) {
            Ok(r) => {
                last_code = r.exit_code.or(last_code);
                let stopped = !r.monitor_alive() && r.state != State::Created;
                let done = match condition {
                    "next-exit" => stopped && r.finished_at != finished_before,
                    "removed" => false,
                    _ => {
                        r.state != State::Running && r.state != State::Restarting
                            || (!r.monitor_alive() && r.state != State::Created)
                    }
                };
                if done {
                    return Some(i64::from(r.exit_code.unwrap_or(0)));
                }
            }
            // Gone: removed (by `rm`, or by the monitor of a --rm container, which leaves
            // its exit code behind for this).
            Err(_) => {
                let code = engine.last_exit_code(id).or(last_code).unwrap_or(0);
                return Some(i64::from(code));
            }
        }
        // Short containers (`docker run --rm x true`) end within the first moments: poll
        // closely then, gently after.
        let pause = if started.elapsed() < Duration::from_secs(2) {
            2
        } else {
            20
        };
        std::thread::sleep(Duration::from_millis(pause));
    }
}

/// Docker's stream framing of one chunk of output (non-TTY logs and attach).
pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=`.
pub async fn logs(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let q = &ctx.query;
    let (out, err) = (q.flag("stdout"), q.flag("stderr"));
    if !out && !err {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let (follow, timestamps) = (q.flag("follow"), q.flag("timestamps"));
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad(format!("invalid value for tail: {n:?}")))?,
        ),
    };
    let bound = |key: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        match q.get(key) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => Ok(Some(berth_engine::logs::parse_time(v, chrono::Utc::now())?)),
        }
    };
    let (since, until) = (bound("since")?, bound("until")?);
    let tty = r.options.tty;
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (reply, tx) = stream(StatusCode::OK, content_type);
    let engine = ctx.engine();
    std::thread::spawn(move || {
        let path = engine.log_path(&r.id);
        let keep = |e: &berth_engine::logs::Entry| {
            let wanted = if e.stream == "stderr" { err } else { out };
            let t = chrono::DateTime::parse_from_rfc3339(&e.time)
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok();
            wanted
                && match t {
                    Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
                    None => true,
                }
        };
        let send = |e: &berth_engine::logs::Entry| {
            let text = if timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log.clone()
            };
            let bytes = if tty {
                Bytes::from(text)
            } else {
                frame(if e.stream == "stderr" { 2 } else { 1 }, text.as_bytes())
            };
            tx.blocking_send(bytes).is_ok()
        };
        let all = berth_engine::logs::read(&path);
        let mut seen = all.len();
        let kept: Vec<_> = all.iter().filter(|e| keep(e)).collect();
        let skip = tail.map_or(0, |n| kept.len().saturating_sub(n));
        for e in kept.into_iter().skip(skip) {
            if !send(e) {
                return;
            }
        }
        while follow && !tx.is_closed() {
            let running = engine
                .load(&r.id)
                .map(|x| x.monitor_alive())
                .unwrap_or(false);
            let all = berth_engine::logs::read(&path);
            for e in all.iter().skip(seen).filter(|e| keep(e)) {
                if !send(e) {
                    return;
                }
            }
            seen = all.len();
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    reply
}

/// `GET /containers/{id}/top?ps_args=`: `ps -ef` columns of the container's processes.
pub async fn top(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let engine = ctx.engine();
    let pids = blocking(move || Ok(engine.processes(&r)?)).await?;
    let mut processes = Vec::new();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        processes.push(json!([
            field("Uid:"),
            pid.to_string(),
            field("PPid:"),
            "0",
            "",
            "?",
            "00:00:00",
            cmd
        ]));
    }
    ok(json!({
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": processes,
    }))
}

/// `GET /containers/{id}/stats?stream=false`: one sample in Docker's shape (a stream of
/// samples, one a second, without `stream=false`).
pub async fn stats(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let once = ctx
        .query
        .get("stream")
        .is_some_and(|s| s == "0" || s == "false")
        || ctx.query.flag("one-shot");
    let (reply, tx) = stream(StatusCode::OK, "application/json");
    let engine = ctx.engine();
    std::thread::spawn(move || {
        let mut previous: Option<Value> = None;
        loop {
            let Ok(current) = engine.load(&r.id) else {
                return;
            };
            let value = stats_value(&engine, &current, previous.as_ref());
            if tx.blocking_send(Bytes::from(format!("{value}\n"))).is_err()
                || once
                || !current.is_running()
            {
                return;
            }
            previous = Some(value);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    reply
}

/// The host's CPU time so far, as Docker's `system_cpu_usage` (nanoseconds).
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn stats_value(engine: &Engine, r: &ContainerRecord, previous: Option<&Value>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut v = json!({
        "read": now,
        "preread": previous.map(|p| p["read"].clone()).unwrap_or(json!("0001-01-01T00:00:00Z")),
        "id": r.id,
        "name": format!("/{}", r.name),
        "pids_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0}, "online_cpus": std::thread::available_parallelism().map_or(1, |n| n.get())},
        "precpu_stats": previous.map(|p| p["cpu_stats"].clone()).unwrap_or(json!({"cpu_usage": {"total_usage": 0}})),
        "memory_stats": {},
        "networks": {},
        "blkio_stats": {},
    });
    if let Ok(s) = engine.sample(r) {
        v["memory_stats"] = json!({ "usage": s.memory, "limit": s.memory_limit, "stats": {} });
        v["cpu_stats"]["cpu_usage"]["total_usage"] = json!(s.cpu_ns);
        v["cpu_stats"]["system_cpu_usage"] = json!(system_cpu_ns());
        v["pids_stats"] = json!({ "current": s.pids });
        v["networks"] = json!({ "eth0": { "rx_bytes": s.net.0, "tx_bytes": s.net.1 } });
        v["blkio_stats"] = json!({ "io_service_bytes_recursive": [
            { "major": 0, "minor": 0, "op": "read", "value": s.block.0 },
            { "major": 0, "minor": 0, "op": "write", "value": s.block.1 },
        ]});
    }
    v
}

/// `POST /containers/{id}/resize?h=&w=`: the terminal size of a `-t` container.
pub async fn resize(ctx: Ctx, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let h = ctx.query.int("h")?.unwrap_or(0).clamp(0, 65535) as u16;
    let w = ctx.query.int("w")?.unwrap_or(0).clamp(0, 65535) as u16;
    if !r.is_running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            r.id
        )));
    }
    let runroot = ctx.engine().runroot().to_path_buf();
    blocking(move || {
        crate::attach::send_resize(&runroot, &r.id, h, w)
            .map_err(|e| ApiError::internal(format!("resizing the terminal: {e}")))
    })
    .await?;
    empty(StatusCode::OK)
}

/// `GET`/`HEAD /containers/{id}/archive?path=`: a tar of the path, its stat in the
/// `X-Docker-Container-Path-Stat` header.
pub async fn archive_get(ctx: Ctx, id: &str, head: bool) -> Reply {
    let r = find(&ctx, id).await?;
    let path = ctx.query.required("path")?.to_string();
    let engine = ctx.engine();
    let (tar, stat) = blocking(move || {
        let mut tar = Vec::new();
        engine
            .copy_out_tar(&r, &path, &mut tar)
            .map_err(|e| match e {
                berth_engine::Error::Invalid(m)
                    if m.contains("No such") || m.contains("not found") =>
                {
                    ApiError::not_found(m)
                }
                e => ApiError::from(e),
            })?;
        Ok((tar, path_stat(&path)))
    })
    .await?;
    use base64::Engine as _;
    let header = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    let body = if head { Bytes::new() } else { Bytes::from(tar) };
    Ok(hyper::Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-tar")
        .header("X-Docker-Container-Path-Stat", header)
        .body(crate::http::full(body))
        .expect("a valid response"))
}

fn path_stat(path: &str) -> Value {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    json!({ "name": name, "size": 0, "mode": 0, "mtime": "0001-01-01T00:00:00Z", "linkTarget": "" })
}

/// `PUT /containers/{id}/archive?path=`: unpacks the tar body there.
pub async fn archive_put(ctx: Ctx, req: Request<Incoming>, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let path = ctx.query.required("path")?.to_string();
    let body = read_body(req.into_body(), 1 << 30).await?;
    let engine = ctx.engine();
    blocking(move || Ok(engine.copy_in_tar(&r, &path, std::io::Cursor::new(body))?)).await?;
    empty(StatusCode::OK)
}

/// `POST /containers/prune?filters=`.
pub async fn prune(ctx: Ctx) -> Reply {
    let labels = ctx.query.filters()?.remove("label").unwrap_or_default();
    let engine = ctx.engine();
    let deleted = blocking(move || Ok(engine.prune_containers(&labels)?)).await?;
    ok(json!({ "ContainersDeleted": deleted, "SpaceReclaimed": 0 }))
}
