//! `/v1/apps/{app}/deploys`: pull an image into this node's store and release it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use spread_api::DeployRequest;
use spread_core::{Actor, AppName, Command, ProcessType, ReleaseImage, split_command_line};
use spread_image::{ImageReference, PullError, PullOptions, RegistryAuth, pull};

use super::convert::{created_release, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    extract::Json(req): extract::Json<DeployRequest>,
) -> Result<(StatusCode, Json<spread_api::Release>), ApiError> {
    let name = AppName::parse(&app)?;
    // Fail before the slow pull if the app does not exist.
    let app_id = with_app(&state, name.as_str(), |app| app.id)?;
    let reference = ImageReference::parse(&req.image).map_err(|e| ApiError::BadRequest {
        code: "invalid_image",
        message: e.to_string(),
        field: Some("image".to_owned()),
    })?;
    let mut processes = parse_processes(&req.processes)?;
    let auth = match (req.registry_user, req.registry_password) {
        (Some(user), password) => RegistryAuth::Basic {
            user,
            password: password.unwrap_or_default(),
        },
        (None, _) => RegistryAuth::Anonymous,
    };
    let options = PullOptions {
        insecure: req.insecure_registry,
        ..PullOptions::default()
    };
    let pulled = pull(&state.images, &reference, &auth, &options)
        .await
        .map_err(pull_error)?;
    let manifest = pulled.manifest_digest.to_string();
    if let Err(reason) = prepare_image(&state, app_id, manifest).await {
        return Err(ApiError::BadRequest {
            code: "image_refused",
            message: format!(
                "image {reference} cannot run here: {reason}; nothing was released and the app runs as before"
            ),
            field: Some("image".to_owned()),
        });
    }
    if processes.is_empty() {
        let config = &pulled.config;
        let argv: Vec<String> = config
            .entrypoint
            .iter()
            .chain(&config.cmd)
            .cloned()
            .collect();
        if argv.is_empty() {
            return Err(ApiError::BadRequest {
                code: "no_command",
                message: format!(
                    "image {reference} has no entrypoint or cmd; say what to run with --process web='COMMAND'"
                ),
                field: Some("processes".to_owned()),
            });
        }
        processes.insert(ProcessType::web(), argv);
    }
    let image = ReleaseImage {
        reference: req.image,
        digest: pulled.manifest_digest.to_string(),
        env: pulled.config.env.clone(),
        working_dir: pulled.config.working_dir.clone(),
        user: pulled.config.user.clone(),
    };
    let command = Command::DeployImage {
        app: name,
        image,
        processes,
        by: actor,
        at: jiff::Timestamp::now(),
    };
    created_release(state.raft.propose(command).await?)
}

/// Has this node make the image `manifest` ready to run for `app` (its layers unpacked, so a
/// hostile image is refused before any release refers to it), or says why it cannot run.
pub(super) async fn prepare_image(
    state: &AppState,
    app: spread_core::AppId,
    manifest: String,
) -> Result<(), String> {
    let instances = state.instances.clone();
    tokio::task::spawn_blocking(move || instances.prepare_image(&app, &manifest))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

fn parse_processes(
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<ProcessType, Vec<String>>, ApiError> {
    given
        .iter()
        .map(|(process, line)| {
            let process = ProcessType::parse(process)?;
            let argv = split_command_line(line).map_err(|e| ApiError::BadRequest {
                code: "invalid_command",
                message: e.to_string(),
                field: Some(process.to_string()),
            })?;
            Ok((process, argv))
        })
        .collect()
}

fn pull_error(e: PullError) -> ApiError {
    let code = match e {
        PullError::NotFound { .. } => "image_not_found",
        _ => "image_pull_failed",
    };
    ApiError::BadRequest {
        code,
        message: e.to_string(),
        field: Some("image".to_owned()),
    }
}
