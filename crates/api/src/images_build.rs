//! `POST /build`: Docker's classic builder protocol over `berth build`.
//!
//! The tar body (plain or compressed) is written, bounded, to a scratch folder under the
//! store's `tmp/`, then built by a freshly executed `berth build` whose output is streamed
//! back as `{"stream": …}` lines while it is printed. A child process rather than
//! `berth_build::build` in this one, because a RUN step's monitor shares its caller's
//! stdio: in the server, RUN output would reach the server's terminal instead of the
//! client; in a child, it reaches the pipe we read, in order with the step lines. It also
//! keeps this multi-threaded server from creating containers itself (the same reason exec
//! re-executes), and the build behaves exactly as the CLI's.
//!
//! **Disconnects.** A client that goes away stops the stream; the build is ended at its
//! current (or next) RUN step by killing that step's container, after which `berth build`
//! fails, removes its containers and scratch files, and the context folder is removed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_registry::Reference;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{blocking, json_line, stream, Reply};
use crate::images::{error_line, BodyReader};
use crate::router::Ctx;

/// The largest build context accepted (Docker sets none; this keeps one request from
/// filling the store's disk).
const MAX_CONTEXT: u64 = 8 << 30;

/// Options of the build, checked before the body is read so that a bad one is a 400.
struct Params {
    args: Vec<String>,
}

/// A JSON-object parameter (`buildargs`, `labels`) as `K=V` strings; `null` values are
/// left out (the client found no value for them).
fn pairs(ctx: &Ctx, key: &str) -> Result<Vec<String>, ApiError> {
    match ctx.query.json(key)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some(format!("{k}={s}")),
                Value::Null => None,
                other => Some(format!("{k}={other}")),
            })
            .collect()),
        Some(_) => Err(ApiError::bad(format!("{key} must be a JSON object"))),
    }
}

fn params(ctx: &Ctx) -> Result<Params, ApiError> {
    let q = &ctx.query;
    if q.get("version") == Some("2") {
        return Err(ApiError::bad(
            "BuildKit (version=2) is not supported by berth serve; use the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    if let Some(remote) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad(format!(
            "remote build contexts ({remote:?}) are not supported yet; send the context as the request body"
        )));
    }
    let mut args = Vec::new();
    for t in q.get_all("t").into_iter().filter(|t| !t.is_empty()) {
        Reference::parse_with_default_tag(t)
            .map_err(|e| ApiError::bad(format!("invalid reference format: {t:?}: {e}")))?;
        args.extend(["-t".to_string(), t.to_string()]);
    }
    if let Some(f) = q.get("dockerfile").filter(|f| !f.is_empty()) {
        // The Dockerfile is a path inside the context: never a host path.
        let p = std::path::Path::new(f);
        if p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(ApiError::bad(format!(
                "dockerfile {f:?}: must be a path inside the build context"
            )));
        }
        args.extend(["-f".to_string(), f.to_string()]);
    }
    for a in pairs(ctx, "buildargs")? {
        args.extend(["--build-arg".to_string(), a]);
    }
    for l in pairs(ctx, "labels")? {
        args.extend(["--label".to_string(), l]);
    }
    if let Some(t) = q.get("target").filter(|t| !t.is_empty()) {
        args.extend(["--target".to_string(), t.to_string()]);
    }
    match q.get("networkmode").filter(|n| !n.is_empty()) {
        None | Some("default") => {}
        Some(n @ ("bridge" | "host" | "none")) => {
            args.extend(["--network".to_string(), n.to_string()])
        }
        Some(n) => {
            return Err(ApiError::bad(format!(
                "networkmode {n:?}: builds can use default, bridge, host or none"
            )))
        }
    }
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
        args.extend(["--platform".to_string(), p.to_string()]);
    }
    if q.flag("nocache") {
        args.push("--no-cache".into());
    }
    if q.flag("pull") {
        args.push("--pull".into());
    }
    // `-q`: berth build prints only the ID, which the Docker CLI prints from the stream.
    if q.flag("q") {
        args.push("-q".into());
    }
    Ok(Params { args })
}

