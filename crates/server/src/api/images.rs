//! `/v1/apps/{app}/images/push`: push a release's image from this node's store to a registry.

use axum::Json;
use axum::extract::State;
use spread_api::{PushImageRequest, PushedImage};
use spread_core::{App, ReleaseImage};
use spread_image::{Digest, ImageReference, PushError, PushOptions, RegistryAuth, push as push_to};

use super::convert::with_app;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn push(
    State(state): State<AppState>,
    Path(app): Path<String>,
    extract::Json(req): extract::Json<PushImageRequest>,
) -> Result<Json<PushedImage>, ApiError> {
    let (version, image) = with_app(&state, &app, |a| release_image(a, req.release))??;
    let reference = ImageReference::parse(&req.reference).map_err(|e| ApiError::BadRequest {
        code: "invalid_image",
        message: e.to_string(),
        field: Some("reference".to_owned()),
    })?;
    let manifest = Digest::parse(&image.digest).map_err(|e| {
        ApiError::Internal(format!(
            "release v{version} has an invalid image digest: {e}"
        ))
    })?;
    let auth = match (req.registry_user, req.registry_password) {
        (Some(user), password) => RegistryAuth::Basic {
            user,
            password: password.unwrap_or_default(),
        },
        (None, _) => RegistryAuth::Anonymous,
    };
    let options = PushOptions {
        insecure: req.insecure_registry,
    };
    let report = push_to(&state.images, &manifest, &reference, &auth, &options)
        .await
        .map_err(|e| push_error(e, version))?;
    tracing::info!(%app, release = version, %reference, "pushed a release's image");
    Ok(Json(PushedImage {
        reference: reference.to_string(),
        digest: report.manifest_digest.to_string(),
        release: version,
    }))
}

/// The image of release `version`, or of the newest release that has one.
fn release_image(app: &App, version: Option<u64>) -> Result<(u64, ReleaseImage), ApiError> {
    let Some(version) = version else {
        return app
            .releases
            .iter()
            .rev()
            .find_map(|r| r.image.clone().map(|image| (r.version, image)))
            .ok_or_else(|| ApiError::BadRequest {
                code: "not_deployed",
                message: format!(
                    "app `{}` has never been deployed, so it has no image to push; deploy it \
                     first with `spread deploy`",
                    app.name
                ),
                field: None,
            });
    };
    let release = app
        .release(version)
        .ok_or_else(|| ApiError::ReleaseNotFound {
            app: app.name.to_string(),
            version,
        })?;
    let image = release.image.clone().ok_or_else(|| ApiError::BadRequest {
        code: "release_has_no_image",
        message: format!(
            "release v{version} of `{}` has no image: it was made before the app's first \
             deploy",
            app.name
        ),
        field: Some("release".to_owned()),
    })?;
    Ok((version, image))
}

fn push_error(e: PushError, version: u64) -> ApiError {
    match e {
        PushError::DigestConflict { .. } => ApiError::BadRequest {
            code: "invalid_image",
            message: e.to_string(),
            field: Some("reference".to_owned()),
        },
        PushError::Remote(_) => ApiError::Registry(e.to_string()),
        PushError::Store { .. } | PushError::BadManifest { .. } => ApiError::Storage(format!(
            "the image of release v{version} cannot be read from this node's store: {e}"
        )),
    }
}
