//! Prometheus metrics: request counts and latencies by route, and the Raft node's state.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// The process-wide recorder; the `metrics` macros in every crate report to it.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); then our
        // handle renders only what is recorded through it, which is still well-formed.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Makes sure the recorder exists before the first request is counted.
pub(crate) fn init() {
    handle();
}

pub(crate) async fn track_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Only known methods become labels: anyone can send any method, and every label value is
    // a new time series kept forever.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("spread_api_requests_total", &labels).increment(1);
    metrics::histogram!("spread_api_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    response
}

pub(crate) async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let raft = state.raft.status();
    metrics::gauge!("spread_raft_term").set(raft.term as f64);
    metrics::gauge!("spread_raft_is_leader").set(f64::from(u8::from(raft.role == "leader")));
    metrics::gauge!("spread_raft_last_applied_index").set(raft.last_applied.unwrap_or(0) as f64);
    metrics::gauge!("spread_raft_last_log_index").set(raft.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("spread_apps").set(state.raft.read(|s| s.apps().count()) as f64);
    let mut text = handle().render();
    text.push_str(&state.instances.metrics());
    ([("content-type", "text/plain; version=0.0.4")], text)
}
