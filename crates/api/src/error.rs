//! Errors as Docker's daemon sends them: a status and `{"message": …}`, which clients print
//! as "Error response from daemon: …".

use hyper::StatusCode;

/// An API error: the status Docker uses for this kind of failure, and its message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// 400 bad parameter, 404 not found, 409 conflict, 500 anything else, …
    pub status: StatusCode,
    /// What went wrong, in Docker's words where Docker has them.
    pub message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request conflicts with the object's state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> ApiError {
        use berth_engine::Error as E;
        let status = match &e {
            E::NoSuchContainer(_) | E::NoSuchNetwork(_) | E::NoSuchVolume(_) => {
                StatusCode::NOT_FOUND
            }
            E::Image(i) => return ApiError::from_image(i, e.to_string()),
            E::NameConflict { .. } | E::VolumeInUse { .. } | E::NotRunning(_) => {
                StatusCode::CONFLICT
            }
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::Network(berth_network::Error::PortInUse { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl ApiError {
    fn from_image(e: &berth_image::Error, message: String) -> ApiError {
        let status = match e {
            berth_image::Error::NoSuchImage { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, message)
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> ApiError {
        let message = e.to_string();
        ApiError::from_image(&e, message)
    }
}

impl From<berth_build::Error> for ApiError {
    fn from(e: berth_build::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<berth_registry::Error> for ApiError {
    fn from(e: berth_registry::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}
