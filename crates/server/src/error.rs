//! The one place where errors become HTTP responses: a status, and the body
//! `{"code","message","field"}` with a stable code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use spread_api::ErrorBody;
use spread_core::{NameError, Rejection};
use spread_raft::ProposeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API token; log in with `spread login URL --token TOKEN`")]
    Unauthorized,
    #[error("{0}")]
    InvalidName(#[from] NameError),
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Rejected(Rejection),
    #[error("the control plane cannot take changes right now: {0}; try again shortly")]
    Unavailable(String),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("internal error: {0}; this is a bug in spread")]
    Internal(String),
}

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Rejected(r) => Self::Rejected(r),
            ProposeError::Unavailable(reason) => Self::Unavailable(reason),
        }
    }
}

impl ApiError {
    /// A command was accepted but did something other than what its handler expects.
    pub(crate) fn unexpected(outcome: &spread_core::Outcome) -> Self {
        Self::Internal(format!("unexpected outcome {outcome:?}"))
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Self::InvalidName(e) => (
                StatusCode::BAD_REQUEST,
                "invalid_name",
                Some(e.input.clone()),
            ),
            Self::BadRequest { code, field, .. } => (StatusCode::BAD_REQUEST, code, field.clone()),
            Self::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", None),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None),
            Self::Rejected(r) => {
                let status = match r {
                    Rejection::AppNotFound { .. } => StatusCode::NOT_FOUND,
                    Rejection::AppExists { .. } | Rejection::TokenExists { .. } => {
                        StatusCode::CONFLICT
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, r.code(), r.field())
            }
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = ErrorBody {
            code: code.to_owned(),
            message: self.to_string(),
            field,
        };
        (status, Json(body)).into_response()
    }
}
