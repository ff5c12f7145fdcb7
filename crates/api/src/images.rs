//! `/images/…`: list, inspect, history, tag, remove, prune, pull (`/images/create`), push,
//! save (`/images/get`) and load, each the store call the CLI's command makes; `/build` is in
//! [`crate::images_build`].
//!
//! Pull and push stream Docker's JSON progress lines. As in Docker's daemon, a failure before
//! the first line (an unknown image, a registry that says no) is an HTTP error, and one after
//! it an `errorDetail` line, since the `200 OK` has gone out by then.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use berth_image::{display_ref, ImageInfo, Store};
use berth_registry::{Platform, Progress, ProgressEvent, Reference};
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::error::ApiError;
use crate::http::{blocking, empty, json, json_line, ok, stream, Reply};
use crate::router::Ctx;

/// The most `POST /images/load` reads: archives are streamed to disk, never held, so the
/// bound only stops a client from filling the disk without end.
const MAX_LOAD_BODY: u64 = 64 << 30;

/// An image-store error as Docker's daemon answers it: unknown images are 404, a refused
/// removal 409, a bad reference 400.
pub(crate) fn image_error(e: berth_image::Error) -> ApiError {
    use berth_image::Error as E;
    match e {
        E::Conflict(_) => ApiError::conflict(e.to_string()),
        E::Reference(_) => ApiError::bad(e.to_string()),
        E::Registry(r) => registry_error(r),
        e => ApiError::from(e),
    }
}

/// A registry error in Docker's words: a missing manifest and a refused repository are 404s.
fn registry_error(e: berth_registry::Error) -> ApiError {
    use berth_registry::Error as E;
    match &e {
        E::NotFound { reference, tried } => ApiError::not_found(format!(
            "manifest for {} not found: manifest unknown: manifest unknown (tried {tried})",
            display_ref(reference)
        )),
        E::Unauthorized { reference, .. } => {
            let name = Reference::parse(reference)
                .map(|r| r.familiar_name())
                .unwrap_or_else(|_| reference.clone());
            ApiError::not_found(format!(
                "pull access denied for {name}, repository does not exist or may require 'docker login' ({e})"
            ))
        }
        E::Reference(_) => ApiError::bad(e.to_string()),
        _ => ApiError::from(e),
    }
}

/// `No such image: busybox:latest`, as Docker names a missing image.
fn no_such_image(name: &str) -> ApiError {
    let shown = Reference::parse_with_default_tag(name)
        .map(|r| display_ref(&r.to_string()))
        .unwrap_or_else(|_| name.to_string());
    ApiError::not_found(format!("No such image: {shown}"))
}

/// The image ID `name` selects, or Docker's 404.
fn lookup(store: &Store, name: &str) -> Result<String, ApiError> {
    store.lookup(name).map_err(|e| match e {
        berth_image::Error::NoSuchImage { .. } => no_such_image(name),
        e => image_error(e),
    })
}

/// Image IDs containers (any state) stand on: `rmi` and prune must keep them.
fn images_in_use(engine: &berth_engine::Engine) -> Result<HashSet<String>, ApiError> {
    Ok(engine.list()?.into_iter().map(|r| r.image_id).collect())
}

/// RFC 3339 → Unix seconds (0 when absent or malformed, as Docker shows an unknown time).
fn unix(t: Option<&str>) -> i64 {
    t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn labels_of(image: &ImageInfo) -> HashMap<String, String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
}

