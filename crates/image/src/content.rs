//! Content-addressed blobs: `blobs/sha256/<hex>`, an OCI image layout.
//!
//! Lifecycle: a blob is written through an [`Ingest`], keyed by the digest it must have. The
//! ingest's bytes live in `ingest/<hex>` while they arrive; on [`Ingest::commit`] the size and
//! digest are checked, the file is synced and renamed into `blobs/`. So a blob in `blobs/`
//! is always complete and verified, and a blob being written is invisible to readers. After a
//! `kill -9`, the partial ingest stays and the next writer for that digest resumes from it.
//! Two processes writing the same digest serialise on a lock held on the partial file: the
//! second finds the blob committed and skips its transfer.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::{sha256_hex, validate_digest};
use crate::lock::FileLock;
use crate::Error;

/// The blob half of the store.
#[derive(Debug, Clone)]
pub struct Content {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Content {
    /// Opens (creating) the content store under `root`.
    pub fn open(root: &Path) -> Result<Content, Error> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            std::fs::create_dir_all(d).map_err(Error::io(format!("creating {}", d.display())))?;
        }
        Ok(Content { blobs, ingest })
    }

    /// Where a committed blob lives; the digest is validated first so it cannot name a path.
    pub fn path(&self, digest: &str) -> Result<PathBuf, Error> {
        Ok(self.blobs.join(validate_digest(digest)?))
    }

    /// The size of a committed blob, or `None` if the store lacks it.
    pub fn size(&self, digest: &str) -> Option<u64> {
        let p = self.path(digest).ok()?;
        std::fs::metadata(p).ok().map(|m| m.len())
    }

    /// Whether a committed blob exists.
    pub fn exists(&self, digest: &str) -> bool {
        self.size(digest).is_some()
    }

    /// Reads a whole blob; for manifests and configs, never for layers.
    pub fn read(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(Error::io(format!("reading blob {digest}")))
    }

    /// Opens a committed blob for streaming.
    pub fn open_blob(&self, digest: &str) -> Result<File, Error> {
        let p = self.path(digest)?;
        File::open(&p).map_err(Error::io(format!("opening blob {digest}")))
    }

    /// Stores a small document (manifest, config, index) and returns its digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        if let Some(mut ingest) = self.ingest(&digest, bytes.len() as u64)? {
            if ingest.offset() > 0 {
                ingest.restart()?;
            }
            ingest.write(bytes)?;
            ingest.commit()?;
        }
        Ok(digest)
    }

    /// Starts (or resumes) writing the blob `digest` of `size` bytes. Returns `None` if the
    /// blob is already committed — possibly by another process this call waited for.
    pub fn ingest(&self, digest: &str, size: u64) -> Result<Option<Ingest>, Error> {
        let hex = validate_digest(digest)?.to_string();
        if self.exists(digest) {
            return Ok(None);
        }
        let path = self.ingest.join(&hex);
        let ctx = || format!("opening ingest for {digest}");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(ctx()))?;
        let handle = file.try_clone().map_err(Error::io(ctx()))?;
        let (lock, _first) = FileLock::on(handle).map_err(Error::io(ctx()))?;
        if self.exists(digest) {
            // Another process committed it while we waited; our path may be a fresh empty
            // file it never used.
            if std::fs::metadata(&path)
                .map(|m| m.len() == 0)
                .unwrap_or(false)
            {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(None);
        }
        let mut ingest = Ingest {
            file,
            path,
            blobs: self.blobs.clone(),
            digest: digest.to_string(),
            hex,
            size,
            offset: 0,
            hasher: Sha256::new(),
            synced: false,
            _lock: lock,
        };
        ingest.rehash()?;
        Ok(Some(ingest))
    }

    /// Deletes a committed blob (no error if it is already gone).
    pub fn delete(&self, digest: &str) -> Result<(), Error> {
        let p = self.path(digest)?;
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("deleting blob {digest}"))(e)),
        }
    }

    /// Starts writing a blob whose digest is not known yet (archives, imports): it is hashed
    /// as it is written and filed under its digest on [`TempBlob::finish`].
    pub fn temp_blob(&self) -> Result<TempBlob, Error> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.ingest.join(format!("tmp-{}-{n}", std::process::id()));
        let file =
            File::create(&path).map_err(Error::io(format!("creating {}", path.display())))?;
        Ok(TempBlob {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            path,
            blobs: self.blobs.clone(),
            hasher: Sha256::new(),
            size: 0,
            done: false,
        })
    }

    /// Every committed blob with its size.
    pub fn walk(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.blobs).map_err(Error::io("listing blobs"))?;
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let digest = format!("sha256:{name}");
            if validate_digest(&digest).is_ok() {
                out.push((digest, entry.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
        Ok(out)
    }
}

/// A blob being written. Dropping it without [`Ingest::commit`] keeps the partial bytes for a
/// later resume; [`Ingest::discard`] throws them away.
pub struct Ingest {
    file: File,
    path: PathBuf,
    blobs: PathBuf,
    digest: String,
    hex: String,
    size: u64,
    offset: u64,
    hasher: Sha256,
    synced: bool,
    _lock: FileLock,
}

impl Ingest {
    /// Bytes already written (from this or an interrupted earlier writer).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The digest this ingest must produce.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The partial file, for re-reading bytes an earlier writer left (resume).
    pub fn partial_path(&self) -> &Path {
        &self.path
    }

    fn rehash(&mut self) -> Result<(), Error> {
        use std::io::Seek;
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.size {
            return self.restart();
        }
        let mut buf = vec![0u8; 1 << 20];
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Error::io("rewinding ingest"))?;
        loop {
            let n = self
                .file
                .read(&mut buf)
                .map_err(Error::io(format!("re-reading partial {}", self.digest)))?;
            if n == 0 {
                break;
            }
            self.hasher.update(&buf[..n]);
            self.offset += n as u64;
        }
        Ok(())
    }

    /// Forgets any partial bytes and starts from zero.
    pub fn restart(&mut self) -> Result<(), Error> {
        use std::io::Seek;
        self.file
            .set_len(0)
            .map_err(Error::io(format!("truncating ingest {}", self.digest)))?;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Error::io("rewinding ingest"))?;
        self.offset = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    /// Appends bytes, hashing them on the way.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.offset += buf.len() as u64;
        if self.offset > self.size {
            return Err(Error::Verification {
                what: format!("blob {}", self.digest),
                expected: format!("{} bytes", self.size),
                actual: format!("at least {} bytes", self.offset),
            });
        }
        self.hasher.update(buf);
        self.file
            .write_all(buf)
            .map_err(Error::io(format!("writing blob {}", self.digest)))
    }

    /// Checks that every byte arrived and hashes to the expected digest.
    pub fn verify(&self) -> Result<(), Error> {
        let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if self.offset != self.size || actual != self.digest {
            return Err(Error::Verification {
                what: format!("blob {}", self.digest),
                expected: format!("{} ({} bytes)", self.digest, self.size),
                actual: format!("{actual} ({} bytes)", self.offset),
            });
        }
        Ok(())
    }

    /// Flushes the bytes to disk (once; [`Ingest::commit`] skips it if done).
    fn sync(&mut self) -> Result<(), Error> {
        if !self.synced {
            self.file
                .sync_all()
                .map_err(Error::io(format!("syncing blob {}", self.digest)))?;
            self.synced = true;
        }
        Ok(())
    }

    /// Checks size and digest, syncs, and moves the blob into the store. On a mismatch the
    /// partial bytes are deleted: they can never become the right blob.
    pub fn commit(mut self) -> Result<(), Error> {
        if let Err(e) = self.verify() {
            let _ = std::fs::remove_file(&self.path);
            return Err(e);
        }
        self.sync()?;
        let target = self.blobs.join(&self.hex);
        std::fs::rename(&self.path, &target)
            .map_err(Error::io(format!("committing blob {}", self.digest)))?;
        Ok(())
    }

    /// Deletes the partial bytes.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A blob being written before its digest is known. Dropped unfinished, it is deleted.
