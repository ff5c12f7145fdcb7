//! Listening, one HTTP/1.1 connection per client (with upgrades, for attach and exec), the
//! version prefix of every path, and a clean stop on SIGTERM or SIGINT.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::error::ApiError;
use crate::http::{empty, full, json, Body};
use crate::State;

/// The API version berth speaks: the newest, and the oldest it still accepts.
pub const API_VERSION: &str = "1.45";
/// The oldest API version accepted (docker-py and compose 1.29 ask for old ones).
pub const MIN_API_VERSION: &str = "1.24";

/// Where to listen (`-H`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket path (`unix:///run/berth/berth.sock`).
    Unix(PathBuf),
    /// A TCP address (`tcp://127.0.0.1:2375`): unauthenticated root access to the machine
    /// for anyone who can reach it, so only when asked.
    Tcp(String),
}

impl Listen {
    /// Parses a `-H` value as Docker does: `unix://PATH`, `tcp://HOST:PORT`, or a bare path.
    pub fn parse(s: &str) -> Result<Listen, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("invalid listen address {s:?}: no socket path"));
            }
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "invalid listen address {s:?}: expected tcp://IP:PORT"
                ));
            }
            return Ok(Listen::Tcp(a.to_string()));
        }
        if s.starts_with('/') {
            return Ok(Listen::Unix(PathBuf::from(s)));
        }
        Err(format!(
            "invalid listen address {s:?}: use unix:///path/to.sock or tcp://IP:PORT"
        ))
    }
}

/// An API version as `MAJOR.MINOR`, comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<Version> {
        let (a, b) = s.split_once('.')?;
        Some(Version(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Serves the API on every listener until SIGTERM or SIGINT; containers keep running (their
/// monitors own them). Socket files are made mode 0660 and removed at the end.
pub fn serve(state: State, listens: Vec<Listen>) -> Result<(), std::io::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = Arc::new(state);
        let mut sockets = Vec::new();
        for l in &listens {
            match l {
                Listen::Unix(path) => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    // A socket left by a killed server is replaced; a live one is not.
                    if std::os::unix::net::UnixStream::connect(path).is_ok() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            format!("{} is in use by another server", path.display()),
                        ));
                    }
                    let _ = std::fs::remove_file(path);
                    let listener = tokio::net::UnixListener::bind(path)?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                    eprintln!("berth serve: API listening on unix://{}", path.display());
                    sockets.push(path.clone());
                    accept(state.clone(), Listener::Unix(listener));
                }
                Listen::Tcp(addr) => {
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    eprintln!(
                        "berth serve: WARNING: API listening on tcp://{addr} without TLS or authentication: anyone who reaches it controls this machine as root"
                    );
                    accept(state.clone(), Listener::Tcp(listener));
                }
            }
        }
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        for s in sockets {
            let _ = std::fs::remove_file(s);
        }
        eprintln!("berth serve: stopped (containers keep running)");
        Ok(())
    })?;
    // Connections still open (a `logs -f`) are not waited for.
    runtime.shutdown_background();
    Ok(())
}

/// A bound listener of either kind.
enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Accepts clients on `listener` for as long as the server runs.
fn accept(state: Arc<State>, listener: Listener) {
    tokio::spawn(async move {
        loop {
            let accepted = match &listener {
                Listener::Unix(l) => l.accept().await.map(|(s, _)| connection(state.clone(), s)),
                Listener::Tcp(l) => l.accept().await.map(|(s, _)| connection(state.clone(), s)),
            };
            if let Err(e) = accepted {
                eprintln!("berth serve: accept: {e}");
            }
        }
    });
}

/// Serves one client connection.
fn connection<S>(state: Arc<State>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, req).await) }
        });
        // A client that hangs up mid-stream ends here; nothing else to clean.
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });
}

/// Splits the version prefix off the path, answers with Docker's headers, and turns
/// errors into Docker's JSON.
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let (version, rest) = match split_version(&path) {
        Ok(v) => v,
        Err(e) => return with_headers(error_response(e)),
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let logged = log_requests().then(|| {
        (
            req.method().clone(),
            req.uri().clone(),
            std::time::Instant::now(),
        )
    });
    let reply = crate::router::route(state, req, version, segments).await;
    let response = with_headers(match reply {
        Ok(r) => r,
        Err(e) => error_response(e),
    });
    if let Some((method, uri, started)) = logged {
        eprintln!(
            "berth serve: {} {method} {uri} -> {} in {:.1} ms",
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

fn log_requests() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BERTH_API_LOG").is_some())
}

/// `/v1.41/containers/json` → (1.41, `/containers/json`); unversioned paths get the newest.
fn split_version(path: &str) -> Result<(Version, &str), ApiError> {
    let newest = Version::parse(API_VERSION).expect("a version");
    let oldest = Version::parse(MIN_API_VERSION).expect("a version");
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((newest, path));
    };
    let (v, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(version) = Version::parse(v) else {
        // `/volumes`: not a version at all.
        return Ok((newest, path));
    };
    if version > newest {
        return Err(ApiError::bad(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if version < oldest {
        return Err(ApiError::bad(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok((version, tail))
}

fn error_response(e: ApiError) -> Response<Body> {
    json(e.status, &serde_json::json!({ "message": e.message }))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Docker's response headers, which clients read the server's version from.
fn with_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("Api-Version", API_VERSION.parse().expect("a header value"));
    h.insert(
        "Server",
        format!("Docker/{} (linux)", crate::system::ENGINE_VERSION)
            .parse()
            .expect("a header value"),
    );
    h.insert(
        "Docker-Experimental",
        "false".parse().expect("a header value"),
    );
    h.insert("Ostype", "linux".parse().expect("a header value"));
    r
}

/// `GET`/`HEAD /_ping`.
pub fn ping(method: &Method) -> crate::http::Reply {
    let mut r = if method == Method::HEAD {
        empty(StatusCode::OK)?
    } else {
        Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(full("OK"))
            .expect("a valid response")
    };
    r.headers_mut().insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate"
            .parse()
            .expect("a header"),
    );
    r.headers_mut()
        .insert("Pragma", "no-cache".parse().expect("a header"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_split_and_bounded() {
        assert_eq!(
            split_version("/v1.41/containers/json").unwrap(),
            (Version(1, 41), "/containers/json")
        );
        assert_eq!(split_version("/_ping").unwrap(), (Version(1, 45), "/_ping"));
        assert_eq!(
            split_version("/volumes").unwrap(),
            (Version(1, 45), "/volumes")
        );
        assert!(split_version("/v1.99/info")
            .unwrap_err()
            .message
            .contains("too new"));
        assert!(split_version("/v1.12/info")
            .unwrap_err()
            .message
            .contains("too old"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            Listen::parse("unix:///tmp/b.sock").unwrap(),
            Listen::Unix("/tmp/b.sock".into())
        );
        assert_eq!(
            Listen::parse("tcp://127.0.0.1:2375").unwrap(),
            Listen::Tcp("127.0.0.1:2375".into())
        );
        assert!(Listen::parse("tcp://localhost").is_err());
        assert!(Listen::parse("fd://").is_err());
    }
}
