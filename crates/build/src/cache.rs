//! The build cache: which image a step made from which parent, so a rebuild with nothing
//! changed runs no RUN and writes no layer.
//!
//! A step's key is the SHA-256 of its parent image ID, the instruction as written, the ARG
//! values in scope (they change what it expands to) and, for COPY/ADD, the names, modes and
//! bytes of every source file: two files of equal size and mtime but different bytes miss.
//! Keys map to image IDs in `<root>/build-cache.json`, rewritten atomically under a lock; an
//! entry whose image is gone is a miss.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// The cache of one store.
pub struct Cache {
    file: PathBuf,
}

impl Cache {
    /// The cache under the store root.
    pub fn new(root: &Path) -> Cache {
        Cache {
            file: root.join("build-cache.json"),
        }
    }

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The image a step with this key made, if recorded.
    pub fn get(&self, key: &str) -> Option<String> {
        self.read().get(key).cloned()
    }

    /// Records the image a step made.
    pub fn put(&self, key: &str, image: &str) -> Result<(), Error> {
        let lock_path = self.file.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("opening the build cache lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking the build cache")(e.into()))?;
        let mut all = self.read();
        all.insert(key.to_string(), image.to_string());
        let tmp = self
            .file
            .with_extension(format!("json.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(Error::io("writing the build cache"))?;
        f.write_all(&serde_json::to_vec(&all).expect("cache serialises"))
            .map_err(Error::io("writing the build cache"))?;
        std::fs::rename(&tmp, &self.file).map_err(Error::io("writing the build cache"))
    }
}

/// A running SHA-256 of what a step depends on.
pub struct Key(sha2::Sha256);

impl Key {
    /// Starts a key from the parent image and the instruction as written.
    pub fn new(parent: &str, instruction: &str) -> Key {
        use sha2::Digest;
        let mut k = Key(sha2::Sha256::new());
        k.add(parent.as_bytes());
        k.add(instruction.as_bytes());
        k
    }

    /// Adds one more input (length-prefixed, so inputs cannot run into each other).
    pub fn add(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Adds a file's bytes, streamed.
    pub fn add_file(&mut self, path: &Path) -> Result<(), Error> {
        let mut f =
            std::fs::File::open(path).map_err(Error::io(format!("reading {}", path.display())))?;
        std::io::copy(&mut f, &mut self.0)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        Ok(())
    }

    /// The key.
    pub fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}
