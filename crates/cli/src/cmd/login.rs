//! `spread login URL --token T`: checks the token against the API, then stores it.

use anyhow::{Result, bail};
use clap::Args;
use spread_client::{Client, ClientError};

use super::Context;
use crate::credentials::{self, Credentials};
use crate::output;

#[derive(Args)]
pub struct LoginArgs {
    /// API URL, e.g. http://127.0.0.1:7070
    url: String,
    /// API token (printed by the first `spread up`).
    #[arg(long)]
    token: String,
}

pub async fn run(ctx: &Context, args: LoginArgs) -> Result<()> {
    let url = args.url.trim_end_matches('/').to_owned();
    let client = Client::new(&url, Some(args.token.clone()))?;
    match client.status().await {
        Ok(_) => {}
        Err(ClientError::Api { status, .. }) if status.as_u16() == 401 => {
            bail!("the API at {url} refused this token; check that you copied all of it")
        }
        Err(e) => return Err(e.into()),
    }
    let path = credentials::save(&Credentials {
        url: url.clone(),
        token: args.token,
    })?;
    if ctx.json {
        println!(
            "{}",
            output::json(&serde_json::json!({ "url": url, "credentials": path }))
        );
    } else {
        println!(
            "Logged in to {url}. Credentials saved in {}.",
            path.display()
        );
    }
    Ok(())
}
