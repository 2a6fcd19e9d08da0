//! `spread deploy [DIR] -a APP`: pack a project, upload it, and follow its build and release;
//! `spread deploy --image REF -a APP`: run an image from any OCI registry.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spread_api::{BuildEvent, DeployRequest, Release};
use spread_build::{DEFAULT_MAX_UPLOAD_BYTES, PackStats, pack};
use spread_client::Client;

use super::Context;
use crate::{env, output, units};

#[derive(Args)]
pub struct DeployArgs {
    /// Project directory to build and release (default: the current directory, unless --image
    /// is given). Files listed in .gitignore or .spreadignore are not sent, nor is .git.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Run a built image from a registry instead, e.g. registry.example.com/shop:1.2
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// With --image: what a process type runs, e.g. --process worker='python worker.py'.
    /// Without any, the image's entrypoint and cmd are the web process. A build from source
    /// takes its processes from the project's Procfile.
    #[arg(long = "process", value_name = "TYPE=COMMAND")]
    processes: Vec<String>,
    /// With --image: registry user; the password comes from SPREAD_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER")]
    registry_user: Option<String>,
    /// With --image: allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    insecure_registry: bool,
}

pub async fn run(ctx: &Context, args: DeployArgs) -> Result<()> {
    match args.image.clone() {
        Some(image) => {
            if let Some(dir) = &args.dir {
                bail!(
                    "give either a source directory ({}) or --image, not both",
                    dir.display()
                );
            }
            deploy_image(ctx, image, args).await
        }
        None => {
            let image_only = [
                ("--process", !args.processes.is_empty()),
                ("--registry-user", args.registry_user.is_some()),
                ("--insecure-registry", args.insecure_registry),
            ];
            if let Some((flag, _)) = image_only.iter().find(|(_, given)| *given) {
                bail!(
                    "{flag} is only for --image; a build from source takes its processes from \
                     the project's Procfile"
                );
            }
            deploy_source(ctx, args.dir.unwrap_or_else(|| PathBuf::from("."))).await
        }
    }
}

async fn deploy_source(ctx: &Context, dir: PathBuf) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    // Before packing, which may take a while: the app must exist.
    client.app(&app).await?;
    let tarball = tempfile::Builder::new()
        .prefix("spread-upload-")
        .suffix(".tar.gz")
        .tempfile()
        .context("cannot create a temporary file for the packed project")?;
    let stats = {
        let (dir, file) = (dir.clone(), tarball.as_file().try_clone()?);
        tokio::task::spawn_blocking(move || {
            pack(&dir, BufWriter::new(file), DEFAULT_MAX_UPLOAD_BYTES)
        })
        .await
        .context("packing the project stopped unexpectedly")??
    };
    if !ctx.json {
        eprintln!("{}", packed(&stats, &dir));
    }
    let bar = upload_bar(ctx.json);
    let mut shown = Shown { json: ctx.json };
    let last = client
        .build(
            &app,
            tarball.path(),
            |sent, total| {
                bar.set_length(total);
                bar.set_position(sent);
            },
            |event| {
                bar.finish_and_clear();
                shown.event(&event);
            },
        )
        .await;
    bar.finish_and_clear();
    match last? {
        BuildEvent::Released { release } => {
            if !ctx.json {
                println!("Released v{} of {app}: it serves now", release.version);
                print_processes(&release);
            }
            Ok(())
        }
        BuildEvent::Failed {
            message,
            step,
            exit_code,
        } => bail!("{}", failure(&message, step.as_deref(), exit_code)),
        other => bail!("the build's answer ended with {other:?} instead of its outcome"),
    }
}

/// `Packed 37 files (1.2 MiB) from ./myapp`
fn packed(stats: &PackStats, dir: &Path) -> String {
    let files = if stats.files == 1 { "file" } else { "files" };
    format!(
        "Packed {} {files} ({}) from {}",
        stats.files,
        units::bytes(stats.packed_bytes),
        dir.display()
    )
}

/// A progress bar on stderr, or a hidden one when nobody watches it.
fn upload_bar(json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "Uploading [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec})",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    ProgressBar::new(0).with_style(style)
}

/// Prints build events as they arrive.
struct Shown {
    json: bool,
}

impl Shown {
    fn event(&mut self, event: &BuildEvent) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string(event).expect("build events serialize")
            );
        } else if let Some(line) = event_line(event) {
            println!("{line}");
        }
    }
}

