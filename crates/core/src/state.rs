//! The replicated state and its deterministic `apply`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{Actor, Command, Outcome};
use crate::limits::Limits;
use crate::model::{App, AppId, Config, ProcessFormation, Release, Timestamp, Token, TokenId};
use crate::name::{AppName, ConfigKey, ProcessType};
use crate::rejection::Rejection;

/// Everything the control plane agrees on. Maps are ordered so the serialized form of a state is
/// a function of the commands applied to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    apps: BTreeMap<AppName, App>,
    tokens: BTreeMap<TokenId, Token>,
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
        }
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
            formation: BTreeMap::from([(ProcessType::web(), ProcessFormation { quantity: 1 })]),
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
        let release = Release {
            version: app.next_version(),
            description,
            config: config.clone(),
            created_at: at,
            created_by: by.name,
            created_by_token: Some(by.token),
        };
        app.releases.push(release.clone());
        app.config = config;
        Ok(Outcome::ReleaseCreated {
            app: app.id,
            release: Box::new(release),
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
            app.formation.insert(process, ProcessFormation { quantity });
        }
        Ok(Outcome::Scaled {
            app: app.id,
            formation: app.formation.clone(),
        })
    }
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
