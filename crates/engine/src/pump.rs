//! The monitor's one waiting loop: the container's output into the log and to attached
//! clients, new attach clients, and the container's end, all on the monitor's main thread
//! with poll(). A monitor stays resident for every running container, and a thread per
//! stream and one for the socket cost each monitor their stacks and their allocator state
//! (about 40 KB of its 0.4 MB); one loop costs nothing while the container is quiet.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::attach::Hub;
use crate::logs::StreamLog;

/// A stream of the container the monitor reads: a pipe's or a pty's reading end.
pub struct Source {
    /// Read until its end.
    pub file: File,
    /// Where what is read goes.
    pub log: StreamLog,
}

/// How long the loop waits for more output once the container's init has ended: its
/// processes are gone with it (the PID namespace's end kills them), so a quiet period this
/// long only ends the wait for a writer that escaped it.
const DRAIN: Duration = Duration::from_secs(2);

/// Copies `sources` and serves `hub` until the process `pid` has ended and every source is
/// at its end. Returns at once without sources or hub (nothing to do but wait).
pub fn pump(pid: Option<i32>, mut sources: Vec<Source>, hub: Option<&Hub>) {
    if sources.is_empty() && hub.is_none() {
        return;
    }
    // The container's end, as a descriptor poll() can watch. Without one (a kernel before
    // 5.3, a seccomp filter that refuses it) the sources' end stands for it.
    let pidfd = pid
        .and_then(Pid::from_raw)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    let mut exited = false;
    // Small: it is on the monitor's stack for the container's life.
    let mut buf = [0u8; 4 * 1024];
    let drain = Timespec::try_from(DRAIN).expect("a short duration");
    let mut ready: Vec<bool> = Vec::new();
    loop {
        if sources.is_empty() && (exited || pidfd.is_none()) {
            return;
        }
        let (mut listening, mut ended) = (false, false);
        {
            let mut fds: Vec<PollFd<'_>> = sources
                .iter()
                .map(|s| PollFd::new(&s.file, PollFlags::IN))
                .collect();
            let watching = !exited;
            if watching {
                if let Some(h) = hub {
                    fds.push(PollFd::from_borrowed_fd(h.listener(), PollFlags::IN));
                }
                if let Some(p) = &pidfd {
                    fds.push(PollFd::new(p, PollFlags::IN));
                }
            }
            let timeout = if exited { Some(&drain) } else { None };
            match poll(&mut fds, timeout) {
                Ok(0) => break, // quiet long enough after the end
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            let fired = |fd: &PollFd<'_>| !fd.revents().is_empty();
            ready.clear();
            ready.extend(fds[..sources.len()].iter().map(fired));
            if watching {
                let mut extra = fds[sources.len()..].iter();
                if hub.is_some() {
                    listening = extra.next().is_some_and(fired);
                }
                if pidfd.is_some() {
                    ended = extra.next().is_some_and(fired);
                }
            }
        }
        if listening {
            if let Some(h) = hub {
                h.accept_pending();
            }
        }
        exited |= ended;
        // From the last index down, so removing one keeps the others' indices.
        for i in (0..sources.len()).rev() {
            if !ready[i] {
                continue;
            }
            match sources[i].file.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if !sources[i].log.feed(&buf[..n]) {
                        sources.swap_remove(i).log.finish();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The end; a pty whose last writer closed says EIO.
                _ => sources.swap_remove(i).log.finish(),
            }
        }
    }
    // Given up on: what they said after their last newline is still a record.
    for s in sources {
        s.log.finish();
    }
}

impl Source {
    /// A source reading `fd` (a pipe's reading end, a pty's master) into `log`.
    pub fn new(fd: impl Into<std::os::fd::OwnedFd>, log: StreamLog) -> Source {
        Source {
            file: File::from(fd.into()),
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Both streams are read to their ends while the process lives, and the loop returns
    /// once it has ended and the streams are done; the log holds every line.
    #[test]
    fn copies_until_the_process_and_streams_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let (out_r, mut out_w) = std::io::pipe().unwrap();
        let (err_r, mut err_w) = std::io::pipe().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..100 {
                writeln!(out_w, "out {i}").unwrap();
            }
            writeln!(err_w, "err").unwrap();
        });
        pump(
            Some(child.id() as i32),
            vec![
                Source::new(out_r, StreamLog::new("stdout", log.clone(), None)),
                Source::new(err_r, StreamLog::new("stderr", log, None)),
            ],
            None,
        );
        writer.join().unwrap();
        // The loop saw the end without reaping: the exit status is still the caller's.
        assert!(child.wait().unwrap().success());
        let entries = crate::logs::read(&path);
        assert_eq!(entries.iter().filter(|e| e.stream == "stdout").count(), 100);
        let err: Vec<&str> = entries
            .iter()
            .filter(|e| e.stream == "stderr")
            .map(|e| e.log.as_str())
            .collect();
        assert_eq!(err, ["err\n"]);
    }

    /// Without a pidfd (no PID, as with a kernel that refuses pidfd_open), the streams'
    /// end is the end: every line, the last one without a newline too, is kept.
    #[test]
    fn without_a_pidfd_the_streams_end_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let (out_r, mut out_w) = std::io::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            write!(out_w, "first\nlast").unwrap();
        });
        pump(
            None,
            vec![Source::new(out_r, StreamLog::new("stdout", log, None))],
            None,
        );
        writer.join().unwrap();
        let lines: Vec<String> = crate::logs::read(&path)
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(lines, ["first\n", "last"]);
    }
}
