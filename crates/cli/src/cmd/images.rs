//! `spread images push -a APP [--release N] REF`: push a release's image to a registry.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use spread_api::PushImageRequest;

use super::Context;
use crate::{env, output};

#[derive(Subcommand)]
pub enum ImagesCommand {
    /// Push a release's image to a registry (the newest release with an image, unless
    /// --release says): `spread images push -a shop registry.example.com/shop:v3`.
    Push(PushArgs),
}

#[derive(Args)]
pub struct PushArgs {
    /// Where to push, e.g. registry.example.com/shop:v3
    #[arg(value_name = "REF")]
    reference: String,
    /// The release whose image is pushed: `3` or `v3`.
    #[arg(long, value_name = "N")]
    release: Option<String>,
    /// Registry user; the password comes from SPREAD_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER")]
    registry_user: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    insecure_registry: bool,
}

pub async fn run(ctx: &Context, command: ImagesCommand) -> Result<()> {
    match command {
        ImagesCommand::Push(args) => push(ctx, args).await,
    }
}

async fn push(ctx: &Context, args: PushArgs) -> Result<()> {
    let release = args.release.as_deref().map(parse_release).transpose()?;
    let app = ctx.app()?;
    let request = PushImageRequest {
        reference: args.reference.clone(),
        release,
        registry_password: env::registry_password(args.registry_user.as_ref()),
        registry_user: args.registry_user,
        insecure_registry: args.insecure_registry,
    };
    if !ctx.json {
        eprintln!("Pushing the image of {app} to {}…", args.reference);
    }
    let pushed = ctx.client()?.push_image(&app, &request).await?;
    if ctx.json {
        println!("{}", output::json(&pushed));
    } else {
        println!(
            "Pushed v{} of {app} to {} ({})",
            pushed.release, pushed.reference, pushed.digest
        );
    }
    Ok(())
}

/// `3` or `v3`.
fn parse_release(text: &str) -> Result<u64> {
    match text.strip_prefix('v').unwrap_or(text).parse::<u64>() {
        Ok(version) if version > 0 => Ok(version),
        _ => bail!("`{text}` is not a release; use a number such as `3` or `v3`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_a_number_with_or_without_v() {
        assert_eq!(parse_release("3").unwrap(), 3);
        assert_eq!(parse_release("v12").unwrap(), 12);
        for bad in ["", "v", "0", "three", "-1", "v3.1"] {
            let err = parse_release(bad).unwrap_err().to_string();
            assert!(err.contains("`3` or `v3`"), "{bad}: {err}");
        }
    }
}
