//! The per-container monitor: the process that mounts a container's root filesystem, runs
//! it, records how it ended, and cleans up.
//!
//! It is a fresh re-exec of the `berth` binary (never a fork of the CLI, which may have
//! threads), so the runtime's `clone3` happens in a single-threaded process, and it is the
//! only process that changes a running container's state in its record (through
//! [`Engine::update`], so a concurrent `rename` is not lost). It copies the container's
//! output into the json-file log; in the foreground also to the CLI's stdout and stderr,
//! which it inherits (a build step's container alone writes to them directly).

use std::io::Write;
use std::sync::{Arc, Mutex};

use berth_runtime::Stdio;

use crate::logs::StreamLog;
use crate::options::MountKind;
use crate::pump::Source;
use crate::rootfs::{write_etc_files, Layout};
use crate::spec::{build, environment, SpecInputs};
use crate::user::{check_executable, resolve};
use crate::{Engine, Error, State};

/// How the monitor connects the container's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// Foreground `run` without `-t`: the output goes to the log and to the monitor's own
    /// stdout and stderr (the CLI's), as `-a` says; stdin with `-i` is the monitor's. A build
    /// step's container uses the monitor's stdio directly. (`-t` never comes this way: the
    /// CLI attaches through the socket of a `LogAfterAttach` monitor.)
    Inherit,
    /// Output goes to the json-file log and to attached clients, stdin (with `-i`) and the
    /// terminal (with `-t`) come from them (`run -d`, `start`).
    Log,
    /// As `Log`, but the container starts only once a client has attached, so it sees
    /// every byte (`run -it`, `start -a`).
    LogAfterAttach,
}

/// Runs container `id` to its end and returns the exit code `docker run` would: the
/// container's own, 128+N for signal N, or 125/126/127 when it could not start (the error
/// is printed first, in Docker's words, and kept in the record for `run -d` to report).
///
/// When the restart policy says so, the monitor does not loop: it hands over to a fresh
/// detached monitor (a new process, so the runtime's `clone3` again happens single-threaded;
/// the signal proxy and attach clients' input are threads here) which waits out the back-off, and ends
/// with this run's code, so a foreground or attached caller returns as with Docker while the
/// container goes on restarting.
pub fn run(engine: &Engine, id: &str, streams: Streams) -> i32 {
    // One malloc arena for all of the monitor's threads: a thread's own arena keeps a few
    // dirty pages that no trim gives back, in every resident monitor, and its few threads
    // (signal proxy, attach clients' input) are far from contending for the allocator.
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    match run_container(engine, id, streams) {
        Ok(Outcome::Exited(code)) => code,
        Ok(Outcome::Superseded) => 0,
        Ok(Outcome::Restart { code, delay }) => {
            match engine.spawn_restart(id, delay) {
                // Named in the record before this monitor ends: the container never looks
                // abandoned between the two.
                Ok(child) => {
                    let _ = engine.update(id, |r| r.monitor_pid = Some(child.id()));
                }
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "berth: restarting container {id}: {e}");
                    let _ = engine.update(id, |r| {
                        r.state = State::Exited;
                        r.monitor_pid = None;
                    });
                }
            }
            code
        }
        Err(e) => {
            // Not eprintln!: a caller that went away (a detached `run -it`) must not make
            // the monitor panic before it records the failure.
            let _ = writeln!(
                std::io::stderr(),
                "berth: Error response from daemon: {}.",
                docker_message(&e)
            );
            // A failure before the container was set up (image gone, mount refused) still
            // ends in the record, so `run -d` and `ps -a` can tell.
            let _ = engine.update(id, |r| {
                r.state = State::Exited;
                r.monitor_pid = None;
                r.pid = None;
                r.exit_code = Some(e.run_exit_code());
                r.error = Some(docker_message(&e));
                r.finished_at = Some(now());
            });
            e.run_exit_code()
        }
    }
}

/// Tells the monitor taking over after a restart how long to wait first.
const DELAY_VAR: &str = "BERTH_RESTART_DELAY_MS";

