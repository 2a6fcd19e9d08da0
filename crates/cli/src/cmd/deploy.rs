//! `spread deploy --image REF -a APP`: run an image from any OCI registry.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use spread_api::DeployRequest;

use super::Context;
use crate::{env, output};

#[derive(Args)]
pub struct DeployArgs {
    /// Source directory to build (arrives with the builder; use --image for now).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Image to run, e.g. registry.example.com/shop:1.2
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// What a process type runs, e.g. --process worker='python worker.py'. Without any, the
    /// image's entrypoint and cmd are the web process.
    #[arg(long = "process", value_name = "TYPE=COMMAND")]
    processes: Vec<String>,
    /// Registry user; the password comes from SPREAD_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER")]
    registry_user: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    insecure_registry: bool,
}

pub async fn run(ctx: &Context, args: DeployArgs) -> Result<()> {
    let Some(image) = args.image else {
        bail!(
            "building from a source directory is not available yet; deploy a built image with \
             `spread deploy --image REF -a APP`"
        );
    };
    if let Some(dir) = args.dir {
        bail!(
            "give either a source directory ({}) or --image, not both",
            dir.display()
        );
    }
    let processes = args
        .processes
        .iter()
        .map(|p| {
            let (t, command) = p.split_once('=').with_context(|| {
                format!("`{p}` is not TYPE=COMMAND; write it as e.g. --process web='./server'")
            })?;
            Ok((t.to_owned(), command.to_owned()))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let app = ctx.app()?;
    let request = DeployRequest {
        image: image.clone(),
        processes,
        registry_password: args
            .registry_user
            .as_ref()
            .and_then(|_| env::var(env::REGISTRY_PASSWORD)),
        registry_user: args.registry_user,
        insecure_registry: args.insecure_registry,
    };
    if !ctx.json {
        eprintln!("Pulling {image} and releasing it on {app}…");
    }
    let release = ctx.client()?.deploy(&app, &request).await?;
    if ctx.json {
        println!("{}", output::json(&release));
    } else {
        let digest = release.image.as_ref().map_or("", |i| i.digest.as_str());
        let short = digest.get(..19).unwrap_or(digest);
        println!(
            "Deployed {image} ({short}…) to {app}: release v{}",
            release.version
        );
        for (process, argv) in &release.processes {
            println!("  {process}: {}", argv.join(" "));
        }
    }
    Ok(())
}
