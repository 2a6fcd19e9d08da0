//! Wire types of Spread's public HTTP API, version 1: what the server sends and accepts, and what
//! the client and CLI read.
//!
//! These are deliberately separate from `spread-core`'s stored types, so the public API and the
//! on-disk schema can change independently. Names in requests are plain strings here; the server
//! validates them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every error the API returns has this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `app_not_found`.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The input field or value at fault, when there is one.
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAppRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub name: String,
    pub created_at: jiff::Timestamp,
    /// Version of the newest release, if any.
    pub release: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub created_at: jiff::Timestamp,
    pub release: Option<u64>,
    pub config_vars: usize,
    pub formation: Vec<ProcessFormation>,
    /// Where the app is served, e.g. `http://shop.localhost/`.
    pub url: String,
}

/// A config change: keys mapped to a new value, or to `null` to unset them.
pub type ConfigPatch = BTreeMap<String, Option<String>>;

/// An app's config vars.
pub type ConfigVars = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: u64,
    pub description: String,
    pub created_at: jiff::Timestamp,
    /// Name of the token that made the release.
    pub created_by: String,
    /// ID (the public part) of that token; absent for releases older than the record of it.
    pub created_by_token: Option<String>,
    pub config: ConfigVars,
    /// The image the release runs; absent until the app's first deploy.
    pub image: Option<ReleaseImage>,
    /// The command (argv) of each process type.
    pub processes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseImage {
    /// The reference the user deployed, e.g. `registry.example.com/shop:1.2`.
    pub reference: String,
    /// Digest of the image manifest: what actually runs.
    pub digest: String,
}

/// `POST /v1/apps/{app}/deploys`: run an image from a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Image reference, e.g. `registry.example.com/shop:1.2` or `shop@sha256:…`.
    pub image: String,
    /// Process type mapped to its command line; without any, the image's entrypoint and cmd
    /// are the `web` process.
    #[serde(default)]
    pub processes: BTreeMap<String, String>,
    #[serde(default)]
    pub registry_user: Option<String>,
    /// Used for this pull only; never stored.
    #[serde(default)]
    pub registry_password: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[serde(default)]
    pub insecure_registry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFormation {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    /// Memory limit per instance, in bytes; absent means the node's default.
    pub memory_bytes: Option<u64>,
    /// CPU limit per instance, in thousandths of a core; absent means none.
    pub cpu_millis: Option<u32>,
}

/// A formation change: process type mapped to its new quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationPatch {
    pub quantities: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub data_dir: String,
    pub uptime_seconds: u64,
    pub raft: RaftStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub voters: Vec<u64>,
}
