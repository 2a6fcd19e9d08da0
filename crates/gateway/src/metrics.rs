//! Per-app request metrics: counters by status class, a latency histogram of the time to
//! response headers, and the in-flight gauge. Atomics only; rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the finite latency buckets, in seconds; a last bucket is `+Inf`.
const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The same bounds in microseconds, for the request path.
const BOUNDS_MICROS: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
const BUCKETS: usize = BOUNDS.len() + 1;
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The metrics of one app, kept across route table changes while the app has routes.
#[derive(Default)]
pub(crate) struct AppMetrics {
    requests: [AtomicU64; 5],
    /// Not cumulative: each request counts in exactly one bucket.
    buckets: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
    in_flight: AtomicU64,
}

/// A summary of one app's requests since its metrics began.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSummary {
    /// Requests answered, by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub requests: [u64; 5],
    /// Requests in progress now.
    pub in_flight: u64,
    /// Estimated median time to response headers, from the histogram buckets.
    pub p50_ms: Option<f64>,
    /// Estimated 99th percentile time to response headers.
    pub p99_ms: Option<f64>,
}

impl AppMetrics {
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub(crate) fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Counts one answered request: its status and the time its response headers took.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    fn bucket_counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    pub(crate) fn summary(&self) -> AppSummary {
        let counts = self.bucket_counts();
        AppSummary {
            requests: std::array::from_fn(|i| self.requests[i].load(Relaxed)),
            in_flight: self.in_flight.load(Relaxed),
            p50_ms: quantile(0.5, &counts).map(|s| s * 1000.0),
            p99_ms: quantile(0.99, &counts).map(|s| s * 1000.0),
        }
    }
}

/// Estimates a quantile like Prometheus' `histogram_quantile`: linear within the bucket that
/// holds it; a quantile in the `+Inf` bucket is reported as the largest finite bound.
fn quantile(q: f64, counts: &[u64; BUCKETS]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = BOUNDS.get(i) else {
                return Some(BOUNDS[BOUNDS.len() - 1]);
            };
            let lower = if i == 0 { 0.0 } else { BOUNDS[i - 1] };
            let fraction = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * fraction);
        }
        below += count;
    }
    Some(BOUNDS[BOUNDS.len() - 1])
}

/// Renders the metrics of every app, in the order given, as Prometheus text exposition.
pub(crate) fn render<'a>(apps: impl Iterator<Item = (&'a str, &'a AppMetrics)> + Clone) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str(
        "# HELP spread_gateway_requests_total Requests answered by the gateway, per app and status class.\n\
         # TYPE spread_gateway_requests_total counter\n",
    );
    for (app, metrics) in apps.clone() {
        let app = escape_label(app);
        for (class, counter) in CLASSES.iter().zip(&metrics.requests) {
            let _ = writeln!(
                out,
                "spread_gateway_requests_total{{app=\"{app}\",class=\"{class}\"}} {}",
                counter.load(Relaxed)
            );
        }
    }
    out.push_str(
        "# HELP spread_gateway_request_duration_seconds Time from a request to its response headers, per app.\n\
         # TYPE spread_gateway_request_duration_seconds histogram\n",
    );
    for (app, metrics) in apps.clone() {
        let app = escape_label(app);
        let counts = metrics.bucket_counts();
        let mut cumulative = 0;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = BOUNDS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "spread_gateway_request_duration_seconds_bucket{{app=\"{app}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = metrics.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "spread_gateway_request_duration_seconds_sum{{app=\"{app}\"}} {sum}\n\
             spread_gateway_request_duration_seconds_count{{app=\"{app}\"}} {cumulative}"
        );
    }
    out.push_str(
        "# HELP spread_gateway_in_flight Requests in progress, per app.\n\
         # TYPE spread_gateway_in_flight gauge\n",
    );
    for (app, metrics) in apps {
        let _ = writeln!(
            out,
            "spread_gateway_in_flight{{app=\"{}\"}} {}",
            escape_label(app),
            metrics.in_flight.load(Relaxed)
        );
    }
    out
}

/// Escapes a Prometheus label value.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_class_and_bucket() {
        let m = AppMetrics::default();
        m.record(200, Duration::from_millis(1));
        m.record(204, Duration::from_millis(7));
        m.record(503, Duration::from_secs(20));
        let s = m.summary();
        assert_eq!(s.requests, [0, 2, 0, 0, 1]);
        let text = render([("shop", &m)].into_iter());
        assert!(text.contains("spread_gateway_requests_total{app=\"shop\",class=\"2xx\"} 2\n"));
        assert!(text.contains("_bucket{app=\"shop\",le=\"0.005\"} 1\n"));
        assert!(text.contains("_bucket{app=\"shop\",le=\"0.01\"} 2\n"));
        assert!(text.contains("_bucket{app=\"shop\",le=\"10\"} 2\n"));
        assert!(text.contains("_bucket{app=\"shop\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("_count{app=\"shop\"} 3\n"));
        assert!(text.contains("spread_gateway_in_flight{app=\"shop\"} 0\n"));
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let m = AppMetrics::default();
        for _ in 0..100 {
            m.record(200, Duration::from_millis(2));
        }
        let s = m.summary();
        assert_eq!(s.p50_ms, Some(2.5));
        assert!((s.p99_ms.unwrap() - 4.95).abs() < 1e-9);
        assert_eq!(AppMetrics::default().summary().p50_ms, None);
    }
}
