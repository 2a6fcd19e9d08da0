//! The replicated state and its deterministic `apply`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{Actor, Command, Outcome};
use crate::limits::Limits;
use crate::model::{
    App, AppId, Config, HealthCheck, ProcessFormation, Release, ReleaseImage, ReleaseStatus,
    Timestamp, Token, TokenId,
};
use crate::name::{AppName, ConfigKey, DomainName, ProcessType};
use crate::rejection::Rejection;

/// Everything the control plane agrees on. Maps are ordered so the serialized form of a state is
/// a function of the commands applied to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    apps: BTreeMap<AppName, App>,
    tokens: BTreeMap<TokenId, Token>,
    /// Whether new releases roll out (`EnableRollouts`). Commands logged before rollouts
    /// existed must keep their meaning when they are applied again: until then, a release is
    /// live as soon as it is made, as it always was.
    rollouts: bool,
}

impl State {
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    pub fn app(&self, name: &AppName) -> Option<&App> {
        self.apps.get(name)
    }

    pub fn token(&self, id: &TokenId) -> Option<&Token> {
        self.tokens.get(id)
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    /// Whether new releases roll out; see `Command::EnableRollouts`.
    pub fn rollouts_enabled(&self) -> bool {
        self.rollouts
    }

    /// Applies one command. On rejection the state is unchanged.
    pub fn apply(&mut self, command: Command) -> Result<Outcome, Rejection> {
        match command {
            Command::CreateApp { id, name, at } => self.create_app(id, name, at),
            Command::DestroyApp { name, at: _ } => {
                self.apps
                    .remove(&name)
                    .ok_or(Rejection::AppNotFound { name })?;
                Ok(Outcome::AppDestroyed)
            }
            Command::UpdateConfig {
                app,
                set,
                unset,
                by,
                at,
            } => self.update_config(&app, set, unset, by, at),
            Command::Scale {
                app,
                quantities,
                at: _,
            } => self.scale(&app, quantities),
            Command::DeployImage {
                app,
                image,
                processes,
                by,
                at,
            } => self.deploy_image(&app, image, processes, by, at),
            Command::SetResources {
                app,
                process,
                memory_bytes,
                cpu_millis,
                at: _,
            } => self.set_resources(&app, process, memory_bytes, cpu_millis),
            Command::CreateToken {
                id,
                name,
                secret_hash,
                at,
            } => {
                if self.tokens.contains_key(&id) {
                    return Err(Rejection::TokenExists { id });
                }
                let token = Token {
                    id: id.clone(),
                    name,
                    secret_hash,
                    created_at: at,
                };
                self.tokens.insert(id, token);
                Ok(Outcome::TokenCreated)
            }
            Command::FinishRollout {
                app,
                version,
                failure,
                at: _,
            } => self.finish_rollout(&app, version, failure),
            Command::Rollback {
                app,
                version,
                by,
                at,
            } => self.rollback(&app, version, by, at),
            Command::AddDomain { app, domain, at: _ } => self.add_domain(&app, domain),
            Command::RemoveDomain { app, domain, at: _ } => {
                let app = self.app_mut(&app)?;
                if !app.domains.remove(&domain) {
                    return Err(Rejection::DomainNotFound { domain });
                }
                Ok(Outcome::DomainsChanged {
                    app: app.id,
                    domains: app.domains.clone(),
                })
            }
            Command::EnableRollouts { at: _ } => {
                self.rollouts = true;
                Ok(Outcome::RolloutsEnabled)
            }
            Command::SetHealthCheck { app, health, at: _ } => {
                check_health(&health)?;
                let app = self.app_mut(&app)?;
                app.health = health.clone();
                Ok(Outcome::HealthCheckSet {
                    app: app.id,
                    health,
                })
            }
        }
    }

    /// The app that has `domain` as one of its custom domains.
    pub fn domain_owner(&self, domain: &DomainName) -> Option<&App> {
        self.apps.values().find(|a| a.domains.contains(domain))
    }

    fn create_app(
        &mut self,
        id: AppId,
        name: AppName,
        at: Timestamp,
    ) -> Result<Outcome, Rejection> {
        if self.apps.contains_key(&name) {
            return Err(Rejection::AppExists { name });
        }
        let app = App {
            id,
            name: name.clone(),
            created_at: at,
            config: Config::new(),
            releases: Vec::new(),
            formation: BTreeMap::from([(ProcessType::web(), ProcessFormation::with_quantity(1))]),
            domains: BTreeSet::new(),
            health: HealthCheck::default(),
        };
        self.apps.insert(name, app.clone());
        Ok(Outcome::AppCreated { app: Box::new(app) })
    }

    fn app_mut(&mut self, name: &AppName) -> Result<&mut App, Rejection> {
        self.apps
            .get_mut(name)
            .ok_or_else(|| Rejection::AppNotFound { name: name.clone() })
    }

    fn update_config(
        &mut self,
        name: &AppName,
        set: BTreeMap<ConfigKey, String>,
        unset: BTreeSet<ConfigKey>,
        by: Actor,
        at: Timestamp,
    ) -> Result<Outcome, Rejection> {
        let rollouts = self.rollouts;
        let app = self.app_mut(name)?;
        if set.is_empty() && unset.is_empty() {
            return Err(Rejection::EmptyConfigChange);
        }
        if let Some(key) = set.keys().find(|k| unset.contains(*k)) {
            return Err(Rejection::ConfigKeySetAndUnset { key: key.clone() });
        }
        if let Some((key, value)) = set
            .iter()
            .find(|(_, v)| v.len() > Limits::CONFIG_VALUE_BYTES)
        {
            return Err(Rejection::ConfigValueTooLarge {
                key: key.clone(),
                size: value.len(),
            });
        }
        // A value becomes an environment variable of a process, where a NUL byte cannot be.
        if let Some(key) = set.iter().find(|(_, v)| v.contains('\0')).map(|(k, _)| k) {
            return Err(Rejection::ConfigValueHasNul { key: key.clone() });
        }
        let mut config = app.config.clone();
        for key in &unset {
            config.remove(key);
        }
        let description = describe_config_change(&set, &unset);
        config.extend(set);
        let size: usize = config.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        if size > Limits::CONFIG_TOTAL_BYTES {
            return Err(Rejection::ConfigTooLarge { size });
        }
        // A config change keeps running what runs now (or what is rolling out, which the user
        // deployed last), with the new config.
        let (image, processes) = match app.rolling_release().or(app.live_release()) {
            Some(current) => (current.image.clone(), current.processes.clone()),
            None => (None, BTreeMap::new()),
        };
        app.config = config.clone();
        Ok(app.push_release(description, config, image, processes, by, at, rollouts))
    }

    fn deploy_image(
        &mut self,
        name: &AppName,
        image: ReleaseImage,
        processes: BTreeMap<ProcessType, Vec<String>>,
        by: Actor,
        at: Timestamp,
    ) -> Result<Outcome, Rejection> {
        let rollouts = self.rollouts;
        let app = self.app_mut(name)?;
        check_image(&image)?;
        check_processes(&processes)?;
        let description = format!("Deploy {}", image.reference);
        let config = app.config.clone();
        Ok(app.push_release(
            description,
            config,
            Some(image),
            processes,
            by,
            at,
            rollouts,
        ))
    }

    fn finish_rollout(
        &mut self,
        name: &AppName,
        version: u64,
        failure: Option<String>,
    ) -> Result<Outcome, Rejection> {
        let app = self.app_mut(name)?;
        let release = app
            .releases
            .last_mut()
            .filter(|r| r.version == version && r.status == ReleaseStatus::RollingOut)
            .ok_or(Rejection::NotRollingOut { version })?;
        release.status = match failure {
            None => ReleaseStatus::Deployed,
            Some(reason) => ReleaseStatus::Failed { reason },
        };
        Ok(Outcome::RolloutFinished {
            app: app.id,
            release: Box::new(release.clone()),
        })
    }

    fn rollback(
        &mut self,
        name: &AppName,
        version: Option<u64>,
        by: Actor,
        at: Timestamp,
    ) -> Result<Outcome, Rejection> {
        let rollouts = self.rollouts;
        let app = self.app_mut(name)?;
        let target = match version {
            Some(version) => app
                .release(version)
                .ok_or(Rejection::ReleaseNotFound { version })?,
            None => {
                let live = app.live_release().map_or(0, |r| r.version);
                app.releases
                    .iter()
                    .rev()
                    .find(|r| {
                        r.version < live && r.status == ReleaseStatus::Deployed && r.image.is_some()
                    })
                    .ok_or(Rejection::NothingToRollBackTo)?
            }
        };
        if target.image.is_none() {
            return Err(Rejection::ReleaseHasNoImage {
                version: target.version,
            });
        }
        let description = format!("Rollback to v{}", target.version);
        let (config, image, processes) = (
            target.config.clone(),
            target.image.clone(),
            target.processes.clone(),
        );
        // Like Heroku: the config comes back with the code.
        app.config = config.clone();
        Ok(app.push_release(description, config, image, processes, by, at, rollouts))
    }

    fn add_domain(&mut self, name: &AppName, domain: DomainName) -> Result<Outcome, Rejection> {
        if let Some(owner) = self.domain_owner(&domain) {
            return Err(Rejection::DomainTaken {
                domain,
                app: owner.name.clone(),
            });
        }
        let app = self.app_mut(name)?;
        if app.domains.len() >= Limits::MAX_DOMAINS {
            return Err(Rejection::TooManyDomains);
        }
        app.domains.insert(domain);
        Ok(Outcome::DomainsChanged {
            app: app.id,
            domains: app.domains.clone(),
        })
    }

    fn set_resources(
        &mut self,
        name: &AppName,
        process: ProcessType,
        memory_bytes: Option<u64>,
        cpu_millis: Option<u32>,
    ) -> Result<Outcome, Rejection> {
        let app = self.app_mut(name)?;
        if let Some(bytes) = memory_bytes
            && !(Limits::MIN_MEMORY_BYTES..=Limits::MAX_MEMORY_BYTES).contains(&bytes)
        {
            return Err(Rejection::MemoryOutOfRange { bytes });
        }
        if let Some(millis) = cpu_millis
            && !(Limits::MIN_CPU_MILLIS..=Limits::MAX_CPU_MILLIS).contains(&millis)
        {
            return Err(Rejection::CpuOutOfRange { millis });
        }
        // Limits can be set before any instance of the type is asked for.
        let formation = app
            .formation
            .entry(process)
            .or_insert(ProcessFormation::with_quantity(0));
        formation.memory_bytes = memory_bytes;
        formation.cpu_millis = cpu_millis;
        Ok(Outcome::Scaled {
            app: app.id,
            formation: app.formation.clone(),
        })
    }

    fn scale(
        &mut self,
        name: &AppName,
        quantities: BTreeMap<ProcessType, u32>,
    ) -> Result<Outcome, Rejection> {
        let app = self.app_mut(name)?;
        if quantities.is_empty() {
            return Err(Rejection::EmptyScale);
        }
        if let Some((process, &quantity)) =
            quantities.iter().find(|(_, q)| **q > Limits::MAX_QUANTITY)
        {
            return Err(Rejection::QuantityTooLarge {
                process: process.clone(),
                quantity,
            });
        }
        for (process, quantity) in quantities {
            app.formation
                .entry(process)
                .and_modify(|f| f.quantity = quantity)
                .or_insert(ProcessFormation::with_quantity(quantity));
        }
        Ok(Outcome::Scaled {
            app: app.id,
            formation: app.formation.clone(),
        })
    }
}

impl App {
    /// Appends the next release and says so. With `rollouts` off (commands logged before
    /// rollouts existed) it is live at once.
    #[allow(clippy::too_many_arguments)]
    fn push_release(
        &mut self,
        description: String,
        config: Config,
        image: Option<ReleaseImage>,
        processes: BTreeMap<ProcessType, Vec<String>>,
        by: Actor,
        at: Timestamp,
        rollouts: bool,
    ) -> Outcome {
        // Nothing to roll out without an image; a release that was still rolling out gives way.
        let status = if image.is_some() && rollouts {
            ReleaseStatus::RollingOut
        } else {
            ReleaseStatus::Deployed
        };
        if let Some(rolling) = self
            .releases
            .last_mut()
            .filter(|r| r.status == ReleaseStatus::RollingOut)
        {
            rolling.status = ReleaseStatus::Superseded;
        }
        let release = Release {
            version: self.next_version(),
            description,
            config,
            created_at: at,
            created_by: by.name,
            created_by_token: Some(by.token),
            image,
            processes,
            status,
        };
        self.releases.push(release.clone());
        Outcome::ReleaseCreated {
            app: self.id,
            release: Box::new(release),
        }
    }
}

fn check_image(image: &ReleaseImage) -> Result<(), Rejection> {
    let invalid = |reason: &str| {
        Err(Rejection::InvalidImage {
            reference: image.reference.clone(),
            reason: reason.to_owned(),
        })
    };
    if image.reference.is_empty() || image.reference.len() > Limits::MAX_REFERENCE_BYTES {
        return invalid("a reference is 1 to 512 bytes long");
    }
    let hex = image.digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return invalid("its digest is not `sha256:` and 64 lowercase hex digits");
    }
    if image
        .env
        .iter()
        .any(|e| e.contains('\0') || !e.contains('='))
    {
        return invalid("its environment entries must be KEY=value without NUL bytes");
    }
    Ok(())
}

