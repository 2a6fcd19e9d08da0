//! `spread rollback [vN] -a APP`: a new release from an earlier one.

use anyhow::Result;
use clap::Args;
use spread_api::Release;

use super::Context;
use crate::output;

#[derive(Args)]
pub struct RollbackArgs {
    /// The release to go back to (`v3` or `3`); default: the deployed release before the live
    /// one.
    #[arg(value_name = "VERSION", value_parser = parse_version)]
    version: Option<u64>,
}

pub async fn run(ctx: &Context, args: RollbackArgs) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let release = client.rollback(&app, args.version).await?;
    if !ctx.json {
        eprintln!("{}", said(&app, args.version, &release));
    }
    let release = super::deploy::rolled_out(&client, &app, release).await?;
    if ctx.json {
        println!("{}", output::json(&release));
    } else {
        println!("Rolled back {app}: v{} serves now", release.version);
    }
    Ok(())
}

/// `Rolling back shop to v3… created v6, rolling it out.`
fn said(app: &str, asked: Option<u64>, release: &Release) -> String {
    // Which release was chosen, when none was named, is the server's to say; its description
    // names it (`Rollback to v3`).
    let target = asked.map(|v| format!("v{v}")).or_else(|| {
        release
            .description
            .strip_prefix("Rollback to ")
            .map(str::to_owned)
    });
    let to = target.map_or_else(String::new, |t| format!(" to {t}"));
    format!(
        "Rolling back {app}{to}… created v{}, rolling it out.",
        release.version
    )
}

/// `v3` or `3`.
fn parse_version(text: &str) -> Result<u64, String> {
    text.strip_prefix('v')
        .unwrap_or(text)
        .parse()
        .map_err(|_| format!("`{text}` is not a release version; write it like v3 or 3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_written_with_or_without_a_v() {
        assert_eq!(parse_version("v3"), Ok(3));
        assert_eq!(parse_version("3"), Ok(3));
        assert!(parse_version("three").unwrap_err().contains("like v3 or 3"));
        assert!(parse_version("v").is_err());
    }

    #[test]
    fn the_answer_names_the_release_gone_back_to_and_the_new_one() {
        let release = Release {
            version: 6,
            description: "Rollback to v3".to_owned(),
            created_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            created_by: "admin".to_owned(),
            created_by_token: None,
            config: Default::default(),
            image: None,
            processes: Default::default(),
            status: "rolling-out".to_owned(),
            failure: None,
        };
        let expected = "Rolling back shop to v3… created v6, rolling it out.";
        assert_eq!(said("shop", None, &release), expected);
        assert_eq!(said("shop", Some(3), &release), expected);
    }
}
