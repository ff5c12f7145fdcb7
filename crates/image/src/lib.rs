//! berth's image store: what `docker pull`, `images`, `save` and `load` keep on disk.
//!
//! The store is three parts, each behind a small API, in the manner of containerd:
//!
//! - [`content`]: blobs addressed by digest (`blobs/sha256/…`, an OCI layout). Writes go
//!   through an *ingest* that checks size and digest and then renames into place, so a blob
//!   is either complete and verified or invisible. Ingests survive `kill -9` and resume.
//! - [`snapshot`]: each layer unpacked into its own directory, keyed by *chain ID*, ready to be
//!   an overlayfs lower layer; shared by every image whose layer stack starts the same way.
//! - [`apply`] / [`diff`]: tar → snapshot (whiteouts, and never a write outside the root) and
//!   directory → tar, the two directions of a layer.
//!
//! On top, [`Store`] keeps image records and tags (`images.json`, rewritten atomically under a
//! lock) and offers the verbs: pull (with `berth-registry`), push, tag, remove, prune, save,
//! load and import.
//!
//! ```no_run
//! use berth_image::Store;
//! let store = Store::open("/var/lib/berth".as_ref())?;
//! for image in store.list()? {
//!     println!("{} {:?}", image.id, image.tags);
//! }
//! # Ok::<(), berth_image::Error>(())
//! ```
//!
//! **Architecture invariant:** this crate knows nothing of containers. It hands out overlay
//! lower directories ([`snapshot::Snapshots::lowerdirs`]) and takes layer diffs back; who
//! mounts them, and why, is the engine's business.
#![deny(missing_docs)]

pub mod apply;
pub mod archive;
pub mod compress;
pub mod content;
pub mod diff;
mod digest;
mod error;
pub mod import;
pub mod inspect;
mod lock;
mod pull;
mod push;
pub mod snapshot;
mod store;
mod unpack;

pub use archive::normalise as clean_path;
pub use digest::{chain_ids, sha256_hex, validate_digest};
pub use error::Error;
pub use pull::PullOutcome;
pub use store::{display_ref, short_id, ImageInfo, ImageRecord, RemoveOutcome, Store};

/// Shell-style `*` and `?` matching of a whole string, as Docker's `reference` filter
/// (`images --filter reference=busy*`) matches image names.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] == t[ti] && p[pi] != '*')) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod glob_tests {
    #[test]
    fn globs() {
        assert!(super::glob("busy*", "busybox"));
        assert!(super::glob("b?sy*:lat*", "busybox:latest"));
        assert!(!super::glob("busy", "busybox"));
        assert!(super::glob("*", ""));
    }
}
