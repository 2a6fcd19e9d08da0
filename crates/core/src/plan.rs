//! What should run: the instances the replicated state asks for, each with everything needed to
//! start it. Pure: the same state always gives the same instances, with the same IDs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{App, AppId, ProcessFormation, Release, ReleaseImage, ReleaseStatus};
use crate::name::{AppName, ProcessType};
use crate::state::State;

/// The port an instance listens on unless the app's config sets `PORT`.
pub const DEFAULT_PORT: u16 = 8080;

/// One instance to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredInstance {
    /// Stable for (app, release, process type, index); a new release means new IDs. A valid
    /// container name: at most 64 of `a-z0-9-`.
    pub id: String,
    pub app: AppName,
    pub app_id: AppId,
    pub release: u64,
    pub process: ProcessType,
    /// 1-based, like Heroku's `web.1`.
    pub index: u32,
    pub image_digest: String,
    /// The command with `$VAR` and `${VAR}` already expanded from `env`.
    pub argv: Vec<String>,
    /// In order: the image's environment, `PORT`, the app's config vars, then `SPREAD_*`.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u32>,
}

/// Every instance the state asks for: those of each app's live release and, while one rolls
/// out, those of the new release beside them. Ordered by app, release, process type and index.
pub fn desired_instances(state: &State) -> Vec<DesiredInstance> {
    let mut out = Vec::new();
    for app in state.apps() {
        for release in [app.live_release(), app.rolling_release()]
            .into_iter()
            .flatten()
        {
            out.extend(release_instances(app, release));
        }
    }
    out
}

/// The instances of one release of an app, by its formation (none without an image).
pub fn release_instances(app: &App, release: &Release) -> Vec<DesiredInstance> {
    let mut out = Vec::new();
    if release.image.is_none() {
        return out;
    }
    for (process, argv) in &release.processes {
        let Some(formation) = app.formation.get(process) else {
            continue;
        };
        for index in 1..=formation.quantity {
            out.push(instance(app, release, process, argv, index, formation));
        }
    }
    out
}

/// The one-off instance that runs a release command (the Procfile's `release:`) before
/// `image` is released: process type `release`, with the environment the release's own
/// instances will get. `key` (e.g. the build's ID) makes its ID unique.
pub fn release_task(
    app: &App,
    image: ReleaseImage,
    argv: Vec<String>,
    key: &str,
) -> DesiredInstance {
    let process = ProcessType::parse("release").expect("`release` is a valid process type");
    let release = Release {
        version: app.next_version(),
        description: String::new(),
        config: app.config.clone(),
        created_at: app.created_at,
        created_by: String::new(),
        created_by_token: None,
        image: Some(image),
        processes: BTreeMap::new(),
        status: ReleaseStatus::RollingOut,
    };
    let mut task = instance(
        app,
        &release,
        &process,
        &argv,
        1,
        &ProcessFormation::with_quantity(1),
    );
    let hash = fnv1a(format!("{}/release/{key}", app.id).as_bytes());
    let mut prefix = format!("{}-release", app.name);
    prefix.truncate(64 - 1 - 12);
    task.id = format!(
        "{}-{:012x}",
        prefix.trim_end_matches('-'),
        hash & 0xffff_ffff_ffff
    );
    if let Some((_, value)) = task.env.iter_mut().find(|(k, _)| k == "SPREAD_INSTANCE") {
        value.clone_from(&task.id);
    }
    // Expanded again, so `$SPREAD_INSTANCE` names the task's own ID.
    let lookup: BTreeMap<&str, &str> = task
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    task.argv = argv.iter().map(|a| expand(a, &lookup)).collect();
    task
}

fn instance(
    app: &App,
    release: &Release,
    process: &ProcessType,
    argv: &[String],
    index: u32,
    formation: &ProcessFormation,
) -> DesiredInstance {
    let image = release
        .image
        .as_ref()
        .expect("only releases with an image run");
    let id = instance_id(app, release.version, process, index);
    let env = environment(app, release, process, &id);
    let lookup: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    DesiredInstance {
        argv: argv.iter().map(|a| expand(a, &lookup)).collect(),
        id,
        app: app.name.clone(),
        app_id: app.id,
        release: release.version,
        process: process.clone(),
        index,
        image_digest: image.digest.clone(),
        env,
        working_dir: image.working_dir.clone(),
        user: image.user.clone(),
        memory_bytes: formation.memory_bytes,
        cpu_millis: formation.cpu_millis,
    }
}

/// `shop-web-1-` and a hash of everything that identifies the instance, cut to fit 64 bytes.
fn instance_id(app: &App, version: u64, process: &ProcessType, index: u32) -> String {
    let hash = fnv1a(format!("{}/{version}/{process}/{index}", app.id).as_bytes());
    let mut prefix = format!("{}-{process}-{index}", app.name);
    prefix.truncate(64 - 1 - 12);
    format!(
        "{}-{:012x}",
        prefix.trim_end_matches('-'),
        hash & 0xffff_ffff_ffff
    )
}

/// FNV-1a: a small, stable hash (it must never change, or running instances change IDs).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn environment(
    app: &App,
    release: &Release,
    process: &ProcessType,
    id: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: String| {
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value));
    };
    let image = release
        .image
        .as_ref()
        .expect("only releases with an image run");
    for entry in &image.env {
        if let Some((key, value)) = entry.split_once('=') {
            set(key, value.to_owned());
        }
    }
    set("PORT", DEFAULT_PORT.to_string());
    for (key, value) in &release.config {
        set(key.as_str(), value.clone());
    }
    set("SPREAD_APP", app.name.to_string());
    set("SPREAD_RELEASE", format!("v{}", release.version));
    set("SPREAD_PROCESS", process.to_string());
    set("SPREAD_INSTANCE", id.to_owned());
    env
}

/// Expands `$NAME` and `${NAME}` from `env`; unknown names expand to nothing, as in a shell.
/// `$` not followed by a name stays as it is.
pub fn expand(arg: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if is_name(&braced[..end]) => (&braced[..end], end + 2),
                _ => ("", 0),
            }
        } else {
            let end = after
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(i, _)| i);
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(env.get(name).copied().unwrap_or(""));
            rest = &after[consumed..];
        }
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
