//! Extractors whose rejections use the API's error shape: a JSON body whose errors say where the
//! JSON is wrong (and 413 for bodies over the limit), path parameters and query strings.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body the API reads, in bytes. A config change holds at most 256 KiB of vars.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit: BODY_LIMIT }
            } else {
                ApiError::BadRequest {
                    code: "unreadable_body",
                    message: e.body_text(),
                    field: None,
                }
            }
        })?;
        parse(&bytes).map(Json)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("request body is not valid JSON for this endpoint: {e}"),
        field: None,
    })
}

/// Path parameters; a segment that is not valid (e.g. not UTF-8) is a 400 in the error shape.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| ApiError::BadRequest {
                code: "invalid_path",
                message: e.body_text(),
                field: None,
            })
    }
}

/// Query parameters; a query string that does not fit is a 400 in the error shape.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::BadRequest {
                code: "invalid_query",
                message: e.body_text(),
                field: None,
            })
    }
}
