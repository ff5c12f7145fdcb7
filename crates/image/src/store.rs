//! Image records and tags on top of content and snapshots.
//!
//! `images.json` maps image IDs (config digests, as Docker's IDs are) to their manifest and
//! repo digests, and normalised tags (`docker.io/library/busybox:latest`) to image IDs. It is
//! rewritten whole — temp file, fsync, rename — under an exclusive lock, so readers never see
//! half of it and concurrent writers never lose each other's updates.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_registry::oci_spec::image::{ImageConfiguration, ImageManifest};
use berth_registry::Reference;
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::digest::{chain_ids, validate_digest};
use crate::lock::FileLock;
use crate::snapshot::Snapshots;
use crate::Error;

const META_FILE: &str = "images.json";
const LOCK_FILE: &str = "images.lock";

/// What the store keeps about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the platform manifest.
    pub manifest: String,
    /// Its media type.
    pub manifest_media_type: String,
    /// Digest of the index it was chosen from, if any (stored too, for push and save).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// `name@digest` under which registries know it.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// When a tag last pointed here (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Meta {
    fn tags_of(&self, id: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// An image as listed: its record, tags and parsed config.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// Image ID (`sha256:` + config digest).
    pub id: String,
    /// The stored record.
    pub record: ImageRecord,
    /// Normalised tags pointing at it.
    pub tags: Vec<String>,
    /// Raw config bytes (for `inspect`, which shows fields oci-spec does not model).
    pub config_bytes: Vec<u8>,
    /// Parsed config.
    pub config: ImageConfiguration,
    /// Parsed manifest.
    pub manifest: ImageManifest,
    /// Uncompressed size of all layers.
    pub size: u64,
    /// Sizes of each layer, bottom first.
    pub layer_sizes: Vec<u64>,
    /// Chain ID of the top layer: the snapshot a container starts from.
    pub top_chain_id: String,
}

/// What `rmi` did, in Docker's words.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoveOutcome {
    /// References removed (`busybox:latest`, `busybox@sha256:…`).
    pub untagged: Vec<String>,
    /// Image IDs deleted.
    pub deleted: Vec<String>,
    /// Bytes freed on disk.
    pub reclaimed: u64,
}

/// The image store.
pub struct Store {
    root: PathBuf,
    /// Blobs.
    pub content: Content,
    /// Unpacked layers.
    pub snapshots: Snapshots,
}

