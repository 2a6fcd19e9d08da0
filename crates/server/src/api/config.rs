//! `/v1/apps/{app}/config`: read config vars, and set or unset them (each change is a release).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use spread_api::{ConfigPatch, ConfigVars};
use spread_core::{Actor, AppName, Command, ConfigKey};

use super::convert::{created_release, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn show(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<ConfigVars>, ApiError> {
    with_app(&state, &app, |a| {
        a.config
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    })
    .map(Json)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    extract::Json(patch): extract::Json<ConfigPatch>,
) -> Result<(StatusCode, Json<spread_api::Release>), ApiError> {
    let name = AppName::parse(&app)?;
    let mut set = BTreeMap::new();
    let mut unset = BTreeSet::new();
    for (key, value) in patch {
        let key = ConfigKey::parse(&key)?;
        match value {
            Some(value) => set.insert(key, value).map(drop),
            None => unset.insert(key).then_some(()),
        };
    }
    let command = Command::UpdateConfig {
        app: name,
        set,
        unset,
        by: actor,
        at: jiff::Timestamp::now(),
    };
    created_release(state.raft.propose(command).await?)
}