pub struct TempBlob {
    file: std::io::BufWriter<File>,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
    done: bool,
}

impl Write for TempBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl TempBlob {
    /// Syncs the bytes and files them under their digest; returns digest and size.
    pub fn finish(mut self) -> Result<(String, u64), Error> {
        let hex = hex::encode(self.hasher.clone().finalize());
        let ctx = || format!("storing blob sha256:{hex}");
        self.file.flush().map_err(Error::io(ctx()))?;
        self.file.get_ref().sync_all().map_err(Error::io(ctx()))?;
        std::fs::rename(&self.path, self.blobs.join(&hex)).map_err(Error::io(ctx()))?;
        self.done = true;
        Ok((format!("sha256:{hex}"), self.size))
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_verifies_then_commits_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let c = Content::open(dir.path()).unwrap();
        let data = b"hello blob";
        let digest = format!("sha256:{}", sha256_hex(data));
        // A killed writer leaves a partial ingest.
        let mut w = c.ingest(&digest, data.len() as u64).unwrap().unwrap();
        w.write(&data[..4]).unwrap();
        drop(w);
        assert!(!c.exists(&digest), "an uncommitted blob is invisible");
        let mut w = c.ingest(&digest, data.len() as u64).unwrap().unwrap();
        assert_eq!(w.offset(), 4);
        w.write(&data[4..]).unwrap();
        w.commit().unwrap();
        assert_eq!(c.read(&digest).unwrap(), data);
        assert!(c.ingest(&digest, data.len() as u64).unwrap().is_none());
    }

    #[test]
    fn wrong_bytes_are_refused_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let c = Content::open(dir.path()).unwrap();
        let digest = format!("sha256:{}", sha256_hex(b"right"));
        let mut w = c.ingest(&digest, 5).unwrap().unwrap();
        w.write(b"wrong").unwrap();
        let e = w.commit().unwrap_err().to_string();
        assert!(e.contains("failed verification"), "{e}");
        assert!(!c.exists(&digest));
        let w = c.ingest(&digest, 5).unwrap().unwrap();
        assert_eq!(w.offset(), 0, "bad partial bytes are not resumed");
        let mut w = w;
        assert!(w.write(b"toolong").is_err());
    }
}