impl Store {
    /// Opens (creating) a store at `root`, sweeping what killed commands left behind.
    pub fn open(root: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(root).map_err(Error::io(format!("creating {}", root.display())))?;
        let store = Store {
            root: root.to_path_buf(),
            content: Content::open(root)?,
            snapshots: Snapshots::open(root)?,
        };
        store.snapshots.clean_stale();
        std::fs::create_dir_all(store.tmp_dir()).map_err(Error::io("creating tmp"))?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Scratch space on the store's filesystem (for renames into place).
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn read_meta(&self) -> Result<Meta, Error> {
        let path = self.root.join(META_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::malformed(
                    path.display().to_string(),
                    format!("{e}; the store's image list is damaged"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Meta::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
        }
    }

    /// Runs `f` on the image list under the store lock and writes the result atomically.
    pub(crate) fn update_meta<T>(
        &self,
        f: impl FnOnce(&mut Meta) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = FileLock::exclusive(&self.root.join(LOCK_FILE))
            .map_err(Error::io("locking the image list"))?;
        let mut meta = self.read_meta()?;
        let out = f(&mut meta)?;
        let path = self.root.join(META_FILE);
        let tmp = self
            .root
            .join(format!(".{META_FILE}.{}", std::process::id()));
        let ctx = || format!("writing {}", path.display());
        let mut file = std::fs::File::create(&tmp).map_err(Error::io(ctx()))?;
        file.write_all(&serde_json::to_vec_pretty(&meta).expect("meta serialises"))
            .map_err(Error::io(ctx()))?;
        file.sync_all().map_err(Error::io(ctx()))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(ctx()))?;
        Ok(out)
    }

    /// Records an image and points `tag` (if any) at it; returns the ID the tag pointed to
    /// before, if it was another image.
    pub fn record(
        &self,
        id: &str,
        record: ImageRecord,
        tag: Option<&Reference>,
    ) -> Result<Option<String>, Error> {
        validate_digest(id)?;
        self.update_meta(|meta| {
            let entry = meta.images.entry(id.to_string()).or_insert(record.clone());
            for rd in record.repo_digests {
                if !entry.repo_digests.contains(&rd) {
                    entry.repo_digests.push(rd);
                }
            }
            entry.manifest = record.manifest;
            entry.manifest_media_type = record.manifest_media_type;
            if record.index.is_some() {
                entry.index = record.index;
            }
            let mut previous = None;
            if let Some(t) = tag {
                entry.last_tag_time = Some(now_rfc3339());
                let old = meta.tags.insert(t.to_string(), id.to_string());
                previous = old.filter(|o| o != id);
            }
            Ok(previous)
        })
    }

    /// Everything about one image.
    pub fn info(&self, id: &str) -> Result<ImageInfo, Error> {
        let meta = self.read_meta()?;
        let record = meta
            .images
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoSuchImage {
                name: id.to_string(),
            })?;
        self.info_from(&meta, id, record)
    }

    fn info_from(&self, meta: &Meta, id: &str, record: ImageRecord) -> Result<ImageInfo, Error> {
        let config_bytes = self.content.read(id)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::malformed(format!("image config {id}"), e))?;
        let manifest: ImageManifest = serde_json::from_slice(&self.content.read(&record.manifest)?)
            .map_err(|e| Error::malformed(format!("manifest {}", record.manifest), e))?;
        let chains = chain_ids(config.rootfs().diff_ids());
        let mut layer_sizes = Vec::with_capacity(chains.len());
        for c in &chains {
            layer_sizes.push(self.snapshots.stat(c)?.map(|s| s.size).unwrap_or(0));
        }
        Ok(ImageInfo {
            id: id.to_string(),
            tags: meta.tags_of(id),
            size: layer_sizes.iter().sum(),
            layer_sizes,
            top_chain_id: chains.last().cloned().unwrap_or_default(),
            record,
            config_bytes,
            config,
            manifest,
        })
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageInfo>, Error> {
        let meta = self.read_meta()?;
        let mut out = Vec::new();
        for (id, rec) in &meta.images {
            out.push(self.info_from(&meta, id, rec.clone())?);
        }
        out.sort_by(|a, b| {
            b.config
                .created()
                .cmp(a.config.created())
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Finds an image by reference, `name@digest`, full ID or unambiguous ID prefix, in
    /// Docker's order.
    pub fn lookup(&self, name: &str) -> Result<String, Error> {
        let meta = self.read_meta()?;
        lookup_in(&meta, name)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let target = Reference::parse_with_default_tag(target)?;
        if target.digest().is_some() {
            return Err(Error::malformed(
                target.to_string(),
                "refusing to create a tag with a digest reference",
            ));
        }
        self.update_meta(|meta| {
            let id = lookup_in(meta, source)?;
            meta.tags.insert(target.to_string(), id.clone());
            if let Some(rec) = meta.images.get_mut(&id) {
                rec.last_tag_time = Some(now_rfc3339());
            }
            Ok(())
        })
    }

    /// `docker rmi [-f] NAME`: untags, and deletes the image once no tag is left. Images in
    /// `in_use` (containers stand on them: their snapshots are mounted) are never deleted:
    /// without `force` that is a conflict, with it only their tags go, as in Docker.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &HashSet<String>,
    ) -> Result<RemoveOutcome, Error> {
        let (outcome, doomed) = self.update_meta(|meta| {
            let id = lookup_in(meta, name)?;
            let tags = meta.tags_of(&id);
            let by_tag = Reference::parse_with_default_tag(name)
                .ok()
                .filter(|r| r.digest().is_none())
                .map(|r| r.to_string())
                .filter(|r| tags.contains(r));
            let mut out = RemoveOutcome::default();
            let doomed = match by_tag {
                Some(tag) if tags.len() > 1 => {
                    meta.tags.remove(&tag);
                    out.untagged.push(display_ref(&tag));
                    None
                }
                _ => {
                    let repos: BTreeSet<String> = tags
                        .iter()
                        .filter_map(|t| Reference::parse(t).ok().map(|r| r.name()))
                        .collect();
                    if repos.len() > 1 && !force {
                        return Err(Error::Conflict(format!(
                            "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            short_id(&id)
                        )));
                    }
                    if in_use.contains(&id) {
                        if !force {
                            return Err(Error::Conflict(format!(
                                "unable to delete {} (must be forced) - image is being used by a container",
                                short_id(&id)
                            )));
                        }
                        for t in tags {
                            meta.tags.remove(&t);
                            out.untagged.push(display_ref(&t));
                        }
                        return Ok((out, None));
                    }
                    Some(delete_record(meta, &id, &mut out))
                }
            };
            Ok((out, doomed))
        })?;
        let mut outcome = outcome;
        if let Some((id, record)) = doomed {
            outcome.reclaimed += self.delete_unreferenced(&id, &record)?;
        }
        Ok(outcome)
    }

    /// `docker image prune [-a]`: deletes untagged images (all unused ones with `all`),
    /// keeping those in `in_use` (images containers stand on).
    pub fn prune(&self, all: bool, in_use: &HashSet<String>) -> Result<RemoveOutcome, Error> {
        let (mut outcome, doomed) = self.update_meta(|meta| {
            let mut out = RemoveOutcome::default();
            let ids: Vec<String> = meta
                .images
                .keys()
                .filter(|id| !in_use.contains(*id))
                .filter(|id| all || meta.tags_of(id).is_empty())
                .cloned()
                .collect();
            let doomed: Vec<_> = ids
                .iter()
                .map(|id| delete_record(meta, id, &mut out))
                .collect();
            Ok((out, doomed))
        })?;
        for (id, record) in doomed {
            outcome.reclaimed += self.delete_unreferenced(&id, &record)?;
        }
        Ok(outcome)
    }

    /// Deletes the blobs and snapshots of a removed image that no remaining image uses.
    fn delete_unreferenced(&self, id: &str, record: &ImageRecord) -> Result<u64, Error> {
        let meta = self.read_meta()?;
        let mut keep_blobs = HashSet::new();
        let mut keep_chains = HashSet::new();
        for (other_id, other) in &meta.images {
            let (blobs, chains) = self.references(other_id, other);
            keep_blobs.extend(blobs);
            keep_chains.extend(chains);
        }
        let (blobs, chains) = self.references(id, record);
        let mut freed = 0;
        for c in chains.iter().filter(|c| !keep_chains.contains(*c)) {
            freed += self.snapshots.stat(c)?.map(|s| s.size).unwrap_or(0);
            self.snapshots.remove(c)?;
        }
        for b in blobs.iter().filter(|b| !keep_blobs.contains(*b)) {
            self.content.delete(b)?;
        }
        Ok(freed)
    }

    /// The blobs and snapshot chain IDs an image stands on.
    fn references(&self, id: &str, record: &ImageRecord) -> (Vec<String>, Vec<String>) {
        let mut blobs = vec![id.to_string(), record.manifest.clone()];
        blobs.extend(record.index.clone());
        let mut chains = Vec::new();
        if let Ok(bytes) = self.content.read(&record.manifest) {
            if let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) {
                blobs.extend(m.layers().iter().map(|l| l.digest().to_string()));
            }
        }
        if let Ok(bytes) = self.content.read(id) {
            if let Ok(c) = serde_json::from_slice::<ImageConfiguration>(&bytes) {
                chains = chain_ids(c.rootfs().diff_ids());
            }
        }
        (blobs, chains)
    }
}

fn delete_record(meta: &mut Meta, id: &str, out: &mut RemoveOutcome) -> (String, ImageRecord) {
    for t in meta.tags_of(id) {
        meta.tags.remove(&t);
        out.untagged.push(display_ref(&t));
    }
    let record = meta.images.remove(id).expect("caller found the image");
    for rd in &record.repo_digests {
        out.untagged.push(display_ref(rd));
    }
    out.deleted.push(id.to_string());
    (id.to_string(), record)
}

fn lookup_in(meta: &Meta, name: &str) -> Result<String, Error> {
    let not_found = || Error::NoSuchImage {
        name: match Reference::parse_with_default_tag(name) {
            Ok(r) if r.digest().is_none() => {
                format!("{}:{}", r.familiar_name(), r.tag().unwrap_or("latest"))
            }
            _ => name.to_string(),
        },
    };
    if let Some(hex) = name.strip_prefix("sha256:") {
        return meta
            .images
            .keys()
            .find(|id| id[7..].starts_with(hex) && !hex.is_empty())
            .cloned()
            .ok_or_else(not_found);
    }
    if let Ok(r) = Reference::parse_with_default_tag(name) {
        if let Some(d) = r.digest() {
            let wanted = format!("{}@{d}", r.name());
            if let Some((id, _)) = meta
                .images
                .iter()
                .find(|(_, rec)| rec.repo_digests.contains(&wanted) || (rec.manifest == d))
            {
                return Ok(id.clone());
            }
        } else if let Some(id) = meta.tags.get(&r.to_string()) {
            return Ok(id.clone());
        }
    }
    let is_hex = name.len() >= 4
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        let matches: Vec<&String> = meta
            .images
            .keys()
            .filter(|id| id[7..].starts_with(name))
            .collect();
        if matches.len() == 1 {
            return Ok(matches[0].clone());
        }
    }
    Err(not_found())
}

/// Docker's short image ID (12 hex characters).
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// A stored reference as Docker prints it (`busybox:latest`, `busybox@sha256:…`).
pub fn display_ref(full: &str) -> String {
    match Reference::parse(full) {
        Ok(r) => {
            let mut s = r.familiar_name();
            if let Some(t) = r.tag() {
                s.push(':');
                s.push_str(t);
            }
            if let Some(d) = r.digest() {
                s.push('@');
                s.push_str(d);
            }
            s
        }
        Err(_) => full.to_string(),
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
