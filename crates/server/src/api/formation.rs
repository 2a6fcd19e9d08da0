//! `/v1/apps/{app}/formation`: how many instances of each process type should run, and their
//! limits.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use spread_api::{FormationPatch, ProcessFormation};
use spread_core::{AppName, Command, Outcome, ProcessType, Rejection};

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

/// Sets the limits of the types in `limits` (each merged with the type's current limits),
/// then the quantities; answers the formation after both.
pub(super) async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    extract::Json(patch): extract::Json<FormationPatch>,
) -> Result<Json<Vec<ProcessFormation>>, ApiError> {
    let name = AppName::parse(&app)?;
    let quantities = parse_types(patch.quantities)?;
    let limits = parse_types(patch.limits)?;
    if quantities.is_empty() && limits.is_empty() {
        return Err(ApiError::Rejected(Rejection::EmptyScale));
    }
    let at = jiff::Timestamp::now();
    let commands = with_app(&state, &app, |current| {
        let mut commands: Vec<Command> = limits
            .into_iter()
            .map(|(process, patch)| {
                let (memory, cpu) = current
                    .formation
                    .get(&process)
                    .map_or((None, None), |f| (f.memory_bytes, f.cpu_millis));
                Command::SetResources {
                    app: name.clone(),
                    process,
                    memory_bytes: patch.memory_bytes.unwrap_or(memory),
                    cpu_millis: patch.cpu_millis.unwrap_or(cpu),
                    at,
                }
            })
            .collect();
        if !quantities.is_empty() {
            commands.push(Command::Scale {
                app: name.clone(),
                quantities,
                at,
            });
        }
        (current.id, commands)
    })
    .and_then(|(id, commands)| trial(id, &name, at, commands))?;
    let mut answer = None;
    for command in commands {
        match state.raft.propose(command).await? {
            Outcome::Scaled { formation, .. } => answer = Some(formation_list(&formation)),
            other => return Err(ApiError::unexpected(&other)),
        }
    }
    answer
        .map(Json)
        .ok_or_else(|| ApiError::Internal("a formation change made no command".to_owned()))
}

/// Parses the process types a patch names.
fn parse_types<T>(by_type: BTreeMap<String, T>) -> Result<BTreeMap<ProcessType, T>, ApiError> {
    by_type
        .into_iter()
        .map(|(t, value)| Ok((ProcessType::parse(&t)?, value)))
        .collect()
}

/// Runs the commands of one patch on a state that holds only a new app of that name, and
/// returns them if `apply` takes every one. A patch is more than one command, so this refuses
/// it before any part is committed: a refused patch changes nothing. Which values are refused
/// is still decided by `apply` alone (it does not depend on the app's formation); only a change
/// to the app racing the patch can cut it short between its commands.
fn trial(
    id: spread_core::AppId,
    name: &AppName,
    at: jiff::Timestamp,
    commands: Vec<Command>,
) -> Result<Vec<Command>, ApiError> {
    let mut state = spread_core::State::default();
    state
        .apply(Command::CreateApp {
            id,
            name: name.clone(),
            at,
        })
        .map_err(ApiError::Rejected)?;
    for command in &commands {
        state.apply(command.clone()).map_err(ApiError::Rejected)?;
    }
    Ok(commands)
}
