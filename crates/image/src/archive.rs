//! `save` and `load`: images in and out of tar archives.
//!
//! berth writes the archive Docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) plus Docker's `manifest.json`, so one file is read by `docker load`,
//! `podman load` and `skopeo` as a docker-archive, and (without `manifest.json`) as an
//! oci-archive. Blobs go out exactly as stored — compressed layers stay compressed, which
//! Docker's loader accepts — so saving is a copy, not a recompression.
//!
//! Loading reads the archive once, as a stream: every large entry is filed as a blob while
//! it is also unpacked speculatively into a snapshot, so by the time `manifest.json` or
//! `index.json` says which entries are layers, the layers are already unpacked. Entries are
//! matched by path, symlinks between entries (Docker's legacy format) are followed inside the
//! archive only, and every layer is checked against the config's diff IDs.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use berth_registry::oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use berth_registry::{media_types, Platform, Reference};
use serde_json::json;

use crate::compress::{detect, Compression};
use crate::digest::{chain_ids, validate_digest};
use crate::snapshot::{Prepared, SnapshotInfo};
use crate::store::{display_ref, ImageRecord};
use crate::unpack::{check_diff_id, unpack_stream, Unpacker};
use crate::{Error, Store};

/// Entries up to this size are kept in memory while loading (configs, manifests, tiny layers).
const SMALL: u64 = 1 << 20;

/// Which archive `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// docker-archive (also a valid OCI layout).
    Docker,
    /// oci-archive.
    Oci,
}

/// One image `load` put in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Image ID.
    pub id: String,
    /// Tags it got, as Docker prints them.
    pub tags: Vec<String>,
}