/// How a step or output event reads, Heroku style; the outcome is shown apart.
fn event_line(event: &BuildEvent) -> Option<String> {
    match event {
        BuildEvent::Step { name } => Some(format!("-----> {name}")),
        BuildEvent::Output { line } => Some(format!("       {line}")),
        BuildEvent::RollingOut { release } => Some(format!(
            "-----> Rolling out v{}: new instances start beside the running ones and get \
             traffic once healthy",
            release.version
        )),
        BuildEvent::Failed { .. } | BuildEvent::Released { .. } => None,
    }
}

/// The error a failed build ends the command with.
fn failure(message: &str, step: Option<&str>, exit_code: Option<i32>) -> String {
    if step == Some(spread_api::ROLLOUT_STEP) {
        return format!("the deploy failed: {message}");
    }
    let at = match (step, exit_code) {
        (Some(step), Some(code)) => format!(" at `{step}` (exit code {code})"),
        (Some(step), None) => format!(" at `{step}`"),
        (None, Some(code)) => format!(" (exit code {code})"),
        (None, None) => String::new(),
    };
    format!(
        "the build failed{at}: {message}\nNothing was released; the previous release, if any, \
         keeps running."
    )
}

fn print_processes(release: &Release) {
    for (process, argv) in &release.processes {
        println!("  {process}: {}", argv.join(" "));
    }
}

async fn deploy_image(ctx: &Context, image: String, args: DeployArgs) -> Result<()> {
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
        registry_password: env::registry_password(args.registry_user.as_ref()),
        registry_user: args.registry_user,
        insecure_registry: args.insecure_registry,
    };
    if !ctx.json {
        eprintln!("Pulling {image} and releasing it on {app}…");
    }
    let client = ctx.client()?;
    let release = client.deploy(&app, &request).await?;
    if !ctx.json {
        let digest = release.image.as_ref().map_or("", |i| i.digest.as_str());
        let short = digest.get(..19).unwrap_or(digest);
        eprintln!(
            "Released {image} ({short}…) as v{}; rolling it out…",
            release.version
        );
    }
    let release = rolled_out(&client, &app, release).await?;
    if ctx.json {
        println!("{}", output::json(&release));
    } else {
        println!("Deployed {image} to {app}: v{} serves now", release.version);
        print_processes(&release);
    }
    Ok(())
}

/// How often a rollout's end is looked for.
const ROLLOUT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits until `release` has rolled out, and fails with the reason if it did not.
pub async fn rolled_out(client: &Client, app: &str, mut release: Release) -> Result<Release> {
    while release.status == "rolling-out" {
        tokio::time::sleep(ROLLOUT_POLL).await;
        release = client.release(app, release.version).await?;
    }
    match release.status.as_str() {
        "deployed" => Ok(release),
        "failed" => bail!(
            "v{} failed to roll out: {}\nThe release before it keeps serving; `spread logs -a {app}` \
             shows why its instances did not become healthy.",
            release.version,
            release.failure.as_deref().unwrap_or("no reason given")
        ),
        other => bail!(
            "v{} did not roll out: it is {other}, because a newer release came first",
            release.version
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_output_read_like_heroku() {
        let step = BuildEvent::Step {
            name: "Installing dependencies with pip".to_owned(),
        };
        let output = BuildEvent::Output {
            line: "Successfully installed flask".to_owned(),
        };
        assert_eq!(
            event_line(&step).unwrap(),
            "-----> Installing dependencies with pip"
        );
        assert_eq!(
            event_line(&output).unwrap(),
            "       Successfully installed flask"
        );
    }

    #[test]
    fn a_failure_names_its_step_and_exit_code_and_says_the_app_runs_on() {
        let text = failure(
            "pip exited with 1",
            Some("Installing dependencies"),
            Some(1),
        );
        assert_eq!(
            text,
            "the build failed at `Installing dependencies` (exit code 1): pip exited with 1\n\
             Nothing was released; the previous release, if any, keeps running."
        );
        assert!(failure("no builder", None, None).starts_with("the build failed: no builder\n"));
    }

    #[test]
    fn the_packed_line_counts_files_and_bytes() {
        let stats = PackStats {
            files: 37,
            content_bytes: 4 << 20,
            packed_bytes: 1_258_291,
        };
        assert_eq!(
            packed(&stats, Path::new("./myapp")),
            "Packed 37 files (1.2 MiB) from ./myapp"
        );
    }
}
