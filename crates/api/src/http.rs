//! The HTTP vocabulary every endpoint shares: bodies (whole or streamed), JSON answers,
//! Docker's error shape, query strings and request bodies read with a bound.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::error::ApiError;

/// A response body: whole, or streamed from a channel as it is produced.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// What a handler returns.
pub type Reply = Result<Response<Body>, ApiError>;

/// The most a JSON request body may be (a build context is streamed, not read whole).
pub const MAX_JSON_BODY: usize = 4 << 20;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body fed by `rx` until the sender is dropped. A client that goes away drops the
/// receiver, which the producer sees as a failed send and stops.
pub fn streamed(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    StreamBody::new(stream).boxed()
}

/// A JSON answer with `status`.
pub fn json(status: StatusCode, v: &Value) -> Reply {
    Ok(Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(format!("{v}\n")))
        .expect("a valid response"))
}

/// `200 OK` with JSON.
pub fn ok(v: Value) -> Reply {
    json(StatusCode::OK, &v)
}

/// An empty answer with `status` (`204 No Content`, `304 Not Modified`, …).
pub fn empty(status: StatusCode) -> Reply {
    Ok(Response::builder()
        .status(status)
        .body(full(Bytes::new()))
        .expect("a valid response"))
}

/// A streamed answer with `status` and `content_type`; the handler keeps the sender.
pub fn stream(status: StatusCode, content_type: &str) -> (Reply, tokio::sync::mpsc::Sender<Bytes>) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let reply = Ok(Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .body(streamed(rx))
        .expect("a valid response"));
    (reply, tx)
}

/// The query string, decoded; a repeated key keeps its last value, as Go's `Get` would
/// keep its first (no Docker client repeats one).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>, Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub fn parse(q: Option<&str>) -> Query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs.iter().cloned().collect(), pairs)
    }

    /// Every value of a repeated parameter, in order (`build?t=a&t=b`,
    /// `images/get?names=a&names=b`).
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A parameter the request cannot do without; absent or empty is a 400.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad(format!("{key} is required")))
    }

    /// A boolean parameter as Docker reads them: `1`, `true`, `True` are true; absent,
    /// empty, `0`, `false` are false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key).map(str::to_ascii_lowercase).as_deref(),
            Some("1") | Some("true") | Some("yes")
        )
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// A JSON-valued parameter (`filters`, `buildargs`, `labels`); a malformed one is a
    /// 400.
    pub fn json(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => serde_json::from_str(v)
                .map(Some)
                .map_err(|e| ApiError::bad(format!("invalid {key} parameter: {e}"))),
        }
    }

    /// Docker's `filters` parameter: `{"label":["a=b"],"status":{"running":true}}` (both
    /// shapes) as key → values.
    pub fn filters(&self) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let Some(v) = self.json("filters")? else {
            return Ok(out);
        };
        let Value::Object(m) = v else {
            return Err(ApiError::bad("invalid filters: not a JSON object"));
        };
        for (k, v) in m {
            let values = match v {
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(false))
                    .map(|(k, _)| k)
                    .collect(),
                Value::String(s) => vec![s],
                _ => return Err(ApiError::bad(format!("invalid filter {k:?}"))),
            };
            out.entry(k).or_default().extend(values);
        }
        Ok(out)
    }
}

/// Reads a request body of at most `limit` bytes (a bigger one is refused with 413 before
/// it is all read, so a client cannot make the server hold much).
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )),
        Err(e) => Err(ApiError::bad(format!("reading the request body: {e}"))),
    }
}

/// A JSON request body (an empty one reads as `{}`, as Docker accepts).
pub async fn read_json(body: Incoming) -> Result<Value, ApiError> {
    let bytes = read_body(body, MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("invalid JSON: {e}")))
}

/// Runs blocking engine work on a thread of its own: the engine is synchronous, and some of
/// it (pulls) runs an async runtime of its own, which must not nest in the server's.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .unwrap_or_else(|_| Err(ApiError::internal("a worker thread died")))
}

/// One line of a JSON-lines stream (pull progress, build output).
pub fn json_line(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\r\n"))
}
