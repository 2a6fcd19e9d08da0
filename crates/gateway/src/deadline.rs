//! The response timeout of HTTP/1 requests, kept on their connection and enforced by its
//! watchdog (see `conn`) instead of a timer per request.
//!
//! HTTP/1 requests on a connection take turns and run on the connection's task, so one slot per
//! connection holds the deadline of the request waiting for its response head, and the
//! watchdog, which wakes at the connection's deadlines anyway, marks it overdue and wakes the
//! request. Arming it costs a compare-and-swap and a waker check; a tokio timer costs a lock,
//! a timer wheel insert and removal and a clock read. HTTP/2 requests, which run concurrently
//! on tasks of their own, keep a timer each.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::clock::millis;
use crate::conn::Conn;

/// The value of [`ResponseDeadline::at`] once the deadline passed.
const FIRED: u64 = u64::MAX;

#[derive(Default)]
pub(crate) struct ResponseDeadline {
    /// Clock ms by which the waiting request's response head is due; 0 when no request waits,
    /// [`FIRED`] once the watchdog found it overdue.
    at: AtomicU64,
    /// Woken when the deadline fires. Kept between requests, as it is the connection's task.
    waker: Mutex<Option<Waker>>,
}

impl ResponseDeadline {
    /// Called by the watchdog at clock ms `now`: fires an overdue deadline and wakes its
    /// request. Returns the deadline still to come, if any.
    pub(crate) fn check(&self, now: u64) -> Option<u64> {
        let at = self.at.load(Ordering::Acquire);
        if at == 0 || at == FIRED {
            return None;
        }
        if now < at {
            return Some(at);
        }
        if self
            .at
            .compare_exchange(at, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && let Some(waker) = &*self.waker()
        {
            waker.wake_by_ref();
        }
        None
    }

    /// Whether the deadline fired; if not, `cx` is woken when it does.
    fn poll_fired(&self, cx: &Context<'_>) -> bool {
        {
            let mut waker = self.waker();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        self.at.load(Ordering::Acquire) == FIRED
    }

    fn waker(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Frees the slot when the request got its response head, failed, or was dropped.
struct Claim<'a>(&'a ResponseDeadline);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.at.store(0, Ordering::Release);
    }
}

/// Awaits `future`, the wait for a response head of a request that arrived at `start`, for at
/// most the response timeout; `None` when that passed first.
pub(crate) async fn within_response_timeout<T>(
    conn: &Conn,
    start: Instant,
    h2: bool,
    future: impl Future<Output = T>,
) -> Option<T> {
    let gateway = &*conn.gateway;
    let timeout = gateway.config.response_timeout;
    let slot = &conn.response_deadline;
    let at = gateway.clock.ms_at(start).saturating_add(millis(timeout));
    let claimed = !h2
        && slot
            .at
            .compare_exchange(0, at, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
    if !claimed {
        return tokio::time::timeout_at((start + timeout).into(), future)
            .await
            .ok();
    }
    let _claim = Claim(slot);
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if slot.poll_fired(cx) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}
