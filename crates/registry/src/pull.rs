//! Parallel, resumable blob download into caller-provided sinks.

use std::sync::Arc;

use futures_util::StreamExt;
use oci_spec::image::Descriptor;
use reqwest::header::RANGE;
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use crate::client::{error_chain, status_error, Endpoint, Registry};
use crate::{BoxError, Error, ResolvedImage};

/// How often a broken transfer is resumed before giving up.
const RETRIES: usize = 3;

/// Where downloaded bytes go. Called from a blocking thread, never from the async runtime, so
/// an implementation may hash, write files and unpack as it likes.
pub trait BlobSink: Send {
    /// Bytes already held from an earlier, interrupted transfer; the download resumes there.
    fn offset(&self) -> u64;
    /// Takes the next bytes of the blob, in order.
    fn write(&mut self, chunk: &[u8]) -> Result<(), BoxError>;
    /// All bytes were delivered: verify size and digest and make the blob visible.
    fn finish(self: Box<Self>) -> Result<(), BoxError>;
}

/// One blob to fetch and the sink its bytes go to. Dropping an unfinished sink must discard
/// nothing but what it wrote itself.
pub struct BlobJob {
    /// What to fetch.
    pub descriptor: Descriptor,
    /// Where it goes.
    pub sink: Box<dyn BlobSink>,
}

/// What happened to one blob, for progress display.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A download started (or resumed at `offset`).
    Started {
        /// The blob.
        digest: String,
        /// Its size.
        total: u64,
        /// Bytes already held.
        offset: u64,
    },
    /// More bytes arrived; `done` counts from the blob's start.
    Bytes {
        /// The blob.
        digest: String,
        /// Bytes so far.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// The blob was verified and stored.
    Done {
        /// The blob.
        digest: String,
    },
    /// The blob needed no transfer.
    Skipped {
        /// The blob.
        digest: String,
        /// Why (for the display): "Already exists", "Layer already exists", "Mounted from …".
        reason: String,
    },
}

/// Receives progress events; implementations must be cheap, they run on transfer threads.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: ProgressEvent);
}

impl Progress for () {
    fn event(&self, _: ProgressEvent) {}
}

enum Msg {
    Data(bytes::Bytes),
    Done,
}

impl Registry {
    /// Downloads one blob of a resolved image into its sink, resuming a broken transfer, and
    /// returns once the sink has finished. Callable from many threads at once: at most
    /// `max_concurrent` transfers of this client run at a time, the rest wait their turn.
    pub fn fetch_blob(
        &self,
        image: &ResolvedImage,
        job: BlobJob,
        progress: Arc<dyn Progress>,
    ) -> Result<(), Error> {
        let inner = self.inner.clone();
        let ep = Endpoint {
            host: image.endpoint.clone(),
            base: inner
                .endpoints(&image.reference)
                .into_iter()
                .find(|e| e.host == image.endpoint)
                .and_then(|e| e.base),
        };
        let reference = image.reference.to_string();
        let repo = image.repository.clone();
        self.rt.block_on(async move {
            let _permit = inner.transfers.acquire().await.expect("never closed");
            fetch_one(&inner, &ep, &repo, &reference, job, progress).await
        })
    }
}

async fn fetch_one(
    inner: &crate::client::Inner,
    ep: &Endpoint,
    repo: &str,
    reference: &str,
    job: BlobJob,
    progress: Arc<dyn Progress>,
) -> Result<(), Error> {
    let digest = job.descriptor.digest().to_string();
    let total = job.descriptor.size();
    let start = job.sink.offset();
    let what = format!("blob {digest} of {reference} from {}", ep.host);
    progress.event(ProgressEvent::Started {
        digest: digest.clone(),
        total,
        offset: start,
    });
    // The sink runs on a blocking thread fed by a bounded channel: the network never waits on
    // the disk for long, and the disk never holds more than a few chunks in memory.
    let (tx, mut rx) = mpsc::channel::<Msg>(32);
    let mut sink = job.sink;
    let writer = tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Data(b) => sink.write(&b)?,
                Msg::Done => return sink.finish(),
            }
        }
        Err("transfer stopped before the blob was complete".into())
    });

    let mut done = start;
    let mut attempt = 0;
    let mut resume = true;
    let transfer: Result<(), Error> = loop {
        if done == total {
            // Every byte is already held (a pull was killed just before committing).
            break Ok(());
        }
        let scope = format!("repository:{repo}:pull");
        let path = format!("/v2/{repo}/blobs/{digest}");
        let from = if resume { done } else { 0 };
        let resp = inner
            .send(ep, &scope, reference, |c, base| {
                let r = c.request(Method::GET, format!("{base}{path}"));
                if from > 0 {
                    r.header(RANGE, format!("bytes={from}-"))
                } else {
                    r
                }
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if attempt < RETRIES && matches!(e, Error::Unreachable { .. }) => {
                attempt += 1;
                continue;
            }
            Err(e) => break Err(e),
        };
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE && attempt < RETRIES {
            // The server will not resume: take the whole blob again, skipping what we hold.
            attempt += 1;
            resume = false;
            continue;
        }
        if status == StatusCode::NOT_FOUND {
            break Err(Error::NotFound {
                reference: format!("{reference} (blob {digest})"),
                tried: ep.host.clone(),
            });
        }
        if !status.is_success() {
            break Err(status_error(&ep.host, format!("GET {path}"), resp).await);
        }
        // A server that ignores Range sends everything again: skip what we already have.
        let mut skip = if status == StatusCode::PARTIAL_CONTENT {
            0
        } else {
            done
        };
        let mut stream = resp.bytes_stream();
        let mut broken = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(mut chunk) => {
                    if skip > 0 {
                        let n = skip.min(chunk.len() as u64);
                        skip -= n;
                        chunk = chunk.slice(n as usize..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    done += chunk.len() as u64;
                    if done > total {
                        broken = Some(Error::DigestMismatch {
                            what: "blob",
                            expected: format!("{digest} ({total} bytes)"),
                            actual: format!("more than {total} bytes"),
                            registry: ep.host.clone(),
                        });
                        break;
                    }
                    if tx.send(Msg::Data(chunk)).await.is_err() {
                        break; // the sink failed; its error is reported below
                    }
                    progress.event(ProgressEvent::Bytes {
                        digest: digest.clone(),
                        done,
                        total,
                    });
                }
                Err(e) => {
                    broken = Some(Error::Unreachable {
                        registry: ep.host.clone(),
                        cause: error_chain(&e),
                    });
                    break;
                }
            }
        }
        match broken {
            Some(e @ Error::Unreachable { .. }) if attempt < RETRIES => {
                attempt += 1;
                log::debug!("resuming {digest} at {done}: {e}");
                continue;
            }
            Some(e) => break Err(e),
            None => break Ok(()),
        }
    };
    if transfer.is_ok() {
        let _ = tx.send(Msg::Done).await;
    }
    drop(tx);
    let written = writer.await.map_err(|e| Error::Sink {
        what: what.clone(),
        source: e.to_string().into(),
    })?;
    transfer?;
    written.map_err(|source| Error::Sink { what, source })?;
    progress.event(ProgressEvent::Done { digest });
    Ok(())
}
