//! `/v1/apps`: create, list, show and destroy apps.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use spread_api::{AppInfo, AppSummary, CreateAppRequest};
use spread_core::{AppId, AppName, Command, Outcome};

use super::convert::{app_info, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn list(State(state): State<AppState>) -> Json<Vec<AppSummary>> {
    Json(state.raft.read(|s| {
        s.apps()
            .map(|a| AppSummary {
                name: a.name.to_string(),
                created_at: a.created_at,
                release: a.live_release().map(|r| r.version),
            })
            .collect()
    }))
}

pub(super) async fn create(
    State(state): State<AppState>,
    extract::Json(req): extract::Json<CreateAppRequest>,
) -> Result<(StatusCode, Json<AppInfo>), ApiError> {
    let name = AppName::parse(&req.name)?;
    let command = Command::CreateApp {
        id: AppId(uuid::Uuid::now_v7()),
        name,
        at: jiff::Timestamp::now(),
    };
    match state.raft.propose(command).await? {
        Outcome::AppCreated { app } => Ok((
            StatusCode::CREATED,
            Json(app_info(&app, &state.config.domain)),
        )),
        other => Err(ApiError::unexpected(&other)),
    }
}

pub(super) async fn info(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<AppInfo>, ApiError> {
    with_app(&state, &app, |a| app_info(a, &state.config.domain)).map(Json)
}

pub(super) async fn destroy(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = AppName::parse(&app)?;
    state
        .raft
        .propose(Command::DestroyApp {
            name,
            at: jiff::Timestamp::now(),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
