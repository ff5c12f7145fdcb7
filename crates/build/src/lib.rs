//! berth's builds: a Dockerfile and a context folder into an image, the way Docker's builder
//! does it, instruction by instruction.
//!
//! Config-only instructions (ENV, LABEL, EXPOSE, WORKDIR, USER, CMD, ENTRYPOINT, VOLUME,
//! STOPSIGNAL, SHELL, ARG, ONBUILD, HEALTHCHECK, MAINTAINER) change the image config and add
//! an `empty_layer` history entry. COPY and ADD write a layer tar from the context
//! (`.dockerignore` applied) and stack it with [`berth_image::Store::add_layer`]. RUN commits
//! the image so far, runs the command in a container made by `berth-engine` (so it gets the
//! same isolation, network and user handling as `berth run`; its output streams live), and
//! turns the container's upper directory into the next layer with the image crate's layer
//! writer, which never follows a link the command left behind.
//!
//! ```no_run
//! # fn main() -> Result<(), berth_build::Error> {
//! let engine = berth_engine::Engine::open("/var/lib/berth".into(), "/run/berth".into())?;
//! let options = berth_build::BuildOptions { context: ".".into(), ..Default::default() };
//! let pull = |r: &str| -> Result<String, berth_build::Error> { Ok(engine.images.lookup(r)?) };
//! let id = berth_build::build(&engine, &options, &pull, &mut std::io::stdout())?;
//! println!("{id}");
//! # Ok(()) }
//! ```
//!
//! **Design.** Every step is committed as an image and remembered in the build cache under a
//! key of its parent, its text, the ARGs in scope and (COPY/ADD) the bytes of its sources, so
//! a rebuild with nothing changed runs no RUN, writes no layer and ends at the same image ID.
//! Only the target stage is built, and the stages it needs are built first, those that do
//! not need each other at the same time (`parallel`), or on demand (`stages`), so a stage
//! nothing uses never runs, as with BuildKit. A step berth cannot do fails with a
//! message naming it rather than building something different from Docker.
//!
//! **Architecture invariant:** knows nothing of Dockerfile text (`berth-dockerfile` parses)
//! or of registries (the caller's `pull` makes a base image present).
#![deny(missing_docs)]

mod add;
mod cache;
mod context;
mod copy;
mod error;
mod heredoc;
mod mounts;
mod parallel;
mod platform;
mod run;
mod scratch;
mod stages;
mod view;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_dockerfile::{Command, CommandLine, Instruction};
use berth_engine::Engine;
use berth_image::import::NewLayer;
use copy::heredoc_source;
use serde_json::{json, Map, Value};

pub use add::is_tar;
pub use context::Context;
pub use error::Error;
pub use scratch::{clean_stale, reap_when_done, Scratch};

