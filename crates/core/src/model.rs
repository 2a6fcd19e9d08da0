//! The entities held in the replicated state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::{AppName, ConfigKey, DomainName, ProcessType};

/// A point in time, made by the proposer (never by `apply`).
pub type Timestamp = jiff::Timestamp;

/// An app's config vars, in key order.
pub type Config = BTreeMap<ConfigKey, String>;

/// The stable identity of an app; a name can be reused after the app is destroyed, an ID never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(pub uuid::Uuid);

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The public part of an API token, used to find its record without revealing its secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub String);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub name: AppName,
    pub created_at: Timestamp,
    pub config: Config,
    /// Releases in version order; versions start at 1 and increase by one.
    pub releases: Vec<Release>,
    pub formation: BTreeMap<ProcessType, ProcessFormation>,
    /// Custom domains the app is served at, besides `<app>.<node domain>`.
    pub domains: BTreeSet<DomainName>,
    /// When a new instance counts as ready, and how long a rollout waits for it.
    pub health: HealthCheck,
}

impl App {
    /// The newest release, whatever its status.
    pub fn latest_release(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// The release that serves: the newest one whose rollout finished.
    pub fn live_release(&self) -> Option<&Release> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.status == ReleaseStatus::Deployed)
    }

    /// The release being rolled out, if one is.
    pub fn rolling_release(&self) -> Option<&Release> {
        self.latest_release()
            .filter(|r| r.status == ReleaseStatus::RollingOut)
    }

    pub fn next_version(&self) -> u64 {
        self.latest_release().map_or(1, |r| r.version + 1)
    }

    pub fn release(&self, version: u64) -> Option<&Release> {
        // Versions are dense from 1, so the position is known; check it anyway.
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.releases.get(index).filter(|r| r.version == version)
    }
}

/// An immutable snapshot of what runs: the config (and, from the runtime issue on, the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: u64,
    pub description: String,
    pub config: Config,
    pub created_at: Timestamp,
    /// Name of the token that made the release.
    pub created_by: String,
    /// ID of the token that made the release; `None` for releases made before schema 2
    /// recorded it.
    pub created_by_token: Option<TokenId>,
    /// The image to run; `None` until the app's first deploy.
    pub image: Option<ReleaseImage>,
    /// The command (argv) of each process type.
    pub processes: BTreeMap<ProcessType, Vec<String>>,
    pub status: ReleaseStatus,
}

/// Where a release is in its life. A release with an image starts rolling out; one without
/// (config set before the first deploy) has nothing to roll out and is deployed at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ReleaseStatus {
    /// Its instances are starting beside the live release's; it serves once all are healthy.
    RollingOut,
    /// Its rollout finished: it serves, or served until a newer release was deployed.
    Deployed,
    /// Its rollout was aborted; the release before it kept serving.
    Failed { reason: String },
    /// A newer release came before its rollout finished.
    Superseded,
}

impl ReleaseStatus {
    /// The name users see: `rolling-out`, `deployed`, `failed`, `superseded`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RollingOut => "rolling-out",
            Self::Deployed => "deployed",
            Self::Failed { .. } => "failed",
            Self::Superseded => "superseded",
        }
    }
}

/// How an app's new instances are checked. Without a path, an instance of `web` is ready when
/// a TCP connection to its `$PORT` succeeds; with one, when `GET path` answers 2xx or 3xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub path: Option<String>,
    /// How long a rollout waits for its new instances to become healthy.
    pub timeout_secs: u32,
}

impl HealthCheck {
    pub const DEFAULT_TIMEOUT_SECS: u32 = 60;
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: None,
            timeout_secs: Self::DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// How many instances of one process type should run, and their limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFormation {
    pub quantity: u32,
    /// Memory limit per instance; `None` is the node's default.
    pub memory_bytes: Option<u64>,
    /// CPU limit per instance in thousandths of a core; `None` is no limit.
    pub cpu_millis: Option<u32>,
}

impl ProcessFormation {
    pub fn with_quantity(quantity: u32) -> Self {
        Self {
            quantity,
            memory_bytes: None,
            cpu_millis: None,
        }
    }
}

/// The image a release runs, as resolved when it was deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseImage {
    /// What the user asked for, e.g. `registry.example.com/shop:1.2`.
    pub reference: String,
    /// Digest of the image manifest (`sha256:…`): what actually runs.
    pub digest: String,
    /// Environment from the image config (`KEY=value`); the app's config vars override it.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// An API token. Only a password hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: TokenId,
    pub name: String,
    /// Argon2id hash of the secret, as a PHC string.
    pub secret_hash: String,
    pub created_at: Timestamp,
}
