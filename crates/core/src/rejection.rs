//! Why `apply` refused a command. A rejection is a normal result, never a panic: every replica
//! rejects the same command the same way, and the state is left untouched.

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::model::TokenId;
use crate::name::{AppName, ConfigKey, DomainName, ProcessType};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    #[error("app `{name}` already exists; choose another name")]
    AppExists { name: AppName },
    #[error("app `{name}` does not exist; `spread apps list` shows the apps there are")]
    AppNotFound { name: AppName },
    #[error(
        "config value of `{key}` is {size} bytes; the limit is {} bytes",
        Limits::CONFIG_VALUE_BYTES
    )]
    ConfigValueTooLarge { key: ConfigKey, size: usize },
    #[error(
        "the app's config would be {size} bytes; the limit is {} bytes: unset vars you no longer need",
        Limits::CONFIG_TOTAL_BYTES
    )]
    ConfigTooLarge { size: usize },
    #[error("config key `{key}` is both set and unset in the same change")]
    ConfigKeySetAndUnset { key: ConfigKey },
    #[error(
        "config value of `{key}` contains a NUL byte, which an environment variable cannot hold"
    )]
    ConfigValueHasNul { key: ConfigKey },
    #[error("a config change must set or unset at least one var")]
    EmptyConfigChange,
    #[error(
        "{quantity} instances of `{process}` asked; the limit is {} per process type",
        Limits::MAX_QUANTITY
    )]
    QuantityTooLarge { process: ProcessType, quantity: u32 },
    #[error("a scale change must name at least one process type")]
    EmptyScale,
    #[error("a release needs at least one process type with a command")]
    NoProcesses,
    #[error("the command of process type `{process}` is invalid: {reason}")]
    InvalidProcess {
        process: ProcessType,
        reason: String,
    },
    #[error("image `{reference}` is invalid: {reason}")]
    InvalidImage { reference: String, reason: String },
    #[error("memory limit {bytes} bytes is out of range: use {} MiB to {} GiB", Limits::MIN_MEMORY_BYTES >> 20, Limits::MAX_MEMORY_BYTES >> 30)]
    MemoryOutOfRange { bytes: u64 },
    #[error(
        "CPU limit {millis} thousandths of a core is out of range: use {} to {}",
        Limits::MIN_CPU_MILLIS,
        Limits::MAX_CPU_MILLIS
    )]
    CpuOutOfRange { millis: u32 },
    #[error("token `{id}` already exists")]
    TokenExists { id: TokenId },
    #[error("release v{version} is not rolling out; it may have finished or been superseded")]
    NotRollingOut { version: u64 },
    #[error("release v{version} does not exist; `spread releases` lists the releases")]
    ReleaseNotFound { version: u64 },
    #[error("release v{version} has no image to roll back to; pick a release made by a deploy")]
    ReleaseHasNoImage { version: u64 },
    #[error("there is no earlier deployed release to roll back to; name one: spread rollback vN")]
    NothingToRollBackTo,
    #[error("domain `{domain}` is already served by app `{app}`; remove it there first")]
    DomainTaken { domain: DomainName, app: AppName },
    #[error("app has no domain `{domain}`; `spread domains` lists its domains")]
    DomainNotFound { domain: DomainName },
    #[error("an app has at most {} custom domains", Limits::MAX_DOMAINS)]
    TooManyDomains,
    #[error("health check is invalid: {reason}")]
    InvalidHealthCheck { reason: String },
}

impl Rejection {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AppExists { .. } => "app_exists",
            Self::AppNotFound { .. } => "app_not_found",
            Self::ConfigValueTooLarge { .. } => "config_value_too_large",
            Self::ConfigTooLarge { .. } => "config_too_large",
            Self::ConfigKeySetAndUnset { .. } => "config_key_set_and_unset",
            Self::ConfigValueHasNul { .. } => "config_value_has_nul",
            Self::EmptyConfigChange => "empty_config_change",
            Self::QuantityTooLarge { .. } => "quantity_too_large",
            Self::EmptyScale => "empty_scale",
            Self::TokenExists { .. } => "token_exists",
            Self::NoProcesses => "no_processes",
            Self::InvalidProcess { .. } => "invalid_process",
            Self::InvalidImage { .. } => "invalid_image",
            Self::MemoryOutOfRange { .. } => "memory_out_of_range",
            Self::CpuOutOfRange { .. } => "cpu_out_of_range",
            Self::NotRollingOut { .. } => "not_rolling_out",
            Self::ReleaseNotFound { .. } => "release_not_found",
            Self::ReleaseHasNoImage { .. } => "release_has_no_image",
            Self::NothingToRollBackTo => "nothing_to_roll_back_to",
            Self::DomainTaken { .. } => "domain_taken",
            Self::DomainNotFound { .. } => "domain_not_found",
            Self::TooManyDomains => "too_many_domains",
            Self::InvalidHealthCheck { .. } => "invalid_health_check",
        }
    }

    /// The input field the rejection is about, when there is one.
    pub fn field(&self) -> Option<String> {
        match self {
            Self::AppExists { .. } | Self::AppNotFound { .. } => Some("name".to_owned()),
            Self::ConfigValueTooLarge { key, .. }
            | Self::ConfigKeySetAndUnset { key }
            | Self::ConfigValueHasNul { key } => Some(key.to_string()),
            Self::QuantityTooLarge { process, .. } | Self::InvalidProcess { process, .. } => {
                Some(process.to_string())
            }
            Self::InvalidImage { .. } => Some("image".to_owned()),
            Self::MemoryOutOfRange { .. } => Some("memory".to_owned()),
            Self::CpuOutOfRange { .. } => Some("cpu".to_owned()),
            Self::NotRollingOut { .. }
            | Self::ReleaseNotFound { .. }
            | Self::ReleaseHasNoImage { .. } => Some("version".to_owned()),
            Self::DomainTaken { .. } | Self::DomainNotFound { .. } | Self::TooManyDomains => {
                Some("domain".to_owned())
            }
            Self::InvalidHealthCheck { .. } => Some("health".to_owned()),
            Self::ConfigTooLarge { .. }
            | Self::EmptyConfigChange
            | Self::EmptyScale
            | Self::NoProcesses
            | Self::TokenExists { .. }
            | Self::NothingToRollBackTo => None,
        }
    }
}
