//! `/v1/apps/{app}/formation`: how many instances of each process type should run.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use spread_api::{FormationPatch, ProcessFormation};
use spread_core::{AppName, Command, Outcome, ProcessType};

use super::convert::{formation, formation_list, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn show(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Vec<ProcessFormation>>, ApiError> {
    with_app(&state, &app, formation).map(Json)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    extract::Json(patch): extract::Json<FormationPatch>,
) -> Result<Json<Vec<ProcessFormation>>, ApiError> {
    let name = AppName::parse(&app)?;
    let quantities = patch
        .quantities
        .iter()
        .map(|(t, q)| Ok((ProcessType::parse(t)?, *q)))
        .collect::<Result<BTreeMap<_, _>, ApiError>>()?;
    let command = Command::Scale {
        app: name,
        quantities,
        at: jiff::Timestamp::now(),
    };
    match state.raft.propose(command).await? {
        Outcome::Scaled { formation, .. } => Ok(Json(formation_list(&formation))),
        other => Err(ApiError::unexpected(&other)),
    }
}