/// Whether a `label=KEY[=VALUE]` filter value holds for `labels`.
fn label_matches(labels: &HashMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Whether one of `tags` matches a `reference=` pattern (`busybox`, `busy*:1.*`).
fn reference_matches(tags: &[String], pattern: &str) -> bool {
    tags.iter().any(|t| {
        let Ok(r) = Reference::parse(t) else {
            return false;
        };
        let repo = r.familiar_name();
        let full = format!("{repo}:{}", r.tag().unwrap_or(""));
        berth_image::glob(pattern, &full) || berth_image::glob(pattern, &repo)
    })
}

/// `GET /images/json?all=&filters=`: `reference`, `dangling`, `label`, `before`, `since`.
pub async fn list(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    for key in filters.keys() {
        if !["reference", "dangling", "label", "before", "since"].contains(&key.as_str()) {
            return Err(ApiError::bad(format!("invalid filter '{key}'")));
        }
    }
    let dangling = match filters.get("dangling").and_then(|v| v.first()) {
        None => None,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => return Err(ApiError::bad(format!("Invalid filter 'dangling={v}'"))),
        },
    };
    let engine = ctx.engine();
    let listed = blocking(move || {
        let store = &engine.images;
        let all = store.list().map_err(image_error)?;
        let created_of = |name: &str| -> Result<i64, ApiError> {
            let id = lookup(store, name)?;
            Ok(all
                .iter()
                .find(|i| i.id == id)
                .map(|i| unix(i.config.created().as_deref()))
                .unwrap_or(0))
        };
        let before = match filters.get("before").and_then(|v| v.first()) {
            Some(b) => Some(created_of(b)?),
            None => None,
        };
        let since = match filters.get("since").and_then(|v| v.first()) {
            Some(s) => Some(created_of(s)?),
            None => None,
        };
        let mut out = Vec::new();
        for image in &all {
            let labels = labels_of(image);
            let created = unix(image.config.created().as_deref());
            if dangling.is_some_and(|d| d != image.tags.is_empty())
                || !filters
                    .get("label")
                    .into_iter()
                    .flatten()
                    .all(|l| label_matches(&labels, l))
                || !filters
                    .get("reference")
                    .into_iter()
                    .flatten()
                    .all(|p| reference_matches(&image.tags, p))
                || before.is_some_and(|b| created >= b)
                || since.is_some_and(|s| created <= s)
            {
                continue;
            }
            // With a reference filter, Docker shows only the tags and digests matching it.
            let shown = |refs: &[String]| -> Vec<String> {
                refs.iter()
                    .filter(|t| {
                        filters
                            .get("reference")
                            .into_iter()
                            .flatten()
                            .all(|p| reference_matches(std::slice::from_ref(*t), p))
                    })
                    .map(|t| display_ref(t))
                    .collect()
            };
            let tags = shown(&image.tags);
            let digests = shown(&image.record.repo_digests);
            out.push(json!({
                "Id": image.id,
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": digests,
                "Created": created,
                "Size": image.size,
                "SharedSize": -1,
                "VirtualSize": image.size,
                "Labels": if labels.is_empty() { Value::Null } else { json!(labels) },
                "Containers": -1,
            }));
        }
        Ok(out)
    })
    .await?;
    ok(Value::Array(listed))
}

/// `GET /images/{name}/json`.
pub async fn inspect(ctx: Ctx, name: &str) -> Reply {
    let (engine, name) = (ctx.engine(), name.to_string());
    let v = blocking(move || {
        let id = lookup(&engine.images, &name)?;
        let info = engine.images.info(&id).map_err(image_error)?;
        Ok(berth_image::inspect::image_json(&engine.images, &info))
    })
    .await?;
    ok(v)
}

/// `GET /images/{name}/history`: newest entry first; only the top one knows its ID.
pub async fn history(ctx: Ctx, name: &str) -> Reply {
    let (engine, name) = (ctx.engine(), name.to_string());
    let v = blocking(move || {
        let id = lookup(&engine.images, &name)?;
        let info = engine.images.info(&id).map_err(image_error)?;
        let raw: Value = serde_json::from_slice(&info.config_bytes).unwrap_or(Value::Null);
        let mut sizes = info.layer_sizes.iter();
        let mut entries: Vec<Value> = raw
            .get("history")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|h| {
                let empty = h
                    .get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    *sizes.next().unwrap_or(&0)
                };
                json!({
                    "Id": "<missing>",
                    "Created": unix(h.get("created").and_then(Value::as_str)),
                    "CreatedBy": h.get("created_by").and_then(Value::as_str).unwrap_or(""),
                    "Tags": null,
                    "Size": size,
                    "Comment": h.get("comment").and_then(Value::as_str).unwrap_or(""),
                })
            })
            .collect();
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top["Id"] = json!(info.id);
            top["Tags"] = json!(info.tags.iter().map(|t| display_ref(t)).collect::<Vec<_>>());
        }
        Ok(Value::Array(entries))
    })
    .await?;
    ok(v)
}

