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

/// Decompresses a layer blob, applies it under `fs`, and returns its diff ID.
pub(crate) fn unpack_stream(
    blob: impl Read + Send,
    fs: &Path,
    layer: &str,
) -> Result<(String, ApplyStats), Error> {
    let ctx = || format!("decompressing layer {layer}");
    let tar = crate::compress::decompress(blob).map_err(Error::io(ctx()))?;
    let mut hashing = HashingReader {
        inner: tar,
        hasher: Sha256::new(),
    };
    let stats = apply_layer(fs, &mut hashing).map_err(|source| Error::Apply {
        layer: layer.to_string(),
        source,
    })?;
    // The tar's end-of-archive padding is part of the diff ID too.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(Error::io(ctx()))?;
    Ok((
        format!("sha256:{}", hex::encode(hashing.hasher.finalize())),
        stats,
    ))
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

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
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
        let (tx, rx) = sync_channel::<Vec<u8>>(64);
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