/// How one run of the container ended for the monitor.
enum Outcome {
    /// Done: exit with this code.
    Exited(i32),
    /// Ended with `code`; the restart policy starts it again after `delay`.
    Restart {
        /// The run's exit code.
        code: i32,
        /// The back-off before the next run.
        delay: std::time::Duration,
    },
    /// Another monitor, started at the same moment, runs the container.
    Superseded,
}

/// A detached monitor's stdout is the pipe `start` waits on (or /dev/null): one byte says
/// the record now shows the container running; then stdout goes to /dev/null, so the pipe
/// closes and nothing else is ever written to it.
fn tell_caller_started() {
    let mut out = std::io::stdout();
    let _ = out.write_all(b"\n").and_then(|()| out.flush());
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Gives back what setup left resident and waiting does not need: the pages of the main
/// thread's stack below the current frame (setup went deep: the runtime, JSON; ~100 KB per
/// monitor otherwise; they read as zeros if used again), and the binary's code pages.
fn release_idle_stack() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(low) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
    else {
        return;
    };
    let here = 0u8;
    let frame = std::ptr::addr_of!(here) as usize;
    // A margin for the frames the waiting itself calls.
    let end = frame.saturating_sub(8 * 1024) & !4095;
    if end <= low || std::thread::current().name() != Some("main") {
        return;
    }
    // SAFETY: [low, end) is the part of this (main) thread's stack below the current frame
    // and its margin: no live frame is there, and MADV_DONTNEED on private anonymous memory
    // only makes those pages zero-filled again when next touched.
    unsafe {
        libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
    }
    // The binary's code: setup ran through megabytes of it (the runtime, serde), waiting
    // needs a little. Dropping the mapping's pages costs nothing (they stay in the page
    // cache and fault back in on use) and takes each monitor's share of them off its
    // footprint. Only read-only executable pages of the binary itself, never written, so
    // nothing is lost; the kernel refuses writes to a running executable's file.
    let exe = std::fs::read_link("/proc/self/exe").ok();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).map(std::path::PathBuf::from);
        if perms != "r-xp" || path.is_none() || path != exe {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: [a, b) is a read-only, executable, file-backed private mapping of this
        // binary, which nothing writes: MADV_DONTNEED only drops its page-table entries, and
        // the next access maps the same file pages again.
        unsafe {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
        }
    }
}

