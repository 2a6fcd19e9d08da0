//! `/v1/apps/{app}/releases`: the release history.

use axum::Json;
use axum::extract::State;

use super::convert::{release, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;

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