impl Store {
    /// Writes the named images (with the tags the names select) as one archive.
    pub fn save(
        &self,
        names: &[String],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<(), Error> {
        let meta = self.read_meta()?;
        let mut images: Vec<(String, Vec<String>)> = Vec::new();
        for name in names {
            let id = self.lookup(name)?;
            let tags: Vec<String> = match Reference::parse(name) {
                Ok(r) if r.digest().is_none() && !meta.images.contains_key(name) => {
                    let wanted = r.tag().map(|t| r.with_tag(t).to_string());
                    meta.tags
                        .iter()
                        .filter(|(t, v)| {
                            *v == &id
                                && match &wanted {
                                    Some(w) => *t == w,
                                    None => Reference::parse(t).is_ok_and(|x| x.name() == r.name()),
                                }
                        })
                        .map(|(t, _)| t.clone())
                        .collect()
                }
                _ => Vec::new(),
            };
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, t)) => t.extend(tags),
                None => images.push((id, tags)),
            }
        }
        let mut tar = tar::Builder::new(out);
        let mut written = std::collections::HashSet::new();
        let mut index_entries = Vec::new();
        let mut docker_manifest = Vec::new();
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        for (id, tags) in &images {
            let info = self.info(id)?;
            let mut blobs = vec![info.record.manifest.clone(), id.clone()];
            blobs.extend(
                info.manifest
                    .layers()
                    .iter()
                    .map(|l| l.digest().to_string()),
            );
            for b in &blobs {
                if written.insert(b.clone()) {
                    self.append_blob(&mut tar, b)?;
                }
            }
            let manifest_size = self.content.size(&info.record.manifest).unwrap_or(0);
            let mut entry = |annotations: Option<serde_json::Value>| {
                let mut e = json!({
                    "mediaType": info.record.manifest_media_type,
                    "digest": info.record.manifest,
                    "size": manifest_size,
                });
                if let Some(a) = annotations {
                    e["annotations"] = a;
                }
                index_entries.push(e);
            };
            if tags.is_empty() {
                entry(None);
            }
            for t in tags {
                let r = Reference::parse(t)?;
                entry(Some(json!({
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": r.tag().unwrap_or("latest"),
                })));
            }
            docker_manifest.push(json!({
                "Config": blob_path(id)?,
                "RepoTags": if tags.is_empty() { serde_json::Value::Null } else {
                    json!(tags.iter().map(|t| display_ref(t)).collect::<Vec<_>>())
                },
                "Layers": info.manifest.layers().iter()
                    .map(|l| blob_path(l.digest().as_ref()))
                    .collect::<Result<Vec<_>, _>>()?,
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": index_entries,
        });
        append_bytes(&mut tar, "index.json", index.to_string().as_bytes())?;
        if format == ArchiveFormat::Docker {
            let m = serde_json::Value::Array(docker_manifest).to_string();
            append_bytes(&mut tar, "manifest.json", m.as_bytes())?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(Error::io("writing the archive"))?;
        Ok(())
    }

    fn append_blob<W: Write>(&self, tar: &mut tar::Builder<W>, digest: &str) -> Result<(), Error> {
        let file = self.content.open_blob(digest)?;
        let size = file.metadata().map_err(Error::io("reading a blob"))?.len();
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, blob_path(digest)?, file)
            .map_err(Error::io("writing the archive"))
    }

    /// Reads a docker-archive or oci-archive (from `docker save`, `podman save`, or berth)
    /// and stores its images with their tags.
    pub fn load(&self, input: impl Read + Send) -> Result<Vec<LoadedImage>, Error> {
        let mut entries = Entries::default();
        let mut archive = tar::Archive::new(input);
        let bad = |e: std::io::Error| {
            Error::malformed(
                "archive",
                format!("{e}; is this a docker save or OCI archive?"),
            )
        };
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let path = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).to_string())
                        .unwrap_or_default();
                    let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                        normalise(&format!("{parent}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    entries.links.insert(path, target);
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().size().map_err(bad)?;
                    let file = if size <= SMALL {
                        let mut bytes = Vec::with_capacity(size as usize);
                        entry.read_to_end(&mut bytes).map_err(bad)?;
                        LoadedFile::Small(bytes)
                    } else {
                        self.load_large(&mut entry, &path)?
                    };
                    entries.files.insert(path, file);
                }
                _ => {}
            }
        }
        let mut loaded = Vec::new();
        if let Some(manifest_json) = entries.small("manifest.json") {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Item {
                config: String,
                #[serde(default)]
                repo_tags: Option<Vec<String>>,
                layers: Vec<String>,
            }
            let items: Vec<Item> = serde_json::from_slice(&manifest_json)
                .map_err(|e| Error::malformed("manifest.json in the archive", e))?;
            for item in items {
                let config = entries.bytes(self, &item.config)?;
                let tags = item.repo_tags.unwrap_or_default();
                loaded.push(self.load_image(&mut entries, config, &item.layers, None, &tags)?);
            }
        } else if let Some(index_json) = entries.small("index.json") {
            let index: ImageIndex = serde_json::from_slice(&index_json)
                .map_err(|e| Error::malformed("index.json in the archive", e))?;
            for d in index.manifests() {
                let annotations = d.annotations().clone().unwrap_or_default();
                let name = annotations
                    .get("io.containerd.image.name")
                    .or_else(|| annotations.get("org.opencontainers.image.ref.name"))
                    .filter(|n| n.contains(['/', ':']))
                    .cloned();
                let mut bytes = entries.bytes(self, &blob_path(d.digest().as_ref())?)?;
                let mut media_type = d.media_type().to_string();
                if media_types::is_index(&media_type) {
                    let inner: ImageIndex = serde_json::from_slice(&bytes)
                        .map_err(|e| Error::malformed(format!("index {}", d.digest()), e))?;
                    let host = Platform::host();
                    let chosen = inner
                        .manifests()
                        .iter()
                        .find(|m| {
                            m.platform().as_ref().is_some_and(|p| {
                                p.architecture().to_string() == host.architecture
                                    && p.os().to_string() == host.os
                            })
                        })
                        .ok_or_else(|| {
                            Error::malformed(
                                format!("index {}", d.digest()),
                                format!("no manifest for {host}"),
                            )
                        })?;
                    media_type = chosen.media_type().to_string();
                    bytes = entries.bytes(self, &blob_path(chosen.digest().as_ref())?)?;
                }
                let manifest: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::malformed(format!("manifest {}", d.digest()), e))?;
                let config =
                    entries.bytes(self, &blob_path(manifest.config().digest().as_ref())?)?;
                let layers: Vec<String> = manifest
                    .layers()
                    .iter()
                    .map(|l| blob_path(l.digest().as_ref()))
                    .collect::<Result<_, _>>()?;
                let tags: Vec<String> = name.into_iter().collect();
                loaded.push(self.load_image(
                    &mut entries,
                    config,
                    &layers,
                    Some((bytes, media_type)),
                    &tags,
                )?);
            }
        } else {
            return Err(Error::malformed(
                "archive",
                "it has neither manifest.json nor index.json: not a docker-archive or oci-archive",
            ));
        }
        Ok(loaded)
    }

    /// Files a large entry as a blob while unpacking it speculatively.
    fn load_large(&self, entry: &mut impl Read, path: &str) -> Result<LoadedFile, Error> {
        let mut blob = self.content.temp_blob()?;
        let mut unpacker = Unpacker::start(&self.snapshots, "load", path, None)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(Error::io(format!("reading {path} from the archive")))?;
            if n == 0 {
                break;
            }
            unpacker.feed(&buf[..n]);
            blob.write_all(&buf[..n])
                .map_err(Error::io(format!("storing {path}")))?;
        }
        let (digest, _) = blob.finish()?;
        let unpacked = match unpacker.join() {
            Ok((diff_id, stats)) => unpacker.take_prepared().map(|p| (diff_id, stats.size, p)),
            Err(_) => None, // not a layer, or not one that unpacks: decided later
        };
        Ok(LoadedFile::Blob { digest, unpacked })
    }

    fn load_image(
        &self,
        entries: &mut Entries,
        config_bytes: Vec<u8>,
        layer_paths: &[String],
        manifest: Option<(Vec<u8>, String)>,
        tags: &[String],
    ) -> Result<LoadedImage, Error> {
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::malformed("image config in the archive", e))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != layer_paths.len() {
            return Err(Error::malformed(
                "archive",
                format!(
                    "{} layers listed but the config has {} diff_ids",
                    layer_paths.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chains = chain_ids(diff_ids);
        let mut layers = Vec::new();
        for (i, path) in layer_paths.iter().enumerate() {
            let (digest, prepared) = entries.take_layer(self, path)?;
            let size = self.content.size(&digest).unwrap_or(0);
            let info = |diff_id: String, size: u64| SnapshotInfo {
                chain_id: chains[i].clone(),
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
                diff_id,
                size,
            };
            if self.snapshots.stat(&chains[i])?.is_none() {
                match prepared {
                    Some((diff_id, stats_size, p)) if diff_id == diff_ids[i] => {
                        self.snapshots.commit(p, &info(diff_id, stats_size))?;
                    }
                    _ => {
                        let p = self.snapshots.prepare(&chains[i])?;
                        let (diff_id, stats) =
                            unpack_stream(self.content.open_blob(&digest)?, &p.fs(), &digest)?;
                        check_diff_id(&digest, &diff_ids[i], &diff_id)?;
                        self.snapshots.commit(p, &info(diff_id, stats.size))?;
                    }
                }
            }
            let mut head = [0u8; 4];
            let n = self
                .content
                .open_blob(&digest)?
                .read(&mut head)
                .map_err(Error::io("reading a layer"))?;
            let media_type = match detect(&head[..n]) {
                Compression::None => media_types::OCI_LAYER_TAR,
                Compression::Gzip => media_types::OCI_LAYER_GZIP,
                Compression::Zstd => media_types::OCI_LAYER_ZSTD,
            };
            layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        let id = self.content.write_bytes(&config_bytes)?;
        let (manifest_bytes, manifest_media_type) = match manifest {
            Some(m) => m,
            None => (
                serde_json::to_vec(&json!({
                    "schemaVersion": 2,
                    "mediaType": media_types::OCI_MANIFEST,
                    "config": {"mediaType": media_types::OCI_CONFIG, "digest": id, "size": config_bytes.len()},
                    "layers": layers,
                }))
                .expect("JSON serialises"),
                media_types::OCI_MANIFEST.to_string(),
            ),
        };
        let manifest_digest = self.content.write_bytes(&manifest_bytes)?;
        let record = ImageRecord {
            manifest: manifest_digest,
            manifest_media_type,
            index: None,
            repo_digests: Vec::new(),
            last_tag_time: None,
        };
        let mut shown = Vec::new();
        if tags.is_empty() {
            self.record(&id, record.clone(), None)?;
        }
        for t in tags {
            let r = Reference::parse_with_default_tag(t)?;
            self.record(&id, record.clone(), Some(&r))?;
            shown.push(display_ref(&r.to_string()));
        }
        Ok(LoadedImage { id, tags: shown })
    }
}

enum LoadedFile {
    Small(Vec<u8>),
    Blob {
        digest: String,
        unpacked: Option<(String, u64, Prepared)>,
    },
}

#[derive(Default)]
struct Entries {
    files: HashMap<String, LoadedFile>,
    links: BTreeMap<String, String>,
}

impl Entries {
    fn resolve(&self, path: &str) -> String {
        let mut p = normalise(path);
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    fn small(&self, path: &str) -> Option<Vec<u8>> {
        match self.files.get(path) {
            Some(LoadedFile::Small(b)) => Some(b.clone()),
            _ => None,
        }
    }

    fn missing(path: &str) -> Error {
        Error::malformed(
            "archive",
            format!("it refers to {path:?}, which it does not contain"),
        )
    }

    /// The bytes of a (small) entry.
    fn bytes(&self, store: &Store, path: &str) -> Result<Vec<u8>, Error> {
        let p = self.resolve(path);
        match self.files.get(&p) {
            Some(LoadedFile::Small(b)) => Ok(b.clone()),
            Some(LoadedFile::Blob { digest, .. }) => store.content.read(digest),
            None => Err(Self::missing(path)),
        }
    }

    /// A layer entry as a stored blob, with its speculative unpack if one succeeded.
    #[allow(clippy::type_complexity)]
    fn take_layer(
        &mut self,
        store: &Store,
        path: &str,
    ) -> Result<(String, Option<(String, u64, Prepared)>), Error> {
        let p = self.resolve(path);
        match self.files.get_mut(&p) {
            Some(LoadedFile::Small(b)) => Ok((store.content.write_bytes(b)?, None)),
            Some(LoadedFile::Blob { digest, unpacked }) => Ok((digest.clone(), unpacked.take())),
            None => Err(Self::missing(path)),
        }
    }
}

fn blob_path(digest: &str) -> Result<String, Error> {
    Ok(format!("blobs/sha256/{}", validate_digest(digest)?))
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), Error> {
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
        .map_err(Error::io("writing the archive"))
}

/// `./a/../b//c` → `b/c`, as Go's `filepath.Clean` and then without a leading `/`: never
/// climbs above the root. Archives, mount targets and build paths all clean this way.
pub fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}
