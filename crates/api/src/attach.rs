//! `POST /containers/{id}/attach`: the connection is hijacked (HTTP 101, `Upgrade: tcp`)
//! and joined to the container's monitor, whose attach socket speaks Docker's stream
//! framing already (see `berth_engine::attach`). Output frames pass through as they are
//! (a TTY's lose their headers: Docker sends a terminal raw); what the client writes becomes
//! stdin frames, and its half-close closes the container's stdin.
//!
//! The docker CLI attaches *before* it starts the container, so an attach to a container
//! that is not running is kept ([`Pending`]) until `start`, which then has the monitor wait
//! for those clients before the container runs: they miss no byte.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_engine::ContainerRecord;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::containers::find;
use crate::error::ApiError;
use crate::http::{blocking, full, Reply};
use crate::router::Ctx;
use crate::State;

/// Which streams a client asked for.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    /// Feed the container's stdin.
    pub stdin: bool,
    /// Receive its stdout.
    pub stdout: bool,
    /// Receive its stderr.
    pub stderr: bool,
    /// The container has a terminal: output goes raw, without frame headers.
    pub tty: bool,
}

/// A client's options besides its streams.
#[derive(Debug, Clone)]
pub struct Options {
    /// The streams asked for.
    pub streams: Streams,
    /// The sequence that detaches the client, with a terminal (`detachKeys`; Docker's
    /// default Ctrl-P Ctrl-Q).
    pub detach_keys: Vec<u8>,
}

/// A hijacked connection waiting for its container to start.
pub struct Waiting {
    io: tokio::sync::oneshot::Receiver<Upgraded>,
    options: Options,
}

/// Attach connections made before their container started, by container ID.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, Vec<Waiting>>>);

impl Pending {
    fn add(&self, id: &str, w: Waiting) {
        self.0
            .lock()
            .expect("pending lock")
            .entry(id.to_string())
            .or_default()
            .push(w);
    }

    /// Takes the connections waiting for container `id`.
    pub fn take(&self, id: &str) -> Vec<Waiting> {
        self.0
            .lock()
            .expect("pending lock")
            .remove(id)
            .unwrap_or_default()
    }
}

