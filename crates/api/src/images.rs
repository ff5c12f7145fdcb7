//! `/images/…` and `/build`.

use hyper::body::Incoming;
use hyper::Request;

use crate::http::Reply;
use crate::router::Ctx;

/// Not yet served.
pub async fn list(_ctx: Ctx) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn create(_ctx: Ctx, _req: Request<Incoming>) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn load(_ctx: Ctx, _req: Request<Incoming>) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn get(_ctx: Ctx, _name: Option<String>) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn prune(_ctx: Ctx) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn remove(_ctx: Ctx, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn inspect(_ctx: Ctx, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn history(_ctx: Ctx, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn tag(_ctx: Ctx, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn push(_ctx: Ctx, _req: Request<Incoming>, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn build(_ctx: Ctx, _req: Request<Incoming>) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

/// Not yet served.
pub async fn build_prune(_ctx: Ctx) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
