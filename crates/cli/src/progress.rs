//! Transfer progress: bars on a terminal, Docker's plain status lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_registry::{Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Short layer ID as Docker shows it (12 hex characters of the digest).
fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// Words for the two directions.
#[derive(Clone, Copy)]
pub enum Direction {
    Pull,
    Push,
}

impl Direction {
    fn started(self) -> &'static str {
        match self {
            Direction::Pull => "Pulling fs layer",
            Direction::Push => "Preparing",
        }
    }
    fn moving(self) -> &'static str {
        match self {
            Direction::Pull => "Downloading",
            Direction::Push => "Pushing",
        }
    }
    fn done(self) -> &'static str {
        match self {
            Direction::Pull => "Pull complete",
            Direction::Push => "Pushed",
        }
    }
}

/// Reports transfer events to the user.
pub struct Display {
    direction: Direction,
    quiet: bool,
    stderr: bool,
    bars: Option<MultiProgress>,
    active: Mutex<HashMap<String, ProgressBar>>,
}

impl Display {
    pub fn new(direction: Direction, quiet: bool) -> Display {
        let bars = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Display {
            direction,
            quiet,
            stderr: false,
            bars,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// Progress on stderr, as `docker run` shows the pull of a missing image (stdout belongs
    /// to the container).
    pub fn on_stderr(direction: Direction) -> Display {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Display {
            direction,
            quiet: false,
            stderr: true,
            bars,
            active: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, digest: &str, msg: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(format!("{}: {msg}", short(digest)));
            }
            None if self.stderr => eprintln!("{}: {msg}", short(digest)),
            None => println!("{}: {msg}", short(digest)),
        }
    }
}

impl Progress for Display {
    fn event(&self, event: ProgressEvent) {
        if self.quiet {
            return;
        }
        match event {
            ProgressEvent::Started {
                digest,
                total,
                offset,
            } => match &self.bars {
                Some(m) => {
                    let bar = m.add(ProgressBar::new(total));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&digest));
                    bar.set_message(self.direction.moving());
                    bar.set_position(offset);
                    self.active.lock().expect("lock").insert(digest, bar);
                }
                None => self.line(&digest, self.direction.started()),
            },
            ProgressEvent::Bytes { digest, done, .. } => {
                if let Some(bar) = self.active.lock().expect("lock").get(&digest) {
                    bar.set_position(done);
                }
            }
            ProgressEvent::Done { digest } => {
                if let Some(bar) = self.active.lock().expect("lock").remove(&digest) {
                    bar.finish_and_clear();
                }
                self.line(&digest, self.direction.done());
            }
            ProgressEvent::Skipped { digest, reason } => self.line(&digest, &reason),
        }
    }
}
