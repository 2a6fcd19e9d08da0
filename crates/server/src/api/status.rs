//! `/v1/status` and the unauthenticated `/healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use spread_api::{RaftStatus, Status};

use crate::AppState;

pub(super) async fn status(State(state): State<AppState>) -> Json<Status> {
    let r = state.raft.status();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        data_dir: state.config.data_dir.display().to_string(),
        uptime_seconds: state.started.elapsed().as_secs(),
        raft: RaftStatus {
            node_id: r.node_id,
            role: r.role,
            term: r.term,
            leader: r.leader,
            last_log_index: r.last_log_index,
            last_applied: r.last_applied,
            snapshot_index: r.snapshot_index,
            voters: r.voters,
        },
    })
}

/// 200 when this node can take writes (it leads), 503 otherwise.
pub(super) async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.raft.status().role == "leader" {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not the raft leader\n")
    }
}
