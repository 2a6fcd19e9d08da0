//! `spread config`, `spread config set K=V...`, `spread config unset K...`.

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use spread_api::ConfigPatch;

use super::Context;
use crate::output;

#[derive(Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    action: Option<ConfigAction>,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Set config vars: `spread config set KEY=VALUE ... -a APP`.
    Set {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Unset config vars: `spread config unset KEY ... -a APP`.
    Unset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

pub async fn run(ctx: &Context, args: ConfigArgs) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let patch: ConfigPatch = match args.action {
        None => {
            let vars = client.config(&app).await?;
            if ctx.json {
                println!("{}", output::json(&vars));
            } else if vars.is_empty() {
                println!(
                    "{app} has no config vars. Set one with `spread config set KEY=VALUE -a {app}`."
                );
            } else {
                let width = vars.keys().map(String::len).max().unwrap_or(0);
                for (key, value) in &vars {
                    println!("{key:<width$}  {value}");
                }
            }
            return Ok(());
        }
        Some(ConfigAction::Set { pairs }) => pairs
            .iter()
            .map(|pair| {
                let (k, v) = pair.split_once('=').with_context(|| {
                    format!("`{pair}` is not KEY=VALUE; write it as `{pair}=value`")
                })?;
                Ok((k.to_owned(), Some(v.to_owned())))
            })
            .collect::<Result<_>>()?,
        Some(ConfigAction::Unset { keys }) => {
            if let Some(k) = keys.iter().find(|k| k.contains('=')) {
                bail!("`{k}` looks like KEY=VALUE; `config unset` takes only keys");
            }
            keys.into_iter().map(|k| (k, None)).collect()
        }
    };
    let release = client.update_config(&app, &patch).await?;
    if ctx.json {
        println!("{}", output::json(&release));
    } else {
        println!(
            "{} on {app}: release v{}",
            release.description, release.version
        );
    }
    Ok(())
}
