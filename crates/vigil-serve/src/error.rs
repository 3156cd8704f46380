//! Every error the service answers with, and its HTTP status: 4xx for what the caller must
//! change (remote-write senders do not retry those), 429/503 for what may work later (they do).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Data or a request the service cannot take as it is (400).
    #[error("{0}")]
    BadRequest(String),
    /// A content type or encoding the endpoint does not read (415).
    #[error("{0}")]
    Unsupported(String),
    /// No token, or one the service does not know (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A known token without the scope or tenant asked for (403).
    #[error("{0}")]
    Forbidden(String),
    /// An entity, model or version the tenant does not have (404).
    #[error("{0}")]
    NotFound(String),
    /// What the request asks conflicts with the service's state (409).
    #[error("{0}")]
    Conflict(String),
    /// A well-formed request the service cannot carry out, e.g. a model version that cannot be
    /// loaded (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Data for an entity another instance owns (421).
    #[error("{0}")]
    Misdirected(String),
    /// A body over the size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Too much waiting already (429, with `Retry-After`).
    #[error("{message}")]
    Overloaded { message: String, retry_after_s: u64 },
    /// The store failed; nothing of the request was kept (503: try again).
    #[error("the store failed, nothing of this request was kept: {0}")]
    Store(#[from] sqlx::Error),
    /// A setting that cannot work (at start).
    #[error("{0}")]
    Config(String),
    /// A model that cannot be loaded or used.
    #[error("{0}")]
    Model(#[from] vigil_models::ModelError),
}

impl ServeError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::Conflict(_) => StatusCode::CONFLICT,
            ServeError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ServeError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServeError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Config(_) | ServeError::Model(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        }
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        let mut response = (status, body).into_response();
        if let ServeError::Overloaded { retry_after_s, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type Result<T, E = ServeError> = std::result::Result<T, E>;
