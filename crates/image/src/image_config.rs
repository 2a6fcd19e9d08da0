//! The runtime settings in an image config (entrypoint, cmd, env, …) that Spread uses.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What a container needs from an image's config to run it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfigSummary {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries, in the image's order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `port/protocol` entries such as `8080/tcp`, sorted.
    pub exposed_ports: Vec<String>,
}

#[derive(Deserialize)]
struct WireConfigFile {
    #[serde(default)]
    config: Option<WireConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

/// Reads the runtime settings out of an image config blob.
pub(crate) fn summarize_config(bytes: &[u8]) -> Result<ImageConfigSummary, String> {
    let file: WireConfigFile =
        serde_json::from_slice(bytes).map_err(|e| format!("not an image config: {e}"))?;
    let Some(config) = file.config else {
        return Ok(ImageConfigSummary::default());
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(ImageConfigSummary {
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        working_dir: non_empty(config.working_dir),
        user: non_empty(config.user),
        exposed_ports: config
            .exposed_ports
            .map(|ports| ports.into_keys().collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_without_runtime_settings_summarizes_to_nothing() {
        let summary = summarize_config(br#"{"config":{"Env":null,"WorkingDir":""}}"#).unwrap();
        assert_eq!(summary, ImageConfigSummary::default());
        assert!(summarize_config(b"{\"config\":7}").is_err());
    }
}
