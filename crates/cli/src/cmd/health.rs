//! `spread health`, `spread health set [PATH] [--timeout T]`, `spread health reset`.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use spread_api::HealthCheck;

use super::Context;
use crate::output;

#[derive(Args)]
pub struct HealthArgs {
    #[command(subcommand)]
    action: Option<HealthAction>,
}

#[derive(Subcommand)]
enum HealthAction {
    /// Set the check new web instances must pass before a release serves:
    /// `spread health set /up --timeout 30s -a APP`. Without PATH, a TCP connect to $PORT.
    Set {
        /// `GET PATH` must answer 2xx or 3xx, e.g. `/up`; leave it out for the TCP check.
        path: Option<String>,
        /// How long a rollout waits for new instances to pass: `30s`, `90`, `2m` (default 60s).
        #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
        timeout: Option<u32>,
    },
    /// Go back to the default check: a TCP connect to $PORT, waited for 60s.
    Reset,
}

pub async fn run(ctx: &Context, args: HealthArgs) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let (health, said) = match args.action {
        None => (client.health(&app).await?, None),
        Some(HealthAction::Set { path, timeout }) => {
            if let Some(path) = path.as_deref().filter(|p| !p.starts_with('/')) {
                bail!("the health check path `{path}` must start with '/', like /{path}");
            }
            let health = client.set_health(&app, path.as_deref(), timeout).await?;
            let said = format!(
                "Health check of {app}: {}, within {}. New releases serve once their web \
                 instances pass it.",
                check(&health),
                seconds(health.timeout_seconds)
            );
            (health, Some(said))
        }
        Some(HealthAction::Reset) => {
            let health = client.reset_health(&app).await?;
            let said = format!(
                "Health check of {app} is back to the default: {}, within {}.",
                check(&health),
                seconds(health.timeout_seconds)
            );
            (health, Some(said))
        }
    };
    if ctx.json {
        println!("{}", output::json(&health));
    } else if let Some(said) = said {
        println!("{said}");
    } else {
        println!("{}", show(&health));
    }
    Ok(())
}

/// What the check is and how long a rollout waits for it.
pub fn show(health: &HealthCheck) -> String {
    format!(
        "Check:    {}\nTimeout:  {} (how long a rollout waits for new web instances to pass)",
        check(health),
        seconds(health.timeout_seconds)
    )
}

/// `TCP connect to $PORT` or `GET /up, expecting 2xx or 3xx`.
fn check(health: &HealthCheck) -> String {
    match &health.path {
        None => "TCP connect to $PORT".to_owned(),
        Some(path) => format!("GET {path} on $PORT, expecting 2xx or 3xx"),
    }
}

fn seconds(n: u32) -> String {
    format!("{n}s")
}

/// `30`, `30s`, `2m`: a whole number of seconds or minutes.
fn parse_timeout(text: &str) -> Result<u32, String> {
    let invalid = || format!("`{text}` is not a duration; write it like 30s, 90 or 2m");
    let (number, unit) = match text.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    let number: u32 = number.trim().parse().map_err(|_| invalid())?;
    number.checked_mul(unit).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_seconds_or_minutes() {
        assert_eq!(parse_timeout("30"), Ok(30));
        assert_eq!(parse_timeout("30s"), Ok(30));
        assert_eq!(parse_timeout("2m"), Ok(120));
        for bad in ["", "s", "2h", "1.5m", "-1", "ten"] {
            let err = parse_timeout(bad).unwrap_err();
            assert!(err.contains("like 30s, 90 or 2m"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_check_reads_as_what_is_tried() {
        let tcp = HealthCheck {
            path: None,
            timeout_seconds: 60,
        };
        insta::assert_snapshot!(show(&tcp), @r"
        Check:    TCP connect to $PORT
        Timeout:  60s (how long a rollout waits for new web instances to pass)
        ");
        let http = HealthCheck {
            path: Some("/up".to_owned()),
            timeout_seconds: 30,
        };
        insta::assert_snapshot!(show(&http), @r"
        Check:    GET /up on $PORT, expecting 2xx or 3xx
        Timeout:  30s (how long a rollout waits for new web instances to pass)
        ");
    }
}
