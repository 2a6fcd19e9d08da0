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
    /// An uploaded source tarball over the server's limit; `size` is known when the client
    /// declared it.
    #[error(
        "the upload is {}over this server's limit of {}; list big files or directories the \
         build does not need (build output, data, node_modules) in .spreadignore",
        size.map_or_else(String::new, |s| format!("{}, ", human_size(s))),
        human_size(*limit)
    )]
    UploadTooLarge { size: Option<u64>, limit: u64 },
    #[error("app `{app}` has no release v{version}; `spread releases -a {app}` lists them")]
    ReleaseNotFound { app: String, version: u64 },
    /// A registry failed or refused a push.
    #[error("{0}")]
    Registry(String),
    /// This node's disk failed us: the message says what could not be read or written.
    #[error("{0}")]
    Storage(String),
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
            Self::UploadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large", None)
            }
            Self::ReleaseNotFound { .. } => (
                StatusCode::NOT_FOUND,
                "release_not_found",
                Some("release".to_owned()),
            ),
            Self::Registry(_) => (StatusCode::BAD_GATEWAY, "image_push_failed", None),
            Self::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_failed", None),
            Self::Rejected(r) => {
                let status = match r {
                    Rejection::AppNotFound { .. }
                    | Rejection::ReleaseNotFound { .. }
                    | Rejection::DomainNotFound { .. } => StatusCode::NOT_FOUND,
                    Rejection::AppExists { .. }
                    | Rejection::TokenExists { .. }
                    | Rejection::DomainTaken { .. }
                    | Rejection::NotRollingOut { .. } => StatusCode::CONFLICT,
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

/// `512 bytes`, `3.4 KiB`, `1.2 MiB`, `2.0 GiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_the_largest_unit_that_fits() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(3 * 1024 + 400), "3.4 KiB");
        assert_eq!(human_size(512 << 20), "512.0 MiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn an_upload_over_the_limit_names_both_sizes_and_spreadignore() {
        let declared = ApiError::UploadTooLarge {
            size: Some(600 << 20),
            limit: 512 << 20,
        }
        .to_string();
        assert_eq!(
            declared,
            "the upload is 600.0 MiB, over this server's limit of 512.0 MiB; list big files or \
             directories the build does not need (build output, data, node_modules) in \
             .spreadignore"
        );
        let counted = ApiError::UploadTooLarge {
            size: None,
            limit: 1024,
        }
        .to_string();
        assert!(
            counted.starts_with("the upload is over this server's limit of 1.0 KiB;"),
            "{counted}"
        );
    }
}
