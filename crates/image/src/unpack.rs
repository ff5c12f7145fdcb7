//! The unpacking stage shared by pull, load and import: decompress, hash the tar (the diff
//! ID) and apply it into a prepared snapshot, on its own thread, fed through a bounded
//! channel so that a layer is never held in memory.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use crate::apply::{apply_layer, ApplyStats};
use crate::snapshot::{Prepared, Snapshots};
use crate::Error;

/// Chunks (typically 16–64 KiB) the unpacker may lag behind the download: enough to smooth
/// bursts, bounded so a layer is never held in memory. (A larger backlog measured slower:
/// more allocation, no gain, since unpacking is the pipeline's slowest stage.)
const UNPACK_BACKLOG: usize = 64;

/// Decompresses a layer blob, applies it under `fs`, and returns its diff ID.
pub(crate) fn unpack_stream(
    blob: impl Read + Send,
    fs: &Path,
    layer: &str,
) -> Result<(String, ApplyStats), Error> {
    let ctx = || format!("decompressing layer {layer}");
    // Two stages on two threads: decompress + hash the tar here, apply it there. Applying is
    // mostly syscalls and decompressing mostly CPU, so they overlap well.
    let (tx, rx) = sync_channel::<Vec<u8>>(16);
    std::thread::scope(|s| {
        let producer = s.spawn(move || -> std::io::Result<String> {
            let mut tar = crate::compress::decompress(blob)?;
            let mut hasher = Sha256::new();
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                let n = tar.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                hasher.update(&buf);
                if tx.send(buf).is_err() {
                    // The applier stopped (with an error of its own): keep hashing, so the
                    // caller can still tell a corrupt blob from a hostile one.
                    std::io::copy(
                        &mut HashingReader {
                            inner: tar,
                            hasher: &mut hasher,
                        },
                        &mut std::io::sink(),
                    )?;
                    break;
                }
            }
            Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
        });
        let mut channel = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let applied = apply_layer(fs, &mut channel);
        drop(channel);
        let diff_id = producer.join().expect("decompressor panicked");
        // A decompression error explains an apply error ("unexpected end"), so it goes first.
        let diff_id = diff_id.map_err(Error::io(ctx()))?;
        let stats = applied.map_err(|source| Error::Apply {
            layer: layer.to_string(),
            source,
        })?;
        Ok((diff_id, stats))
    })
}

pub(crate) fn check_diff_id(layer: &str, expected: &str, actual: &str) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Verification {
            what: format!("layer {layer} (uncompressed)"),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

struct HashingReader<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads chunks from a channel; end of stream when the sender is dropped.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The unpacking stage of a layer pipeline.
pub(crate) struct Unpacker {
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<Result<(String, ApplyStats), Error>>>,
    prepared: Option<Prepared>,
}

impl Unpacker {
    /// Prepares a snapshot (named after `label` while it is being filled) and starts the
    /// thread; `earlier` bytes, if any, are unpacked before those fed later.
    pub(crate) fn start(
        snapshots: &Snapshots,
        label: &str,
        layer: &str,
        earlier: Option<Box<dyn Read + Send>>,
    ) -> Result<Unpacker, Error> {
        let prepared = snapshots.prepare(label)?;
        let fs = prepared.fs();
        let (tx, rx) = sync_channel::<Vec<u8>>(UNPACK_BACKLOG);
        let layer = layer.to_string();
        let thread = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn(move || {
                let channel = ChannelReader {
                    rx,
                    buf: Vec::new(),
                    pos: 0,
                };
                match earlier {
                    Some(e) => unpack_stream(e.chain(channel), &fs, &layer),
                    None => unpack_stream(channel, &fs, &layer),
                }
            })
            .map_err(Error::io("starting an unpack thread"))?;
        Ok(Unpacker {
            tx: Some(tx),
            thread: Some(thread),
            prepared: Some(prepared),
        })
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if let Some(tx) = &self.tx {
            if tx.send(chunk.to_vec()).is_err() {
                // The unpacker stopped with an error; finish() reports it once the blob's
                // own digest has been checked (a corrupt blob is the likelier cause).
                self.tx = None;
            }
        }
    }

    pub(crate) fn join(&mut self) -> Result<(String, ApplyStats), Error> {
        self.tx = None;
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("unpack thread panicked")
    }
}

impl Unpacker {
    /// The filled snapshot, to commit once its digests check out.
    pub(crate) fn take_prepared(&mut self) -> Option<Prepared> {
        self.prepared.take()
    }
}

impl Drop for Unpacker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
