//! Independent stages built at the same time, as BuildKit does.
//!
//! Before the target is built, the stages it needs are read off the Dockerfile (`FROM
//! <stage>`, `COPY/ADD --from`, `RUN --mount=from=`, expanded with the global ARGs) and built
//! in waves: every stage whose own needs are met is started, each on a thread with a builder
//! of its own (its own scratch folder and views; the store, the cache and the engine are
//! shared, and all three are safe to use from several threads because they lock across
//! processes already). A wave of one is built on the calling thread. Whatever this reading
//! misses (a `--from` only a stage's own ARG names) is still built on demand, one after the
//! other, as before.
//!
//! Step lines of the stages on threads reach the caller's output whole, line by line, in the
//! order they are printed, marked `[stage] `; RUN output streams straight to the terminal, so
//! two RUNs at once interleave, as with BuildKit's plain progress.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use berth_dockerfile::Command;

use crate::stages::Built;
use crate::{mounts, Builder, Error, Scratch};

/// What a stage's thread ends with: the stage, and every stage it built (by index) or why
/// it failed.
type Outcome = (usize, Result<Vec<(usize, Built)>, Error>);

/// Step lines written by a stage's builder on another thread, passed on whole (so lines of
/// two stages never mix) and marked with the stage's name, as BuildKit's plain output does.
struct Lines {
    tx: mpsc::Sender<Vec<u8>>,
    prefix: Vec<u8>,
    pending: Vec<u8>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&c| c == b'\n') {
            let mut line = self.prefix.clone();
            line.extend(self.pending.drain(..=end));
            let _ = self.tx.send(line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let mut line = self.prefix.clone();
            line.append(&mut self.pending);
            line.push(b'\n');
            let _ = self.tx.send(line);
        }
    }
}

impl Builder<'_> {
    /// The stages stage `index` names, as far as the global ARGs tell.
    fn needs(&self, index: usize) -> BTreeSet<usize> {
        let def = &self.defs[index];
        let mut names = Vec::new();
        if let Command::From(f) = &def.from.1.command {
            names.push(f.image.clone());
        }
        for (_, ins) in &def.body {
            match &ins.command {
                Command::Copy(_) | Command::Add(_) => {
                    if let Some(Some(from)) = ins.flag("from") {
                        names.push(from.to_string());
                    }
                }
                Command::Run(_) => {
                    for f in ins.flags.iter().filter(|f| f.name == "mount") {
                        if let Ok(mounts::Mount::Bind {
                            from: Some(from), ..
                        }) = mounts::parse(f.value.as_deref().unwrap_or(""))
                        {
                            names.push(from);
                        }
                    }
                }
                _ => {}
            }
        }
        names
            .iter()
            .filter_map(|n| self.expand_global(n).ok())
            .filter_map(|n| self.stage_named(&n, index).ok().flatten())
            .collect()
    }

    /// Builds the stages `target` needs (not `target` itself), independent ones at the same
    /// time.
    pub(crate) fn build_needed(&mut self, target: usize) -> Result<(), Error> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            for n in self.needs(i) {
                if needed.insert(n) {
                    todo.push(n);
                }
            }
        }
        loop {
            let ready: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|&i| self.built[i].is_none())
                .filter(|&i| self.needs(i).iter().all(|&n| self.built[n].is_some()))
                .collect();
            match ready.len() {
                0 => return Ok(()),
                1 => self.ensure_stage(ready[0])?,
                _ => self.build_together(&ready)?,
            }
        }
    }

    /// Builds `stages` (whose needs are built) each on a thread; the first failure (in stage
    /// order) is the result, and it stops the others' RUNs.
    fn build_together(&mut self, stages: &[usize]) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let abort = Arc::new(AtomicBool::new(false));
        let mut forks = Vec::new();
        for _ in stages {
            forks.push(self.fork(abort.clone())?);
        }
        let results: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = stages
                .iter()
                .zip(forks)
                .map(|(&i, fork)| {
                    let name = self.defs[i].name.clone().unwrap_or_else(|| i.to_string());
                    let lines = Lines {
                        tx: tx.clone(),
                        prefix: format!("[{name}] ").into_bytes(),
                        pending: Vec::new(),
                    };
                    s.spawn(move || fork.build_stage(i, lines))
                })
                .collect();
            drop(tx);
            // The stages' step lines, as they come, until every thread is done.
            for chunk in rx.iter() {
                let _ = self.out.write_all(&chunk);
                let _ = self.out.flush();
            }
            handles
                .into_iter()
                .zip(stages)
                .map(|(h, &i)| {
                    h.join().unwrap_or_else(|_| {
                        (
                            i,
                            Err(Error::Invalid(format!("building stage {i} panicked"))),
                        )
                    })
                })
                .collect()
        });
        let mut first_error = None;
        for (_, r) in results {
            match r {
                Ok(built) => {
                    for (n, b) in built {
                        if self.built[n].is_none() {
                            self.built[n] = Some(b);
                        }
                    }
                }
                // A stage stopped because another failed is not the story.
                Err(Error::Interrupted) if !self.interrupted() => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if self.interrupted() => Err(Error::Interrupted),
            None => Ok(()),
        }
    }
}

impl<'a> Builder<'a> {
    /// What a builder for one stage on another thread starts from: the same Dockerfile,
    /// options and stages built so far; its own scratch folder.
    fn fork(&self, abort: Arc<AtomicBool>) -> Result<Fork<'a>, Error> {
        Ok(Fork {
            engine: self.engine,
            options: self.options,
            pull: self.pull,
            context: self.context.clone(),
            escape: self.escape,
            meta_args: self.meta_args.clone(),
            defs: self.defs.clone(),
            built: self.built.clone(),
            total: self.total,
            file_name: self.file_name.clone(),
            text: self.text.clone(),
            scratch: Scratch::new(self.engine.root())?,
            abort,
        })
    }
}

/// The parts of a builder that may go to another thread.
struct Fork<'a> {
    engine: &'a berth_engine::Engine,
    options: &'a crate::BuildOptions,
    pull: &'a crate::Pull<'a>,
    context: crate::Context,
    escape: char,
    meta_args: std::collections::BTreeMap<String, String>,
    defs: Vec<crate::stages::StageDef>,
    built: Vec<Option<Built>>,
    total: usize,
    file_name: String,
    text: String,
    scratch: Scratch,
    abort: Arc<AtomicBool>,
}

impl Fork<'_> {
    /// Builds stage `index` (and what it needs that the reading missed); returns every stage
    /// built, or why not. Views are unmounted before the scratch folder goes.
    fn build_stage(self, index: usize, mut lines: Lines) -> Outcome {
        let abort = self.abort.clone();
        let mut b = Builder {
            engine: self.engine,
            options: self.options,
            pull: self.pull,
            out: &mut lines,
            context: self.context,
            escape: self.escape,
            meta_args: self.meta_args,
            defs: self.defs,
            built: self.built,
            stages: Vec::new(),
            total: self.total,
            file_name: self.file_name,
            text: self.text,
            scratch: self.scratch,
            views: Default::default(),
            fetched: Default::default(),
            cache: crate::cache::Cache::new(self.engine.root()),
            abort: self.abort,
        };
        let r = b.ensure_stage(index);
        b.views.clear();
        if r.is_err() {
            abort.store(true, Ordering::SeqCst);
        }
        let built = b
            .built
            .iter()
            .enumerate()
            .filter_map(|(n, x)| x.clone().map(|x| (n, x)))
            .collect();
        (index, r.map(|_| built))
    }
}
