//! `/containers/{id}/exec` and `/exec/{id}/…`: processes started in a running container.
//!
//! Exec sessions live in memory, as in Docker's daemon. Starting one runs `berth exec` as a
//! fresh process (the runtime must clone from a single-threaded process, and this server has
//! threads), its stdio joined to the hijacked connection: pipes, framed as Docker frames
//! them, or a pseudo-terminal of ours for `Tty`, which `resize` sizes.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::containers::{find, frame};
use crate::error::ApiError;
use crate::http::{empty, json, ok, read_json, Reply};
use crate::router::Ctx;

/// One exec session, as `GET /exec/{id}/json` shows it.
pub struct Session {
    container: String,
    config: Value,
    state: Arc<Mutex<Progress>>,
}

#[derive(Default)]
struct Progress {
    running: bool,
    started: bool,
    exit_code: Option<i32>,
    pid: u32,
    /// The terminal's master side, for `resize`.
    pty: Option<Arc<OwnedFd>>,
}

/// `POST /containers/{id}/exec`.
pub async fn create(ctx: Ctx, req: Request<Incoming>, id: &str) -> Reply {
    let body = read_json(req.into_body()).await?;
    let r = find(&ctx, id).await?;
    if !r.is_running() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            r.id
        )));
    }
    if r.status() == "paused" {
        return Err(ApiError::conflict(format!(
            "container {} is paused, unpause the container before exec",
            r.id
        )));
    }
    match &body["Cmd"] {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {}
        _ => return Err(ApiError::bad("No exec command specified")),
    }
    let exec_id = berth_engine::container::random_id()?;
    ctx.state.exec.lock().expect("exec lock").insert(
        exec_id.clone(),
        Session {
            container: r.id.clone(),
            config: body,
            state: Arc::default(),
        },
    );
    json(StatusCode::CREATED, &json!({ "Id": exec_id }))
}

/// The `berth exec` command line for a session.
fn command(ctx: &Ctx, container: &str, config: &Value, detach: bool, tty: bool) -> Command {
    let engine = ctx.engine();
    let exe = std::env::current_exe().unwrap_or_else(|_| "berth".into());
    let mut c = Command::new(exe);
    c.arg("--root")
        .arg(engine.root())
        .arg("--runroot")
        .arg(engine.runroot())
        .arg("exec");
    if detach {
        c.arg("-d");
    }
    if config["AttachStdin"].as_bool().unwrap_or(false) && !detach {
        c.arg("-i");
    }
    if tty {
        c.arg("-t");
    }
    for e in config["Env"].as_array().into_iter().flatten() {
        if let Some(e) = e.as_str() {
            c.arg("-e").arg(e);
        }
    }
    if let Some(u) = config["User"].as_str().filter(|u| !u.is_empty()) {
        c.arg("-u").arg(u);
    }
    if let Some(w) = config["WorkingDir"].as_str().filter(|w| !w.is_empty()) {
        c.arg("-w").arg(w);
    }
    c.arg(container);
    for a in config["Cmd"].as_array().into_iter().flatten() {
        c.arg(a.as_str().unwrap_or_default());
    }
    c
}

