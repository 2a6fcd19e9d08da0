//! `spread domains`, `spread domains add DOMAIN`, `spread domains remove DOMAIN`.

use anyhow::Result;
use clap::{Args, Subcommand};
use spread_api::Domains;

use super::Context;
use crate::output;

#[derive(Args)]
pub struct DomainsArgs {
    #[command(subcommand)]
    action: Option<DomainsAction>,
}

#[derive(Subcommand)]
enum DomainsAction {
    /// Serve the app at a domain of yours too: `spread domains add www.example.com -a APP`.
    Add { domain: String },
    /// Stop serving the app at a custom domain.
    #[command(alias = "rm")]
    Remove { domain: String },
}

pub async fn run(ctx: &Context, args: DomainsArgs) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let (domains, said) = match &args.action {
        None => (client.domains(&app).await?, None),
        Some(DomainsAction::Add { domain }) => {
            let domains = client.add_domain(&app, domain).await?;
            let added = canonical(domain);
            let said = format!(
                "Added {added} to {app}. Point its DNS (A record) at this server; the gateway \
                 serves it on --http-listen."
            );
            (domains, Some(said))
        }
        Some(DomainsAction::Remove { domain }) => {
            let domains = client.remove_domain(&app, domain).await?;
            let said = format!(
                "Removed {} from {app}; it is still served at {}.",
                canonical(domain),
                domains.default
            );
            (domains, Some(said))
        }
    };
    if ctx.json {
        println!("{}", output::json(&domains));
    } else if let Some(said) = said {
        println!("{said}");
    } else {
        println!("{}", table(&domains));
        if domains.custom.is_empty() {
            println!("\nAdd a domain of yours with `spread domains add www.example.com -a {app}`.");
        }
    }
    Ok(())
}

/// One row per domain: the default host first, then the custom ones.
pub fn table(domains: &Domains) -> String {
    let rows = std::iter::once([domains.default.clone(), "default".to_owned()]).chain(
        domains
            .custom
            .iter()
            .map(|d| [d.clone(), "custom".to_owned()]),
    );
    output::table(["DOMAIN", "KIND"], rows)
}

/// The domain as the server stores it: lower case, without a trailing dot.
fn canonical(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_the_default_host_then_custom_domains() {
        let domains = Domains {
            default: "shop.localhost".to_owned(),
            custom: vec!["example.com".to_owned(), "www.example.com".to_owned()],
        };
        insta::assert_snapshot!(table(&domains), @r"
        DOMAIN           KIND
        shop.localhost   default
        example.com      custom
        www.example.com  custom
        ");
    }
}
