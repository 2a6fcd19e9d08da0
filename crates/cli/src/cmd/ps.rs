//! `spread ps -a APP`: the app's instances, their state, uptime and usage.

use anyhow::Result;
use jiff::Timestamp;
use spread_api::{Instance, InstanceExit, RouterSummary};

use super::Context;
use crate::{output, units};

pub async fn run(ctx: &Context) -> Result<()> {
    let app = ctx.app()?;
    let client = ctx.client()?;
    let mut instances = client.instances(&app).await?;
    if ctx.json {
        println!("{}", output::json(&instances));
    } else if instances.is_empty() {
        println!(
            "No instances of {app} are running. Deploy with `spread deploy --image REF -a {app}`."
        );
    } else {
        // The server lists them by ID, where `web.10` comes before `web.2`.
        instances.sort_by(|a, b| {
            (&a.process_type, a.index, &a.id).cmp(&(&b.process_type, b.index, &b.id))
        });
        println!("{}", table(&instances, Timestamp::now()));
    }
    if !ctx.json
        && let Some(line) = router_line(&client.router(&app).await?)
    {
        println!("\n{line}");
    }
    Ok(())
}

/// `Router: 1,204 requests (2xx 1,180, 4xx 20, 5xx 4), 3 in flight, p50 4 ms, p99 31 ms`, or
/// nothing before the first request.
pub fn router_line(summary: &RouterSummary) -> Option<String> {
    let total: u64 = summary.requests.iter().sum();
    if total == 0 && summary.in_flight == 0 {
        return None;
    }
    let classes: Vec<String> = summary
        .requests
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(class, n)| format!("{}xx {}", class + 1, thousands(*n)))
        .collect();
    let mut line = format!(
        "Router: {} requests ({}), {} in flight",
        thousands(total),
        classes.join(", "),
        summary.in_flight
    );
    for (name, ms) in [("p50", summary.p50_ms), ("p99", summary.p99_ms)] {
        if let Some(ms) = ms {
            line.push_str(&format!(", {name} {}", milliseconds(ms)));
        }
    }
    Some(line)
}

/// `1,204`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `4 ms`, `0.8 ms`, `2.5 s`.
fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// One row per instance, its uptime counted up to `now`.
pub fn table(instances: &[Instance], now: Timestamp) -> String {
    let rows = instances.iter().map(|i| {
        [
            format!("{}.{}", i.process_type, i.index),
            state(i),
            format!("v{}", i.release),
            i.restarts.to_string(),
            i.started_at
                .map_or_else(|| "-".to_owned(), |t| uptime(t, now)),
            i.cpu_millis.map_or_else(
                || "-".to_owned(),
                |m| format!("{}%", m.saturating_add(5) / 10),
            ),
            memory(i.memory_bytes, i.memory_limit_bytes),
            i.last_exit.as_ref().map_or_else(|| "-".to_owned(), exit),
        ]
    });
    output::table(
        [
            "ID",
            "STATE",
            "RELEASE",
            "RESTARTS",
            "UPTIME",
            "CPU",
            "MEMORY",
            "LAST EXIT",
        ],
        rows,
    )
}

/// `up` once a running instance passed its health check (as Heroku says of a dyno that
/// serves); `running` until then, or again after it fails its checks; otherwise the agent's
/// state (`starting`, `crashed`, ...).
fn state(instance: &Instance) -> String {
    match (instance.state.as_str(), instance.healthy) {
        ("running", true) => "up".to_owned(),
        (state, _) => state.to_owned(),
    }
}

fn uptime(started: Timestamp, now: Timestamp) -> String {
    let seconds = now.duration_since(started).as_secs();
    output::duration(u64::try_from(seconds).unwrap_or(0))
}

/// `34.2 MiB / 512 MiB`, or the usage alone when there is no limit.
fn memory(used: Option<u64>, limit: Option<u64>) -> String {
    match (used, limit) {
        (Some(used), Some(limit)) => format!("{} / {}", units::bytes(used), units::bytes(limit)),
        (Some(used), None) => units::bytes(used),
        (None, Some(limit)) => format!("- / {}", units::bytes(limit)),
        (None, None) => "-".to_owned(),
    }
}

/// `exit 1`, `signal 9` or `oom`.
fn exit(exit: &InstanceExit) -> String {
    match exit {
        InstanceExit {
            oom_killed: true, ..
        } => "oom".to_owned(),
        InstanceExit {
            signal: Some(signal),
            ..
        } => format!("signal {signal}"),
        InstanceExit {
            code: Some(code), ..
        } => format!("exit {code}"),
        InstanceExit { .. } => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn instance(process_type: &str, index: u32, state: &str) -> Instance {
        Instance {
            id: format!("shop-{process_type}-{index}-0123456789ab"),
            process_type: process_type.to_owned(),
            index,
            release: 3,
            state: state.to_owned(),
            restarts: 0,
            started_at: None,
            last_exit: None,
            address: None,
            cpu_millis: None,
            memory_bytes: None,
            memory_limit_bytes: None,
            healthy: false,
        }
    }

    #[test]
    fn the_table_shows_state_uptime_usage_and_how_each_last_ended() {
        let now = at("2026-11-23T10:02:05Z");
        let running = Instance {
            started_at: Some(at("2026-11-23T10:00:00Z")),
            cpu_millis: Some(120),
            memory_bytes: Some(35_861_709),
            memory_limit_bytes: Some(512 << 20),
            address: Some("10.88.0.5".to_owned()),
            healthy: true,
            ..instance("web", 1, "running")
        };
        let restarted = Instance {
            started_at: Some(at("2026-11-23T07:00:00Z")),
            restarts: 3,
            cpu_millis: Some(2500),
            memory_bytes: Some(200 << 20),
            last_exit: Some(InstanceExit {
                code: None,
                signal: Some(9),
                oom_killed: false,
            }),
            ..instance("web", 2, "running")
        };
        let crashed = Instance {
            restarts: 5,
            last_exit: Some(InstanceExit {
                code: Some(1),
                signal: None,
                oom_killed: false,
            }),
            ..instance("worker", 1, "crashed")
        };
        let oom = Instance {
            last_exit: Some(InstanceExit {
                code: None,
                signal: Some(9),
                oom_killed: true,
            }),
            memory_limit_bytes: Some(256 << 20),
            ..instance("worker", 2, "oom-killed")
        };
        let starting = instance("clock", 1, "starting");
        insta::assert_snapshot!(table(&[running, restarted, crashed, oom, starting], now));
    }

    #[test]
    fn a_start_after_now_shows_no_negative_uptime() {
        assert_eq!(
            uptime(at("2026-11-23T10:00:01Z"), at("2026-11-23T10:00:00Z")),
            "0s"
        );
    }

    #[test]
    fn the_router_line_sums_up_requests_by_class_and_latency() {
        let summary = RouterSummary {
            requests: [0, 1180, 0, 20, 4],
            in_flight: 3,
            p50_ms: Some(4.2),
            p99_ms: Some(31.0),
        };
        assert_eq!(
            router_line(&summary).unwrap(),
            "Router: 1,204 requests (2xx 1,180, 4xx 20, 5xx 4), 3 in flight, p50 4.2 ms, p99 31 ms"
        );
        let none = RouterSummary {
            requests: [0; 5],
            in_flight: 0,
            p50_ms: None,
            p99_ms: None,
        };
        assert_eq!(router_line(&none), None, "nothing to say before a request");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(milliseconds(2500.0), "2.5 s");
    }
}
