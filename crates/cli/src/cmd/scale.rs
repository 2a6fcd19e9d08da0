//! `spread scale web=N worker=M -a APP`.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use clap::Args;
use spread_api::FormationPatch;

use super::Context;
use crate::output;

#[derive(Args)]
pub struct ScaleArgs {
    /// New quantities, e.g. `web=2 worker=1`. Without any, shows the formation.
    #[arg(value_name = "TYPE=N")]
    changes: Vec<String>,
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let formation = if args.changes.is_empty() {
        client.formation(&app).await?
    } else {
        let quantities = args
            .changes
            .iter()
            .map(|change| {
                let parsed = change
                    .split_once('=')
                    .and_then(|(t, n)| Some((t.to_owned(), n.parse::<u32>().ok()?)));
                parsed
                    .with_context(|| format!("`{change}` is not TYPE=N; write it as e.g. `web=2`"))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        client.scale(&app, &FormationPatch { quantities }).await?
    };
    if ctx.json {
        println!("{}", output::json(&formation));
    } else {
        let rows = formation
            .iter()
            .map(|f| [f.process_type.clone(), f.quantity.to_string()]);
        println!("{}", output::table(["TYPE", "QUANTITY"], rows));
    }
    Ok(())
}
