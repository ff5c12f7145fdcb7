//! Which handler answers which method and path (version prefix already removed).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::error::ApiError;
use crate::http::{Query, Reply};
use crate::server::Version;
use crate::State;

/// What every handler gets besides the request: the server, the query string and the API
/// version the client speaks.
pub struct Ctx {
    /// The server's state.
    pub state: Arc<State>,
    /// The decoded query string.
    pub query: Query,
    /// The client's API version (the path's prefix, or the newest).
    pub version: Version,
}

impl Ctx {
    /// The engine.
    pub fn engine(&self) -> Arc<berth_engine::Engine> {
        self.state.engine.clone()
    }
}

/// Image names hold slashes (`127.0.0.1:5000/library/busybox:latest`), so image routes end
/// with an action after a name of any number of segments.
fn image_route<'a>(rest: &'a [&'a str]) -> Option<(String, &'a str)> {
    let (action, name) = rest.split_last()?;
    if name.is_empty() {
        return None;
    }
    Some((name.join("/"), action))
}

/// Dispatches one request.
pub async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
    version: Version,
    segments: Vec<String>,
) -> Reply {
    use crate::{
        containers as c, exec as x, images as i, networks as n, system as s, volumes as v,
    };
    let ctx = Ctx {
        state,
        query: Query::parse(req.uri().query()),
        version,
    };
    let method = req.method().clone();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    match segs.as_slice() {
        ["_ping"] if get || method == Method::HEAD => crate::server::ping(&method),
        ["version"] if get => s::version(),
        ["info"] if get => s::info(ctx).await,
        ["events"] if get => crate::events::events(ctx).await,
        ["system", "df"] if get => s::df(ctx).await,

        ["containers", "create"] if post => c::create(ctx, req).await,
        ["containers", "json"] if get => c::list(ctx).await,
        ["containers", "prune"] if post => c::prune(ctx).await,
        ["containers", id, "json"] if get => c::inspect(ctx, id).await,
        ["containers", id, "start"] if post => c::start(ctx, id).await,
        ["containers", id, "stop"] if post => c::stop(ctx, id).await,
        ["containers", id, "restart"] if post => c::restart(ctx, id).await,
        ["containers", id, "kill"] if post => c::kill(ctx, id).await,
        ["containers", id, "pause"] if post => c::pause(ctx, id, true).await,
        ["containers", id, "unpause"] if post => c::pause(ctx, id, false).await,
        ["containers", id, "rename"] if post => c::rename(ctx, id).await,
        ["containers", id, "wait"] if post => c::wait(ctx, id).await,
        ["containers", id, "logs"] if get => c::logs(ctx, id).await,
        ["containers", id, "top"] if get => c::top(ctx, id).await,
        ["containers", id, "stats"] if get => c::stats(ctx, id).await,
        ["containers", id, "resize"] if post => c::resize(ctx, id).await,
        ["containers", id, "attach"] if post => crate::attach::attach(ctx, req, id).await,
        ["containers", id, "exec"] if post => x::create(ctx, req, id).await,
        ["containers", id, "archive"] if get || method == Method::HEAD => {
            c::archive_get(ctx, id, method == Method::HEAD).await
        }
        ["containers", id, "archive"] if method == Method::PUT => {
            c::archive_put(ctx, req, id).await
        }
        ["containers", id] if delete => c::remove(ctx, id).await,

        ["exec", id, "start"] if post => x::start(ctx, req, id).await,
        ["exec", id, "resize"] if post => x::resize(ctx, id).await,
        ["exec", id, "json"] if get => x::inspect(ctx, id).await,

        ["images", "json"] if get => i::list(ctx).await,
        ["images", "create"] if post => i::create(ctx, req).await,
        ["images", "load"] if post => i::load(ctx, req).await,
        ["images", "get"] if get => i::get(ctx, None).await,
        ["images", "prune"] if post => i::prune(ctx).await,
        ["images", rest @ ..] if delete && !rest.is_empty() => {
            i::remove(ctx, &rest.join("/")).await
        }
        ["images", rest @ ..] => match (image_route(rest), &method) {
            (Some((name, "json")), &Method::GET) => i::inspect(ctx, &name).await,
            (Some((name, "history")), &Method::GET) => i::history(ctx, &name).await,
            (Some((name, "tag")), &Method::POST) => i::tag(ctx, &name).await,
            (Some((name, "push")), &Method::POST) => i::push(ctx, req, &name).await,
            (Some((name, "get")), &Method::GET) => i::get(ctx, Some(name)).await,
            _ => not_found(),
        },
        ["build"] if post => i::build(ctx, req).await,
        ["build", "prune"] if post => i::build_prune(ctx).await,

        ["networks"] if get => n::list(ctx).await,
        ["networks", "create"] if post => n::create(ctx, req).await,
        ["networks", "prune"] if post => n::prune(ctx).await,
        ["networks", id] if get => n::inspect(ctx, id).await,
        ["networks", id] if delete => n::remove(ctx, id).await,
        ["networks", id, "connect"] if post => n::connect(ctx, req, id, true).await,
        ["networks", id, "disconnect"] if post => n::connect(ctx, req, id, false).await,

        ["volumes"] if get => v::list(ctx).await,
        ["volumes", "create"] if post => v::create(ctx, req).await,
        ["volumes", "prune"] if post => v::prune(ctx).await,
        ["volumes", name] if get => v::inspect(ctx, name).await,
        ["volumes", name] if delete => v::remove(ctx, name).await,

        _ => not_found(),
    }
}

fn not_found() -> Reply {
    Err(ApiError::not_found("page not found"))
}