/// The 101 answer that hands the connection over, or Docker's 200 for clients that do not
/// ask for an upgrade (they read the stream as the body of a hijacked connection).
pub fn switching(req: &Request<Incoming>, tty: bool) -> Response<crate::http::Body> {
    let upgrade = req
        .headers()
        .get("Upgrade")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_string());
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut r = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", content_type)
        .header("Connection", "Upgrade")
        .header("Upgrade", upgrade.unwrap_or_else(|| "tcp".into()))
        .body(full(""))
        .expect("a valid response");
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r
}

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=`.
pub async fn attach(ctx: Ctx, mut req: Request<Incoming>, id: &str) -> Reply {
    let r = find(&ctx, id).await?;
    let q = &ctx.query;
    let streams = Streams {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty: r.options.tty,
    };
    let detach_keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => berth_engine::attach::parse_detach_keys(k)?,
        None => berth_engine::attach::DETACH_KEYS.to_vec(),
    };
    let options = Options {
        streams,
        detach_keys,
    };
    if r.status() == "paused" {
        return Err(ApiError::conflict(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let reply = switching(&req, streams.tty);
    let running = r.is_running();
    let runroot = ctx.engine().runroot().to_path_buf();
    if running {
        tokio::spawn(async move {
            let Ok(io) = upgrade.await else { return };
            match connect_hub(&runroot, &r.id, || true).await {
                Ok(hub) => proxy(io, hub, options).await,
                Err(e) => log::debug!("attach to {}: {e}", r.id),
            }
        });
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        ctx.state.pending.add(&r.id, Waiting { io: rx, options });
        tokio::spawn(async move {
            if let Ok(io) = upgrade.await {
                let _ = tx.send(io);
            }
        });
    }
    Ok(reply)
}

/// Starts container `r` for the attach connections waiting on it: its monitor waits for
/// them on its socket, then starts it. Returns once the record says it runs (or why not).
pub async fn start_with(
    state: Arc<State>,
    r: &ContainerRecord,
    waiting: Vec<Waiting>,
) -> Result<(), ApiError> {
    let engine = state.engine.clone();
    let id = r.id.clone();
    let monitor = blocking({
        let (engine, id) = (engine.clone(), id.clone());
        move || Ok(engine.start_for_attach(&id)?)
    })
    .await?;
    let monitor = Arc::new(Mutex::new(monitor));
    let alive = {
        let monitor = monitor.clone();
        move || matches!(monitor.lock().expect("monitor lock").try_wait(), Ok(None))
    };
    let runroot = engine.runroot().to_path_buf();
    for w in waiting {
        let Ok(io) = w.io.await else { continue };
        // A monitor that fails before it listens (no such executable) closes the client;
        // the record says why, below.
        if let Ok(hub) = connect_hub(&runroot, &id, alive.clone()).await {
            tokio::spawn(proxy(io, hub, w.options));
        }
    }
    // The record says how the start went; the monitor is reaped when it ends.
    let before = r.clone();
    let exited = {
        let monitor = monitor.clone();
        move || {
            monitor
                .lock()
                .expect("monitor lock")
                .try_wait()
                .ok()
                .flatten()
        }
    };
    let outcome = blocking(move || Ok(engine.await_start(&id, before, exited)?)).await;
    std::thread::spawn(move || {
        let _ = monitor.lock().map(|mut m| m.wait());
    });
    outcome.map(|_| ())
}

/// Connects to the monitor's attach socket, waiting for it to appear while `alive` says the
/// monitor runs.
async fn connect_hub(
    runroot: &Path,
    id: &str,
    alive: impl Fn() -> bool,
) -> std::io::Result<tokio::net::UnixStream> {
    let path = berth_engine::attach::socket_path(runroot, id);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::net::UnixStream::connect(&path).await {
            Ok(s) => return Ok(s),
            Err(e) if !alive() || std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Joins a client connection and the monitor's socket until the container's output ends
/// or the client types the detach sequence (with a terminal), which leaves it running.
async fn proxy(client: Upgraded, hub: tokio::net::UnixStream, options: Options) {
    let streams = options.streams;
    let (mut client_r, mut client_w) = tokio::io::split(TokioIo::new(client));
    let (mut hub_r, mut hub_w) = hub.into_split();
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut scanner = berth_engine::attach::DetachScanner::new(if streams.tty {
            options.detach_keys
        } else {
            Vec::new()
        });
        loop {
            match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if streams.stdin {
                        let held = scanner.finish();
                        let mut f = header(berth_engine::attach::STDIN, held.len()).to_vec();
                        f.extend_from_slice(&held);
                        f.extend_from_slice(&header(berth_engine::attach::CLOSE_STDIN, 0));
                        let _ = hub_w.write_all(&f).await;
                    }
                    break;
                }
                Ok(n) if streams.stdin => {
                    let (data, detach) = scanner.feed(&buf[..n]);
                    let mut f = header(berth_engine::attach::STDIN, data.len()).to_vec();
                    f.extend_from_slice(&data);
                    if hub_w.write_all(&f).await.is_err() {
                        break;
                    }
                    if detach {
                        let _ = detached_tx.send(());
                        return hub_w;
                    }
                }
                Ok(_) => {}
            }
        }
        // Keep the write half (and so the monitor's view of this client) until output ends.
        hub_w
    });
    // Frames are parsed from whatever reads bring (a read is cancel-safe; a half-read frame
    // would not be), so a detach can interrupt the wait at any moment.
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    // Whether the input side may still detach (it may also just end: stdin closed).
    let mut may_detach = true;
    'copy: loop {
        let n = tokio::select! {
            r = hub_r.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            d = &mut detached, if may_detach => match d {
                Ok(()) => break,
                Err(_) => {
                    may_detach = false;
                    continue;
                }
            },
        };
        pending.extend_from_slice(&chunk[..n]);
        while pending.len() >= 8 {
            let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + len {
                break;
            }
            let frame: Vec<u8> = pending.drain(..8 + len).collect();
            let wanted = match frame[0] {
                berth_engine::attach::STDOUT => streams.stdout,
                berth_engine::attach::STDERR => streams.stderr,
                _ => false,
            };
            if !wanted {
                continue;
            }
            let bytes = if streams.tty { &frame[8..] } else { &frame[..] };
            if client_w.write_all(bytes).await.is_err() {
                break 'copy;
            }
        }
        let _ = client_w.flush().await;
    }
    let _ = client_w.shutdown().await;
    input.abort();
}

fn header(kind: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [kind, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Tells the monitor of container `id` its terminal is now `rows`×`cols`.
pub fn send_resize(runroot: &Path, id: &str, rows: u16, cols: u16) -> std::io::Result<()> {
    use std::io::Write;
    let mut s =
        std::os::unix::net::UnixStream::connect(berth_engine::attach::socket_path(runroot, id))?;
    let mut f = header(berth_engine::attach::RESIZE, 4).to_vec();
    f.extend_from_slice(&rows.to_be_bytes());
    f.extend_from_slice(&cols.to_be_bytes());
    s.write_all(&f)
}
