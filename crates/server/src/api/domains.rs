//! `/v1/apps/{app}/domains`: the custom domains an app is served at, besides `<app>.<domain>`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use spread_api::{AddDomainRequest, Domains};
use spread_core::{AppName, Command, DomainName, Outcome};

use super::convert::{domains, with_app};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Path};

pub(super) async fn list(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Domains>, ApiError> {
    with_app(&state, &app, |a| {
        domains(&a.name, &state.config.domain, &a.domains)
    })
    .map(Json)
}

pub(super) async fn add(
    State(state): State<AppState>,
    Path(app): Path<String>,
    extract::Json(req): extract::Json<AddDomainRequest>,
) -> Result<(StatusCode, Json<Domains>), ApiError> {
    let name = AppName::parse(&app)?;
    let domain = parse(&req.domain)?;
    refuse_node_domain(&domain, &name, &state.config.domain)?;
    let command = Command::AddDomain {
        app: name.clone(),
        domain,
        at: jiff::Timestamp::now(),
    };
    let changed = changed(&state, &name, state.raft.propose(command).await?)?;
    Ok((StatusCode::CREATED, Json(changed)))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Path((app, domain)): Path<(String, String)>,
) -> Result<Json<Domains>, ApiError> {
    let name = AppName::parse(&app)?;
    let command = Command::RemoveDomain {
        app: name.clone(),
        domain: parse(&domain)?,
        at: jiff::Timestamp::now(),
    };
    changed(&state, &name, state.raft.propose(command).await?).map(Json)
}

/// A domain as the user wrote it, canonical, or a 400 naming the `domain` field.
fn parse(input: &str) -> Result<DomainName, ApiError> {
    DomainName::parse(input).map_err(|e| ApiError::BadRequest {
        code: "invalid_domain",
        message: e.to_string(),
        field: Some("domain".to_owned()),
    })
}

/// Refuses a custom domain that is this node's domain or under it: every app is served at
/// `<app>.<domain>` already, so such a name would shadow an app's default host. The node's
/// domain is this node's config, not replicated state, so this is decided here rather than in
/// `apply` (every node of a cluster is expected to share the domain).
fn refuse_node_domain(
    domain: &DomainName,
    app: &AppName,
    node_domain: &str,
) -> Result<(), ApiError> {
    let node = node_domain.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.as_str();
    let under = domain
        .strip_suffix(node.as_str())
        .is_some_and(|head| head.is_empty() || head.ends_with('.'));
    if !under || node.is_empty() {
        return Ok(());
    }
    Err(ApiError::BadRequest {
        code: "domain_reserved",
        message: format!(
            "`{domain}` is under this server's domain `{node}`, where apps are already served \
             at <app>.{node} (this one at {app}.{node}); add a domain of your own, like \
             www.example.com"
        ),
        field: Some("domain".to_owned()),
    })
}

/// The app's domains after an accepted change.
fn changed(state: &AppState, app: &AppName, outcome: Outcome) -> Result<Domains, ApiError> {
    match outcome {
        Outcome::DomainsChanged { domains: now, .. } => {
            Ok(domains(app, &state.config.domain, &now))
        }
        other => Err(ApiError::unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(domain: &str, node: &str) -> bool {
        let domain = DomainName::parse(domain).unwrap();
        let app = AppName::parse("shop").unwrap();
        refuse_node_domain(&domain, &app, node).is_err()
    }

    #[test]
    fn only_the_node_domain_and_names_under_it_are_reserved() {
        assert!(refused("foo.localhost", "localhost"));
        assert!(refused("apps.example.com", "apps.example.com"));
        assert!(refused("x.apps.example.com", "Apps.Example.com."));
        assert!(!refused("myapps.example.com", "apps.example.com"));
        assert!(!refused("example.com", "apps.example.com"));
        assert!(!refused("www.example.com", "localhost"));
    }
}
