//! `/v1/apps/{app}/health`: when an app's new instances count as ready, and how long a rollout
//! waits for them.

use axum::Json;
use axum::extract::State;
use spread_api::SetHealthCheck;
use spread_core::{AppName, Command, HealthCheck, Outcome};

use super::convert::{health, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn show(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<spread_api::HealthCheck>, ApiError> {
    with_app(&state, &app, |a| health(&a.health)).map(Json)
}

/// Replaces the check; a field left out takes its default.
pub(super) async fn set(
    State(state): State<AppState>,
    Path(app): Path<String>,
    extract::Json(req): extract::Json<SetHealthCheck>,
) -> Result<Json<spread_api::HealthCheck>, ApiError> {
    let check = HealthCheck {
        path: req.path,
        timeout_secs: req
            .timeout_seconds
            .unwrap_or(HealthCheck::DEFAULT_TIMEOUT_SECS),
    };
    replace(&state, &app, check).await
}

/// Back to the default: a TCP connect to `$PORT`, waited for 60 seconds.
pub(super) async fn reset(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<spread_api::HealthCheck>, ApiError> {
    replace(&state, &app, HealthCheck::default()).await
}

async fn replace(
    state: &AppState,
    app: &str,
    check: HealthCheck,
) -> Result<Json<spread_api::HealthCheck>, ApiError> {
    let command = Command::SetHealthCheck {
        app: AppName::parse(app)?,
        health: check,
        at: jiff::Timestamp::now(),
    };
    match state.raft.propose(command).await? {
        Outcome::HealthCheckSet { health: set, .. } => Ok(Json(health(&set))),
        other => Err(ApiError::unexpected(&other)),
    }
}
