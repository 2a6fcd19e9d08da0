//! `/v1/apps/{app}/instances`: the app's instances on this node, as its agent reports them.

use axum::Json;
use axum::extract::State;

use super::convert::with_app;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;

pub(super) async fn list(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Vec<spread_api::Instance>>, ApiError> {
    let id = with_app(&state, &app, |a| a.id)?;
    Ok(Json(state.instances.instances(&id)))
}

/// `/v1/apps/{app}/router`: what the gateway saw of the app's requests; all zero before any.
pub(super) async fn router(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<spread_api::RouterSummary>, ApiError> {
    let name = with_app(&state, &app, |a| a.name.to_string())?;
    let summary = state
        .instances
        .router(&name)
        .unwrap_or(spread_api::RouterSummary {
            requests: [0; 5],
            in_flight: 0,
            p50_ms: None,
            p99_ms: None,
        });
    Ok(Json(summary))
}
