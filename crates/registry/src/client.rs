//! The HTTP side: endpoints (mirrors first), scheme choice, and authentication.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::auth::{self, Challenge, Credentials};
use crate::manifest::{media_types, parse_manifest, select_platform, Platform, ResolvedImage};
use crate::{Error, Reference, RegistryOptions, DEFAULT_DOMAIN};

/// The API host behind `docker.io`.
const DOCKER_IO_API: &str = "registry-1.docker.io";
/// Manifests and configs larger than this are refused rather than buffered.
const MAX_DOCUMENT: usize = 16 << 20;

/// A registry client: owns an async runtime and offers blocking calls.
///
/// One `Registry` is meant to serve a whole command: it caches the scheme each host speaks and
/// the tokens it was given, so a pull of many layers authenticates once.
pub struct Registry {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    pub(crate) options: RegistryOptions,
    /// Authorization header values by `host|scope`.
    tokens: Mutex<HashMap<String, HeaderValue>>,
    /// Base URL (`https://host`) each host answered on.
    bases: Mutex<HashMap<String, String>>,
    /// Limits blob transfers of this client running at once.
    pub(crate) transfers: tokio::sync::Semaphore,
}

/// One place a repository can be fetched from: a mirror or the registry itself.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// Host used for credentials and error messages (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// Fixed base URL, for mirrors given with a scheme.
    pub base: Option<String>,
}

impl Registry {
    /// Makes a client with its own small runtime.
    pub fn new(options: RegistryOptions) -> Result<Registry, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("berth-registry")
            .enable_all()
            .build()
            .map_err(|e| Error::Config {
                path: "tokio runtime".into(),
                cause: e.to_string(),
            })?;
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(insecure)
                .connect_timeout(std::time::Duration::from_secs(15))
                .pool_max_idle_per_host(8)
                .build()
        };
        let http_err = |e: reqwest::Error| Error::Config {
            path: "http client".into(),
            cause: e.to_string(),
        };
        let mut options = options;
        if options.max_concurrent == 0 {
            options.max_concurrent = 3;
        }
        Ok(Registry {
            rt,
            inner: Arc::new(Inner {
                http: build(false).map_err(http_err)?,
                http_insecure: build(true).map_err(http_err)?,
                tokens: Mutex::new(HashMap::new()),
                bases: Mutex::new(HashMap::new()),
                transfers: tokio::sync::Semaphore::new(options.max_concurrent),
                options,
            }),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Resolves a reference to the manifest and config for `platform`, trying mirrors first
    /// for docker.io references.
    pub fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let inner = self.inner.clone();
        self.rt.block_on(async move {
            let mut errors = Vec::new();
            for ep in inner.endpoints(reference) {
                match inner.resolve_on(&ep, reference, platform).await {
                    Ok(r) => return Ok(r),
                    Err(e) => {
                        log::debug!("{}: {e}", ep.host);
                        errors.push((ep.host.clone(), e));
                    }
                }
            }
            Err(pick_error(reference, errors))
        })
    }

    /// Checks credentials against a registry, as `docker login` does.
    pub fn login(&self, host: &str, creds: &Credentials) -> Result<(), Error> {
        let inner = self.inner.clone();
        let ep = Endpoint {
            host: host.to_string(),
            base: None,
        };
        self.rt
            .block_on(async move { inner.login(&ep, creds).await })
    }
}

/// When every endpoint failed, report the most telling error: a definite answer ("not found",
/// "denied", "corrupt") beats "unreachable", and "not found" lists every place tried.
fn pick_error(reference: &Reference, errors: Vec<(String, Error)>) -> Error {
    let tried: Vec<String> = errors.iter().map(|(h, _)| h.clone()).collect();
    let mut best: Option<Error> = None;
    for (_, e) in errors {
        let rank = |e: &Error| match e {
            Error::Unreachable { .. } => 0,
            Error::NotFound { .. } => 1,
            _ => 2,
        };
        if best.as_ref().is_none_or(|b| rank(&e) >= rank(b)) {
            best = Some(e);
        }
    }
    match best {
        Some(Error::NotFound { .. }) => Error::NotFound {
            reference: reference.to_string(),
            tried: tried.join(", "),
        },
        Some(e) => e,
        None => Error::Unreachable {
            registry: reference.domain().to_string(),
            cause: "no endpoint configured".into(),
        },
    }
}

