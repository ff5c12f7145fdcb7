//! `pull`: registry → content + snapshots, every layer downloaded, verified and unpacked at
//! once in its own pipeline.
//!
//! Per layer, three stages run concurrently: the registry's transfer task; the sink, which
//! hashes the compressed bytes and appends them to the ingest file; and an unpacker thread,
//! which decompresses, hashes the tar (the diff ID) and applies it into a prepared snapshot.
//! Nothing is visible until both digests check out: then the snapshot is committed, then the
//! blob. A layer is never held in memory; a bounded channel carries it between stages.

use std::io::Read;
use std::sync::Arc;

use berth_registry::oci_spec::image::Descriptor;
use berth_registry::{
    BlobJob, BlobSink, BoxError, Platform, Progress, ProgressEvent, Reference, Registry,
    ResolvedImage,
};

use crate::content::Ingest;
use crate::digest::chain_ids;
use crate::snapshot::{SnapshotInfo, Snapshots};
use crate::store::ImageRecord;
use crate::unpack::{check_diff_id, unpack_stream, Unpacker};
use crate::{Error, Store};

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// Image ID.
    pub id: String,
    /// Digest of what the tag pointed to (index or manifest).
    pub repo_digest: String,
    /// Whether any layer had to be downloaded (Docker's "Downloaded newer image").
    pub downloaded: bool,
    /// Whether the tag now points at a different image than before.
    pub changed: bool,
}

/// One layer to put in place.
struct LayerPlan {
    descriptor: Descriptor,
    diff_id: String,
    chain_id: String,
    parent: Option<String>,
}

