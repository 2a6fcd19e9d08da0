//! The route table: host → app route, built whole from [`AppRoute`]s and swapped atomically.
//! Backend and app state carry over from the previous table by backend id and app name.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crate::backend::{Backend, Lease};
use crate::clock::Clock;
use crate::host::normalize_host;
use crate::metrics::AppMetrics;

/// One instance of an app, as the control plane describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendSpec {
    /// The instance id, unique across all apps.
    pub id: String,
    /// A short name for logs, such as `web.1`.
    pub label: String,
    /// Where the instance listens for plain HTTP/1.1.
    pub addr: SocketAddr,
}

/// The hosts an app is served at and its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoute {
    /// The app name, the key of its metrics and access log.
    pub app: String,
    /// Host names, matched exactly after lowercasing and stripping port and trailing dot.
    pub hosts: Vec<String>,
    /// The instances to balance over; empty means every request gets 503.
    pub backends: Vec<BackendSpec>,
}

pub(crate) struct App {
    pub(crate) name: Box<str>,
    pub(crate) metrics: AppMetrics,
}

pub(crate) struct Route {
    pub(crate) app: Arc<App>,
    pub(crate) backends: Box<[Arc<Backend>]>,
    /// Where the next least-loaded search starts, so equally loaded backends take turns.
    next: AtomicUsize,
}

impl Route {
    /// Picks the backend with the fewest requests in flight among those neither draining nor
    /// ejected (or, when all are ejected, among the ejected), other than `exclude`, and counts
    /// the request on it. `None` when no backend can take it.
    pub(crate) fn pick(&self, clock: &Clock, exclude: Option<&Arc<Backend>>) -> Option<Lease> {
        // A backend may start draining between the choice and the lease; choose again then.
        for _ in 0..=self.backends.len() {
            let backend = self.choose(clock, exclude)?;
            if let Some(lease) = backend.try_lease() {
                return Some(lease);
            }
        }
        None
    }

    fn choose(&self, clock: &Clock, exclude: Option<&Arc<Backend>>) -> Option<&Arc<Backend>> {
        let n = self.backends.len();
        let start = match n {
            0 => return None,
            1 => 0,
            _ => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        let mut now = None;
        let mut best: Option<(&Arc<Backend>, usize)> = None;
        let mut best_ejected: Option<(&Arc<Backend>, usize)> = None;
        let (tail, head) = self.backends.split_at(start);
        for backend in head.iter().chain(tail) {
            if backend.is_draining() || exclude.is_some_and(|ex| Arc::ptr_eq(ex, backend)) {
                continue;
            }
            let load = backend.in_flight();
            let slot = if backend.is_ejected(&mut now, clock) {
                &mut best_ejected
            } else {
                &mut best
            };
            if slot.is_none_or(|(_, least)| load < least) {
                *slot = Some((backend, load));
            }
        }
        best.or(best_ejected).map(|(backend, _)| backend)
    }
}

#[derive(Default)]
pub(crate) struct RouteTable {
    hosts: HashMap<Box<str>, Arc<Route>>,
}

impl RouteTable {
    pub(crate) fn lookup(&self, host: &str) -> Option<&Arc<Route>> {
        self.hosts.get(host)
    }
}

/// The state that outlives route tables: backends by id and apps by name. Touched only by
/// `set_routes`, `drain` and metrics rendering, never by the request path.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) backends: HashMap<Box<str>, Arc<Backend>>,
    /// Backends the table no longer uses, by instance ID, while requests in flight still hold
    /// them: an instance is often taken out of the routes before it is drained, and its drain
    /// must still wait for them.
    pub(crate) retired: Vec<(Box<str>, Weak<Backend>)>,
    pub(crate) apps: BTreeMap<Box<str>, Arc<App>>,
}

impl Registry {
    /// Builds the table for `routes`, reusing the backends and apps it already has, and keeps
    /// only what the new table uses.
    pub(crate) fn build(&mut self, routes: Vec<AppRoute>) -> RouteTable {
        let mut backends = HashMap::new();
        let mut apps = BTreeMap::new();
        let mut hosts = HashMap::new();
        for route in routes {
            let app = apps
                .entry(route.app.as_str().into())
                .or_insert_with(|| {
                    self.apps
                        .get(route.app.as_str())
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(App {
                                name: route.app.as_str().into(),
                                metrics: AppMetrics::default(),
                            })
                        })
                })
                .clone();
            let mut route_backends: Vec<Arc<Backend>> = Vec::with_capacity(route.backends.len());
            for spec in &route.backends {
                let backend = backends
                    .entry(spec.id.as_str().into())
                    .or_insert_with(|| match self.backends.get(spec.id.as_str()) {
                        // A new address means a new instance: its pool must not be reused.
                        Some(old) if old.addr == spec.addr => Arc::clone(old),
                        _ => Arc::new(Backend::new(&spec.label, spec.addr)),
                    })
                    .clone();
                if !route_backends.iter().any(|b| Arc::ptr_eq(b, &backend)) {
                    route_backends.push(backend);
                }
            }
            let entry = Arc::new(Route {
                app,
                backends: route_backends.into_boxed_slice(),
                next: AtomicUsize::new(0),
            });
            for raw in &route.hosts {
                let Some(host) = normalize_host(raw) else {
                    tracing::warn!(app = %route.app, host = %raw, "host is not a valid host name; it is not routed");
                    continue;
                };
                match hosts.entry(Box::<str>::from(&*host)) {
                    std::collections::hash_map::Entry::Occupied(taken) => {
                        let owner: &Arc<Route> = taken.get();
                        if !Arc::ptr_eq(&owner.app, &entry.app) {
                            tracing::warn!(
                                host = %host,
                                app = %route.app,
                                owner = %owner.app.name,
                                "host is already routed to another app; keeping the first"
                            );
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(free) => {
                        free.insert(Arc::clone(&entry));
                    }
                }
            }
        }
        self.retired
            .retain(|(_, backend)| backend.strong_count() > 0);
        for (id, old) in self.backends.drain() {
            if !backends.get(&id).is_some_and(|new| Arc::ptr_eq(new, &old)) {
                self.retired.push((id, Arc::downgrade(&old)));
            }
        }
        self.backends = backends;
        self.apps = apps;
        RouteTable { hosts }
    }
}
