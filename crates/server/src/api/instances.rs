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
