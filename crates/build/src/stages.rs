//! Multi-stage builds: the Dockerfile cut into stages, the target chosen, and stages built on
//! demand, so a stage the target does not need (through `FROM`, `COPY --from` or
//! `RUN --mount=from=`) is never built, as with BuildKit.

use std::collections::BTreeMap;

use berth_dockerfile::{Command, Instruction};
use berth_image::import::NewLayer;
use serde_json::{json, Value};

use crate::{Builder, Error, Stage};

/// One `FROM` and the instructions up to the next.
#[derive(Clone)]
pub(crate) struct StageDef {
    /// The name after `AS`, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The FROM instruction and its index in the file.
    pub from: (usize, Instruction),
    /// The stage's instructions with their index in the file.
    pub body: Vec<(usize, Instruction)>,
}

/// What a finished stage left: enough to start another stage from it or copy from it.
#[derive(Clone)]
pub(crate) struct Built {
    pub image_id: String,
    pub config: Value,
    pub layers: Vec<NewLayer>,
    pub shell: Vec<String>,
}

impl Built {
    /// A stage state starting from this result.
    pub fn into_stage(self, index: usize, name: Option<String>) -> Stage {
        Stage {
            index,
            name,
            epoch: None,
            config: self.config,
            layers: self.layers,
            image_id: Some(self.image_id),
            args: BTreeMap::new(),
            shell: self.shell,
            cmd_set: false,
        }
    }
}

/// Instructions with their index in the file.
pub(crate) type Numbered = Vec<(usize, Instruction)>;

/// The instructions before the first FROM, and the stages.
pub(crate) fn split(instructions: &[Instruction]) -> Result<(Numbered, Vec<StageDef>), Error> {
    let mut global = Vec::new();
    let mut defs: Vec<StageDef> = Vec::new();
    for (n, ins) in instructions.iter().enumerate() {
        match (&ins.command, defs.last_mut()) {
            (Command::From(f), _) => defs.push(StageDef {
                name: f.alias.as_ref().map(|a| a.to_lowercase()),
                from: (n, ins.clone()),
                body: Vec::new(),
            }),
            (_, Some(def)) => def.body.push((n, ins.clone())),
            (_, None) => global.push((n, ins.clone())),
        }
    }
    if defs.is_empty() {
        return Err(Error::Invalid(
            "the Dockerfile has no FROM instruction: a build starts from an image (or scratch)"
                .into(),
        ));
    }
    Ok((global, defs))
}