fn check_processes(processes: &BTreeMap<ProcessType, Vec<String>>) -> Result<(), Rejection> {
    if processes.is_empty() {
        return Err(Rejection::NoProcesses);
    }
    if processes.len() > Limits::MAX_PROCESSES {
        let process = processes.keys().next_back().expect("not empty").clone();
        let reason = format!(
            "a release has at most {} process types",
            Limits::MAX_PROCESSES
        );
        return Err(Rejection::InvalidProcess { process, reason });
    }
    for (process, argv) in processes {
        let reason = if argv.is_empty() || argv[0].is_empty() {
            "the command is empty"
        } else if argv.len() > Limits::MAX_ARGS {
            "the command has more than 256 arguments"
        } else if argv.iter().any(|a| a.contains('\0')) {
            "an argument contains a NUL byte"
        } else {
            continue;
        };
        return Err(Rejection::InvalidProcess {
            process: process.clone(),
            reason: reason.to_owned(),
        });
    }
    Ok(())
}

fn check_health(health: &HealthCheck) -> Result<(), Rejection> {
    let invalid = |reason: &str| {
        Err(Rejection::InvalidHealthCheck {
            reason: reason.to_owned(),
        })
    };
    if !Limits::HEALTH_TIMEOUT_SECS.contains(&health.timeout_secs) {
        return invalid("the timeout is 1 to 600 seconds");
    }
    if let Some(path) = &health.path {
        if !path.starts_with('/') {
            return invalid("the path starts with '/', like /health");
        }
        if path.len() > Limits::MAX_HEALTH_PATH_BYTES {
            return invalid("the path is at most 1024 bytes long");
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return invalid("the path is printable ASCII without spaces; percent-encode the rest");
        }
    }
    Ok(())
}

/// `Set FOO, BAR`, `Unset BAZ`, or `Set FOO; unset BAZ`.
fn describe_config_change(
    set: &BTreeMap<ConfigKey, String>,
    unset: &BTreeSet<ConfigKey>,
) -> String {
    let join = |keys: Vec<&str>| keys.join(", ");
    let set = join(set.keys().map(ConfigKey::as_str).collect());
    let unset = join(unset.iter().map(ConfigKey::as_str).collect());
    match (set.is_empty(), unset.is_empty()) {
        (false, true) => format!("Set {set}"),
        (true, false) => format!("Unset {unset}"),
        _ => format!("Set {set}; unset {unset}"),
    }
}

#[cfg(test)]
mod tests;
