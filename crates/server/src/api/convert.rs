//! Conversions from the stored model (`spread-core`) to the wire types (`spread-api`).

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use spread_core::{
    App, AppName, DomainName, HealthCheck, Outcome, ProcessFormation, ProcessType, Release,
    ReleaseStatus,
};

use crate::AppState;
use crate::error::ApiError;

pub(super) fn release(r: &Release) -> spread_api::Release {
    spread_api::Release {
        version: r.version,
        description: r.description.clone(),
        created_at: r.created_at,
        created_by: r.created_by.clone(),
        created_by_token: r.created_by_token.as_ref().map(ToString::to_string),
        image: r.image.as_ref().map(|i| spread_api::ReleaseImage {
            reference: i.reference.clone(),
            digest: i.digest.clone(),
        }),
        processes: r
            .processes
            .iter()
            .map(|(t, argv)| (t.to_string(), argv.clone()))
            .collect(),
        config: r
            .config
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        status: r.status.as_str().to_owned(),
        failure: match &r.status {
            ReleaseStatus::Failed { reason } => Some(reason.clone()),
            _ => None,
        },
    }
}

pub(super) fn formation(app: &App) -> Vec<spread_api::ProcessFormation> {
    formation_list(&app.formation)
}

pub(super) fn formation_list(
    formation: &BTreeMap<ProcessType, ProcessFormation>,
) -> Vec<spread_api::ProcessFormation> {
    formation
        .iter()
        .map(|(t, f)| spread_api::ProcessFormation {
            process_type: t.to_string(),
            quantity: f.quantity,
            memory_bytes: f.memory_bytes,
            cpu_millis: f.cpu_millis,
        })
        .collect()
}

pub(super) fn app_info(app: &App, domain: &str) -> spread_api::AppInfo {
    spread_api::AppInfo {
        id: app.id.to_string(),
        name: app.name.to_string(),
        created_at: app.created_at,
        release: app.live_release().map(|r| r.version),
        config_vars: app.config.len(),
        formation: formation(app),
        url: format!("http://{}.{}/", app.name, domain),
        domains: app.domains.iter().map(ToString::to_string).collect(),
    }
}

/// Where an app is served: `<app>.<node domain>` and its custom domains.
pub(super) fn domains<'a>(
    app: &AppName,
    node_domain: &str,
    custom: impl IntoIterator<Item = &'a DomainName>,
) -> spread_api::Domains {
    spread_api::Domains {
        default: format!("{app}.{node_domain}"),
        custom: custom.into_iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn health(health: &HealthCheck) -> spread_api::HealthCheck {
    spread_api::HealthCheck {
        path: health.path.clone(),
        timeout_seconds: health.timeout_secs,
    }
}

/// Parses the `{app}` path segment and runs `f` on the app, or answers 404.
pub(super) fn with_app<R>(
    state: &AppState,
    name: &str,
    f: impl FnOnce(&App) -> R,
) -> Result<R, ApiError> {
    let name = AppName::parse(name)?;
    state
        .raft
        .read(|s| s.app(&name).map(f))
        .ok_or(ApiError::Rejected(spread_core::Rejection::AppNotFound {
            name,
        }))
}

/// The answer to a command that makes a release: 201 and the release.
pub(super) fn created_release(
    outcome: Outcome,
) -> Result<(StatusCode, Json<spread_api::Release>), ApiError> {
    released(outcome).map(|r| (StatusCode::CREATED, Json(r)))
}

/// The release a command made, or an error if it did something else.
pub(super) fn released(outcome: Outcome) -> Result<spread_api::Release, ApiError> {
    match outcome {
        Outcome::ReleaseCreated {
            release: created, ..
        } => Ok(release(&created)),
        other => Err(ApiError::unexpected(&other)),
    }
}