impl Inner {
    pub(crate) fn endpoints(&self, reference: &Reference) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if reference.domain() == DEFAULT_DOMAIN {
            for m in &self.options.mirrors {
                let base = m.trim_end_matches('/').to_string();
                let host = base
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                out.push(Endpoint {
                    host,
                    base: Some(base),
                });
            }
        }
        out.push(Endpoint {
            host: reference.domain().to_string(),
            base: None,
        });
        out
    }

    /// The Authorization value cached for a host and scope, if a challenge was answered.
    pub(crate) fn cached_auth(&self, ep: &Endpoint, scope: &str) -> Option<HeaderValue> {
        let key = format!("{}|{scope}", ep.host);
        self.tokens.lock().expect("lock").get(&key).cloned()
    }

    /// The HTTP client for an endpoint (unverified TLS for insecure hosts).
    pub(crate) fn client(&self, ep: &Endpoint) -> &reqwest::Client {
        self.client_for(&ep.host)
    }

    fn client_for(&self, host: &str) -> &reqwest::Client {
        if self.options.is_insecure(host) {
            &self.http_insecure
        } else {
            &self.http
        }
    }

    /// Finds the base URL a host answers on: https, or http for insecure hosts when https fails.
    pub(crate) async fn base(&self, ep: &Endpoint) -> Result<String, Error> {
        if let Some(b) = &ep.base {
            return Ok(b.clone());
        }
        if let Some(b) = self.bases.lock().expect("lock").get(&ep.host) {
            return Ok(b.clone());
        }
        let api_host = if ep.host == DEFAULT_DOMAIN {
            DOCKER_IO_API
        } else {
            &ep.host
        };
        let mut candidates = vec![format!("https://{api_host}")];
        if self.options.is_insecure(&ep.host) {
            candidates.push(format!("http://{api_host}"));
        }
        let mut last = String::new();
        for base in candidates {
            match self
                .client_for(&ep.host)
                .get(format!("{base}/v2/"))
                .send()
                .await
            {
                Ok(_) => {
                    self.bases
                        .lock()
                        .expect("lock")
                        .insert(ep.host.clone(), base.clone());
                    return Ok(base);
                }
                Err(e) => last = error_chain(&e),
            }
        }
        Err(Error::Unreachable {
            registry: ep.host.clone(),
            cause: last,
        })
    }

    /// Sends a request, answering one authentication challenge if the registry asks.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scope: &str,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let base = self.base(ep).await?;
        let key = format!("{}|{scope}", ep.host);
        let client = self.client_for(&ep.host);
        for attempt in 0..2 {
            let mut req = build(client, &base);
            if let Some(h) = self.tokens.lock().expect("lock").get(&key) {
                req = req.header(AUTHORIZATION, h.clone());
            }
            let resp = req.send().await.map_err(|e| Error::Unreachable {
                registry: ep.host.clone(),
                cause: error_chain(&e),
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                if resp.status() == StatusCode::UNAUTHORIZED {
                    return Err(Error::Unauthorized {
                        reference: what.to_string(),
                        registry: ep.host.clone(),
                        cause: "authentication required".into(),
                    });
                }
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge);
            let header = self.authenticate(ep, challenge, scope, what).await?;
            self.tokens
                .lock()
                .expect("lock")
                .insert(key.clone(), header);
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn credentials(&self, host: &str) -> Result<Option<Credentials>, Error> {
        auth::lookup(&self.options.auth_path(), host)
    }

    /// Turns a challenge into an Authorization header value.
    async fn authenticate(
        &self,
        ep: &Endpoint,
        challenge: Option<Challenge>,
        scope: &str,
        what: &str,
    ) -> Result<HeaderValue, Error> {
        let creds = self.credentials(&ep.host)?;
        let denied = |cause: String| Error::Unauthorized {
            reference: what.to_string(),
            registry: ep.host.clone(),
            cause,
        };
        match challenge {
            Some(Challenge::Basic) => match creds {
                Some(c) => Ok(basic_header(&c)),
                None => Err(denied(
                    "the registry requires a user name and password".into(),
                )),
            },
            Some(Challenge::Bearer(params)) => {
                let token = self.fetch_token(ep, &params, scope, creds.as_ref()).await?;
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| denied("the token server sent an unusable token".into()))
            }
            None => Err(denied(
                "the registry sent no usable WWW-Authenticate challenge".into(),
            )),
        }
    }

    async fn fetch_token(
        &self,
        ep: &Endpoint,
        params: &std::collections::BTreeMap<String, String>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, Error> {
        let denied = |cause: String| Error::Unauthorized {
            reference: scope.to_string(),
            registry: ep.host.clone(),
            cause,
        };
        let realm = params
            .get("realm")
            .ok_or_else(|| denied("bearer challenge without realm".into()))?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = params.get("service") {
            query.push(("service", s));
        }
        if !scope.is_empty() {
            query.push(("scope", scope));
        }
        let mut req = self.client_for(&ep.host).get(realm).query(&query);
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().await.map_err(|e| Error::Unreachable {
            registry: realm.clone(),
            cause: error_chain(&e),
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(denied(format!(
                "the token server {realm} refused the credentials ({status})"
            )));
        }
        if !status.is_success() {
            return Err(denied(format!(
                "the token server {realm} answered {status}"
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| denied(format!("the token server {realm} sent invalid JSON: {e}")))?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| denied(format!("the token server {realm} sent no token")))
    }

    async fn login(&self, ep: &Endpoint, creds: &Credentials) -> Result<(), Error> {
        let failed = |cause: String| Error::LoginFailed {
            registry: ep.host.clone(),
            cause,
        };
        let base = self.base(ep).await?;
        let client = self.client_for(&ep.host);
        let url = format!("{base}/v2/");
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Unreachable {
                registry: ep.host.clone(),
                cause: error_chain(&e),
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let header = match challenge {
            Some(Challenge::Basic) => basic_header(creds),
            Some(Challenge::Bearer(params)) => {
                let token = self
                    .fetch_token(ep, &params, "", Some(creds))
                    .await
                    .map_err(|e| {
                        failed(format!(
                            "unauthorized: incorrect username or password ({e})"
                        ))
                    })?;
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| failed("the token server sent an unusable token".into()))?
            }
            None => {
                return Err(failed(format!(
                    "{url} answered {} without an authentication challenge",
                    resp.status()
                )))
            }
        };
        let r = client
            .get(&url)
            .header(AUTHORIZATION, header)
            .send()
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(failed(format!(
                "unauthorized: incorrect username or password ({})",
                r.status()
            )))
        }
    }

    /// Fetches a small JSON document (manifest or config blob), with its media type.
    pub(crate) async fn get_document(
        &self,
        ep: &Endpoint,
        reference: &Reference,
        path: &str,
        kind: &str,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let scope = format!("repository:{}:pull", reference.path());
        let url_path = format!("/v2/{}/{path}", reference.path());
        let resp = self
            .send(ep, &scope, &reference.to_string(), |c, base| {
                c.request(Method::GET, format!("{base}{url_path}"))
                    .header(ACCEPT, media_types::ACCEPT)
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                reference: reference.to_string(),
                tried: ep.host.clone(),
            });
        }
        if !status.is_success() {
            return Err(status_error(&ep.host, format!("GET {kind} {url_path}"), resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        if resp.content_length().unwrap_or(0) as usize > MAX_DOCUMENT {
            return Err(Error::BadManifest {
                reference: reference.to_string(),
                cause: format!("{kind} is larger than {MAX_DOCUMENT} bytes"),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| Error::Http {
            registry: ep.host.clone(),
            source: e,
        })?;
        Ok((bytes.to_vec(), media_type))
    }

    async fn resolve_on(
        &self,
        ep: &Endpoint,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let selector = reference.manifest_selector();
        let (bytes, ctype) = self
            .get_document(ep, reference, &format!("manifests/{selector}"), "manifest")
            .await?;
        let top_digest = sha256_digest(&bytes);
        if let Some(d) = reference.digest() {
            verify(d, &top_digest, "manifest", &ep.host)?;
        }
        let mut media_type = detect_media_type(ctype.as_deref(), &bytes);
        let mut index = None;
        let (manifest_digest, manifest_bytes) = if media_types::is_index(&media_type) {
            let idx: oci_spec::image::ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| Error::BadManifest {
                    reference: reference.to_string(),
                    cause: format!("not an image index: {e}"),
                })?;
            let chosen = select_platform(reference, &idx, platform)?;
            let digest = chosen.digest().to_string();
            let (mbytes, mtype) = self
                .get_document(ep, reference, &format!("manifests/{digest}"), "manifest")
                .await?;
            verify(&digest, &sha256_digest(&mbytes), "manifest", &ep.host)?;
            media_type = detect_media_type(mtype.as_deref(), &mbytes);
            if media_types::is_index(&media_type) {
                return Err(Error::BadManifest {
                    reference: reference.to_string(),
                    cause: "an index entry points at another index".into(),
                });
            }
            index = Some(bytes);
            (digest, mbytes)
        } else {
            (top_digest.clone(), bytes)
        };
        let manifest = parse_manifest(reference, &media_type, &manifest_bytes)?;
        let config_digest = manifest.config().digest().to_string();
        let (config_bytes, _) = self
            .get_document(ep, reference, &format!("blobs/{config_digest}"), "config")
            .await?;
        verify(
            &config_digest,
            &sha256_digest(&config_bytes),
            "config",
            &ep.host,
        )?;
        let config = serde_json::from_slice(&config_bytes).map_err(|e| Error::BadManifest {
            reference: reference.to_string(),
            cause: format!("image config {config_digest} is invalid: {e}"),
        })?;
        if manifest.layers().is_empty() {
            return Err(Error::BadManifest {
                reference: reference.to_string(),
                cause: "the manifest has no layers".into(),
            });
        }
        Ok(ResolvedImage {
            reference: reference.clone(),
            repository: reference.path().to_string(),
            endpoint: ep.host.clone(),
            repo_digest: top_digest,
            index,
            manifest_digest,
            manifest_media_type: media_type,
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        })
    }
}

fn detect_media_type(header: Option<&str>, bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    if let Some(mt) = probe.as_ref().and_then(|p| p.media_type.clone()) {
        return mt;
    }
    if let Some(h) = header.filter(|h| h.starts_with("application/vnd.")) {
        return h.to_string();
    }
    match probe {
        Some(p) if p.manifests.is_some() => media_types::OCI_INDEX.into(),
        Some(p) if p.schema_version == Some(1) => media_types::DOCKER_SCHEMA1.into(),
        _ => media_types::OCI_MANIFEST.into(),
    }
}

fn verify(expected: &str, actual: &str, what: &'static str, registry: &str) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
            registry: registry.to_string(),
        })
    }
}

/// An unexpected answer, with the start of its body (registries explain themselves in JSON).
pub(crate) async fn status_error(registry: &str, what: String, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Error::Status {
        registry: registry.to_string(),
        what,
        status,
        body: body.chars().take(300).collect(),
    }
}

/// `sha256:<hex>` of some bytes.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn basic_header(c: &Credentials) -> HeaderValue {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value")
}

/// reqwest hides the useful part ("connection refused") in its source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}