/// What `berth build` was asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context folder.
    pub context: PathBuf,
    /// The Dockerfile (default `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// `-t` references, normalised by the caller.
    pub tags: Vec<berth_registry::Reference>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--label`, added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--network` for RUN (`default`/`bridge`, `host`, `none`).
    pub network: Option<String>,
    /// `--target`: stop after this stage.
    pub target: Option<String>,
    /// `-q`: print only the image ID.
    pub quiet: bool,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--platform`: only the host's is built.
    pub platform: Option<String>,
    /// `--secret id=X,src=FILE`: secrets `RUN --mount=type=secret` may mount, by ID.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Set (by the caller's signal handler) to stop the build: a RUN in progress is killed,
    /// and the build ends with [`Error::Interrupted`] at the next step, leaving nothing behind.
    pub interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Docker's predefined ARGs, usable without a declaration in RUN.
const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// One stage being built.
struct Stage {
    /// Its index among the Dockerfile's stages (`COPY --from=N` may name only earlier ones).
    index: usize,
    name: Option<String>,
    /// `SOURCE_DATE_EPOCH`: the time written into history and `created`.
    epoch: Option<i64>,
    config: Value,
    layers: Vec<NewLayer>,
    /// The stored image equal to `config` + `layers`, if written since the last change.
    image_id: Option<String>,
    args: BTreeMap<String, String>,
    shell: Vec<String>,
    cmd_set: bool,
}

impl Stage {
    fn container_config(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("an object")
    }

    fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A variable as the builder expands it: ENV first, then ARG.
    fn lookup(&self, name: &str) -> Option<String> {
        self.env()
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{name}=")).map(String::from))
            .or_else(|| self.args.get(name).cloned())
    }

    fn history(&mut self, created_by: String, empty_layer: bool) {
        let created = match self.epoch {
            Some(e) => chrono::DateTime::from_timestamp(e, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => now(),
        };
        // The image is as new as its last step (so a cached rebuild gives the same ID).
        self.config["created"] = json!(created);
        let mut h = json!({"created": created, "created_by": created_by});
        if empty_layer {
            h["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        self.config["history"]
            .as_array_mut()
            .expect("an array")
            .push(h);
        self.image_id = None;
    }

    fn top_chain(&self) -> Option<String> {
        self.layers.last().map(|l| l.chain_id.clone())
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// What makes a base image present in the store (pulling it if needed) and returns its ID;
/// shared by the threads that build stages at the same time.
pub type Pull<'p> = dyn Fn(&str) -> Result<String, Error> + Sync + 'p;

/// The builder's state shared by all stages.
struct Builder<'a> {
    engine: &'a Engine,
    options: &'a BuildOptions,
    pull: &'a Pull<'a>,
    out: &'a mut dyn Write,
    context: Context,
    escape: char,
    meta_args: BTreeMap<String, String>,
    /// The stages of the Dockerfile, in order.
    defs: Vec<stages::StageDef>,
    /// The result of each stage built so far (by index in `defs`).
    built: Vec<Option<stages::Built>>,
    /// The stages being built, innermost last: a stage another one needs is built on demand,
    /// on top of the one that asked for it.
    stages: Vec<Stage>,
    /// Total instruction count, for Docker's `Step N/M` lines.
    total: usize,
    /// The Dockerfile's name as the user gave it, and its text (for errors' file:line).
    file_name: String,
    text: String,
    /// Where this build keeps its files; locked while it runs (see [`scratch`]).
    scratch: Scratch,
    /// Read-only views of other stages' and images' filesystems, by top chain ID.
    views: BTreeMap<String, view::View>,
    /// Files fetched for `ADD <url>`, by URL (fetched once per build).
    fetched: BTreeMap<String, add::Fetched>,
    cache: cache::Cache,
    /// Set when a stage built at the same time as this one failed: stop too.
    abort: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Builds the image of `options` and returns its ID; prints Docker's step lines on `out`.
/// `pull` makes an image present in the store (pulling it if needed) and returns its ID.
pub fn build(
    engine: &Engine,
    options: &BuildOptions,
    pull: &Pull<'_>,
    out: &mut dyn Write,
) -> Result<String, Error> {
    platform::check(options.platform.as_deref())?;
    // What builds killed before left behind goes first (their containers, views, files).
    scratch::clean_stale(engine)?;
    let mut scratch = Scratch::new(engine.root())?;
    // A tar context (a file, or stdin saved by the caller) is unpacked into a scratch folder.
    let context_dir = if options.context.is_file() {
        let dir = scratch.dir("context")?;
        context::unpack_tar(&dir, &options.context)?;
        dir
    } else {
        options.context.clone()
    };
    let dockerfile = match &options.dockerfile {
        Some(f) if f.is_absolute() => f.clone(),
        Some(f) => context_dir.join(f),
        None => context_dir.join("Dockerfile"),
    };
    let context = Context::open(&context_dir, &dockerfile)?;
    let text = std::fs::read_to_string(&dockerfile).map_err(|source| Error::Read {
        path: dockerfile.display().to_string(),
        source,
    })?;
    // Errors name the Dockerfile as the user did (`-f`), or by its name in the context.
    let file_name = match &options.dockerfile {
        Some(f) if !f.is_absolute() => f.display().to_string(),
        _ => dockerfile
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into()),
    };
    let parsed = berth_dockerfile::parse(&text);
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == berth_dockerfile::Severity::Error)
        .map(|d| d.render_as(&file_name, &text))
        .collect();
    if !errors.is_empty() {
        return Err(Error::Parse(errors.join("\n")));
    }
    let (global, defs) =
        stages::split(&parsed.instructions).map_err(|e| match parsed.instructions.first() {
            Some(first) => locate(&file_name, &text, first, e),
            None => e,
        })?;
    let mut b = Builder {
        engine,
        options,
        pull,
        out,
        context,
        escape: parsed.directives.escape,
        meta_args: platform::predefined_args(),
        built: defs.iter().map(|_| None).collect(),
        defs,
        stages: Vec::new(),
        total: parsed.instructions.len(),
        file_name,
        text: text.clone(),
        scratch,
        views: BTreeMap::new(),
        fetched: BTreeMap::new(),
        cache: cache::Cache::new(engine.root()),
        abort: Default::default(),
    };
    let result = b.run(&global);
    // Views are unmounted before their scratch folder goes (when `b` is dropped).
    b.views.clear();
    result
}

impl Builder<'_> {
    fn say(&mut self, line: &str) {
        if !self.options.quiet {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }

    /// Runs the global ARGs, builds the target stage (and, on demand, the stages it needs),
    /// then labels and tags its image.
    fn run(&mut self, global: &[(usize, Instruction)]) -> Result<String, Error> {
        for (n, ins) in global {
            self.say(&format!(
                "Step {}/{} : {}",
                n + 1,
                self.total,
                ins.original.trim()
            ));
            let done = match &ins.command {
                Command::Arg(_) => self.step(ins),
                _ => Err(Error::Invalid(format!(
                    "{} before the first FROM: only ARG may come before FROM",
                    ins.name.to_uppercase()
                ))),
            };
            done.map_err(|e| self.at(ins, e))?;
        }
        let target = self.target_index()?;
        self.build_needed(target)?;
        self.ensure_stage(target)?;
        let built = self.built[target].clone().expect("the target was built");
        self.stages
            .push(built.into_stage(target, self.defs[target].name.clone()));
        let labels = self.options.labels.clone();
        let stage = self.stages.last_mut().expect("the target");
        if !labels.is_empty() {
            let c = stage.container_config();
            let l = c.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in labels {
                l[k] = json!(v);
            }
            stage.image_id = None;
        }
        let first_tag = self.options.tags.first();
        let id = self.commit(first_tag)?;
        for t in self.options.tags.iter().skip(1) {
            self.engine.images.tag(&id, &t.to_string())?;
        }
        if self.options.quiet {
            let _ = writeln!(self.out, "{id}");
        } else {
            self.say(&format!(
                "Successfully built {}",
                berth_image::short_id(&id)
            ));
            for t in &self.options.tags {
                self.say(&format!(
                    "Successfully tagged {}",
                    berth_image::display_ref(&t.to_string())
                ));
            }
        }
        Ok(id)
    }

    /// One instruction of the current stage, from the cache when its key is known; a
    /// failure names the instruction's file and line.
    fn exec(&mut self, step: Option<usize>, ins: &Instruction) -> Result<(), Error> {
        if self.interrupted() {
            return Err(Error::Interrupted);
        }
        self.exec_here(step, ins).map_err(|e| match step {
            Some(_) => self.at(ins, e),
            // An ONBUILD trigger: its text comes from the base image, not this file.
            None => e,
        })
    }

    fn exec_here(&mut self, step: Option<usize>, ins: &Instruction) -> Result<(), Error> {
        match step {
            Some(n) => self.say(&format!(
                "Step {}/{} : {}",
                n + 1,
                self.total,
                ins.original.trim()
            )),
            None => self.say(&format!(" ---> {}", ins.original.trim())),
        }
        let key = self.cache_key(ins)?;
        if !self.options.no_cache {
            if let Some(id) = self.cache.get(&key) {
                if self.adopt(&id, ins).is_ok() {
                    self.say(" ---> Using cache");
                    self.say(&format!(" ---> {}", berth_image::short_id(&id)));
                    return Ok(());
                }
            }
        }
        self.step(ins)?;
        let id = self.commit(None)?;
        self.cache.put(&key, &id)?;
        self.say(&format!(" ---> {}", berth_image::short_id(&id)));
        Ok(())
    }

    fn stage(&mut self) -> Result<&mut Stage, Error> {
        self.stages
            .last_mut()
            .ok_or_else(|| Error::Invalid("no build stage in context: start with FROM".into()))
    }

    /// Expands a word with the current stage's (or the global ARGs') variables.
    fn expand(&self, word: &str) -> Result<String, Error> {
        let lookup = |name: &str| match self.stages.last() {
            Some(s) => s.lookup(name),
            None => self.meta_args.get(name).cloned(),
        };
        berth_dockerfile::expand::expand_word(word, self.escape, lookup)
            .map_err(|e| Error::Invalid(format!("{word}: {e}")))
    }

    /// What a step depends on: its parent image, its text and heredoc bodies, the ARG values
    /// in scope, and for COPY/ADD the bytes of its sources (or the ID of the stage or image
    /// it copies from, or a fetched URL's bytes); for RUN, what its bind mounts show.
    fn cache_key(&mut self, ins: &Instruction) -> Result<String, Error> {
        let parent = self.commit(None)?;
        let mut key = cache::Key::new(&parent, ins.original.trim());
        for doc in &ins.heredocs {
            key.add(doc.name.as_bytes());
            key.add(doc.body.as_bytes());
        }
        let stage = self.stages.last().expect("a stage");
        for (k, v) in &stage.args {
            key.add(format!("{k}={v}").as_bytes());
        }
        if let Some(epoch) = self.source_date_epoch() {
            key.add(format!("SOURCE_DATE_EPOCH={epoch}").as_bytes());
        }
        match &ins.command {
            Command::Copy(paths) | Command::Add(paths) => {
                if let Some(Some(from)) = ins.flag("from") {
                    let from = self.expand(from)?;
                    let (id, _) = self.source_image(&from, &ins.name)?;
                    key.add(id.as_bytes());
                } else if let Some((_, srcs)) = paths.paths.split_last() {
                    for s in srcs {
                        if heredoc_source(ins, s).is_some() {
                            continue;
                        }
                        let s = self.expand(s)?;
                        if add::is_url(&s) && ins.keyword() == Some(berth_dockerfile::Keyword::Add)
                        {
                            let fetched = self.fetch(&s, ins)?;
                            key.add(fetched.digest.as_bytes());
                            continue;
                        }
                        for src in self.context.sources(&s)? {
                            self.context.hash(&mut key, &src.path)?;
                        }
                    }
                }
            }
            Command::Run(_) => self.mounts_key(ins, &mut key)?,
            _ => {}
        }
        Ok(key.finish())
    }

    /// Takes a cached step's image as the stage's state.
    fn adopt(&mut self, id: &str, ins: &Instruction) -> Result<(), Error> {
        let info = self.engine.images.info(id)?;
        let config: Value = serde_json::from_slice(&info.config_bytes)
            .map_err(|e| Error::Invalid(format!("the cached image {id} is not JSON: {e}")))?;
        let layers = self.engine.images.image_layers(&info);
        let stage = self.stages.last_mut().expect("a stage");
        if let Some(shell) = config["config"]["Shell"].as_array() {
            stage.shell = shell
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
        }
        if let Command::Arg(decls) = &ins.command {
            // The values are in the key; bring them into scope as the step would.
            for d in decls {
                let v = self
                    .options
                    .build_args
                    .get(&d.name)
                    .cloned()
                    .or_else(|| d.default.clone())
                    .unwrap_or_default();
                stage.args.insert(d.name.clone(), v);
            }
        }
        if matches!(ins.command, Command::Cmd(_)) {
            stage.cmd_set = true;
        }
        stage.config = config;
        stage.layers = layers;
        stage.image_id = Some(id.to_string());
        Ok(())
    }

    /// Writes the stage's image if it changed since it was last written; returns its ID.
    fn commit(&mut self, tag: Option<&berth_registry::Reference>) -> Result<String, Error> {
        let images = &self.engine.images;
        let stage = self.stages.last_mut().expect("a stage");
        if let (Some(id), None) = (&stage.image_id, tag) {
            return Ok(id.clone());
        }
        let diff_ids: Vec<Value> = stage.layers.iter().map(|l| json!(l.diff_id)).collect();
        stage.config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let id = images.write_image(&stage.config, &stage.layers, tag)?;
        stage.image_id = Some(id.clone());
        Ok(id)
    }

    /// One instruction of the current stage.
    fn step(&mut self, ins: &Instruction) -> Result<(), Error> {
        match &ins.command {
            Command::From(_) => {
                return Err(Error::Invalid("FROM inside a stage".into()));
            }
            Command::Arg(decls) => {
                for d in decls {
                    let value = match self.options.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(def) => Some(self.expand(def)?),
                            None => self.meta_args.get(&d.name).cloned(),
                        },
                    };
                    match self.stages.last_mut() {
                        None => {
                            if let Some(v) = value {
                                self.meta_args.insert(d.name.clone(), v);
                            }
                        }
                        Some(s) => {
                            s.args.insert(d.name.clone(), value.unwrap_or_default());
                        }
                    }
                }
                if let Some(s) = self.stages.last_mut() {
                    s.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
                }
            }
            Command::Env(pairs) => {
                let mut expanded = Vec::new();
                for p in pairs {
                    expanded.push((self.expand(&p.key)?, self.expand(&p.value)?));
                }
                let stage = self.stage()?;
                let mut env = stage.env();
                for (k, v) in expanded {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                stage.container_config().insert("Env".into(), json!(env));
                stage.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
            }
            Command::Label(pairs) => {
                let mut expanded = Vec::new();
                for p in pairs {
                    expanded.push((self.expand(&p.key)?, self.expand(&p.value)?));
                }
                let stage = self.stage()?;
                let labels = stage
                    .container_config()
                    .entry("Labels")
                    .or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                for (k, v) in expanded {
                    labels[k] = json!(v);
                }
                stage.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
            }
            Command::Expose(ports) => {
                let mut expanded = Vec::new();
                for p in ports {
                    let p = self.expand(p)?;
                    expanded.push(if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    });
                }
                let stage = self.stage()?;
                let exposed = stage
                    .container_config()
                    .entry("ExposedPorts")
                    .or_insert_with(|| json!({}));
                if !exposed.is_object() {
                    *exposed = json!({});
                }
                for p in expanded {
                    exposed[p] = json!({});
                }
                stage.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
            }
            Command::Workdir(dir) => {
                let dir = self.expand(dir)?;
                let stage = self.stage()?;
                let current = stage.config["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("/")
                    .to_string();
                let joined = if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", current.trim_end_matches('/'))
                };
                let clean = format!("/{}", context::clean(&joined));
                stage
                    .container_config()
                    .insert("WorkingDir".into(), json!(clean));
                stage.history(format!("/bin/sh -c #(nop) WORKDIR {clean}"), true);
            }
            Command::User(user) => {
                let user = self.expand(user)?;
                let stage = self.stage()?;
                stage.container_config().insert("User".into(), json!(user));
                stage.history(format!("/bin/sh -c #(nop)  USER {user}"), true);
            }
            Command::StopSignal(sig) => {
                let sig = self.expand(sig)?;
                let stage = self.stage()?;
                stage
                    .container_config()
                    .insert("StopSignal".into(), json!(sig));
                stage.history(format!("/bin/sh -c #(nop)  STOPSIGNAL {sig}"), true);
            }
            Command::Volume(paths) => {
                let mut expanded = Vec::new();
                for p in &paths.paths {
                    expanded.push(self.expand(p)?);
                }
                let stage = self.stage()?;
                let vols = stage
                    .container_config()
                    .entry("Volumes")
                    .or_insert_with(|| json!({}));
                if !vols.is_object() {
                    *vols = json!({});
                }
                for p in expanded {
                    vols[p] = json!({});
                }
                stage.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
            }
            Command::Cmd(line) | Command::Entrypoint(line) => {
                let is_cmd = matches!(ins.command, Command::Cmd(_));
                let stage = self.stage()?;
                let args = match line {
                    CommandLine::Exec(v) => v.clone(),
                    CommandLine::Shell(s) => {
                        stage.shell.iter().cloned().chain([s.clone()]).collect()
                    }
                };
                let key = if is_cmd { "Cmd" } else { "Entrypoint" };
                stage.container_config().insert(key.into(), json!(args));
                if is_cmd {
                    stage.cmd_set = true;
                } else if !stage.cmd_set {
                    // Docker: a new ENTRYPOINT drops a CMD inherited from the base image.
                    stage.container_config().insert("Cmd".into(), Value::Null);
                }
                stage.history(
                    format!("/bin/sh -c #(nop)  {} {}", key.to_uppercase(), json!(args)),
                    true,
                );
            }
            Command::Shell(line) => match line {
                CommandLine::Exec(v) if !v.is_empty() => {
                    let stage = self.stage()?;
                    stage.shell = v.clone();
                    stage.container_config().insert("Shell".into(), json!(v));
                    stage.history(format!("/bin/sh -c #(nop)  SHELL {}", json!(v)), true);
                }
                _ => {
                    return Err(Error::Invalid(
                        "SHELL requires the arguments to be in JSON form".into(),
                    ))
                }
            },
            Command::Maintainer(m) => {
                let stage = self.stage()?;
                stage.config["author"] = json!(m);
                stage.history(format!("/bin/sh -c #(nop)  MAINTAINER {m}"), true);
            }
            Command::Onbuild(Some(trigger)) => {
                let text = trigger.original.trim().to_string();
                let stage = self.stage()?;
                let on = stage
                    .container_config()
                    .entry("OnBuild")
                    .or_insert_with(|| json!([]));
                if !on.is_array() {
                    *on = json!([]);
                }
                on.as_array_mut().expect("an array").push(json!(text));
                stage.history(format!("/bin/sh -c #(nop)  ONBUILD {text}"), true);
            }
            Command::Onbuild(None) => {
                return Err(Error::Invalid("ONBUILD requires an instruction".into()))
            }
            Command::Healthcheck(h) => {
                let test = match h {
                    berth_dockerfile::Healthcheck::None => json!(["NONE"]),
                    berth_dockerfile::Healthcheck::Cmd(CommandLine::Exec(v)) => {
                        json!(["CMD"]
                            .iter()
                            .map(|s| s.to_string())
                            .chain(v.iter().cloned())
                            .collect::<Vec<_>>())
                    }
                    berth_dockerfile::Healthcheck::Cmd(CommandLine::Shell(s)) => {
                        json!(["CMD-SHELL", s])
                    }
                };
                let mut check = json!({"Test": test});
                for (flag, key) in [
                    ("interval", "Interval"),
                    ("timeout", "Timeout"),
                    ("start-period", "StartPeriod"),
                    ("start-interval", "StartInterval"),
                ] {
                    if let Some(Some(v)) = ins.flag(flag) {
                        check[key] = json!(duration_ns(v)?);
                    }
                }
                if let Some(Some(v)) = ins.flag("retries") {
                    check["Retries"] = json!(v.parse::<i64>().map_err(|_| Error::Invalid(
                        format!("HEALTHCHECK --retries: {v:?} is not a number")
                    ))?);
                }
                let stage = self.stage()?;
                stage.container_config().insert("Healthcheck".into(), check);
                stage.history(format!("/bin/sh -c #(nop)  {}", ins.original.trim()), true);
            }
            Command::Copy(paths) | Command::Add(paths) => self.copy(ins, &paths.paths)?,
            Command::Run(line) => self.run_step(ins, line)?,
            Command::Unknown { name } => {
                return Err(Error::Invalid(format!("unknown instruction: {name}")))
            }
        }
        Ok(())
    }

    /// A scratch file in the store's filesystem (removed when the build ends).
    fn scratch(&mut self, what: &str) -> Result<PathBuf, Error> {
        Ok(self.scratch.file(what))
    }

    /// `--chown`: numbers, or names from the image's `/etc/passwd` and `/etc/group`.
    fn owner(&mut self, spec: &str) -> Result<(u32, u32), Error> {
        let spec = self.expand(spec)?;
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (spec.clone(), None),
        };
        let lower = self.lowerdirs()?;
        let read = |file: &str| -> String {
            lower
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
                .unwrap_or_default()
        };
        let passwd = read("etc/passwd");
        let groups = read("etc/group");
        let find = |table: &str, name: &str, field: usize| -> Option<u32> {
            table.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name))
                    .then(|| f.get(field)?.parse().ok())
                    .flatten()
            })
        };
        let uid = match user.parse::<u32>() {
            Ok(n) => n,
            Err(_) => find(&passwd, &user, 2).ok_or_else(|| {
                Error::Invalid(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"))
            })?,
        };
        let gid = match group {
            None => match user.parse::<u32>() {
                Ok(n) => n,
                Err(_) => find(&passwd, &user, 3).unwrap_or(uid),
            },
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => find(&groups, &g, 2).ok_or_else(|| {
                    Error::Invalid(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))
                })?,
            },
        };
        Ok((uid, gid))
    }

    /// The stage's snapshots, top first (for looking at its files without a container).
    fn lowerdirs(&self) -> Result<Vec<PathBuf>, Error> {
        let stage = self.stages.last().expect("FROM ran");
        match stage.top_chain() {
            Some(c) => Ok(self.engine.images.snapshots.lowerdirs(&c)?),
            None => Ok(Vec::new()),
        }
    }

    /// Stacks a layer tar on the stage, with its history line.
    fn stack_layer(&mut self, tar: &Path, created_by: String) -> Result<(), Error> {
        let parent = self.stages.last().expect("FROM ran").top_chain();
        let file = std::fs::File::open(tar).map_err(Error::io("reading the layer"))?;
        let layer = self
            .engine
            .images
            .add_layer(parent.as_deref(), std::io::BufReader::new(file))?;
        let stage = self.stages.last_mut().expect("FROM ran");
        stage.layers.push(layer);
        stage.history(created_by, false);
        Ok(())
    }

    /// A scratch directory in the store's filesystem (removed when the build ends).
    fn scratch_dir(&mut self, what: &str) -> Result<PathBuf, Error> {
        self.scratch.dir(what)
    }

    /// Whether the caller asked the build to stop.
    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .load(std::sync::atomic::Ordering::SeqCst)
            || self.abort.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `e` with the file and line of instruction `ins` (once: an error from a stage built
    /// on demand already names its own line).
    fn at(&self, ins: &Instruction, e: Error) -> Error {
        locate(&self.file_name, &self.text, ins, e)
    }
}

/// `e` located at `ins` of the Dockerfile `file` (whose text is `text`), unless it already
/// names a place or is no instruction's fault.
fn locate(file: &str, text: &str, ins: &Instruction, e: Error) -> Error {
    if matches!(e, Error::At { .. } | Error::Interrupted) {
        return e;
    }
    let line = ins.span.start.line;
    Error::At {
        file: file.to_string(),
        line,
        text: text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        source: Box::new(e),
    }
}

/// Whether `path` (relative to the root) exists in the stacked snapshots `lower` (top
/// first); a whiteout in an upper one hides the lower ones.
fn exists(lower: &[PathBuf], path: &str) -> bool {
    lookup(lower, path).is_some()
}

/// Whether `path` is a directory (following no link) in the stacked snapshots.
fn exists_dir(lower: &[PathBuf], path: &str) -> bool {
    path.is_empty() || lookup(lower, path).is_some_and(|m| m.is_dir())
}

fn lookup(lower: &[PathBuf], path: &str) -> Option<std::fs::Metadata> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for d in lower {
        if let Ok(m) = std::fs::symlink_metadata(d.join(path)) {
            // An overlay whiteout: a 0:0 character device.
            if m.file_type().is_char_device() && m.rdev() == 0 {
                return None;
            }
            return Some(m);
        }
    }
    None
}

/// `path` with every symlink of the image's along it resolved inside the image (the last
/// component too when it is a link to a directory); links never lead outside the root. A
/// loop of links leaves the path as written.
fn resolve_in_image(lower: &[PathBuf], path: &str) -> String {
    context::resolve_links(path, |rel| {
        lower
            .iter()
            .find_map(|d| context::link_target(&d.join(rel)))
    })
    .unwrap_or_else(|| path.to_string())
}

/// A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds, as HEALTHCHECK flags take them.
fn duration_ns(s: &str) -> Result<i64, Error> {
    berth_dockerfile::go_duration_nanos(s)
        .map(|n| n as i64)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid duration {s:?}: use a number with a unit (30s, 1m)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_the_image_are_followed_inside_it() {
        let top = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("usr/bin", base.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc/../../../..", base.path().join("up")).unwrap();
        std::fs::create_dir_all(base.path().join("usr/bin")).unwrap();
        let lower = vec![top.path().to_path_buf(), base.path().to_path_buf()];
        assert_eq!(resolve_in_image(&lower, "bin/x"), "usr/bin/x");
        assert_eq!(resolve_in_image(&lower, "bin"), "usr/bin");
        assert_eq!(resolve_in_image(&lower, "up/x"), "x");
        assert_eq!(resolve_in_image(&lower, "src/app"), "src/app");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert!(duration_ns("soon").is_err());
    }
}