/// `POST /exec/{id}/start` with `{"Detach": …, "Tty": …}`.
pub async fn start(ctx: Ctx, mut req: Request<Incoming>, id: &str) -> Reply {
    let upgrade = hyper::upgrade::on(&mut req);
    let switching = crate::attach::switching(&req, false);
    let body = read_json(req.into_body()).await?;
    let (container, config, progress) = {
        let sessions = ctx.state.exec.lock().expect("exec lock");
        let s = sessions
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
        (s.container.clone(), s.config.clone(), s.state.clone())
    };
    {
        let mut p = progress.lock().expect("exec state");
        if p.started {
            return Err(ApiError::conflict(format!(
                "Exec command {id} has already run"
            )));
        }
        p.started = true;
        p.running = true;
    }
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let tty = body["Tty"]
        .as_bool()
        .unwrap_or_else(|| config["Tty"].as_bool().unwrap_or(false));
    let stdin = config["AttachStdin"].as_bool().unwrap_or(false);
    let mut cmd = command(&ctx, &container, &config, detach, tty);
    if detach {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| ApiError::internal(format!("starting berth exec: {e}")))?;
        progress.lock().expect("exec state").pid = child.id();
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
            let mut p = progress.lock().expect("exec state");
            p.running = false;
            p.exit_code = Some(code);
        });
        return empty(StatusCode::OK);
    }
    let mut reply = switching;
    if tty {
        reply.headers_mut().insert(
            "Content-Type",
            "application/vnd.docker.raw-stream"
                .parse()
                .expect("a header"),
        );
    }
    // Output goes to the client through a channel; its input comes back through another.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Option<Vec<u8>>>();
    let run = spawn_session(cmd, tty, stdin, out_tx, in_rx, progress.clone())?;
    tokio::spawn(async move {
        let Ok(io) = upgrade.await else {
            run.abandon();
            return;
        };
        let (mut client_r, mut client_w) = tokio::io::split(TokioIo::new(io));
        let input = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match client_r.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = in_tx.send(None);
                        break;
                    }
                    Ok(n) => {
                        if in_tx.send(Some(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        while let Some(b) = out_rx.recv().await {
            if client_w.write_all(&b).await.is_err() {
                break;
            }
            let _ = client_w.flush().await;
        }
        let _ = client_w.shutdown().await;
        input.abort();
    });
    Ok(reply)
}

/// A running exec: its process, to stop if the client never came.
struct Running {
    child: Arc<Mutex<std::process::Child>>,
}

impl Running {
    fn abandon(&self) {
        let _ = self.child.lock().map(|mut c| c.kill());
    }
}

/// Starts the process with pipes or a terminal, and threads that move its bytes.
fn spawn_session(
    mut cmd: Command,
    tty: bool,
    stdin: bool,
    out: tokio::sync::mpsc::Sender<Bytes>,
    input: std::sync::mpsc::Receiver<Option<Vec<u8>>>,
    progress: Arc<Mutex<Progress>>,
) -> Result<Running, ApiError> {
    let failed = |e: std::io::Error| ApiError::internal(format!("starting berth exec: {e}"));
    let mut readers: Vec<(Box<dyn Read + Send>, u8)> = Vec::new();
    let mut writer: Option<Box<dyn Write + Send>> = None;
    let child = if tty {
        let (master, slave) = open_pty().map_err(failed)?;
        let master = Arc::new(master);
        let slave_file = std::fs::File::from(slave);
        cmd.stdin(Stdio::from(slave_file.try_clone().map_err(failed)?))
            .stdout(Stdio::from(slave_file.try_clone().map_err(failed)?))
            .stderr(Stdio::from(slave_file));
        let child = cmd.spawn().map_err(failed)?;
        let reader = std::fs::File::from(master.as_fd().try_clone_to_owned().map_err(failed)?);
        readers.push((Box::new(reader), 0));
        if stdin {
            writer = Some(Box::new(std::fs::File::from(
                master.as_fd().try_clone_to_owned().map_err(failed)?,
            )));
        }
        progress.lock().expect("exec state").pty = Some(master);
        child
    } else {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(failed)?;
        readers.push((Box::new(child.stdout.take().expect("piped")), 1));
        readers.push((Box::new(child.stderr.take().expect("piped")), 2));
        if let Some(w) = child.stdin.take() {
            writer = Some(Box::new(w));
        }
        child
    };
    progress.lock().expect("exec state").pid = child.id();
    let child = Arc::new(Mutex::new(child));
    std::thread::spawn(move || {
        let mut writer = writer;
        while let Ok(Some(bytes)) = input.recv() {
            if let Some(w) = writer.as_mut() {
                if w.write_all(&bytes).and_then(|()| w.flush()).is_err() {
                    break;
                }
            }
        }
        // The client closed its side: so does the process's stdin.
        drop(writer);
    });
    let copiers: Vec<_> = readers
        .into_iter()
        .map(|(mut r, kind)| {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let b = if kind == 0 {
                                Bytes::copy_from_slice(&buf[..n])
                            } else {
                                frame(kind, &buf[..n])
                            };
                            if out.blocking_send(b).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let waited = child.clone();
    std::thread::spawn(move || {
        // Holds the output channel open until the exit code is recorded: the client reads
        // it (`GET /exec/{id}/json`) as soon as the stream ends.
        // A terminal's master never reads end-of-file while we hold it: wait for the
        // process, then let the copier go.
        let status = loop {
            if let Ok(Some(s)) = waited.lock().expect("child lock").try_wait() {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let code = status.code().unwrap_or(126);
        {
            let mut p = progress.lock().expect("exec state");
            p.running = false;
            p.exit_code = Some(code);
            p.pty = None;
        }
        drop(out);
        for c in copiers {
            if tty {
                // The pty copier ends once every holder of the master is gone.
                break;
            }
            let _ = c.join();
        }
    });
    Ok(Running { child })
}

/// A new pseudo-terminal: (master, slave).
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok((master, slave))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(ctx: Ctx, id: &str) -> Reply {
    let h = ctx.query.int("h")?.unwrap_or(0).clamp(0, 65535) as u16;
    let w = ctx.query.int("w")?.unwrap_or(0).clamp(0, 65535) as u16;
    let progress = {
        let sessions = ctx.state.exec.lock().expect("exec lock");
        sessions
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?
            .state
            .clone()
    };
    let pty = progress.lock().expect("exec state").pty.clone();
    if let Some(pty) = pty {
        let size = rustix::termios::Winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(pty.as_fd(), size)
            .map_err(|e| ApiError::internal(format!("resizing the terminal: {e}")))?;
    }
    empty(StatusCode::OK)
}

/// `GET /exec/{id}/json`.
pub async fn inspect(ctx: Ctx, id: &str) -> Reply {
    let sessions = ctx.state.exec.lock().expect("exec lock");
    let s = sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
    let p = s.state.lock().expect("exec state");
    let cmd: Vec<Value> = s.config["Cmd"].as_array().cloned().unwrap_or_default();
    ok(json!({
        "ID": id,
        "Running": p.running,
        "ExitCode": p.exit_code,
        "ProcessConfig": {
            "tty": s.config["Tty"].as_bool().unwrap_or(false),
            "entrypoint": cmd.first().cloned().unwrap_or(Value::Null),
            "arguments": cmd.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
            "privileged": s.config["Privileged"].as_bool().unwrap_or(false),
            "user": s.config["User"].as_str().unwrap_or(""),
        },
        "OpenStdin": s.config["AttachStdin"].as_bool().unwrap_or(false),
        "OpenStderr": s.config["AttachStderr"].as_bool().unwrap_or(false),
        "OpenStdout": s.config["AttachStdout"].as_bool().unwrap_or(false),
        "CanRemove": false,
        "ContainerID": s.container,
        "DetachKeys": "",
        "Pid": p.pid,
    }))
}
