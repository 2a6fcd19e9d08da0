//! `spread apps create|list|info|destroy`.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::Context;
use crate::output;

#[derive(Subcommand)]
pub enum AppsCommand {
    /// Create an app. Names are DNS labels: 1-63 of a-z, 0-9 and '-'.
    Create { name: String },
    /// List apps.
    #[command(alias = "ls")]
    List,
    /// Show an app.
    Info { name: String },
    /// Destroy an app and everything it holds. Needs --confirm NAME.
    Destroy {
        name: String,
        /// Repeat the app's name to confirm.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
}

pub async fn run(ctx: &Context, command: AppsCommand) -> Result<()> {
    let client = ctx.client()?;
    match command {
        AppsCommand::Create { name } => {
            let app = client.create_app(&name).await?;
            if ctx.json {
                println!("{}", output::json(&app));
            } else {
                println!("Created app {}. It will be served at {}", app.name, app.url);
                println!("Next: `spread config set KEY=VALUE -a {}`", app.name);
            }
        }
        AppsCommand::List => {
            let apps = client.apps().await?;
            if ctx.json {
                println!("{}", output::json(&apps));
            } else if apps.is_empty() {
                println!("No apps yet. Create one with `spread apps create NAME`.");
            } else {
                let rows = apps.iter().map(|a| {
                    [
                        a.name.clone(),
                        output::release(a.release),
                        output::time(a.created_at),
                    ]
                });
                println!("{}", output::table(["NAME", "RELEASE", "CREATED"], rows));
            }
        }
        AppsCommand::Info { name } => {
            let app = client.app(&name).await?;
            if ctx.json {
                println!("{}", output::json(&app));
            } else {
                let formation: Vec<String> = app
                    .formation
                    .iter()
                    .map(|f| format!("{}={}", f.process_type, f.quantity))
                    .collect();
                let rows = [
                    ["Name".to_owned(), app.name.clone()],
                    ["URL".to_owned(), app.url.clone()],
                    ["Release".to_owned(), output::release(app.release)],
                    ["Config vars".to_owned(), app.config_vars.to_string()],
                    ["Formation".to_owned(), formation.join(" ")],
                    ["Created".to_owned(), output::time(app.created_at)],
                    ["ID".to_owned(), app.id.clone()],
                ];
                for [k, v] in rows {
                    println!("{:<13}{v}", format!("{k}:"));
                }
            }
        }
        AppsCommand::Destroy { name, confirm } => {
            if confirm.as_deref() != Some(name.as_str()) {
                bail!(
                    "destroying `{name}` deletes its config and releases for good; \
                     to go ahead, run `spread apps destroy {name} --confirm {name}`"
                );
            }
            client.destroy_app(&name).await?;
            if ctx.json {
                println!(
                    "{}",
                    output::json(&serde_json::json!({ "destroyed": name }))
                );
            } else {
                println!("Destroyed app {name}.");
            }
        }
    }
    Ok(())
}
