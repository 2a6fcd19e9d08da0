//! `/v1/apps/{app}/releases`: the release history, and rollbacks to an earlier release.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use spread_api::RollbackRequest;
use spread_core::{Actor, AppName, Command};

use super::convert::{created_release, release, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn list(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Vec<spread_api::Release>>, ApiError> {
    with_app(&state, &app, |a| a.releases.iter().map(release).collect()).map(Json)
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<spread_api::Release>, ApiError> {
    let number = version
        .strip_prefix('v')
        .unwrap_or(&version)
        .parse::<u64>()
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_version",
            message: format!(
                "invalid release version `{version}`: use a number such as `3` or `v3`"
            ),
            field: Some("version".to_owned()),
        })?;
    with_app(&state, &app, |a| a.release(number).map(release))?
        .map(Json)
        .ok_or(ApiError::NotFound {
            what: format!("release v{number} of app `{app}`"),
        })
}

/// `POST /v1/apps/{app}/rollback`: a new release with an earlier one's image, commands and
/// config; which release, when none is named, is decided by `apply`.
pub(super) async fn rollback(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    extract::Json(req): extract::Json<RollbackRequest>,
) -> Result<(StatusCode, Json<spread_api::Release>), ApiError> {
    let command = Command::Rollback {
        app: AppName::parse(&app)?,
        version: req.version,
        by: actor,
        at: jiff::Timestamp::now(),
    };
    created_release(state.raft.propose(command).await?)
}
