//! Pseudo-terminals for `-t`, the way runc hands them out: the runtime makes the pty inside
//! the container and sends its master end over a unix socket (`SCM_RIGHTS`) to whoever
//! listens there. For `run -t` in the foreground and `exec -t` that is the CLI, which then
//! puts its own terminal in raw mode and copies bytes both ways; for `run -dt` it is the
//! monitor, which copies the output into the json-file log.
//!
//! The CLI, not the monitor, proxies a foreground terminal because only the terminal's
//! foreground process group may read it, and the monitor has a process group of its own.

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::termios::{OptionalActions, Termios};

use crate::Error;

/// A socket waiting for the runtime to send a pty master.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `<runroot>/tty/<name>.sock` (short, since socket paths are limited to
    /// 108 bytes and store roots may be long).
    pub fn bind(runroot: &Path, name: &str) -> Result<ConsoleSocket, Error> {
        let dir = runroot.join("tty");
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let path = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(Error::io(format!("listening on {}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("setting the console socket non-blocking"))?;
        Ok(ConsoleSocket { listener, path })
    }

    /// Where the runtime should connect.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the pty master; gives up (`None`) as soon as `gone()` says the sender
    /// will never come (the monitor died, the container failed to start).
    pub fn receive(&self, mut gone: impl FnMut() -> bool) -> Result<Option<OwnedFd>, Error> {
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if gone() {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(Error::io("accepting on the console socket")(e)),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(Error::io("reading the console socket"))?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 512];
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| Error::io("receiving the pty from the runtime")(e.into()))?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message {
                if let Some(fd) = fds.next() {
                    return Ok(Some(fd));
                }
            }
        }
        Err(Error::Invalid(
            "the runtime connected to the console socket but sent no pty".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The caller's terminal in raw mode until dropped (then restored as it was).
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode: keys reach the container unchanged, Ctrl-C
    /// included, and the container's pty does the echo and the signals.
    pub fn enter() -> std::io::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw)?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// Whether stdin is a terminal (`-it` needs one, as in Docker).
pub fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin().as_fd())
}

/// Gives the pty the size of the caller's terminal (stdout's, else stdin's), if it has one.
pub fn copy_size(master: BorrowedFd<'_>) {
    let size = rustix::termios::tcgetwinsize(std::io::stdout().as_fd())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin().as_fd()));
    if let Ok(size) = size {
        let _ = rustix::termios::tcsetwinsize(master, size);
    }
}

/// Copies the container's terminal to stdout, and stdin to it when `interactive`, until the
/// container's side closes; follows the caller's window size (SIGWINCH). Blocks.
///
/// The pty is sized only once the runtime has handed it over, by which time the process may
/// already run (libcontainer has no `consoleSize`), so `process` (its PID, once known) is
/// sent a SIGWINCH to read the size again, as a resize would.
pub fn proxy(
    master: OwnedFd,
    interactive: bool,
    process: impl Fn() -> Option<i32> + Send + 'static,
) -> Result<(), Error> {
    let master = std::fs::File::from(master);
    copy_size(master.as_fd());
    std::thread::spawn(move || {
        for _ in 0..200 {
            if let Some(pid) = process().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    if interactive {
        let mut to_container = master
            .try_clone()
            .map_err(Error::io("duplicating the pty"))?;
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_container.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    if let Ok(resized) = master.try_clone() {
        if let Ok(mut signals) =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])
        {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    copy_size(resized.as_fd());
                }
            });
        }
    }
    let mut from_container = master;
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 8192];
    loop {
        match from_container.read(&mut buf) {
            // EIO: every process of the container closed its side.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}
