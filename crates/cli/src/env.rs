//! Every environment variable the `spread` binary reads, in one place.

/// API URL; overrides the stored credentials.
pub const URL: &str = "SPREAD_URL";
/// API token; overrides the stored credentials.
pub const TOKEN: &str = "SPREAD_TOKEN";
/// Default app for commands that take `-a`.
pub const APP: &str = "SPREAD_APP";
/// Password for `spread deploy --registry-user` and `spread images push --registry-user` (kept
/// out of the command line and history).
pub const REGISTRY_PASSWORD: &str = "SPREAD_REGISTRY_PASSWORD";
/// Log filter for `spread up` (tracing's env-filter syntax), e.g. `info,spread_server=debug`.
pub const LOG: &str = "SPREAD_LOG";
/// Where the CLI keeps its credentials (`$XDG_CONFIG_HOME/spread`, else `$HOME/.config/spread`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Default data dir for a non-root `spread up` (`$XDG_DATA_HOME/spread`, else
/// `$HOME/.local/share/spread`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
pub const HOME: &str = "HOME";

/// Reads a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The registry password for `user`, from [`REGISTRY_PASSWORD`]; none without a user.
pub fn registry_password(user: Option<&String>) -> Option<String> {
    user.and_then(|_| var(REGISTRY_PASSWORD))
}
