//! Attaching to a detached container: its monitor serves a unix socket
//! (`<runroot>/attach/<short id>.sock`) through which any number of clients (`attach`,
//! `start -a`, `run -it`, later the Engine API) see its output live and feed its stdin.
//!
//! Frames, both ways, are Docker's stream framing (`stdcopy`): an 8-byte header — a kind
//! byte, three zero bytes, the payload length as a big-endian u32 — then the payload.
//! Monitor → client: kind 1 stdout, 2 stderr (a terminal's output is all stdout). Client →
//! monitor: kind 0 stdin bytes, [`RESIZE`] (rows and columns, two big-endian u16 each),
//! [`CLOSE_STDIN`]. The monitor closes every connection once the container has ended and
//! its output is drained; the client then reads the exit code from the record.
//!
//! Detach keys (Ctrl-P Ctrl-Q) are the client's business: it stops forwarding and hangs
//! up, and the container goes on.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Error;

/// Frame kind: bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// Frame kind: the container's stdout.
pub const STDOUT: u8 = 1;
/// Frame kind: the container's stderr.
pub const STDERR: u8 = 2;
/// Frame kind: the client's terminal size changed.
pub const RESIZE: u8 = 3;
/// Frame kind: the client's stdin ended.
pub const CLOSE_STDIN: u8 = 4;

/// How long a client may stall the container's output (a suspended `attach`) before it is
/// dropped: output must keep flowing into the log.
const CLIENT_STALL: Duration = Duration::from_secs(2);

/// Docker's default detach sequence: Ctrl-P Ctrl-Q.
pub const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Finds the detach sequence in a client's typed input (Docker's escape proxy): bytes that
/// could start the sequence are held back until it is clear they do not.
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    held: usize,
}

impl DetachScanner {
    /// A scanner for `keys` (Docker's default: [`DETACH_KEYS`]).
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, held: 0 }
    }

    /// The bytes of `input` to pass on, and whether the sequence was typed (then nothing
    /// after it counts).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            // Not the sequence after all: what was held is data.
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = usize::from(b == self.keys[0]);
            if self.held == 0 {
                out.push(b);
            }
        }
        (out, false)
    }

    /// What is still held back at the end of input (it was data).
    pub fn finish(&mut self) -> Vec<u8> {
        let held = self.keys[..self.held].to_vec();
        self.held = 0;
        held
    }
}

