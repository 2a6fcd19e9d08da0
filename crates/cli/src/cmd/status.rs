//! `spread status`.

use anyhow::Result;

use super::Context;
use crate::output;

pub async fn run(ctx: &Context) -> Result<()> {
    let client = ctx.client()?;
    let status = client.status().await?;
    if ctx.json {
        println!("{}", output::json(&status));
        return Ok(());
    }
    let raft = &status.raft;
    let applied = raft
        .last_applied
        .map_or_else(|| "-".to_owned(), |i| i.to_string());
    let rows = [
        ("API", client.base_url().to_string()),
        ("Version", status.version.clone()),
        ("Data dir", status.data_dir.clone()),
        (
            "Raft",
            format!(
                "{} (node {}, term {}, applied index {applied})",
                raft.role, raft.node_id, raft.term
            ),
        ),
        (
            "Voters",
            raft.voters
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Uptime", output::duration(status.uptime_seconds)),
    ];
    for (k, v) in rows {
        println!("{:<10}{v}", format!("{k}:"));
    }
    Ok(())
}
