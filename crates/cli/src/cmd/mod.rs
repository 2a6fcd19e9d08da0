//! One module per command. Each turns arguments into client calls and prints the result.

pub mod apps;
pub mod config;
pub mod deploy;
pub mod domains;
pub mod health;
pub mod images;
pub mod login;
pub mod logs;
pub mod monitor;
pub mod ps;
pub mod releases;
pub mod rollback;
pub mod scale;
pub mod status;
pub mod up;

use anyhow::{Context as _, Result, bail};
use spread_client::Client;

use crate::credentials;

/// What every client command gets from the global flags.
pub struct Context {
    pub json: bool,
    pub app: Option<String>,
}

impl Context {
    pub fn client(&self) -> Result<Client> {
        let creds = credentials::resolve()?;
        Ok(Client::new(&creds.url, Some(creds.token))?)
    }

    /// The app named by `-a`, `SPREAD_APP`, or `app = "..."` in ./spread.toml.
    pub fn app(&self) -> Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        match std::fs::read_to_string("spread.toml") {
            Ok(text) => {
                #[derive(serde::Deserialize)]
                struct Manifest {
                    app: Option<String>,
                }
                let manifest: Manifest =
                    toml::from_str(&text).context("./spread.toml is not valid TOML")?;
                manifest
                    .app
                    .context("./spread.toml has no `app = \"NAME\"` line; pass -a APP")
            }
            Err(_) => bail!("no app given: pass -a APP (or set app = \"NAME\" in ./spread.toml)"),
        }
    }
}
