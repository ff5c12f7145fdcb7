//! Upload: blobs the registry lacks (mounted from a sibling repository when possible), then
//! the manifest.

use std::io::Read;
use std::sync::Arc;

use oci_spec::image::Descriptor;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::sync::{mpsc, Semaphore};

use crate::client::{error_chain, sha256_digest, status_error, Endpoint, Inner, Registry};
use crate::{BoxError, Error, Progress, ProgressEvent, Reference};

/// A blob to upload and how to read it.
pub struct PushBlob {
    /// Digest, size and media type.
    pub descriptor: Descriptor,
    /// Opens the blob's bytes; called only if the registry lacks it.
    pub open: Box<dyn Fn() -> Result<Box<dyn Read + Send>, BoxError> + Send + Sync>,
}

/// One platform image to push.
pub struct PushImage {
    /// The manifest exactly as stored (its digest is the image's repo digest).
    pub manifest_bytes: Vec<u8>,
    /// Its media type.
    pub manifest_media_type: String,
    /// Config first, then layers.
    pub blobs: Vec<PushBlob>,
    /// Repositories on the same registry that are known to hold these blobs, for mounts.
    pub mount_from: Vec<String>,
}

impl Registry {
    /// Pushes an image under `target`'s tag (or digest); returns the manifest digest.
    pub fn push_image(
        &self,
        target: &Reference,
        image: PushImage,
        progress: Arc<dyn Progress>,
    ) -> Result<String, Error> {
        let inner = self.inner.clone();
        let target = target.clone();
        self.rt.block_on(async move {
            let ep = Endpoint {
                host: target.domain().to_string(),
                base: None,
            };
            let repo = target.path().to_string();
            let limit = Arc::new(Semaphore::new(inner.options.max_concurrent.max(1)));
            let mount_from = Arc::new(image.mount_from);
            let tasks = image.blobs.into_iter().map(|blob| {
                let (inner, ep, repo, limit, mount_from, progress, target) = (
                    inner.clone(),
                    ep.clone(),
                    repo.clone(),
                    limit.clone(),
                    mount_from.clone(),
                    progress.clone(),
                    target.to_string(),
                );
                async move {
                    let _p = limit.acquire().await.expect("never closed");
                    push_blob(&inner, &ep, &repo, &target, blob, &mount_from, &*progress).await
                }
            });
            futures_util::future::try_join_all(tasks).await?;
            let digest = sha256_digest(&image.manifest_bytes);
            let selector = target.tag().unwrap_or(&digest).to_string();
            let path = format!("/v2/{repo}/manifests/{selector}");
            let scope = format!("repository:{repo}:pull,push");
            let body = image.manifest_bytes.clone();
            let mt = image.manifest_media_type.clone();
            let resp = inner
                .send(&ep, &scope, &target.to_string(), |c, base| {
                    c.request(Method::PUT, format!("{base}{path}"))
                        .header(CONTENT_TYPE, mt.clone())
                        .body(body.clone())
                })
                .await?;
            expect(resp, &ep, &format!("PUT {path}"), &[StatusCode::CREATED]).await?;
            Ok(digest)
        })
    }
}

async fn expect(
    resp: reqwest::Response,
    ep: &Endpoint,
    what: &str,
    ok: &[StatusCode],
) -> Result<reqwest::Response, Error> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    Err(status_error(&ep.host, what.to_string(), resp).await)
}

async fn push_blob(
    inner: &Inner,
    ep: &Endpoint,
    repo: &str,
    target: &str,
    blob: PushBlob,
    mount_from: &[String],
    progress: &dyn Progress,
) -> Result<(), Error> {
    let digest = blob.descriptor.digest().to_string();
    let size = blob.descriptor.size();
    let scope = format!("repository:{repo}:pull,push");
    let head_path = format!("/v2/{repo}/blobs/{digest}");
    let resp = inner
        .send(ep, &scope, target, |c, base| {
            c.request(Method::HEAD, format!("{base}{head_path}"))
        })
        .await?;
    if resp.status() == StatusCode::OK {
        progress.event(ProgressEvent::Skipped {
            digest,
            reason: "Layer already exists".into(),
        });
        return Ok(());
    }
    // Try a cross-repository mount first: the registry links the blob without any upload.
    let mut location = None;
    for from in mount_from.iter().filter(|f| f.as_str() != repo) {
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let mscope = format!("repository:{repo}:pull,push repository:{from}:pull");
        let resp = inner
            .send(ep, &mscope, target, |c, base| {
                c.request(Method::POST, format!("{base}{path}"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        if resp.status() == StatusCode::CREATED {
            progress.event(ProgressEvent::Skipped {
                digest,
                reason: format!("Mounted from {from}"),
            });
            return Ok(());
        }
        if resp.status() == StatusCode::ACCEPTED {
            location = resp.headers().get(LOCATION).cloned();
            break;
        }
    }
    let location = match location {
        Some(l) => l,
        None => {
            let path = format!("/v2/{repo}/blobs/uploads/");
            let resp = inner
                .send(ep, &scope, target, |c, base| {
                    c.request(Method::POST, format!("{base}{path}"))
                        .header(CONTENT_LENGTH, 0)
                })
                .await?;
            let resp = expect(resp, ep, &format!("POST {path}"), &[StatusCode::ACCEPTED]).await?;
            resp.headers()
                .get(LOCATION)
                .cloned()
                .ok_or_else(|| Error::Status {
                    registry: ep.host.clone(),
                    what: format!("POST {path}"),
                    status: 202,
                    body: "no Location header".into(),
                })?
        }
    };
    let location = location.to_str().unwrap_or_default().to_string();
    progress.event(ProgressEvent::Started {
        digest: digest.clone(),
        total: size,
        offset: 0,
    });
    let reader = (blob.open)().map_err(|source| Error::Sink {
        what: format!("reading blob {digest}"),
        source,
    })?;
    // Read the blob on a blocking thread and stream it: a layer is never held in memory.
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let reader_task = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let sep = if location.contains('?') { '&' } else { '?' };
    let base = inner.base(ep).await?;
    let url = if location.starts_with("http://") || location.starts_with("https://") {
        format!("{location}{sep}digest={digest}")
    } else {
        format!("{base}{location}{sep}digest={digest}")
    };
    // The POST above answered any challenge for this scope, so the cached Authorization is
    // attached directly: a streaming body cannot be replayed after a 401.
    let body = reqwest::Body::wrap_stream(stream);
    let token = inner.cached_auth(ep, &scope);
    let mut req = inner
        .client(ep)
        .request(Method::PUT, url.clone())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, size)
        .body(body);
    if let Some(t) = token {
        req = req.header(reqwest::header::AUTHORIZATION, t);
    }
    let resp = req.send().await.map_err(|e| Error::Unreachable {
        registry: ep.host.clone(),
        cause: error_chain(&e),
    })?;
    let _ = reader_task.await;
    expect(
        resp,
        ep,
        &format!("PUT blob {digest}"),
        &[StatusCode::CREATED],
    )
    .await?;
    progress.event(ProgressEvent::Done { digest });
    Ok(())
}
