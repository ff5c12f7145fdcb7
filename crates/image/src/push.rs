//! `push`: the store's blobs and manifest → a registry.

use std::sync::Arc;

use berth_registry::{Progress, PushBlob, PushImage, Reference, Registry};

use crate::{Error, Store};

impl Store {
    /// Pushes the local image tagged `target` to the registry `target` names; returns the
    /// manifest digest and size, as `docker push` prints them.
    pub fn push(
        &self,
        registry: &Registry,
        target: &Reference,
        progress: Arc<dyn Progress>,
    ) -> Result<(String, usize), Error> {
        let id = self.lookup(&target.to_string())?;
        let info = self.info(&id)?;
        let manifest_bytes = self.content.read(&info.record.manifest)?;
        let mut blobs = Vec::new();
        let descriptors = std::iter::once(info.manifest.config().clone())
            .chain(info.manifest.layers().iter().cloned());
        for d in descriptors {
            let digest = d.digest().to_string();
            if !self.content.exists(&digest) {
                return Err(Error::malformed(
                    format!("image {target}"),
                    format!("blob {digest} is missing from the store; pull the image again"),
                ));
            }
            let content = self.content.clone();
            blobs.push(PushBlob {
                descriptor: d,
                open: Box::new(move || Ok(Box::new(content.open_blob(&digest)?) as _)),
            });
        }
        let mount_from = info
            .record
            .repo_digests
            .iter()
            .chain(info.tags.iter())
            .filter_map(|r| Reference::parse(r).ok())
            .filter(|r| r.domain() == target.domain() && r.path() != target.path())
            .map(|r| r.path().to_string())
            .collect();
        let size = manifest_bytes.len();
        let digest = registry.push_image(
            target,
            PushImage {
                manifest_bytes,
                manifest_media_type: info.record.manifest_media_type.clone(),
                blobs,
                mount_from,
            },
            progress,
        )?;
        let mut record = info.record.clone();
        record.repo_digests = vec![format!("{}@{digest}", target.name())];
        self.record(&id, record, None)?;
        Ok((digest, size))
    }
}