/// An error as `docker run` prints it, without a doubled full stop.
pub fn docker_message(e: &Error) -> String {
    e.to_string().trim_end_matches('.').to_string()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn run_container(engine: &Engine, id: &str, streams: Streams) -> Result<Outcome, Error> {
    // A monitor taking over after a restart waits out the back-off first; a stop meanwhile
    // leaves the container down.
    if let Some(delay) = std::env::var(DELAY_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(delay);
        loop {
            if engine.stop_requested(id) {
                let r = engine.update(id, |r| {
                    r.state = State::Exited;
                    r.monitor_pid = None;
                })?;
                return Ok(Outcome::Exited(r.exit_code.unwrap_or(0)));
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        engine.update(id, |r| r.restart_count += 1)?;
    }
    let mut record = engine.load(id)?;
    // Only the config and the top layer are needed; the rest (manifest, the config's raw
    // bytes) is let go at once, as the monitor stays resident.
    let berth_image::ImageInfo {
        config,
        top_chain_id,
        ..
    } = engine.images.info(&record.image_id)?;
    let layout = Layout::new(&engine.dir(id));
    let lowerdirs = engine.images.snapshots.lowerdirs(&top_chain_id)?;
    // Two starts racing past `claim_start` spawn two monitors: the first to name itself in
    // the record runs the container; the other touches nothing (not even the mount).
    let pid = std::process::id();
    let mut superseded = false;
    record = engine.update(id, |r| {
        if r.monitor_pid.is_some_and(|p| p != pid) && r.monitor_alive() {
            superseded = true;
            return;
        }
        r.monitor_pid = Some(pid);
        r.error = None;
    })?;
    if superseded {
        return Ok(Outcome::Superseded);
    }
    // A restart finds the mount of the run before gone; a stale one (killed monitor) goes.
    layout.unmount()?;
    layout.mount(&lowerdirs, record.options.rm || record.options.transient)?;
    let started = std::time::Instant::now();
    let result = prepare_and_run(engine, &mut record, config, &layout, streams);
    // Whatever happened, the mount goes and the record says how it ended.
    let unmounted = layout.unmount();
    let code = match &result {
        Ok(exit) => exit.code,
        Err(e) => e.run_exit_code(),
    };
    let oom_killed = result.as_ref().is_ok_and(|exit| exit.oom_killed);
    let restart = result.is_ok()
        && record
            .options
            .restart
            .restarts(code, record.restart_count, engine.stop_requested(id));
    let error = result.as_ref().err().map(docker_message);
    engine.update(id, |r| {
        r.state = if restart {
            State::Restarting
        } else {
            State::Exited
        };
        if !restart {
            r.monitor_pid = None;
        }
        r.pid = None;
        r.ip = None;
        r.ports.clear();
        for e in r.networks.iter_mut() {
            e.ip = None;
        }
        r.finished_at = Some(now());
        r.exit_code = Some(code);
        r.oom_killed = oom_killed;
        r.error = error.clone();
    })?;
    engine.clear_paused(id);
    if restart {
        // Docker's back-off: 100 ms, doubling, back to 100 ms after a run of 10 s or more.
        let previous = std::env::var(DELAY_VAR)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let delay = if previous == 0 || started.elapsed() >= std::time::Duration::from_secs(10) {
            100
        } else {
            (previous * 2).min(60_000)
        };
        return Ok(Outcome::Restart {
            code,
            delay: std::time::Duration::from_millis(delay),
        });
    }
    if record.options.rm {
        engine.keep_exit(id, code, error.as_deref());
        engine.remove_with_volumes(id)?;
    }
    let code = result?.code;
    unmounted?;
    Ok(Outcome::Exited(code))
}

fn prepare_and_run(
    engine: &Engine,
    record: &mut crate::ContainerRecord,
    config: oci_spec::image::ImageConfiguration,
    layout: &Layout,
    streams: Streams,
) -> Result<berth_runtime::Exit, Error> {
    let options = &record.options;
    let image = config.config().clone().unwrap_or_default();
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| record.id[..12].to_string());
    let user_spec = options
        .user
        .clone()
        .or_else(|| image.user().clone())
        .unwrap_or_default();
    let user = resolve(&layout.rootfs, &user_spec)?;
    let args = record.args.clone();
    let env = environment(&config, options, &hostname, &user.home);
    drop(config);
    let cwd = options
        .workdir
        .clone()
        .or_else(|| image.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    crate::user::create_dir_in_root(&layout.rootfs, &cwd)?;
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH)
        .to_string();
    // The image alone is checked: a command on a volume, bind or tmpfs is not there yet,
    // and is left to the runtime to find.
    let mounted = !record.options.mounts.is_empty() || !record.options.tmpfs.is_empty();
    match check_executable(&layout.rootfs, &args[0], &path, &cwd) {
        Err(Error::NotFound(_)) | Err(Error::NotExecutable(_)) if mounted => {}
        other => other?,
    }
    let mounts = mount_sources(engine, &record.options.mounts, &layout.rootfs)?;
    let init = if options.init {
        Some(find_init()?)
    } else {
        None
    };
    // A monitor killed with its container (kill -9, a power loss without a tmpfs /run)
    // left the namespace and veths behind: they go first.
    engine.clear_stale_networks(record);
    let attached = attach_networks(engine, record);
    let attached = match attached {
        Ok(a) => a,
        Err(e) => {
            let _ = engine.detach_networks(record);
            return Err(e);
        }
    };
    let process = Process {
        hostname,
        user,
        args,
        env,
        cwd,
        mounts,
        init,
    };
    let result = start_and_wait(engine, record, layout, streams, &process, attached.as_ref());
    // The record as it is now: `network connect` may have added networks meanwhile.
    let current = engine.load(&record.id).unwrap_or_else(|_| record.clone());
    if let Err(e) = engine.detach_networks(&current) {
        let _ = writeln!(
            std::io::stderr(),
            "berth: cleaning up the network of {}: {e}",
            record.id
        );
    }
    record.ip = None;
    result
}

/// Attaches the container to each of its networks (the first gets `eth0`, the default route
/// and the published ports) and records the addresses; returns the first attachment.
fn attach_networks(
    engine: &Engine,
    record: &mut crate::ContainerRecord,
) -> Result<Option<berth_network::Attached>, Error> {
    let mut first = None;
    let hosts = engine.dir(&record.id).join("hosts");
    let mut endpoints = record.endpoints();
    for (i, e) in endpoints.iter_mut().enumerate() {
        let def = engine.network(&e.network)?;
        let bridge = engine.network_bridge(&def)?;
        let publish = if i == 0 {
            record.options.publish.clone()
        } else {
            Vec::new()
        };
        let mut a = bridge.setup(&berth_network::Endpoint {
            id: &record.id,
            ifname: &e.ifname,
            ports: &publish,
            names: crate::networks::resolvable_names(record, e),
            hosts_file: Some(hosts.clone()),
            default_route: i == 0,
        })?;
        e.ip = Some(a.ip.to_string());
        if i == 0 {
            // The first network's server is the container's nameserver; without one, the
            // host's resolvers are (the names still resolve through /etc/hosts).
            if a.dns.is_some() && !engine.ensure_dns(&def, &bridge).unwrap_or(false) {
                a.dns = None;
            }
            record.ip = Some(a.ip.to_string());
            record.ports = a.ports.clone();
            first = Some(a);
        }
    }
    if !record.networks.is_empty() {
        record.networks = endpoints;
    }
    Ok(first)
}

/// The container's process, resolved inside its root filesystem.
struct Process {
    hostname: String,
    user: crate::user::ResolvedUser,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    mounts: Vec<(std::path::PathBuf, String, bool)>,
    init: Option<std::path::PathBuf>,
}

/// Host paths of a container's `-v` mounts; a volume's first mount copies in what the image
/// has at its target.
fn mount_sources(
    engine: &Engine,
    mounts: &[crate::options::MountSpec],
    rootfs: &std::path::Path,
) -> Result<Vec<(std::path::PathBuf, String, bool)>, Error> {
    let volumes = engine.volumes();
    let mut out = Vec::new();
    for m in mounts {
        let source = match m.kind {
            MountKind::Bind => std::path::PathBuf::from(&m.source),
            MountKind::Volume => {
                let mut v = volumes.get(&m.source)?;
                let data = volumes.data(&v.name);
                if !v.populated {
                    crate::volume::copy_up(rootfs, &m.target, &data)?;
                    v.populated = true;
                    volumes.save(&v)?;
                }
                data
            }
        };
        out.push((source, m.target.clone(), m.read_only));
    }
    Ok(out)
}

/// Where Docker, Debian's tini and Podman keep a static init for `--init`.
const INIT_CANDIDATES: [&str; 4] = [
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/tini-static",
    "/usr/libexec/podman/catatonit",
];

fn find_init() -> Result<std::path::PathBuf, Error> {
    INIT_CANDIDATES
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Invalid(
                "--init: no init binary found (looked for docker-init, tini-static, catatonit); install Debian's tini".into(),
            )
        })
}

