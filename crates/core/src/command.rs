//! Commands: the only way the replicated state changes. Append-only: never renumber, remove or
//! change the meaning of a variant or a field, because old log entries must still apply.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{
    App, AppId, HealthCheck, ProcessFormation, Release, ReleaseImage, Timestamp, TokenId,
};
use crate::name::{AppName, ConfigKey, DomainName, ProcessType};

/// Who asked for a change; recorded in releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub token: TokenId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    CreateApp {
        id: AppId,
        name: AppName,
        at: Timestamp,
    },
    DestroyApp {
        name: AppName,
        at: Timestamp,
    },
    /// Sets and unsets config vars in one step and records a new release.
    UpdateConfig {
        app: AppName,
        set: BTreeMap<ConfigKey, String>,
        unset: BTreeSet<ConfigKey>,
        by: Actor,
        at: Timestamp,
    },
    /// Sets the number of instances of the named process types; others keep theirs.
    Scale {
        app: AppName,
        quantities: BTreeMap<ProcessType, u32>,
        at: Timestamp,
    },
    /// Records a new release that runs `image` with the app's current config.
    DeployImage {
        app: AppName,
        image: ReleaseImage,
        processes: BTreeMap<ProcessType, Vec<String>>,
        by: Actor,
        at: Timestamp,
    },
    /// Sets the limits of one process type's instances.
    SetResources {
        app: AppName,
        process: ProcessType,
        memory_bytes: Option<u64>,
        cpu_millis: Option<u32>,
        at: Timestamp,
    },
    CreateToken {
        id: TokenId,
        name: String,
        secret_hash: String,
        at: Timestamp,
    },
    /// Ends the rollout of `version`: it becomes the live release, or, with a `failure`, is
    /// marked failed and the live release keeps serving.
    FinishRollout {
        app: AppName,
        version: u64,
        failure: Option<String>,
        at: Timestamp,
    },
    /// Records a new release with the image, process commands and config of `version`
    /// (default: the release deployed before the live one).
    Rollback {
        app: AppName,
        version: Option<u64>,
        by: Actor,
        at: Timestamp,
    },
    AddDomain {
        app: AppName,
        domain: DomainName,
        at: Timestamp,
    },
    RemoveDomain {
        app: AppName,
        domain: DomainName,
        at: Timestamp,
    },
    /// Replaces the app's health check.
    SetHealthCheck {
        app: AppName,
        health: HealthCheck,
        at: Timestamp,
    },
    /// From now on, new releases with an image roll out (start beside the live release and
    /// serve once healthy) instead of being live at once. Proposed once by a server that knows
    /// rollouts, so that commands logged before keep their meaning.
    EnableRollouts {
        at: Timestamp,
    },
}

/// What an accepted command did, with what it made, so callers need not read the state again
/// (by then another command may have changed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    AppCreated {
        app: Box<App>,
    },
    AppDestroyed,
    ReleaseCreated {
        app: AppId,
        release: Box<Release>,
    },
    Scaled {
        app: AppId,
        formation: BTreeMap<ProcessType, ProcessFormation>,
    },
    TokenCreated,
    RolloutFinished {
        app: AppId,
        release: Box<Release>,
    },
    DomainsChanged {
        app: AppId,
        domains: BTreeSet<DomainName>,
    },
    HealthCheckSet {
        app: AppId,
        health: HealthCheck,
    },
    RolloutsEnabled,
}