/// Parses Docker's `--detach-keys`/`detachKeys` (`ctrl-p,ctrl-q`, `ctrl-a,x`, …).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::Invalid(format!("Invalid detach keys ({s}) provided"));
    s.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                let c = c.as_bytes();
                if c.len() != 1 {
                    return Err(bad());
                }
                match c[0] {
                    b'a'..=b'z' => Ok(c[0] - b'a' + 1),
                    b'@' => Ok(0),
                    b'[' | b'\\' | b']' | b'^' | b'_' => Ok(c[0] - b'@'),
                    _ => Err(bad()),
                }
            } else if k.len() == 1 && k.is_ascii() {
                Ok(k.as_bytes()[0])
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Where a container's monitor listens.
pub fn socket_path(runroot: &Path, id: &str) -> PathBuf {
    runroot
        .join("attach")
        .join(format!("{}.sock", &id[..12.min(id.len())]))
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame; `None` at end of stream.
fn read_frame(from: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 8];
    from.read_exact(&mut header).ok()?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // A client cannot make the monitor allocate much.
    if len > 1 << 20 {
        return None;
    }
    let mut payload = vec![0u8; len];
    from.read_exact(&mut payload).ok()?;
    Some((header[0], payload))
}

/// Where attached clients' input goes: the container's stdin pipe, or its pty.
pub type Input = Arc<Mutex<Option<File>>>;

/// The monitor's side: the listening socket and the clients attached so far.
pub struct Hub {
    listener: UnixListener,
    path: PathBuf,
    clients: Mutex<Vec<UnixStream>>,
    /// Where clients' input and resizes go, once [`Hub::serve`] is called.
    handlers: std::sync::OnceLock<Handlers>,
}

/// A client's input and terminal size, as [`Hub::serve`] was given them.
type Handlers = (Input, Arc<dyn Fn(u16, u16) + Send + Sync>);

impl Hub {
    /// Listens for clients of container `id`. Made before the container starts, so a
    /// client that waits for it misses nothing.
    pub fn bind(runroot: &Path, id: &str) -> Result<Arc<Hub>, Error> {
        let path = socket_path(runroot, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(Error::io(format!("creating {}", dir.display())))?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(Error::io(format!("listening on {}", path.display())))?;
        Ok(Arc::new(Hub {
            listener,
            path,
            clients: Mutex::new(Vec::new()),
            handlers: std::sync::OnceLock::new(),
        }))
    }

    /// Waits (without a thread) until one client is there, for a caller that must see the
    /// first byte of output (`run -it`, `start -a`); gives up after `timeout`.
    pub fn wait_first(&self, timeout: Duration) -> Result<Option<UnixStream>, Error> {
        self.listener
            .set_nonblocking(true)
            .map_err(Error::io("polling the attach socket"))?;
        let deadline = std::time::Instant::now() + timeout;
        let got = loop {
            match self.listener.accept() {
                Ok((s, _)) => break Some(s),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(Error::io("accepting an attach client")(e)),
            }
        };
        self.listener
            .set_nonblocking(false)
            .map_err(Error::io("polling the attach socket"))?;
        if let Some(s) = &got {
            s.set_nonblocking(false)
                .map_err(Error::io("setting up an attach client"))?;
            // Registered now, before the container starts: it gets the first byte.
            let writer = s
                .try_clone()
                .map_err(Error::io("setting up an attach client"))?;
            let _ = writer.set_write_timeout(Some(CLIENT_STALL));
            self.clients.lock().expect("clients lock").push(writer);
        }
        Ok(got)
    }

    /// Serves clients from now on, starting with `first` if one was waited for (already
    /// receiving output): each client's input is read on a thread of its own, new clients
    /// are taken by [`accept_pending`](Self::accept_pending) when the monitor's loop sees
    /// the socket readable. `input` takes stdin frames; `resize` applies a size.
    pub fn serve(
        &self,
        first: Option<UnixStream>,
        input: Input,
        resize: impl Fn(u16, u16) + Send + Sync + 'static,
    ) {
        let resize: Arc<dyn Fn(u16, u16) + Send + Sync> = Arc::new(resize);
        if let Some(s) = first {
            // The caller that started the container: its end of input is the container's
            // (Docker's StdinOnce).
            let (input, resize) = (input.clone(), resize.clone());
            std::thread::spawn(move || client_input(s, input, resize, true));
        }
        // Non-blocking: the monitor's loop accepts only what poll() announced, and a client
        // that gave up meanwhile must not stall it.
        let _ = self.listener.set_nonblocking(true);
        let _ = self.handlers.set((input, resize));
    }

    /// The socket clients connect to, for the monitor's poll().
    pub fn listener(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes the clients waiting on the socket: each gets the output from now on, and a
    /// thread for its input. Nothing before [`serve`](Self::serve).
    pub fn accept_pending(&self) {
        let Some((input, resize)) = self.handlers.get() else {
            return;
        };
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // Out of descriptors, say: the client stays queued, and the monitor's loop
                // would find the socket readable again at once, so it pauses a little.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    return;
                }
            };
            let _ = stream.set_nonblocking(false);
            if let Ok(writer) = stream.try_clone() {
                let _ = writer.set_write_timeout(Some(CLIENT_STALL));
                self.clients.lock().expect("clients lock").push(writer);
            }
            let (input, resize) = (input.clone(), resize.clone());
            std::thread::spawn(move || client_input(stream, input, resize, false));
        }
    }

    /// Sends output to every client; one that cannot keep up or went away is dropped.
    pub fn broadcast(&self, kind: u8, bytes: &[u8]) {
        let data = frame(kind, bytes);
        let mut clients = self.clients.lock().expect("clients lock");
        clients.retain_mut(|c| c.write_all(&data).is_ok());
    }

    /// Hangs up on every client (the container ended) and removes the socket.
    pub fn close(&self) {
        let _ = std::fs::remove_file(&self.path);
        for c in self.clients.lock().expect("clients lock").drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn client_input(
    mut stream: UnixStream,
    input: Input,
    resize: Arc<dyn Fn(u16, u16) + Send + Sync>,
    stdin_once: bool,
) {
    while let Some((kind, payload)) = read_frame(&mut stream) {
        match kind {
            STDIN => {
                let mut sink = input.lock().expect("input lock");
                if let Some(f) = sink.as_mut() {
                    if f.write_all(&payload).is_err() {
                        *sink = None;
                    }
                }
            }
            RESIZE if payload.len() == 4 => resize(
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            ),
            CLOSE_STDIN if stdin_once => {
                // Closing the pipe is the container's EOF; a pty's input stays open.
                let mut sink = input.lock().expect("input lock");
                if sink
                    .as_ref()
                    .is_some_and(|f| !rustix::termios::isatty(f.as_fd()))
                {
                    *sink = None;
                }
            }
            // Another client's input ended: it stops feeding, the container's stdin stays.
            CLOSE_STDIN => return,
            _ => {}
        }
    }
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container ended (its output is all here).
    Exited,
    /// The user pressed the detach keys; the container goes on.
    Detached,
}

/// The client's side: connects to container `id`'s monitor (waiting up to `timeout` for
/// the socket, while `alive()` says the monitor lives) and copies output to stdout/stderr,
/// and with `stdin` the terminal or pipe to the container, until the container ends or the
/// user detaches. With `tty`, the caller's terminal goes raw and its size follows.
pub fn attach(
    runroot: &Path,
    id: &str,
    stdin: bool,
    tty: bool,
    mut alive: impl FnMut() -> bool,
) -> Result<Ended, Error> {
    let path = socket_path(runroot, id);
    let stream = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(_) if alive() => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(Error::io(format!("attaching to {id}"))(e)),
        }
    };
    let raw = if tty && stdin {
        crate::tty::RawTerminal::enter().ok()
    } else {
        None
    };
    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if tty {
        let mut resizer = stream
            .try_clone()
            .map_err(Error::io("attaching to the container"))?;
        let send_size = move |s: &mut UnixStream| {
            let size = rustix::termios::tcgetwinsize(std::io::stdout().as_fd())
                .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin().as_fd()));
            if let Ok(size) = size {
                let mut p = size.ws_row.to_be_bytes().to_vec();
                p.extend_from_slice(&size.ws_col.to_be_bytes());
                let _ = s.write_all(&frame(RESIZE, &p));
            }
        };
        send_size(&mut resizer);
        if let Ok(mut signals) =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])
        {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    send_size(&mut resizer);
                }
            });
        }
    }
    if stdin {
        let mut to_monitor = stream
            .try_clone()
            .map_err(Error::io("attaching to the container"))?;
        let detached = detached.clone();
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            let mut scanner = DetachScanner::new(DETACH_KEYS.to_vec());
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let held = scanner.finish();
                        if !held.is_empty() {
                            let _ = to_monitor.write_all(&frame(STDIN, &held));
                        }
                        let _ = to_monitor.write_all(&frame(CLOSE_STDIN, &[]));
                        return;
                    }
                    Ok(n) => n,
                };
                // Without a terminal, stdin is data: passed on verbatim, as in Docker.
                if !tty {
                    if to_monitor.write_all(&frame(STDIN, &buf[..n])).is_err() {
                        return;
                    }
                    continue;
                }
                let (out, detach) = scanner.feed(&buf[..n]);
                if detach {
                    detached.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = to_monitor.write_all(&frame(STDIN, &out));
                    let _ = to_monitor.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if !out.is_empty() && to_monitor.write_all(&frame(STDIN, &out)).is_err() {
                    return;
                }
            }
        });
    }
    let mut from_monitor = stream;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Some((kind, payload)) = read_frame(&mut from_monitor) {
        let _ = match kind {
            STDERR => err.write_all(&payload),
            _ => out.write_all(&payload).and_then(|_| out.flush()),
        };
    }
    drop(raw);
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        Ok(Ended::Detached)
    } else {
        Ok(Ended::Exited)
    }
}

#[cfg(test)]
mod detach_tests {
    use super::{parse_detach_keys, DetachScanner, DETACH_KEYS};

    #[test]
    fn the_sequence_detaches_and_near_misses_are_data() {
        let mut d = DetachScanner::new(DETACH_KEYS.to_vec());
        assert_eq!(d.feed(b"ab\x10c"), (b"ab\x10c".to_vec(), false));
        assert_eq!(d.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(d.feed(b"\x10"), (b"\x10".to_vec(), false));
        assert_eq!(d.feed(b"\x11tail"), (Vec::new(), true));
        let mut d = DetachScanner::new(DETACH_KEYS.to_vec());
        assert_eq!(d.feed(b"\x10"), (Vec::new(), false));
        assert_eq!(d.finish(), b"\x10".to_vec());
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DETACH_KEYS.to_vec()
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-pp").is_err());
        assert!(parse_detach_keys("").is_err());
    }
}
