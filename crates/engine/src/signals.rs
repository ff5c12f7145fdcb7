//! Signal proxying for foreground containers, as Docker's `--sig-proxy` (on by default).
//!
//! The container's init runs in a session of its own (the runtime calls setsid), so neither
//! the terminal's signals (Ctrl-C's SIGINT, Ctrl-\'s SIGQUIT) nor `kill PID` of the CLI reach
//! it by themselves: the CLI catches them and passes them to the init, whose PID it reads from
//! the container's record; the monitor passes on what is sent to it. Neither dies of them, so
//! the exit code is reported and the container cleaned up.
//!
//! Handlers are installed in two steps because the monitor may not have threads when the
//! runtime clones the container, yet must not lose a signal that arrives meanwhile:
//! [`install`] only sets flags (no thread), and [`Proxy::forward_to`] starts the thread that
//! passes them on, pending ones first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// Signals passed on to the process below.
pub const FORWARDED: [i32; 6] = [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2];

/// Signals caught and not yet passed on.
pub struct Proxy {
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

/// Catches [`FORWARDED`] signals into flags (so this process survives them). Starts no
/// thread.
pub fn install() -> std::io::Result<Proxy> {
    let mut flags = Vec::new();
    for s in FORWARDED {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(s, flag.clone())?;
        flags.push((s, flag));
    }
    Ok(Proxy { flags })
}

impl Proxy {
    /// Passes caught signals on to `pid` from now on (on a thread).
    pub fn forward_to(self, pid: i32) {
        self.forward_when_known(move || Some(pid));
    }

    /// Passes caught signals on to the process `pid` names once it does (it is polled until
    /// then; signals caught meanwhile wait), on a thread.
    pub fn forward_when_known(self, pid: impl Fn() -> Option<i32> + Send + 'static) {
        std::thread::spawn(move || loop {
            let Some(pid) = pid() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            for (sig, flag) in &self.flags {
                if flag.swap(false, Ordering::SeqCst) {
                    if let (Some(p), Some(s)) = (
                        rustix::process::Pid::from_raw(pid),
                        rustix::process::Signal::from_named_raw(*sig),
                    ) {
                        let _ = rustix::process::kill_process(p, s);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        });
    }
}
