//! `/volumes/…`.

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
pub async fn prune(_ctx: Ctx) -> Reply {
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
pub async fn remove(_ctx: Ctx, _name: &str) -> Reply {
    Err(crate::error::ApiError::new(
        hyper::StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
