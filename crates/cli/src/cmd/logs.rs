//! `spread logs -a APP [-f] [-n N] [--process TYPE]`: what the app's instances wrote.

use std::io::Write;
use std::ops::ControlFlow;

use anyhow::Result;
use clap::Args;
use spread_api::LogLine;
use spread_client::LogsQuery;

use super::Context;

#[derive(Args)]
pub struct LogsArgs {
    /// Keep printing lines as they are written, until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// How many of the last lines to print first (1 to 10000).
    #[arg(short = 'n', long, default_value_t = 100, value_name = "N")]
    lines: u32,
    /// Only the instances of this process type, e.g. `web`.
    #[arg(long, value_name = "TYPE")]
    process: Option<String>,
    /// Only what one source wrote: `app` (the app's output), `spread` (what the platform says
    /// about its instances) or `router` (one line per request through the gateway).
    #[arg(long, value_name = "SOURCE", value_parser = ["app", "spread", "router"])]
    source: Option<String>,
}

pub async fn run(ctx: &Context, args: LogsArgs) -> Result<()> {
    let app = ctx.app()?;
    let query = LogsQuery {
        lines: Some(args.lines),
        process: args.process,
        follow: args.follow,
        source: args.source,
    };
    let mut printed = 0usize;
    ctx.client()?
        .logs(&app, &query, |line| {
            let text = if ctx.json {
                serde_json::to_string(&line).expect("log lines serialize to JSON")
            } else {
                format_line(&line)
            };
            printed += 1;
            // A closed stdout (`spread logs | head`) ends the command quietly.
            match writeln!(std::io::stdout().lock(), "{text}") {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        })
        .await?;
    if printed == 0 && !ctx.json && !args.follow {
        eprintln!(
            "No logs from {app}'s instances yet. Follow them with `spread logs -f -a {app}`."
        );
    }
    Ok(())
}

/// `2026-11-23T10:00:00.123Z web.1: text`, with `stderr` after the name for that stream, and
/// `spread[web.1]: text` for what the platform says about the instance.
pub fn format_line(line: &LogLine) -> String {
    let name = short_name(&line.instance, &line.process_type);
    match line.stream.as_str() {
        "spread" => format!("{:.3} spread[{name}]: {}", line.at, line.text),
        "router" => format!("{:.3} spread[router]: {}", line.at, line.text),
        "stderr" => format!("{:.3} {name} stderr: {}", line.at, line.text),
        _ => format!("{:.3} {name}: {}", line.at, line.text),
    }
}

/// `web.1` for the instance `shop-web-1-0123456789ab` of type `web`; the whole ID when it
/// does not have that shape (IDs of long names are cut short).
fn short_name(id: &str, process_type: &str) -> String {
    let name = id
        .rsplit_once('-')
        .filter(|(_, hash)| hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|(rest, _)| rest.rsplit_once('-'))
        .filter(|(rest, index)| {
            !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit())
                && rest.ends_with(&format!("-{process_type}"))
        })
        .map(|(_, index)| format!("{process_type}.{index}"));
    name.unwrap_or_else(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(instance: &str, process_type: &str, stream: &str) -> LogLine {
        LogLine {
            at: "2026-11-23T10:00:00.1Z".parse().unwrap(),
            instance: instance.to_owned(),
            process_type: process_type.to_owned(),
            stream: stream.to_owned(),
            text: "Listening on :5000".to_owned(),
        }
    }

    #[test]
    fn lines_read_time_name_and_text() {
        assert_eq!(
            format_line(&line("shop-web-1-0123456789ab", "web", "stdout")),
            "2026-11-23T10:00:00.100Z web.1: Listening on :5000"
        );
        assert_eq!(
            format_line(&line("my-shop-worker-12-ba9876543210", "worker", "stderr")),
            "2026-11-23T10:00:00.100Z worker.12 stderr: Listening on :5000"
        );
        assert_eq!(
            format_line(&line("shop-web-1-0123456789ab", "web", "spread")),
            "2026-11-23T10:00:00.100Z spread[web.1]: Listening on :5000"
        );
    }

    #[test]
    fn ids_of_another_shape_are_shown_whole() {
        for (id, process_type) in [
            ("shop-web-1-0123456789ab", "worker"),
            ("shop-web-x-0123456789ab", "web"),
            ("shop-web-1-0123", "web"),
            ("a-very-long-app-name-that-was-cut-we-0123456789ab", "web"),
            ("web-1-0123456789ab", "web"),
            ("", "web"),
        ] {
            assert_eq!(short_name(id, process_type), id);
        }
    }
}