/// `POST /build?t=…&dockerfile=&buildargs=&labels=&target=&nocache=&q=&pull=&networkmode=
/// &platform=` with the context as a tar body.
pub async fn build(ctx: Ctx, req: Request<Incoming>) -> Reply {
    let params = params(&ctx)?;
    let engine = ctx.engine();
    let tmp = engine.root().join("tmp");
    let body = BodyReader::new(req.into_body(), MAX_CONTEXT);
    // The context goes to disk first: the build reads it more than once.
    let dir = blocking(move || {
        std::fs::create_dir_all(&tmp)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp.display())))?;
        let dir = tempfile::Builder::new()
            .prefix("api-build-")
            .tempdir_in(&tmp)
            .map_err(|e| ApiError::internal(format!("making a folder for the context: {e}")))?;
        let path = dir.path().join("context.tar");
        let mut file = std::fs::File::create(&path)
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", path.display())))?;
        let mut body = body;
        std::io::copy(&mut body, &mut file).map_err(|e| {
            if e.to_string().contains("larger than") {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("build context: {e}"))
            } else {
                ApiError::bad(format!("reading the build context: {e}"))
            }
        })?;
        file.sync_data().ok();
        Ok(dir)
    })
    .await?;
    let exe = std::env::current_exe().unwrap_or_else(|_| "berth".into());
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(engine.root())
        .arg("--runroot")
        .arg(engine.runroot())
        .arg("build")
        .args(&params.args)
        .arg("--iidfile")
        .arg(dir.path().join("iid"))
        .arg(dir.path().join("context.tar"))
        .env("BERTH_CONFIG", &ctx.state.config)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("starting berth build: {e}")))?;
    let (reply, tx) = stream(StatusCode::OK, "application/json");
    std::thread::spawn(move || {
        let gone = Arc::new(AtomicBool::new(false));
        let out = Out {
            tx: tx.clone(),
            gone: gone.clone(),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let running: Arc<Mutex<Option<String>>> = Arc::default();
        let finished = Arc::new(AtomicBool::new(false));
        let (o, r) = (out.clone(), running.clone());
        let stdout_thread = std::thread::spawn(move || read_stdout(stdout, &o, &r));
        let o = out.clone();
        let stderr_thread = std::thread::spawn(move || read_stderr(stderr, &o));
        let (r, f) = (running, finished.clone());
        let watcher = std::thread::spawn(move || watch_client(&tx, &gone, &engine, &r, &f));
        let status = child.wait();
        finished.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        let held = stdout_thread.join().unwrap_or_default();
        let error = stderr_thread.join().unwrap_or_default();
        let mut tail = Vec::new();
        match status {
            Ok(s) if s.success() => {
                if let Ok(id) = std::fs::read_to_string(dir.path().join("iid")) {
                    tail.push(json!({ "aux": { "ID": id.trim() } }));
                }
                tail.extend(held.into_iter().map(|l| json!({ "stream": l })));
            }
            other => {
                tail.extend(held.into_iter().map(|l| json!({ "stream": l })));
                let message = match (error.trim(), other) {
                    ("", Ok(s)) => format!("berth build failed ({s})"),
                    ("", Err(e)) => format!("waiting for berth build: {e}"),
                    (m, _) => m.to_string(),
                };
                tail.push(error_line(&message));
            }
        }
        // The context goes before the last line: a client that sees the end sees no scratch.
        drop(dir);
        for v in tail {
            out.send(v);
        }
    });
    reply
}

/// The stream back to the client, shared by the output readers.
#[derive(Clone)]
struct Out {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    gone: Arc<AtomicBool>,
}

impl Out {
    /// Sends a line unless the client went away; returns whether it is still there.
    fn send(&self, v: Value) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        if self.tx.blocking_send(json_line(&v)).is_err() {
            self.gone.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The lines of `r` as they come, each with its newline (bytes that are not UTF-8 replaced).
fn lines(r: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(r);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        }
    })
}

/// Streams `berth build`'s stdout line by line, noting the RUN step that runs; holds back
/// "Successfully built" and what follows, which Docker sends after the `aux` line with the
/// image ID.
fn read_stdout(stdout: impl Read, out: &Out, running: &Mutex<Option<String>>) -> Vec<String> {
    let mut held = Vec::new();
    for line in lines(stdout) {
        if let Some(id) = line.trim().strip_prefix("---> Running in ") {
            *running.lock().expect("running lock") = Some(id.to_string());
        }
        if !held.is_empty() || line.starts_with("Successfully built ") {
            held.push(line);
            continue;
        }
        out.send(json!({ "stream": line }));
    }
    held
}

/// Until the build is `finished`, checks twice a second whether the client went away (a
/// RUN step that prints nothing would never find out by a failed send); once it has, kills
/// each RUN step's container, so the build fails at its current or next RUN and cleans up.
fn watch_client(
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    gone: &AtomicBool,
    engine: &Arc<berth_engine::Engine>,
    running: &Mutex<Option<String>>,
    finished: &AtomicBool,
) {
    while !finished.load(Ordering::Relaxed) {
        if tx.is_closed() {
            gone.store(true, Ordering::Relaxed);
        }
        if gone.load(Ordering::Relaxed) {
            let step = running.lock().expect("running lock").take();
            if let Some(id) = step {
                stop_step(engine, &id);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Kills a RUN step's container once it runs (it may be starting still).
fn stop_step(engine: &Arc<berth_engine::Engine>, id: &str) {
    for _ in 0..100 {
        match engine.find(id) {
            Ok(r) if r.is_running() => {
                let _ = engine.kill(&r, 9);
                return;
            }
            Ok(r) if r.state == berth_engine::State::Exited => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => return,
        }
    }
}

/// Whether `line` starts as berth's build errors do, with the Dockerfile's name and line
/// (`Dockerfile:4: …`).
fn names_a_dockerfile_line(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(head, _)| {
        head.rsplit_once(':').is_some_and(|(file, n)| {
            !file.is_empty()
                && !file.contains(' ')
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

/// Streams `berth build`'s stderr (RUN steps' stderr, base-image pull progress) and returns
/// the error it ends with, if any: from the line where `berth` reports a failure on.
fn read_stderr(stderr: impl Read, out: &Out) -> String {
    let mut error = String::new();
    for line in lines(stderr) {
        let failure = line.starts_with("Error response from daemon: ")
            || line.contains("returned a non-zero code")
            || names_a_dockerfile_line(&line);
        if failure || !error.is_empty() {
            error.push_str(line.trim_start_matches("Error response from daemon: "));
            // Bounded: only the start of a long error is kept.
            if error.len() > 64 << 10 {
                let mut n = 64 << 10;
                while !error.is_char_boundary(n) {
                    n -= 1;
                }
                error.truncate(n);
            }
            continue;
        }
        out.send(json!({ "stream": line }));
    }
    error.trim().to_string()
}