/// `POST /images/{name}/tag?repo=&tag=` → 201.
pub async fn tag(ctx: Ctx, name: &str) -> Reply {
    let repo = ctx.query.get("repo").unwrap_or("").to_string();
    if repo.is_empty() {
        return Err(ApiError::bad(
            "repository name (repo parameter) is required",
        ));
    }
    let target = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo,
    };
    Reference::parse_with_default_tag(&target)
        .map_err(|e| ApiError::bad(format!("invalid reference format: {target:?}: {e}")))?;
    let (engine, name) = (ctx.engine(), name.to_string());
    blocking(move || {
        lookup(&engine.images, &name)?;
        engine.images.tag(&name, &target).map_err(image_error)
    })
    .await?;
    empty(StatusCode::CREATED)
}

/// Docker's list of what a removal did: `Untagged` entries, then `Deleted` ones.
fn removal_json(out: &berth_image::RemoveOutcome) -> Vec<Value> {
    out.untagged
        .iter()
        .map(|u| json!({ "Untagged": u }))
        .chain(out.deleted.iter().map(|d| json!({ "Deleted": d })))
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`: 409 while a container uses it (unless forced,
/// which then only untags, as in Docker).
pub async fn remove(ctx: Ctx, name: &str) -> Reply {
    let force = ctx.query.flag("force");
    let (engine, name) = (ctx.engine(), name.to_string());
    let out = blocking(move || {
        lookup(&engine.images, &name)?;
        let in_use = images_in_use(&engine)?;
        engine
            .images
            .remove(&name, force, &in_use)
            .map_err(image_error)
    })
    .await?;
    ok(Value::Array(removal_json(&out)))
}

/// `POST /images/prune?filters=`: dangling images, or every unused one with
/// `dangling=false`.
pub async fn prune(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    let mut all = false;
    for (key, values) in &filters {
        match key.as_str() {
            "dangling" => {
                all = values
                    .iter()
                    .any(|v| matches!(v.to_ascii_lowercase().as_str(), "false" | "0"))
            }
            other => {
                return Err(ApiError::bad(format!(
                    "image prune: the {other:?} filter is not supported yet (only dangling)"
                )))
            }
        }
    }
    let engine = ctx.engine();
    let out = blocking(move || {
        let in_use = images_in_use(&engine)?;
        engine.images.prune(all, &in_use).map_err(image_error)
    })
    .await?;
    ok(json!({ "ImagesDeleted": removal_json(&out), "SpaceReclaimed": out.reclaimed }))
}

/// What a streamed job sends to the forwarding task: a line, or its end.
enum Msg {
    Line(Value),
    Done(Result<Vec<Value>, ApiError>),
}

/// The sending side of a streamed job; usable from any thread, including a registry's
/// runtime threads (an unbounded send never blocks, so it cannot panic inside a runtime).
#[derive(Clone)]
struct Lines(UnboundedSender<Msg>);

impl Lines {
    fn send(&self, v: Value) {
        let _ = self.0.send(Msg::Line(v));
    }
}

/// Runs `job` on a thread of its own and streams its lines as JSON lines. A failure before
/// the first line is the HTTP answer; after it, Docker's `errorDetail` line. `prelude` goes
/// out just before the first line (Docker's "Pulling from …", which it writes only once
/// the registry has answered).
async fn progress_stream(
    prelude: Vec<Value>,
    job: impl FnOnce(Lines) -> Result<Vec<Value>, ApiError> + Send + 'static,
) -> Reply {
    let (tx, mut rx): (UnboundedSender<Msg>, UnboundedReceiver<Msg>) = unbounded_channel();
    let lines = Lines(tx.clone());
    std::thread::spawn(move || {
        let result = job(lines);
        let _ = tx.send(Msg::Done(result));
    });
    let first = match rx.recv().await {
        None => return Err(ApiError::internal("a worker thread died")),
        Some(Msg::Done(Err(e))) => return Err(e),
        Some(m) => m,
    };
    let (reply, out) = stream(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let mut pending: Vec<Value> = prelude;
        let mut next = Some(first);
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => m,
                    None => break,
                },
            };
            let done = matches!(msg, Msg::Done(_));
            match msg {
                Msg::Line(v) => pending.push(v),
                Msg::Done(Ok(tail)) => pending.extend(tail),
                Msg::Done(Err(e)) => pending.push(error_line(&e.message)),
            }
            for v in pending.drain(..) {
                // A client that went away: the job finishes on its own, unheard.
                if out.send(json_line(&v)).await.is_err() {
                    return;
                }
            }
            if done {
                break;
            }
        }
    });
    reply
}

/// Docker's error line in a JSON stream.
pub(crate) fn error_line(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

/// Registry progress as Docker's per-layer status lines (`id` = 12 hex of the digest).
struct LayerProgress {
    lines: Lines,
    push: bool,
    /// Bytes last reported per layer, so a line goes out per ~2% rather than per chunk.
    reported: Mutex<HashMap<String, u64>>,
}

impl Progress for LayerProgress {
    fn event(&self, event: ProgressEvent) {
        let short = |d: &str| {
            d.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>()
        };
        let line = |status: &str, id: &str| json!({ "status": status, "progressDetail": {}, "id": short(id) });
        match event {
            ProgressEvent::Started { digest, .. } => self.lines.send(line(
                if self.push {
                    "Preparing"
                } else {
                    "Pulling fs layer"
                },
                &digest,
            )),
            ProgressEvent::Bytes {
                digest,
                done,
                total,
            } => {
                let step = (total / 50).max(256 << 10);
                let mut reported = self.reported.lock().expect("progress lock");
                let last = reported.entry(digest.clone()).or_insert(0);
                if done < *last + step && done < total {
                    return;
                }
                *last = done;
                drop(reported);
                self.lines.send(json!({
                    "status": if self.push { "Pushing" } else { "Downloading" },
                    "progressDetail": { "current": done, "total": total },
                    "id": short(&digest),
                }));
            }
            ProgressEvent::Done { digest } => {
                if self.push {
                    self.lines.send(line("Pushed", &digest));
                } else {
                    self.lines.send(line("Download complete", &digest));
                    self.lines.send(line("Pull complete", &digest));
                }
            }
            ProgressEvent::Skipped { digest, reason } => self.lines.send(line(&reason, &digest)),
        }
    }
}

/// Registry settings from the server's daemon.json, with the client's `X-Registry-Auth`
/// credentials (if any) in a private auth file that lives as long as the returned guard.
fn registry_with_auth(
    state: &crate::State,
    auth: Option<(String, berth_registry::auth::Credentials)>,
) -> Result<(berth_registry::Registry, Option<tempfile::TempDir>), ApiError> {
    let Some((host, creds)) = auth else {
        return Ok((state.registry()?, None));
    };
    let mut options = berth_registry::RegistryOptions::from_daemon_json(&state.config)?;
    // A folder of mode 0700 under the store: the password is readable by root only.
    let dir = tempfile::Builder::new()
        .prefix("api-auth-")
        .tempdir_in(state.engine.root().join("tmp"))
        .map_err(|e| ApiError::internal(format!("making a private auth file: {e}")))?;
    let file = dir.path().join("config.json");
    berth_registry::auth::store(&file, &host, Some(&creds))?;
    options.auth_file = Some(file);
    Ok((berth_registry::Registry::new(options)?, Some(dir)))
}

/// The `X-Registry-Auth` header: base64url JSON `{username, password, serveraddress}`;
/// an empty or credential-less one means "use the stored logins".
fn registry_auth(
    req: &Request<Incoming>,
    reference: &Reference,
) -> Result<Option<(String, berth_registry::auth::Credentials)>, ApiError> {
    use base64::Engine as _;
    let Some(h) = req.headers().get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = h.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|e| ApiError::bad(format!("invalid X-Registry-Auth header: {e}")))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (username, password) = (field("username"), field("password"));
    let password = if password.is_empty() {
        field("identitytoken")
    } else {
        password
    };
    if username.is_empty() || password.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        reference.domain().to_string(),
        berth_registry::auth::Credentials { username, password },
    )))
}

/// `POST /images/create?fromImage=&tag=&platform=` (pull) or `?fromSrc=-&repo=&tag=`
/// (import of the tar body).
pub async fn create(ctx: Ctx, req: Request<Incoming>) -> Reply {
    if let Some(src) = ctx.query.get("fromSrc").filter(|s| !s.is_empty()) {
        let src = src.to_string();
        return import(ctx, req, src).await;
    }
    let from = ctx
        .query
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("fromImage or fromSrc is required"))?;
    let text = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let reference = Reference::parse_with_default_tag(&text)
        .map_err(|e| ApiError::bad(format!("invalid reference format: {text:?}: {e}")))?;
    let platform = match ctx.query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| ApiError::bad(e.to_string()))?,
        None => Platform::host(),
    };
    let auth = registry_auth(&req, &reference)?;
    let selector = reference
        .tag()
        .or(reference.digest())
        .unwrap_or("latest")
        .to_string();
    let prelude = vec![json!({
        "status": format!("Pulling from {}", reference.path()),
        "id": selector,
    })];
    let (engine, state) = (ctx.engine(), ctx.state.clone());
    progress_stream(prelude, move |lines| {
        let (registry, _auth) = registry_with_auth(&state, auth)?;
        let progress = Arc::new(LayerProgress {
            lines,
            push: false,
            reported: Mutex::default(),
        });
        let outcome = engine
            .images
            .pull(&registry, &reference, &platform, progress)
            .map_err(image_error)?;
        let shown = display_ref(&reference.to_string());
        let status = if outcome.downloaded || outcome.changed {
            format!("Status: Downloaded newer image for {shown}")
        } else {
            format!("Status: Image is up to date for {shown}")
        };
        Ok(vec![
            json!({ "status": format!("Digest: {}", outcome.repo_digest) }),
            json!({ "status": status }),
        ])
    })
    .await
}

/// `POST /images/create?fromSrc=-`: `docker import` of the request body.
async fn import(ctx: Ctx, req: Request<Incoming>, src: String) -> Reply {
    if src != "-" {
        return Err(ApiError::bad(format!(
            "fromSrc {src:?}: only \"-\" (the request body) is supported; download the file and import it"
        )));
    }
    let tag = match ctx.query.get("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let text = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(
                Reference::parse_with_default_tag(&text)
                    .map_err(|e| ApiError::bad(format!("invalid reference format: {e}")))?,
            )
        }
        None => None,
    };
    let platform = match ctx.query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| ApiError::bad(e.to_string()))?,
        None => Platform::host(),
    };
    let options = berth_image::import::ImportOptions {
        changes: ctx
            .query
            .get_all("changes")
            .into_iter()
            .map(String::from)
            .collect(),
        message: ctx.query.get("message").map(String::from),
        source: src,
        platform,
    };
    let body = BodyReader::new(req.into_body(), MAX_LOAD_BODY);
    let engine = ctx.engine();
    let id = blocking(move || {
        engine
            .images
            .import(body, &options, tag.as_ref())
            .map_err(image_error)
    })
    .await?;
    ok(json!({ "status": id }))
}

/// `POST /images/{name}/push?tag=`.
pub async fn push(ctx: Ctx, req: Request<Incoming>, name: &str) -> Reply {
    let text = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let reference = Reference::parse_with_default_tag(&text)
        .map_err(|e| ApiError::bad(format!("invalid reference format: {text:?}: {e}")))?;
    let auth = registry_auth(&req, &reference)?;
    let (engine, state) = (ctx.engine(), ctx.state.clone());
    {
        let (engine, r) = (engine.clone(), reference.to_string());
        blocking(move || {
            engine.images.lookup(&r).map_err(|_| {
                ApiError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    Reference::parse(&r).map(|r| r.name()).unwrap_or(r.clone())
                ))
            })
        })
        .await?;
    }
    let prelude = vec![json!({
        "status": format!("The push refers to repository [{}]", reference.name()),
    })];
    progress_stream(prelude, move |lines| {
        let (registry, _auth) = registry_with_auth(&state, auth)?;
        let progress = Arc::new(LayerProgress {
            lines: lines.clone(),
            push: true,
            reported: Mutex::default(),
        });
        let (digest, size) = engine
            .images
            .push(&registry, &reference, progress)
            .map_err(image_error)?;
        let tag = reference.tag().unwrap_or("latest");
        Ok(vec![
            json!({ "status": format!("{tag}: digest: {digest} size: {size}") }),
            json!({ "progressDetail": {}, "aux": { "Tag": tag, "Digest": digest, "Size": size } }),
        ])
    })
    .await
}

/// A writer into a streamed answer, for a std thread (a blocking send outside the runtime).
struct ChannelWriter(tokio::sync::mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /images/get?names=…&names=…` and `GET /images/{name}/get`: a docker-archive tar.
pub async fn get(ctx: Ctx, name: Option<String>) -> Reply {
    let names: Vec<String> = match name {
        Some(n) => vec![n],
        None => ctx
            .query
            .get_all("names")
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
    };
    if names.is_empty() {
        return Err(ApiError::bad("no image names given (names parameter)"));
    }
    // Every name is checked before the 200 goes out, so a typo is a 404, not a torn tar.
    let engine = ctx.engine();
    {
        let (engine, names) = (engine.clone(), names.clone());
        blocking(move || {
            for n in &names {
                lookup(&engine.images, n)?;
            }
            Ok(())
        })
        .await?;
    }
    let (reply, tx) = stream(StatusCode::OK, "application/x-tar");
    std::thread::spawn(move || {
        let w = std::io::BufWriter::with_capacity(256 << 10, ChannelWriter(tx));
        if let Err(e) = engine
            .images
            .save(&names, berth_image::archive::ArchiveFormat::Docker, w)
        {
            // Too late for a status: the client sees a truncated tar, as with Docker.
            log::warn!("saving {names:?} through the API: {e}");
        }
    });
    reply
}

/// `POST /images/load?quiet=`: a docker-archive or OCI tar body. `quiet` only hides
/// progress bars in Docker, and berth draws none: the "Loaded image" lines always go out.
pub async fn load(ctx: Ctx, req: Request<Incoming>) -> Reply {
    let body = BodyReader::new(req.into_body(), MAX_LOAD_BODY);
    let engine = ctx.engine();
    let loaded = blocking(move || engine.images.load(body).map_err(image_error)).await?;
    let mut text = String::new();
    for line in loaded.iter().flat_map(|image| {
        if image.tags.is_empty() {
            vec![format!("Loaded image ID: {}", image.id)]
        } else {
            image
                .tags
                .iter()
                .map(|t| format!("Loaded image: {t}"))
                .collect()
        }
    }) {
        let v = json!({ "stream": format!("{line}\n") });
        text.push_str(&format!("{v}\r\n"));
    }
    Ok(hyper::Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(crate::http::full(text))
        .expect("a valid response"))
}

/// A request body as a blocking `Read`, for store calls that stream (load, import, a build
/// context): a task pulls frames into a small bounded channel, so at most a few chunks are
/// in memory, and more than `limit` bytes is an error rather than a full disk.
pub(crate) struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

impl BodyReader {
    /// Starts pulling `body`; must be called on the server's runtime.
    pub(crate) fn new(body: Incoming, limit: u64) -> BodyReader {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut body = body;
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                let item = match frame {
                    Ok(f) => match f.into_data() {
                        Ok(d) => {
                            total += d.len() as u64;
                            if total > limit {
                                Err(format!("request body larger than {limit} bytes"))
                            } else {
                                Ok(d)
                            }
                        }
                        Err(_) => continue,
                    },
                    Err(e) => Err(format!("reading the request body: {e}")),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        BodyReader {
            rx,
            chunk: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// `POST /build`: see [`crate::images_build`].
pub async fn build(ctx: Ctx, req: Request<Incoming>) -> Reply {
    crate::images_build::build(ctx, req).await
}

/// `POST /build/prune`: berth's build cache maps step keys to images, which `image prune`
/// removes; there is no separate cache storage to free.
pub async fn build_prune(_ctx: Ctx) -> Reply {
    json(
        StatusCode::OK,
        &json!({ "CachesDeleted": [], "SpaceReclaimed": 0 }),
    )
}
