//! What the API knows of the instances on this node: a narrow view that the node agent
//! provides, so the control plane never touches the container runtime itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use spread_core::{AppId, DesiredInstance, Observed};

/// Where one instance's logs are kept: a monitor state dir (see `spread_oci::monitor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub instance: String,
    pub process_type: String,
    pub dir: PathBuf,
}

/// The instances of this node, as the node agent sees them.
pub trait NodeInstances: Send + Sync + 'static {
    /// The app's instances on this node, in id order.
    fn instances(&self, app: &AppId) -> Vec<spread_api::Instance>;
    /// Where the logs of the app's instances are: those that run and those that stopped
    /// recently, in id order.
    fn log_sources(&self, app: &AppId) -> Vec<LogSource>;
    /// Makes the pulled image `manifest` ready to run for `app` (its layers unpacked), or
    /// says why it cannot run, e.g. a layer that would write outside its root. Blocking.
    fn prepare_image(&self, app: &AppId, manifest: &str) -> Result<(), String>;
    /// What this node sees of the `wanted` instances, for rollouts. The default, for a node
    /// that runs no instances, has nothing to wait for: every one counts as healthy.
    fn observe(&self, wanted: &[DesiredInstance]) -> BTreeMap<String, Observed> {
        wanted
            .iter()
            .map(|i| (i.id.clone(), Observed::Healthy))
            .collect()
    }
    /// The node gateway's metrics in Prometheus' text format, appended to `/metrics`.
    fn metrics(&self) -> String {
        String::new()
    }
    /// What the node gateway saw of the app's requests, if it served any.
    fn router(&self, _app: &str) -> Option<spread_api::RouterSummary> {
        None
    }
}

/// A node without an agent: no instances and no logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInstances;

impl NodeInstances for NoInstances {
    fn instances(&self, _app: &AppId) -> Vec<spread_api::Instance> {
        Vec::new()
    }

    fn log_sources(&self, _app: &AppId) -> Vec<LogSource> {
        Vec::new()
    }

    fn prepare_image(&self, _app: &AppId, _manifest: &str) -> Result<(), String> {
        Ok(())
    }
}
