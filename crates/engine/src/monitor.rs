//! The per-container monitor: the process that mounts a container's root filesystem, runs
//! it, records how it ended, and cleans up.
//!
//! It is a fresh re-exec of the `berth` binary (never a fork of the CLI, which may have
//! threads), so the runtime's `clone3` happens in a single-threaded process, and it is the
//! only process that changes a running container's record. For now it runs in the
//! foreground with the CLI's stdio; detaching, logs and attach come with `run -d`.

use std::sync::{Arc, Mutex};

use berth_runtime::Stdio;

use crate::logs::copy_stream;
use crate::rootfs::{write_etc_files, Layout};
use crate::spec::{build, environment, SpecInputs};
use crate::user::{check_executable, resolve};
use crate::{Engine, Error, State};

/// How the monitor connects the container's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// The container uses the monitor's stdio (foreground `run`).
    Inherit,
    /// stdin is empty and stdout/stderr go to the json-file log (`run -d`).
    Log,
}

/// Runs container `id` to its end and returns the exit code `docker run` would: the
/// container's own, 128+N for signal N, or 125/126/127 when it could not start (the error
/// is printed first, in Docker's words, and kept in the record for `run -d` to report).
pub fn run(engine: &Engine, id: &str, streams: Streams) -> i32 {
    match run_container(engine, id, streams) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: Error response from daemon: {}.", docker_message(&e));
            e.run_exit_code()
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

fn run_container(engine: &Engine, id: &str, streams: Streams) -> Result<i32, Error> {
    let mut record = engine.load(id)?;
    let info = engine.images.info(&record.image_id)?;
    let layout = Layout::new(&engine.dir(id));
    let lowerdirs = engine.images.snapshots.lowerdirs(&info.top_chain_id)?;
    layout.mount(&lowerdirs)?;
    record.monitor_pid = Some(std::process::id());
    engine.save(&record)?;
    let result = prepare_and_run(engine, &mut record, &info.config, &layout, streams);
    // Whatever happened, the mount goes and the record says how it ended.
    let unmounted = layout.unmount();
    record.state = State::Exited;
    record.monitor_pid = None;
    record.pid = None;
    record.finished_at = Some(now());
    record.exit_code = Some(match &result {
        Ok(code) => *code,
        Err(e) => e.run_exit_code(),
    });
    if let Err(e) = &result {
        record.error = Some(docker_message(e));
    }
    engine.save(&record)?;
    if record.options.rm {
        engine.remove(id)?;
    }
    let code = result?;
    unmounted?;
    Ok(code)
}

fn prepare_and_run(
    engine: &Engine,
    record: &mut crate::ContainerRecord,
    config: &oci_spec::image::ImageConfiguration,
    layout: &Layout,
    streams: Streams,
) -> Result<i32, Error> {
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
    let env = environment(config, options, &hostname, &user.home);
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
    check_executable(&layout.rootfs, &args[0], &path, &cwd)?;
    let attached = if record.uses_bridge() {
        let a = engine.bridge().setup(&record.id, &options.publish)?;
        record.ip = Some(a.ip.to_string());
        Some(a)
    } else {
        None
    };
    let process = Process {
        hostname,
        user,
        args,
        env,
        cwd,
    };
    let result = start_and_wait(engine, record, layout, streams, &process, attached.as_ref());
    if attached.is_some() {
        if let Err(e) = engine.bridge().teardown(&record.id) {
            eprintln!("berth: cleaning up the network of {}: {e}", record.id);
        }
        record.ip = None;
    }
    result
}

/// The container's process, resolved inside its root filesystem.
struct Process {
    hostname: String,
    user: crate::user::ResolvedUser,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
}

fn start_and_wait(
    engine: &Engine,
    record: &mut crate::ContainerRecord,
    layout: &Layout,
    streams: Streams,
    process: &Process,
    attached: Option<&berth_network::Attached>,
) -> Result<i32, Error> {
    let options = &record.options;
    let dir = engine.dir(&record.id);
    write_etc_files(
        &dir,
        &process.hostname,
        options.network.as_deref() == Some("host"),
        attached.map(|a| a.ip),
    )?;
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
        },
    )?;
    let config_path = layout.bundle.join("config.json");
    spec.save(&config_path)
        .map_err(|e| Error::Invalid(format!("writing {}: {e}", config_path.display())))?;
    let runtime = berth_runtime::Runtime::new(engine.runtime_root());
    // Caught from before the clone, so a signal sent while the container starts is not lost.
    let proxy = match streams {
        Streams::Inherit => {
            Some(crate::signals::install().map_err(Error::io("installing signal forwarding"))?)
        }
        Streams::Log => None,
    };
    let mut copiers = Vec::new();
    let running = match streams {
        Streams::Inherit => runtime.start(&record.id, &layout.bundle, Stdio::default())?,
        Streams::Log => {
            let log_path = engine.log_path(&record.id);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(Error::io(format!("opening {}", log_path.display())))?;
            let log = Arc::new(Mutex::new(log));
            let (out_r, out_w) = std::io::pipe().map_err(Error::io("making the stdout pipe"))?;
            let (err_r, err_w) = std::io::pipe().map_err(Error::io("making the stderr pipe"))?;
            let null = std::fs::File::open("/dev/null").map_err(Error::io("opening /dev/null"))?;
            let running = runtime.start(
                &record.id,
                &layout.bundle,
                Stdio {
                    stdin: Some(null.into()),
                    stdout: Some(out_w.into()),
                    stderr: Some(err_w.into()),
                },
            )?;
            // Threads only now: the runtime's clone3 is behind us.
            for (pipe, stream) in [(out_r, "stdout"), (err_r, "stderr")] {
                let log = log.clone();
                copiers.push(std::thread::spawn(move || copy_stream(pipe, stream, log)));
            }
            running
        }
    };
    if let (Some(proxy), Some(pid)) = (proxy, running.pid()) {
        proxy.forward_to(pid);
    }
    record.state = State::Running;
    record.pid = running.pid();
    record.started_at = Some(now());
    engine.save(record)?;
    let code = running.wait();
    for c in copiers {
        let _ = c.join();
    }
    Ok(code?)
}
