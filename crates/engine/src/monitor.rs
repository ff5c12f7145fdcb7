//! The per-container monitor: the process that mounts a container's root filesystem, runs
//! it, records how it ended, and cleans up.
//!
//! It is a fresh re-exec of the `berth` binary (never a fork of the CLI, which may have
//! threads), so the runtime's `clone3` happens in a single-threaded process, and it is the
//! only process that changes a running container's record. For now it runs in the
//! foreground with the CLI's stdio; detaching, logs and attach come with `run -d`.

use crate::rootfs::{write_etc_files, Layout};
use crate::spec::{build, environment, process_args, SpecInputs};
use crate::user::{check_executable, resolve};
use crate::{Engine, Error, State};

/// Runs container `id` to its end and returns the exit code `docker run` would: the
/// container's own, 128+N for signal N, or 125/126/127 when it could not start (the error
/// is printed first, in Docker's words).
pub fn run(engine: &Engine, id: &str) -> i32 {
    match run_container(engine, id) {
        Ok(code) => code,
        Err(e) => {
            let message = e.to_string();
            eprintln!(
                "berth: Error response from daemon: {}.",
                message.trim_end_matches('.')
            );
            e.run_exit_code()
        }
    }
}

fn run_container(engine: &Engine, id: &str) -> Result<i32, Error> {
    let mut record = engine.load(id)?;
    let info = engine.images.info(&record.image_id)?;
    let layout = Layout::new(&engine.dir(id));
    let lowerdirs = engine.images.snapshots.lowerdirs(&info.top_chain_id)?;
    layout.mount(&lowerdirs)?;
    record.state = State::Running;
    record.monitor_pid = Some(std::process::id());
    engine.save(&record)?;
    let result = prepare_and_run(engine, &record, &info.config, &layout);
    // Whatever happened, the mount goes and the record says how it ended.
    let unmounted = layout.unmount();
    record.state = State::Exited;
    record.monitor_pid = None;
    record.exit_code = Some(match &result {
        Ok(code) => *code,
        Err(e) => e.run_exit_code(),
    });
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
    record: &crate::ContainerRecord,
    config: &oci_spec::image::ImageConfiguration,
    layout: &Layout,
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
    let args = process_args(config, options)?;
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
    let dir = engine.dir(&record.id);
    write_etc_files(&dir, &hostname, options.network.as_deref() == Some("host"))?;
    let spec = build(
        options,
        &SpecInputs {
            id: &record.id,
            hostname: &hostname,
            user: &user,
            args,
            env,
            cwd: &cwd,
            dir: &dir,
        },
    )?;
    let config_path = layout.bundle.join("config.json");
    spec.save(&config_path)
        .map_err(|e| Error::Invalid(format!("writing {}: {e}", config_path.display())))?;
    let runtime = berth_runtime::Runtime::new(engine.runtime_root());
    Ok(runtime.run(&record.id, &layout.bundle)?)
}
