//! `spread releases -a APP`.

use anyhow::Result;

use super::Context;
use crate::output;

pub async fn run(ctx: &Context) -> Result<()> {
    let app = ctx.app()?;
    let mut releases = ctx.client()?.releases(&app).await?;
    releases.reverse();
    if ctx.json {
        println!("{}", output::json(&releases));
    } else if releases.is_empty() {
        println!("{app} has no releases yet. Config changes and deploys make releases.");
    } else {
        let rows = releases.iter().map(|r| {
            [
                format!("v{}", r.version),
                r.description.clone(),
                r.created_by.clone(),
                output::time(r.created_at),
            ]
        });
        println!(
            "{}",
            output::table(["VERSION", "DESCRIPTION", "BY", "CREATED"], rows)
        );
    }
    Ok(())
}
