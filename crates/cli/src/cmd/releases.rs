//! `spread releases -a APP`: the release history, newest first, with each release's status.

use anyhow::Result;
use spread_api::Release;

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
        println!("{}", table(&releases));
    }
    Ok(())
}

/// One row per release, newest first as given, with the live one marked; why each failed
/// release failed follows the table.
pub fn table(releases: &[Release]) -> String {
    let live = releases
        .iter()
        .find(|r| r.status == "deployed")
        .map(|r| r.version);
    let rows = releases.iter().map(|r| {
        let status = if Some(r.version) == live {
            format!("{} (live)", r.status)
        } else {
            r.status.clone()
        };
        [
            format!("v{}", r.version),
            status,
            r.description.clone(),
            r.created_by.clone(),
            output::time(r.created_at),
        ]
    });
    let mut text = output::table(["VERSION", "STATUS", "DESCRIPTION", "BY", "CREATED"], rows);
    let failures: Vec<String> = releases
        .iter()
        .filter_map(|r| Some(format!("v{} failed: {}", r.version, r.failure.as_deref()?)))
        .collect();
    if !failures.is_empty() {
        text.push_str("\n\n");
        text.push_str(&failures.join("\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn release(version: u64, status: &str, description: &str) -> Release {
        Release {
            version,
            description: description.to_owned(),
            created_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            created_by: "admin".to_owned(),
            created_by_token: None,
            config: BTreeMap::new(),
            image: None,
            processes: BTreeMap::new(),
            status: status.to_owned(),
            failure: None,
        }
    }

    #[test]
    fn the_table_marks_the_live_release_and_says_why_rollouts_failed() {
        let failed = Release {
            failure: Some("web.1 did not pass its health check within 60s".to_owned()),
            ..release(4, "failed", "Deploy build 4")
        };
        let releases = [
            release(6, "rolling-out", "Rollback to v2"),
            release(5, "superseded", "Set GREETING"),
            failed,
            release(3, "deployed", "Deploy build 3"),
            release(2, "deployed", "Deploy build 2"),
            release(1, "deployed", "Set DATABASE_URL"),
        ];
        insta::assert_snapshot!(table(&releases));
    }
}