impl Builder<'_> {
    /// The stage `--target` names (the last one without it).
    pub(crate) fn target_index(&self) -> Result<usize, Error> {
        match &self.options.target {
            None => Ok(self.defs.len() - 1),
            Some(t) => self
                .defs
                .iter()
                .position(|d| d.name.as_deref() == Some(t.to_lowercase().as_str()))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "failed to reach build target {t} in Dockerfile: no stage is named {t}"
                    ))
                }),
        }
    }

    /// Builds stage `index` unless it is built already.
    pub(crate) fn ensure_stage(&mut self, index: usize) -> Result<(), Error> {
        if self.built[index].is_some() {
            return Ok(());
        }
        let def = self.defs[index].clone();
        let (n, from_ins) = &def.from;
        self.say(&format!(
            "Step {}/{} : {}",
            n + 1,
            self.total,
            from_ins.original.trim()
        ));
        if self.interrupted() {
            return Err(Error::Interrupted);
        }
        let mut stage = self
            .start_stage(from_ins, def.name.clone(), index)
            .map_err(|e| self.at(from_ins, e))?;
        stage.epoch = self.source_date_epoch();
        let triggers = take_onbuild(&mut stage.config);
        if let Some(id) = &stage.image_id {
            let short = berth_image::short_id(id);
            self.say(&format!(" ---> {short}"));
        }
        self.stages.push(stage);
        let result = self.stage_body(&triggers, &def.body);
        let stage = self.stages.pop().expect("pushed above");
        result?;
        self.finish_stage(stage)
    }

    /// The stage a FROM starts: its platform checked, its image expanded and made present.
    fn start_stage(
        &mut self,
        from_ins: &Instruction,
        name: Option<String>,
        index: usize,
    ) -> Result<Stage, Error> {
        let Command::From(f) = &from_ins.command else {
            unreachable!("a stage starts with FROM")
        };
        if let Some(Some(p)) = from_ins.flag("platform") {
            let p = self.expand_global(p)?;
            crate::platform::check(Some(&p))?;
        }
        let image = self.expand_global(&f.image)?;
        self.from(&image, name, index)
    }

    fn stage_body(
        &mut self,
        triggers: &[Instruction],
        body: &[(usize, Instruction)],
    ) -> Result<(), Error> {
        if !triggers.is_empty() {
            self.say(&format!(
                " # Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            // The triggers change the image: ONBUILD is not inherited further.
            let stage = self.stages.last_mut().expect("pushed");
            stage.image_id = None;
            for t in triggers {
                self.exec(None, t)?;
            }
        }
        for (n, ins) in body {
            self.exec(Some(*n), ins)?;
        }
        Ok(())
    }

    fn finish_stage(&mut self, mut stage: Stage) -> Result<(), Error> {
        self.stages.push(Stage {
            index: stage.index,
            name: stage.name.clone(),
            epoch: stage.epoch,
            config: std::mem::take(&mut stage.config),
            layers: std::mem::take(&mut stage.layers),
            image_id: stage.image_id.take(),
            args: BTreeMap::new(),
            shell: stage.shell.clone(),
            cmd_set: false,
        });
        let committed = self.commit(None);
        let stage = self.stages.pop().expect("pushed above");
        let image_id = committed?;
        self.built[stage.index] = Some(Built {
            image_id,
            config: stage.config,
            layers: stage.layers,
            shell: stage.shell,
        });
        Ok(())
    }

    /// Expands a word with the global ARGs only (FROM, as Docker scopes it).
    pub(crate) fn expand_global(&self, word: &str) -> Result<String, Error> {
        berth_dockerfile::expand::expand_word(word, self.escape, |n| self.meta_args.get(n).cloned())
            .map_err(|e| Error::Invalid(format!("{word}: {e}")))
    }

    /// The earlier stage (than the current one) that `name` names: by name or by index.
    pub(crate) fn stage_named(&self, name: &str, current: usize) -> Result<Option<usize>, Error> {
        let lower = name.to_lowercase();
        if let Some(i) = self.defs[..current]
            .iter()
            .position(|d| d.name.as_deref() == Some(lower.as_str()))
        {
            return Ok(Some(i));
        }
        if let Ok(i) = name.parse::<usize>() {
            if i >= current {
                return Err(Error::Invalid(format!(
                    "invalid stage index {i}: a stage may only refer to the {current} stage{} before it",
                    if current == 1 { "" } else { "s" }
                )));
            }
            return Ok(Some(i));
        }
        Ok(None)
    }

    /// The image (ID and top chain) that `--from=<name>` names: an earlier stage, built now if
    /// needed, or an image pulled through the caller's `pull`.
    pub(crate) fn source_image(
        &mut self,
        from: &str,
        keyword: &str,
    ) -> Result<(String, Option<String>), Error> {
        let current = self.stages.last().map(|s| s.index).unwrap_or(0);
        if let Some(i) = self.stage_named(from, current)? {
            self.ensure_stage(i)?;
            let b = self.built[i].as_ref().expect("built above");
            return Ok((
                b.image_id.clone(),
                b.layers.last().map(|l| l.chain_id.clone()),
            ));
        }
        if from.eq_ignore_ascii_case("scratch") {
            return Err(Error::Invalid(format!(
                "{} --from=scratch: scratch is empty, there is nothing to copy",
                keyword.to_uppercase()
            )));
        }
        let id = (self.pull)(from).map_err(|e| {
            Error::Invalid(format!(
                "{} --from={from}: no earlier build stage has that name, and as an image: {e}",
                keyword.to_uppercase()
            ))
        })?;
        let info = self.engine.images.info(&id)?;
        let layers = self.engine.images.image_layers(&info);
        Ok((id, layers.last().map(|l| l.chain_id.clone())))
    }

    /// A read-only view of the filesystem of `--from=<name>`, mounted once per build.
    pub(crate) fn source_view(
        &mut self,
        from: &str,
        keyword: &str,
    ) -> Result<std::path::PathBuf, Error> {
        let (id, chain) = self.source_image(from, keyword)?;
        let key = chain.clone().unwrap_or_else(|| id.clone());
        if !self.views.contains_key(&key) {
            let lower = match &chain {
                Some(c) => self.engine.images.snapshots.lowerdirs(c)?,
                None => Vec::new(),
            };
            // Should this build be killed, its reaper unmounts the view.
            self.scratch.watch(self.engine)?;
            let dir = self.scratch_dir("view")?;
            let v = crate::view::View::mount(&dir, &lower)?;
            self.views.insert(key.clone(), v);
        }
        Ok(self.views[&key].root().to_path_buf())
    }

    /// A new stage from `image`: an earlier stage's result, scratch, or a pulled image.
    fn from(&mut self, image: &str, name: Option<String>, index: usize) -> Result<Stage, Error> {
        let shell = vec!["/bin/sh".to_string(), "-c".to_string()];
        let lower = image.to_lowercase();
        if let Some(i) = self.defs[..index]
            .iter()
            .position(|d| d.name.as_deref() == Some(lower.as_str()))
        {
            self.ensure_stage(i)?;
            let b = self.built[i].clone().expect("built above");
            return Ok(b.into_stage(index, name));
        }
        if image == "scratch" {
            let platform = berth_registry::Platform::host();
            return Ok(Stage {
                index,
                name,
                epoch: None,
                config: json!({
                    "architecture": platform.architecture, "os": platform.os,
                    "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
                }),
                layers: Vec::new(),
                image_id: None,
                args: BTreeMap::new(),
                shell,
                cmd_set: false,
            });
        }
        let id = (self.pull)(image)?;
        let info = self.engine.images.info(&id)?;
        let config: Value = serde_json::from_slice(&info.config_bytes)
            .map_err(|e| Error::Invalid(format!("the config of {image} is not JSON: {e}")))?;
        let layers = self.engine.images.image_layers(&info);
        let shell = config["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or(shell);
        Ok(Stage {
            index,
            name,
            epoch: None,
            config,
            layers,
            image_id: Some(id),
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
        })
    }
}

/// Removes the base image's ONBUILD triggers from the config and parses them, to run right
/// after FROM (Docker does not pass them on to grandchildren).
fn take_onbuild(config: &mut Value) -> Vec<Instruction> {
    let Some(list) = config["config"].get_mut("OnBuild").map(std::mem::take) else {
        return Vec::new();
    };
    let texts: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if texts.is_empty() {
        return Vec::new();
    }
    config["config"]["OnBuild"] = Value::Null;
    let text: String = texts.iter().map(|t| format!("{t}\n")).collect();
    berth_dockerfile::parse(&text).instructions
}
