//! One instance as the gateway sees it: its connection pool, in-flight count, ejection after a
//! failed connection, and draining. Kept across route tables while its id stays.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::clock::{Clock, millis};
use crate::upstream::Pool;

pub(crate) struct Backend {
    pub(crate) label: Box<str>,
    pub(crate) addr: SocketAddr,
    /// Idle connections to this instance alone, so they go away with the backend: a new
    /// instance may get the same address.
    pub(crate) pool: Pool,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Clock milliseconds until which the backend is skipped; 0 when it is not ejected.
    ejected_until: AtomicU64,
    /// Woken when the in-flight count of a draining backend reaches 0.
    drained: Notify,
}

impl Backend {
    pub(crate) fn new(label: &str, addr: SocketAddr) -> Self {
        Self {
            label: label.into(),
            addr,
            pool: Pool::default(),
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            ejected_until: AtomicU64::new(0),
            drained: Notify::new(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Whether the backend is ejected at `now`, read from the clock only when it was ejected.
    pub(crate) fn is_ejected(&self, now: &mut Option<u64>, clock: &Clock) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > *now.get_or_insert_with(|| clock.now_ms())
    }

    /// Passive health: a failed connection takes the backend out of balancing for a while.
    /// Returns whether it was in balancing until now.
    pub(crate) fn eject(&self, clock: &Clock, eject_for: Duration) -> bool {
        let now = clock.now_ms();
        let until = now.saturating_add(millis(eject_for));
        self.ejected_until.swap(until, Ordering::Relaxed) <= now
    }

    /// Counts a request on this backend, unless it began draining meanwhile. The check after the
    /// increment pairs with the one in [`Backend::drain`], so a drain never misses a request.
    pub(crate) fn try_lease(self: &Arc<Self>) -> Option<Lease> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let lease = Lease(Arc::clone(self));
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        Some(lease)
    }

    /// Stops new requests to this backend and waits until those in flight are done or
    /// `deadline` passes.
    pub(crate) async fn drain(&self, deadline: Instant) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline.into(), drained)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// One request counted on a backend; dropping it ends the count.
pub(crate) struct Lease(Arc<Backend>);

impl Lease {
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.0.draining.load(Ordering::SeqCst)
        {
            self.0.drained.notify_waiters();
        }
    }
}
