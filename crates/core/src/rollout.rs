//! Rollouts and routes: which rollouts are over, and which instances serve each app. Pure
//! functions of the state and what the node agents observe; the server's loop proposes the
//! commands and the gateway takes the routes.

use std::collections::BTreeMap;

use crate::command::Command;
use crate::model::{App, Release, Timestamp};
use crate::name::{AppName, ProcessType};
use crate::plan::{DEFAULT_PORT, DesiredInstance, release_instances};
use crate::state::State;

/// What a node agent sees of one instance, as far as a rollout cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Not started yet, or started and not yet healthy.
    Starting,
    /// Passed its health check (a `web` instance) or runs steadily (any other type).
    Healthy,
    /// Exited or could not start before it became healthy; says how, e.g. `exited with code 1`.
    Failed { reason: String },
}

/// The `FinishRollout` commands due now: a rollout succeeds once every new instance is
/// healthy, and fails as soon as one of them fails or when the app's health timeout passes.
/// Instances nobody has observed yet count as starting.
pub fn finished_rollouts(
    state: &State,
    observed: &BTreeMap<String, Observed>,
    now: Timestamp,
) -> Vec<Command> {
    state
        .apps()
        .filter_map(|app| {
            let release = app.rolling_release()?;
            let failure = rollout_failure(app, release, observed, now)?;
            Some(Command::FinishRollout {
                app: app.name.clone(),
                version: release.version,
                failure,
                at: now,
            })
        })
        .collect()
}

/// `None` while the rollout goes on; `Some(None)` when it succeeded; `Some(Some(reason))` when
/// it failed.
fn rollout_failure(
    app: &App,
    release: &Release,
    observed: &BTreeMap<String, Observed>,
    now: Timestamp,
) -> Option<Option<String>> {
    let instances = release_instances(app, release);
    let mut waiting = Vec::new();
    for instance in &instances {
        match observed.get(&instance.id).unwrap_or(&Observed::Starting) {
            Observed::Healthy => {}
            Observed::Failed { reason } => {
                return Some(Some(format!(
                    "{} {reason} before it became healthy",
                    label(instance)
                )));
            }
            Observed::Starting => waiting.push(instance),
        }
    }
    if waiting.is_empty() {
        return Some(None);
    }
    let timeout = i64::from(app.health.timeout_secs);
    let waited = now.duration_since(release.created_at).as_secs();
    if waited < timeout {
        return None;
    }
    let check = match &app.health.path {
        Some(path) => format!("GET {path} never answered 2xx or 3xx"),
        None => "nothing accepted connections on $PORT".to_owned(),
    };
    let names: Vec<String> = waiting
        .iter()
        .map(|i| match i.process == ProcessType::web() {
            true => format!("{} (port {})", label(i), port(i)),
            false => label(i),
        })
        .collect();
    Some(Some(format!(
        "{} did not become healthy within {timeout} s: {check}",
        names.join(", ")
    )))
}

/// `web.1`, as users name instances.
pub fn label(instance: &DesiredInstance) -> String {
    format!("{}.{}", instance.process, instance.index)
}

/// The port an instance listens on: its `PORT`, or the default when that is not a port.
pub fn port(instance: &DesiredInstance) -> u16 {
    instance
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PORT")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

/// Where one app is served and by which instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoutes {
    pub app: AppName,
    /// `<app>.<domain>` first, then the custom domains.
    pub hosts: Vec<String>,
    pub backends: Vec<RouteBackend>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteBackend {
    pub instance: String,
    /// `web.1`.
    pub label: String,
    pub port: u16,
}

/// The routes of every app: the healthy `web` instances of its live release. A rolling-out
/// release gets no traffic until its rollout succeeds and it becomes live, so the switch is
/// one swap of the route table.
pub fn routes(state: &State, domain: &str, healthy: impl Fn(&str) -> bool) -> Vec<AppRoutes> {
    state
        .apps()
        .map(|app| {
            let mut hosts = vec![format!("{}.{domain}", app.name)];
            hosts.extend(app.domains.iter().map(ToString::to_string));
            let backends = app
                .live_release()
                .map(|release| release_instances(app, release))
                .unwrap_or_default()
                .iter()
                .filter(|i| i.process == ProcessType::web() && healthy(&i.id))
                .map(|i| RouteBackend {
                    instance: i.id.clone(),
                    label: label(i),
                    port: port(i),
                })
                .collect();
            AppRoutes {
                app: app.name.clone(),
                hosts,
                backends,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
