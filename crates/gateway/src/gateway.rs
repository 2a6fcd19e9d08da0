//! The [`Gateway`]: its route table, the state that outlives route tables, and its public
//! operations.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::access_log::AccessLog;
use crate::backend::Backend;
use crate::clock::Clock;
use crate::config::GatewayConfig;
use crate::metrics::{self, AppSummary};
use crate::request_id::RequestIds;
use crate::routes::{AppRoute, Registry, RouteTable};
use crate::server;

/// Spread's HTTP reverse proxy. Made once per process with [`Gateway::new`], given routes with
/// [`Gateway::set_routes`] whenever they change, and run with [`Gateway::serve`].
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) log: Arc<dyn AccessLog>,
    /// `log.enabled()`, read once.
    pub(crate) log_enabled: bool,
    pub(crate) table: ArcSwap<RouteTable>,
    registry: Mutex<Registry>,
    pub(crate) clock: Clock,
    pub(crate) request_ids: RequestIds,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .field("log_enabled", &self.log_enabled)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with no routes yet: every host gets 404 until [`Gateway::set_routes`].
    pub fn new(config: GatewayConfig, log: Arc<dyn AccessLog>) -> Arc<Self> {
        Arc::new(Self {
            config,
            log_enabled: log.enabled(),
            log,
            table: ArcSwap::from_pointee(RouteTable::default()),
            registry: Mutex::new(Registry::default()),
            clock: Clock::new(),
            request_ids: RequestIds::new(),
        })
    }

    /// Replaces the whole route table atomically; requests in progress finish on the table they
    /// started with. Backend state (in-flight count, connection pool, ejection, draining) is
    /// kept for backend ids present before and after with the same address, and metrics for
    /// apps present before and after. An invalid host is skipped with a warning; a host listed
    /// by two apps goes to the first.
    pub fn set_routes(&self, routes: Vec<AppRoute>) {
        let mut registry = self.registry();
        let table = registry.build(routes);
        self.table.store(Arc::new(table));
    }

    /// Accepts connections until `shutdown` resolves, then stops accepting, lets requests in
    /// progress finish and closes idle connections, and returns once every connection (and
    /// upgraded tunnel, which is closed) is done. A response that streams forever keeps it
    /// waiting: bound the call with a timeout when that matters.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(self, listener, shutdown).await
    }

    /// Runs [`Gateway::serve`] on a tokio runtime of its own, on `threads` threads named
    /// `gateway` (at least one), so the gateway's requests never wait behind the rest of the
    /// process's tasks and take no cross-thread wake-ups from them. One thread gets a
    /// current-thread runtime, the cheapest per request; more get a multi-thread one.
    /// [`DEFAULT_THREADS`](crate::DEFAULT_THREADS) is the count to use without a reason to
    /// pick another. `shutdown` may come from any runtime.
    ///
    /// Returns the thread that serves, once the runtime is built; joining it gives what `serve`
    /// returned. `listener` is made non-blocking here.
    pub fn spawn_on_own_runtime(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<std::io::Result<()>>> {
        server::spawn_on_own_runtime(self, listener, threads, shutdown)
    }

    /// Takes the backend out of balancing at once (even before the next `set_routes`) and
    /// waits until its requests in flight are done or `timeout` passed. An unknown id returns
    /// at once.
    pub async fn drain(&self, backend_id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // The backend in the table, and any the table dropped that requests still hold.
        let found: Vec<Arc<Backend>> = {
            let registry = self.registry();
            let retired = registry
                .retired
                .iter()
                .filter(|(id, _)| &**id == backend_id)
                .filter_map(|(_, backend)| backend.upgrade());
            registry
                .backends
                .get(backend_id)
                .cloned()
                .into_iter()
                .chain(retired)
                .collect()
        };
        for backend in found {
            backend.drain(deadline).await;
        }
    }

    /// Whether the route table sends requests to this backend now.
    pub fn is_routed(&self, backend_id: &str) -> bool {
        self.registry().backends.contains_key(backend_id)
    }

    /// Per-app metrics as Prometheus text exposition.
    pub fn render_metrics(&self) -> String {
        let apps: Vec<_> = self.registry().apps.values().cloned().collect();
        metrics::render(apps.iter().map(|app| (&*app.name, &app.metrics)))
    }

    /// A summary of an app's requests, or `None` for an app with no route.
    pub fn summary(&self, app: &str) -> Option<AppSummary> {
        self.registry()
            .apps
            .get(app)
            .map(|app| app.metrics.summary())
    }

    /// Closes pooled connections to instances that have been idle too long.
    pub(crate) fn sweep_idle_upstreams(&self) {
        let backends: Vec<_> = self.registry().backends.values().cloned().collect();
        for backend in backends {
            backend.pool.sweep(self.config.upstream_idle_timeout);
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
