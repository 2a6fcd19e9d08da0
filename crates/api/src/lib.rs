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
    /// Custom domains the app is also served at, e.g. `www.example.com`.
    #[serde(default)]
    pub domains: Vec<String>,
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
    /// `rolling-out`, `deployed`, `failed` or `superseded`. The live release, the one that
    /// serves, is the newest `deployed` one.
    pub status: String,
    /// Why the rollout failed, when `status` is `failed`.
    #[serde(default)]
    pub failure: Option<String>,
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

/// A formation change: process type mapped to its new quantity, and to its new limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationPatch {
    #[serde(default)]
    pub quantities: BTreeMap<String, u32>,
    #[serde(default)]
    pub limits: BTreeMap<String, LimitsPatch>,
}

/// New limits for one process type's instances. An absent field keeps the current limit;
/// `null` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsPatch {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub memory_bytes: Option<Option<u64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub cpu_millis: Option<Option<u32>>,
}

/// `Option<Option<T>>` on the wire: absent is `None`, `null` is `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// One instance of an app on a node, as `spread ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    #[serde(rename = "type")]
    pub process_type: String,
    /// 1-based, as in `web.1`.
    pub index: u32,
    pub release: u64,
    /// `starting`, `running`, `crashed`, `oom-killed`, `stopping` or `stopped`.
    pub state: String,
    /// How often it was started again after it ended.
    pub restarts: u32,
    /// When its process started, while it runs.
    pub started_at: Option<jiff::Timestamp>,
    pub last_exit: Option<InstanceExit>,
    /// Its address on the node network.
    pub address: Option<String>,
    /// CPU used over the last few seconds, in thousandths of a core.
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// It runs and passed its health check (the app's, or for non-web types, a short steady
    /// run).
    #[serde(default)]
    pub healthy: bool,
}

/// How an instance's process last ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by the kernel for exceeding its memory limit.
    pub oom_killed: bool,
}

/// `/v1/apps/{app}/domains`: where an app is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domains {
    /// `<app>.<node domain>`, e.g. `shop.localhost`; always served.
    pub default: String,
    /// Custom domains added with `POST /v1/apps/{app}/domains`, in name order.
    pub custom: Vec<String>,
}

/// `POST /v1/apps/{app}/domains`: serve the app at one more domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddDomainRequest {
    /// E.g. `www.example.com`; stored lower-case and without a trailing dot.
    pub domain: String,
}

/// `/v1/apps/{app}/health`: when a new instance counts as ready, and how long a rollout waits
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `GET path` must answer 2xx or 3xx; `null` means a TCP connect to `$PORT`.
    pub path: Option<String>,
    pub timeout_seconds: u32,
}

/// `PUT /v1/apps/{app}/health`: replaces the check. An absent or `null` path is the TCP check;
/// an absent timeout is the default (60 seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetHealthCheck {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

/// `POST /v1/apps/{app}/rollback`: make a new release from an earlier one's image, commands and
/// config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The release to go back to; absent means the deployed release before the live one.
    #[serde(default)]
    pub version: Option<u64>,
}

/// One line an instance wrote, as `spread logs` shows it. The logs endpoint answers with
/// these as newline-delimited JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: jiff::Timestamp,
    pub instance: String,
    #[serde(rename = "type")]
    pub process_type: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
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

/// One event of a build from source, streamed as NDJSON (one JSON object per line) by
/// `POST /v1/apps/{app}/builds`. The last event is `failed` or `released`; `rolling_out` comes
/// before `released`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A step begins, e.g. `Installing dependencies with pip`.
    Step { name: String },
    /// One line printed by the current step.
    Output { line: String },
    /// The build failed: nothing was released and the app runs as before.
    Failed {
        message: String,
        /// The step that failed, if one did.
        #[serde(default)]
        step: Option<String>,
        /// The failing step's exit code, if it ran and exited.
        #[serde(default)]
        exit_code: Option<i32>,
    },
    /// The build succeeded and this release was made from it; its new instances are starting
    /// beside the running ones and get traffic once all are healthy.
    RollingOut { release: Release },
    /// The release is live: its instances serve and the previous ones are stopping.
    Released { release: Release },
}

/// Push a release's image to an OCI registry: `POST /v1/apps/{app}/images/push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushImageRequest {
    /// Where to push, e.g. `registry.example.com/shop:v3`.
    pub reference: String,
    /// The release whose image is pushed; the newest with an image when absent.
    #[serde(default)]
    pub release: Option<u64>,
    #[serde(default)]
    pub registry_user: Option<String>,
    /// Used for this push only; never stored.
    #[serde(default)]
    pub registry_password: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[serde(default)]
    pub insecure_registry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedImage {
    pub reference: String,
    /// Digest of the pushed manifest.
    pub digest: String,
    /// The release whose image it is.
    pub release: u64,
}

/// The `step` of a `failed` build event whose release was made but did not roll out.
pub const ROLLOUT_STEP: &str = "rollout";

/// What the gateway saw of an app's requests since the platform started:
/// `GET /v1/apps/{app}/router`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSummary {
    /// Answered requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub requests: [u64; 5],
    pub in_flight: u64,
    /// Time to the response's headers, estimated from a histogram; `None` before any request.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}