impl Store {
    /// Pulls `reference` for `platform` into the store and tags it.
    pub fn pull(
        &self,
        registry: &Registry,
        reference: &Reference,
        platform: &Platform,
        progress: Arc<dyn Progress>,
    ) -> Result<PullOutcome, Error> {
        let resolved = registry.resolve(reference, platform)?;
        let layers = resolved.layers();
        let diff_ids = resolved.config.rootfs().diff_ids();
        if diff_ids.len() != layers.len() {
            return Err(Error::malformed(
                format!("image {reference}"),
                format!(
                    "the manifest lists {} layers but the config has {} diff_ids",
                    layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chains = chain_ids(diff_ids);
        let plans: Vec<LayerPlan> = layers
            .iter()
            .enumerate()
            .map(|(i, d)| LayerPlan {
                descriptor: d.clone(),
                diff_id: diff_ids[i].clone(),
                chain_id: chains[i].clone(),
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
            })
            .collect();
        let results: Vec<Result<bool, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = plans
                .iter()
                .map(|plan| {
                    let progress = progress.clone();
                    let resolved = &resolved;
                    s.spawn(move || self.pull_layer(registry, resolved, plan, progress))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("layer thread panicked"))
                .collect()
        });
        let mut downloaded = false;
        for r in results {
            downloaded |= r?;
        }
        let config_digest = self.content.write_bytes(&resolved.config_bytes)?;
        self.content.write_bytes(&resolved.manifest_bytes)?;
        let index = match &resolved.index {
            Some(bytes) => Some(self.content.write_bytes(bytes)?),
            None => None,
        };
        let record = ImageRecord {
            manifest: resolved.manifest_digest.clone(),
            manifest_media_type: resolved.manifest_media_type.clone(),
            index,
            repo_digests: vec![format!("{}@{}", reference.name(), resolved.repo_digest)],
            last_tag_time: None,
        };
        let tag = reference.tag().is_some().then_some(reference);
        let before = match tag {
            Some(t) => self.lookup(&t.to_string()).ok(),
            None => None,
        };
        self.record(&config_digest, record, tag)?;
        Ok(PullOutcome {
            changed: before.as_deref() != Some(config_digest.as_str()),
            id: config_digest,
            repo_digest: resolved.repo_digest.clone(),
            downloaded,
        })
    }

    /// Puts one layer in place; returns whether it was downloaded.
    fn pull_layer(
        &self,
        registry: &Registry,
        resolved: &ResolvedImage,
        plan: &LayerPlan,
        progress: Arc<dyn Progress>,
    ) -> Result<bool, Error> {
        let digest = plan.descriptor.digest().to_string();
        let have_snapshot = self.snapshots.stat(&plan.chain_id)?.is_some();
        if have_snapshot && self.content.exists(&digest) {
            progress.event(ProgressEvent::Skipped {
                digest,
                reason: "Already exists".into(),
            });
            return Ok(false);
        }
        let Some(ingest) = self.content.ingest(&digest, plan.descriptor.size())? else {
            // The blob is here (perhaps another pull just finished it): unpack locally.
            if !have_snapshot {
                self.unpack_blob(&digest, plan)?;
            }
            progress.event(ProgressEvent::Skipped {
                digest,
                reason: "Already exists".into(),
            });
            return Ok(false);
        };
        let unpacker = if have_snapshot {
            None
        } else {
            // Resuming: the bytes an earlier, killed pull left are unpacked first.
            let earlier: Option<Box<dyn Read + Send>> = if ingest.offset() > 0 {
                let f = std::fs::File::open(ingest.partial_path())
                    .map_err(Error::io(format!("re-reading partial {digest}")))?;
                Some(Box::new(f.take(ingest.offset())))
            } else {
                None
            };
            Some(Unpacker::start(
                &self.snapshots,
                &plan.chain_id,
                &digest,
                earlier,
            )?)
        };
        let sink = LayerSink {
            ingest: Some(ingest),
            unpacker,
            snapshots: self.snapshots.clone(),
            info: SnapshotInfo {
                chain_id: plan.chain_id.clone(),
                parent: plan.parent.clone(),
                diff_id: plan.diff_id.clone(),
                size: 0,
            },
        };
        registry.fetch_blob(
            resolved,
            BlobJob {
                descriptor: plan.descriptor.clone(),
                sink: Box::new(sink),
            },
            progress,
        )?;
        Ok(true)
    }

    /// Unpacks a blob already in the store into its snapshot.
    fn unpack_blob(&self, digest: &str, plan: &LayerPlan) -> Result<(), Error> {
        let prepared = self.snapshots.prepare(&plan.chain_id)?;
        let blob = self.content.open_blob(digest)?;
        let (diff_id, stats) = unpack_stream(blob, &prepared.fs(), digest)?;
        check_diff_id(digest, &plan.diff_id, &diff_id)?;
        self.snapshots.commit(
            prepared,
            &SnapshotInfo {
                chain_id: plan.chain_id.clone(),
                parent: plan.parent.clone(),
                diff_id,
                size: stats.size,
            },
        )
    }
}

/// The sink registry transfers write into: ingest + unpacker.
struct LayerSink {
    ingest: Option<Ingest>,
    unpacker: Option<Unpacker>,
    snapshots: Snapshots,
    info: SnapshotInfo,
}

impl BlobSink for LayerSink {
    fn offset(&self) -> u64 {
        self.ingest.as_ref().map_or(0, |i| i.offset())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), BoxError> {
        self.ingest
            .as_mut()
            .expect("open until finish")
            .write(chunk)?;
        if let Some(u) = &mut self.unpacker {
            u.feed(chunk);
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), BoxError> {
        let ingest = self.ingest.take().expect("finished once");
        let unpacked = self.unpacker.as_mut().map(|u| u.join());
        if let Err(e) = ingest.verify() {
            ingest.discard();
            return Err(e.into());
        }
        if let Some(unpacked) = unpacked {
            let (diff_id, stats) = match unpacked {
                Ok(x) => x,
                Err(e) => {
                    ingest.discard();
                    return Err(e.into());
                }
            };
            if let Err(e) = check_diff_id(ingest.digest(), &self.info.diff_id, &diff_id) {
                ingest.discard();
                return Err(e.into());
            }
            let prepared = self
                .unpacker
                .as_mut()
                .and_then(|u| u.take_prepared())
                .expect("prepared with the unpacker");
            let info = SnapshotInfo {
                size: stats.size,
                ..self.info.clone()
            };
            self.snapshots.commit(prepared, &info)?;
        }
        ingest.commit()?;
        Ok(())
    }
}