fn start_and_wait(
    engine: &Engine,
    record: &mut crate::ContainerRecord,
    layout: &Layout,
    streams: Streams,
    process: &Process,
    attached: Option<&berth_network::Attached>,
) -> Result<berth_runtime::Exit, Error> {
    let options = &record.options;
    let dir = engine.dir(&record.id);
    let gateway = attached
        .map(|a| a.gateway.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut extra_hosts = Vec::new();
    for h in &options.add_hosts {
        let (name, ip) = crate::options::parse_add_host(h)?;
        let ip = if ip == "host-gateway" {
            gateway.clone()
        } else {
            ip
        };
        extra_hosts.push((name, ip));
    }
    write_etc_files(
        &dir,
        &process.hostname,
        options.network.as_deref() == Some("host"),
        attached.map(|a| a.ip),
        attached.and_then(|a| a.dns),
        &extra_hosts,
    )?;
    // The hosts file was just written anew: list the peers on user networks in it again.
    for e in record.endpoints() {
        if let Ok(bridge) = engine
            .network(&e.network)
            .and_then(|d| engine.network_bridge(&d))
        {
            bridge.refresh_names();
        }
    }
    let spec = build(
        options,
        &SpecInputs {
            id: &record.id,
            hostname: &process.hostname,
            user: &process.user,
            args: process.args.clone(),
            env: process.env.clone(),
            cwd: &process.cwd,
            dir: &dir,
            netns: attached.map(|a| a.netns.as_path()),
            mounts: process.mounts.clone(),
            init: process.init.as_deref(),
        },
    )?;
    let config_path = layout.bundle.join("config.json");
    spec.save(&config_path)
        .map_err(|e| Error::Invalid(format!("writing {}: {e}", config_path.display())))?;
    let read_only_cgroups = berth_runtime::read_only_cgroup_mounts(&spec);
    // The monitor stays resident for the container's life: what setup used goes now.
    drop(spec);
    let runtime =
        berth_runtime::Runtime::new(engine.runtime_root()).read_only_cgroups(read_only_cgroups);
    // Caught from before the clone, so a signal sent while the container starts is not lost.
    let proxy = match streams {
        Streams::Inherit => {
            Some(crate::signals::install().map_err(Error::io("installing signal forwarding"))?)
        }
        Streams::Log | Streams::LogAfterAttach => None,
    };
    let mut sources: Vec<Source> = Vec::new();
    let open_log = || -> Result<Arc<Mutex<std::fs::File>>, Error> {
        let log_path = engine.log_path(&record.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(format!("opening {}", log_path.display())))?;
        Ok(Arc::new(Mutex::new(log)))
    };
    let null = || -> Result<std::os::fd::OwnedFd, Error> {
        Ok(std::fs::File::open("/dev/null")
            .map_err(Error::io("opening /dev/null"))?
            .into())
    };
    // Attach clients may connect from now on; with LogAfterAttach the first one is waited
    // for here, before the clone (no thread yet).
    let hub = match streams {
        Streams::Inherit => None,
        Streams::Log | Streams::LogAfterAttach => {
            Some(crate::attach::Hub::bind(&engine.runroot, &record.id)?)
        }
    };
    let first_client = match (&hub, streams) {
        (Some(h), Streams::LogAfterAttach) => h.wait_first(std::time::Duration::from_secs(30))?,
        _ => None,
    };
    let input: crate::attach::Input = Arc::new(Mutex::new(None));
    let mut pty = None;
    let running = match (streams, options.tty) {
        (Streams::Inherit, _) if options.transient => {
            // A build step's output goes straight to the build's: nobody reads its log.
            // Without -i the container reads nothing, as with Docker (`run busybox cat` ends).
            let stdin = if options.interactive {
                None
            } else {
                Some(null()?)
            };
            runtime.start(
                &record.id,
                &layout.bundle,
                Stdio {
                    stdin,
                    ..Default::default()
                },
            )?
        }
        (_, true) => {
            // The runtime sends the pty while it creates the container; it waits in the
            // socket's backlog until we accept.
            let socket = crate::tty::ConsoleSocket::bind(&engine.runroot, &record.id[..12])?;
            let running = runtime.start(
                &record.id,
                &layout.bundle,
                Stdio {
                    console: Some(socket.path().to_path_buf()),
                    ..Default::default()
                },
            )?;
            let master = socket
                .receive(|| true)?
                .ok_or_else(|| Error::Invalid("the runtime sent no pty".into()))?;
            let master = std::fs::File::from(master);
            let writer = master
                .try_clone()
                .map_err(Error::io("duplicating the pty"))?;
            *input.lock().expect("input lock") = Some(writer);
            pty = Some(
                master
                    .try_clone()
                    .map_err(Error::io("duplicating the pty"))?,
            );
            let log = StreamLog::new("stdout", open_log()?, hub.clone());
            sources.push(Source::new(master, log));
            running
        }
        (Streams::Inherit, _) | (_, false) => {
            let log = open_log()?;
            let (out_r, out_w) = std::io::pipe().map_err(Error::io("making the stdout pipe"))?;
            let (err_r, err_w) = std::io::pipe().map_err(Error::io("making the stderr pipe"))?;
            let foreground = streams == Streams::Inherit;
            // In the foreground, the caller's own stdin with -i (unless -a leaves it out);
            // detached, with -i, a pipe that attached clients write to.
            let stdin = if foreground {
                if options.interactive && options.attach.stdin {
                    None
                } else {
                    Some(null()?)
                }
            } else if options.interactive {
                let (in_r, in_w) = std::io::pipe().map_err(Error::io("making the stdin pipe"))?;
                *input.lock().expect("input lock") =
                    Some(std::fs::File::from(std::os::fd::OwnedFd::from(in_w)));
                Some(in_r.into())
            } else {
                Some(null()?)
            };
            let running = runtime.start(
                &record.id,
                &layout.bundle,
                Stdio {
                    stdin,
                    stdout: Some(out_w.into()),
                    stderr: Some(err_w.into()),
                    console: None,
                },
            )?;
            // A foreground run's output is Docker's too: the container writes to pipes (it
            // never sees the caller's terminal without -t), and what it writes reaches the
            // log and the caller's streams that -a names.
            use std::os::fd::AsFd;
            let callers = [
                (
                    options.attach.stdout,
                    std::io::stdout().as_fd().try_clone_to_owned(),
                ),
                (
                    options.attach.stderr,
                    std::io::stderr().as_fd().try_clone_to_owned(),
                ),
            ];
            for ((pipe, stream), (attached, caller)) in [(out_r, "stdout"), (err_r, "stderr")]
                .into_iter()
                .zip(callers)
            {
                let echo = (foreground && attached)
                    .then(|| caller.ok().map(std::fs::File::from))
                    .flatten();
                let log = StreamLog::new(stream, log.clone(), hub.clone()).echo(echo);
                sources.push(Source::new(pipe, log));
            }
            running
        }
    };
    if streams == Streams::LogAfterAttach {
        // The caller's stderr was ours to report a failed start; from here on the caller may
        // detach and go away, so the monitor lets go of its terminal or pipe.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stderr(&null);
        }
    }
    if let Some(hub) = &hub {
        hub.serve(first_client, input.clone(), move |rows, cols| {
            if let Some(pty) = &pty {
                let size = rustix::termios::Winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let _ = rustix::termios::tcsetwinsize(pty, size);
            }
        });
    }
    if let (Some(proxy), Some(pid)) = (proxy, running.pid()) {
        proxy.forward_to(pid);
    }
    record.state = State::Running;
    record.pid = running.pid();
    record.started_at = Some(now());
    let published = record.clone();
    engine.update(&record.id, |r| {
        r.state = published.state;
        r.pid = published.pid;
        r.started_at = published.started_at.clone();
        r.oom_killed = false;
        r.ip = published.ip.clone();
        r.ports = published.ports.clone();
        for e in r.networks.iter_mut() {
            e.ip = published
                .networks
                .iter()
                .find(|p| p.network == e.network)
                .and_then(|p| p.ip.clone());
        }
    })?;
    if streams == Streams::Log {
        tell_caller_started();
    }
    // The monitor now only waits and copies: give back the heap the setup used (image
    // config, spec, seccomp profile, the record update), since one monitor per container
    // stays resident. Last, so that nothing deep runs again before the wait, and the trim
    // after the stack's release, which reads /proc/self/maps into the heap.
    release_idle_stack();
    // SAFETY: malloc_trim only releases free memory of glibc's arenas; it touches no live
    // allocation and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
    crate::pump::pump(running.pid(), sources, hub.as_deref());
    let code = running.wait();
    // Clients hang up once the output is all theirs; they read the exit code from the
    // record, which says "running" until the monitor has recorded the end.
    if let Some(hub) = hub {
        *input.lock().expect("input lock") = None;
        hub.close();
    }
    Ok(code?)
}
