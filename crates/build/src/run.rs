//! RUN: the command (heredocs included) in a container made by `berth-engine`, with its
//! `--mount`s and `--network`, and the container's upper directory as the next layer.

use std::path::PathBuf;

use berth_dockerfile::{CommandLine, Instruction};
use berth_engine::options::{MountKind, MountSpec};
use berth_engine::RunOptions;

use crate::context::{self, Context, CopyMeta};
use crate::mounts::{self, Mount};
use crate::{exists, resolve_in_image, Builder, Error, PROXY_ARGS};

/// The mounts of one RUN, ready for the engine.
#[derive(Default)]
struct Prepared {
    mounts: Vec<MountSpec>,
    tmpfs: Vec<String>,
    /// Locks held on `sharing=locked` caches while the RUN runs.
    _locks: Vec<std::fs::File>,
    /// Mount points the image lacks (relative, shallow first): the runtime makes them in the
    /// upper directory, and they are removed before the layer is written.
    stubs: Vec<String>,
}

impl Builder<'_> {
    /// The parsed `--mount` flags of a RUN.
    fn mount_flags(&self, ins: &Instruction) -> Result<Vec<Mount>, Error> {
        ins.flags
            .iter()
            .filter(|f| f.name == "mount")
            .map(|f| mounts::parse(f.value.as_deref().unwrap_or("")))
            .collect()
    }

    /// What a RUN's mounts add to its cache key: the image a bind mount shows, or the bytes
    /// of the context files it shows (secrets and caches add nothing: BuildKit's rule).
    pub(crate) fn mounts_key(
        &mut self,
        ins: &Instruction,
        key: &mut crate::cache::Key,
    ) -> Result<(), Error> {
        for m in self.mount_flags(ins)? {
            if let Mount::Bind { source, from, .. } = m {
                match from {
                    Some(f) => {
                        let f = self.expand(&f)?;
                        let (id, _) = self.source_image(&f, "RUN --mount")?;
                        key.add(id.as_bytes());
                        key.add(source.as_bytes());
                    }
                    None => {
                        for src in self.context.sources(&source)? {
                            self.context.hash(key, &src.path)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `target` as an absolute path in the image, links resolved inside it, and the parts of
    /// it the image lacks recorded as stubs.
    fn mount_point(
        &self,
        target: &str,
        lower: &[PathBuf],
        stubs: &mut Vec<String>,
    ) -> Result<String, Error> {
        let workdir = self.stages.last().expect("FROM ran").config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let absolute = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("{}/{target}", workdir.trim_end_matches('/'))
        };
        let resolved = resolve_in_image(lower, &context::clean(&absolute));
        if resolved.is_empty() {
            return Err(Error::Invalid(format!(
                "RUN --mount: target {target} is the root; mount somewhere below it"
            )));
        }
        let mut sofar = String::new();
        for c in resolved.split('/') {
            sofar = if sofar.is_empty() {
                c.to_string()
            } else {
                format!("{sofar}/{c}")
            };
            if !exists(lower, &sofar) && !stubs.contains(&sofar) {
                stubs.push(sofar.clone());
            }
        }
        Ok(format!("/{resolved}"))
    }

    /// A copy of `source` of `tree` in a scratch folder (for a context bind mount, which must
    /// respect `.dockerignore`, or a writable one, whose writes must go nowhere); returns the
    /// host path to mount.
    fn materialize(&mut self, tree: &Context, source: &str) -> Result<PathBuf, Error> {
        let src = tree
            .sources(source)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotInContext(source.to_string()))?;
        let dir = self.scratch_dir("mount")?;
        let file = self.scratch("mount.tar")?;
        let name = if tree.is_dir(&src.path) {
            String::new()
        } else {
            "file".to_string()
        };
        {
            let out = std::fs::File::create(&file).map_err(Error::io("copying a bind mount"))?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
            tree.append(&mut tar, &src.path, &name, CopyMeta::default())?;
            tar.into_inner()
                .map_err(Error::io("copying a bind mount"))?
                .into_inner()
                .map_err(|e| Error::io("copying a bind mount")(e.into_error()))?;
        }
        let f = std::fs::File::open(&file).map_err(Error::io("copying a bind mount"))?;
        berth_image::apply::apply_layer(&dir, std::io::BufReader::new(f))
            .map_err(|e| Error::Invalid(format!("copying the bind mount {source}: {e}")))?;
        Ok(dir.join(name))
    }

    /// Makes what a RUN's `--mount`s need: cache folders, copies, secret files.
    fn prepare_mounts(&mut self, ins: &Instruction) -> Result<Prepared, Error> {
        let specs = self.mount_flags(ins)?;
        let lower = self.lowerdirs()?;
        let mut p = Prepared::default();
        let bind = |source: PathBuf, target: String, read_only: bool| MountSpec {
            kind: MountKind::Bind,
            source: source.display().to_string(),
            target,
            read_only,
        };
        for m in specs {
            match m {
                Mount::Bind {
                    target,
                    source,
                    from,
                    rw,
                } => {
                    let target = self.mount_point(&target, &lower, &mut p.stubs)?;
                    let source = self.expand(&source)?;
                    let host = match from {
                        Some(f) => {
                            let f = self.expand(&f)?;
                            let view = Context::plain(&self.source_view(&f, "RUN --mount")?);
                            if rw {
                                self.materialize(&view, &source)?
                            } else {
                                let src = view.sources(&source)?.into_iter().next();
                                let src = src.ok_or_else(|| Error::NotInContext(source.clone()))?;
                                view.host_path(&src.path)
                            }
                        }
                        None => {
                            let ctx = self.context.clone();
                            self.materialize(&ctx, &source)?
                        }
                    };
                    p.mounts.push(bind(host, target, !rw));
                }
                Mount::Cache {
                    target,
                    id,
                    locked,
                    read_only,
                    uid,
                    gid,
                    mode,
                } => {
                    let target = self.mount_point(&target, &lower, &mut p.stubs)?;
                    let base = self.engine.root().join("build-mounts");
                    std::fs::create_dir_all(&base)
                        .map_err(Error::io(format!("creating {}", base.display())))?;
                    let dir = base.join(mounts::cache_dir_name(&id));
                    if locked {
                        let lock = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .open(dir.with_extension("lock"))
                            .map_err(Error::io("opening a cache mount's lock"))?;
                        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                            .map_err(|e| Error::io("locking a cache mount")(e.into()))?;
                        p._locks.push(lock);
                    }
                    if !dir.exists() {
                        let tmp = base.join(format!(".new-{}", std::process::id()));
                        let _ = std::fs::remove_dir_all(&tmp);
                        std::fs::create_dir(&tmp)
                            .map_err(Error::io(format!("creating the cache mount {id}")))?;
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                            .map_err(Error::io(format!("creating the cache mount {id}")))?;
                        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))
                            .map_err(Error::io(format!("creating the cache mount {id}")))?;
                        if std::fs::rename(&tmp, &dir).is_err() {
                            // Another build made it meanwhile.
                            let _ = std::fs::remove_dir(&tmp);
                        }
                    }
                    p.mounts.push(bind(dir, target, read_only));
                }
                Mount::Tmpfs { target, size } => {
                    let target = self.mount_point(&target, &lower, &mut p.stubs)?;
                    p.tmpfs.push(match size {
                        Some(s) => format!("{target}:size={s}"),
                        None => target,
                    });
                }
                Mount::Secret {
                    id,
                    target,
                    required,
                    uid,
                    gid,
                    mode,
                } => {
                    let Some(src) = self.options.secrets.get(&id).cloned() else {
                        if required {
                            return Err(Error::Invalid(format!(
                                "RUN --mount=type=secret,id={id}: the secret is required but was not given; pass --secret id={id},src=FILE"
                            )));
                        }
                        continue;
                    };
                    let target = self.mount_point(&target, &lower, &mut p.stubs)?;
                    let dir = self.scratch_dir("secret")?;
                    let file = dir.join("secret");
                    std::fs::copy(&src, &file).map_err(Error::io(format!(
                        "reading the secret {id} from {}",
                        src.display()
                    )))?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                        .map_err(Error::io(format!("preparing the secret {id}")))?;
                    std::os::unix::fs::chown(&file, Some(uid), Some(gid))
                        .map_err(Error::io(format!("preparing the secret {id}")))?;
                    p.mounts.push(bind(file, target, true));
                }
            }
        }
        Ok(p)
    }

    pub(crate) fn run_step(&mut self, ins: &Instruction, line: &CommandLine) -> Result<(), Error> {
        let image = self.commit(None)?;
        let stage = self.stages.last().expect("FROM ran");
        let command = crate::heredoc::command(line, &ins.heredocs, &stage.shell)?;
        let shown = command.args.join(" ");
        // Declared ARGs (and the proxy ones, if given) are in RUN's environment, not the image's.
        let mut env: Vec<String> = stage
            .args
            .iter()
            .filter(|(k, _)| !stage.env().iter().any(|e| e.starts_with(&format!("{k}="))))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = self.options.build_args.get(p) {
                env.push(format!("{p}={v}"));
            }
        }
        let network = match ins.flag("network") {
            Some(Some(n)) => match n {
                "default" => self.options.network.clone(),
                "none" | "host" => Some(n.to_string()),
                other => {
                    return Err(Error::Invalid(format!(
                        "RUN --network={other}: expected default, none or host"
                    )))
                }
            },
            _ => self.options.network.clone(),
        };
        let network = match network.as_deref() {
            None | Some("default") => None,
            Some(n) => Some(n.to_string()),
        };
        let mut prepared = self.prepare_mounts(ins)?;
        if let Some((name, body)) = &command.script {
            let dir = self.scratch_dir("pipes")?;
            let path = dir.join(name);
            std::fs::write(&path, body)
                .map_err(Error::io(format!("writing {}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(Error::io(format!("writing {}", path.display())))?;
            prepared.mounts.push(MountSpec {
                kind: MountKind::Bind,
                source: dir.display().to_string(),
                target: crate::heredoc::PIPES.to_string(),
                read_only: true,
            });
        }
        let options = RunOptions {
            image,
            cmd: command.args.clone(),
            entrypoint: Some(String::new()),
            env,
            network,
            mounts: std::mem::take(&mut prepared.mounts),
            tmpfs: std::mem::take(&mut prepared.tmpfs),
            // Its upper dir is read once into a layer, then removed: never worth a sync.
            transient: true,
            // Names this build, so one killed with -9 has its container cleaned up later.
            labels: [(crate::scratch::OWNER_LABEL.to_string(), self.scratch.name())].into(),
            ..Default::default()
        };
        // Should this build be killed, its reaper removes the container.
        self.scratch.watch(self.engine)?;
        let id = self.engine.create(&options)?;
        self.say(&format!(" ---> Running in {}", &id[..12]));
        // Its output streams live, except with -q (then it only reaches the step's log).
        let attach = if self.options.quiet {
            berth_engine::lifecycle::Attach::Detached
        } else {
            berth_engine::lifecycle::Attach::Foreground
        };
        let monitor = match self.engine.spawn_monitor(&id, attach) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.engine.remove(&id);
                return Err(e.into());
            }
        };
        let status = self.wait_run(&id, monitor);
        let code = match status {
            Ok(_) if self.interrupted() => {
                let _ = self.engine.remove(&id);
                return Err(Error::Interrupted);
            }
            Ok(s) => s.code().unwrap_or(125),
            Err(e) => {
                let _ = self.engine.remove(&id);
                return Err(e);
            }
        };
        if code != 0 {
            let _ = self.engine.remove(&id);
            return Err(Error::RunFailed {
                command: shown,
                code,
            });
        }
        let upper = self.engine.dir(&id).join("upper");
        remove_stubs(&upper, &prepared.stubs);
        let file = self.scratch("run.tar")?;
        let epoch = self.source_date_epoch();
        let written = std::fs::File::create(&file)
            .map_err(Error::io("writing the RUN layer"))
            .and_then(|f| {
                berth_image::diff::write_layer_clamped(&upper, std::io::BufWriter::new(f), epoch)
                    .map_err(|e| Error::Invalid(format!("turning RUN's changes into a layer: {e}")))
            });
        let removed = self.engine.remove(&id);
        written?;
        removed?;
        self.say(&format!("Removing intermediate container {}", &id[..12]));
        self.stack_layer(&file, shown)
    }
}

impl Builder<'_> {
    /// Waits for a RUN container's monitor; if the build is interrupted meanwhile, kills the
    /// container (its init, once it has one) so the monitor ends and cleans up.
    fn wait_run(
        &self,
        id: &str,
        mut monitor: std::process::Child,
    ) -> Result<std::process::ExitStatus, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(monitor.wait());
        });
        let status = loop {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(status) => break status,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("the monitor's waiter went away"))
                }
            }
            if self.interrupted() {
                if let Ok(r) = self.engine.load(id) {
                    if r.pid.is_some() {
                        let _ = self.engine.signal(&r, 9);
                    }
                }
            }
        };
        let _ = waiter.join();
        status.map_err(Error::io("waiting for the RUN container"))
    }
}

/// Removes the empty mount points the runtime made in `upper` for mounts the image had no
/// place for (deepest first; anything the command put there stays).
fn remove_stubs(upper: &std::path::Path, stubs: &[String]) {
    for s in stubs.iter().rev() {
        let p = upper.join(s);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&p);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
    }
}
