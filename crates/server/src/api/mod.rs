//! The `/v1` HTTP API. Handlers authenticate, parse and validate, then turn the request into a
//! `Command` or a read of the state; no business decision lives here.

mod apps;
mod builds;
mod config;
mod convert;
mod deploys;
mod domains;
mod formation;
mod health;
mod images;
mod instances;
mod logs;
mod releases;
mod status;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::{AppState, auth, metrics};

pub(crate) fn router(state: AppState) -> Router {
    metrics::init();
    let v1 = Router::new()
        .route("/status", get(status::status))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{app}", get(apps::info).delete(apps::destroy))
        .route(
            "/apps/{app}/config",
            get(config::show).patch(config::update),
        )
        .route("/apps/{app}/deploys", post(deploys::create))
        // An upload is streamed to disk under its own limit (`max_upload_bytes`), not read
        // into memory under the JSON limit.
        .route(
            "/apps/{app}/builds",
            post(builds::create).layer(DefaultBodyLimit::disable()),
        )
        .route("/apps/{app}/images/push", post(images::push))
        .route("/apps/{app}/releases", get(releases::list))
        .route("/apps/{app}/releases/{version}", get(releases::show))
        .route("/apps/{app}/rollback", post(releases::rollback))
        .route("/apps/{app}/domains", get(domains::list).post(domains::add))
        .route("/apps/{app}/domains/{domain}", delete(domains::remove))
        .route(
            "/apps/{app}/health",
            get(health::show).put(health::set).delete(health::reset),
        )
        .route(
            "/apps/{app}/formation",
            get(formation::show).patch(formation::update),
        )
        .route("/apps/{app}/instances", get(instances::list))
        .route("/apps/{app}/router", get(instances::router))
        .route("/apps/{app}/logs", get(logs::show));
    let protected = Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics::render))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(protected)
        .route("/healthz", get(status::healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(metrics::track_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        what: "path".to_owned(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
