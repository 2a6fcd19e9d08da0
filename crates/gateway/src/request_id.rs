//! Request IDs: a client's own ID is kept when it is sane, otherwise the gateway makes one from
//! a per-process random prefix and a per-thread counter (no shared counter on the request path).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use hyper::header::HeaderValue;

/// The longest client-supplied request ID that is passed on.
const MAX_LEN: usize = 200;

/// Whether a client's `X-Request-Id` is kept: 1 to 200 visible ASCII characters.
pub(crate) fn is_valid_request_id(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

/// Makes request IDs: 12 hex digits of process-wide randomness, then 12 of a counter.
pub(crate) struct RequestIds {
    prefix: [u8; 12],
}

/// Each thread takes a block of 2^32 counter values, so threads never share a counter.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTER: Cell<Option<u64>> = const { Cell::new(None) };
    /// IDs are cut from a shared buffer, so making one allocates only once per 170 or so.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

const ARENA_SIZE: usize = 4096;

const HEX: &[u8; 16] = b"0123456789abcdef";

impl RequestIds {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 6];
        if getrandom::fill(&mut seed).is_err() {
            // No entropy source: the clock and the process id still differ between runs.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mixed = nanos ^ (u64::from(std::process::id()) << 40);
            seed.copy_from_slice(&mixed.to_le_bytes()[..6]);
        }
        let mut prefix = [0u8; 12];
        for (i, byte) in seed.iter().enumerate() {
            prefix[2 * i] = HEX[usize::from(byte >> 4)];
            prefix[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        Self { prefix }
    }

    pub(crate) fn next(&self) -> HeaderValue {
        let n = COUNTER.with(|counter| {
            let n = counter
                .get()
                .unwrap_or_else(|| NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) << 32);
            counter.set(Some(n.wrapping_add(1)));
            n
        });
        let mut id = [0u8; 24];
        id[..12].copy_from_slice(&self.prefix);
        for (i, slot) in id[12..].iter_mut().enumerate() {
            let shift = 4 * (11 - i);
            *slot = HEX[((n >> shift) & 0xf) as usize];
        }
        let id: Bytes = ARENA.with_borrow_mut(|arena| {
            if arena.capacity() < id.len() {
                *arena = BytesMut::with_capacity(ARENA_SIZE);
            }
            arena.extend_from_slice(&id);
            arena.split().freeze()
        });
        HeaderValue::from_maybe_shared(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

#[cfg(test)]
mod tests {
    use super::{RequestIds, is_valid_request_id};
    use proptest::prelude::*;

    #[test]
    fn made_ids_are_valid_and_distinct() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(is_valid_request_id(a.as_bytes()));
        let other_thread = std::thread::spawn(move || ids.next()).join().unwrap();
        assert_ne!(other_thread, a);
        assert_ne!(other_thread, b);
    }

    #[test]
    fn ids_with_spaces_controls_or_too_long_are_refused() {
        assert!(is_valid_request_id(b"abc-123"));
        assert!(is_valid_request_id(&[b'x'; 200]));
        assert!(!is_valid_request_id(&[b'x'; 201]));
        assert!(!is_valid_request_id(b""));
        assert!(!is_valid_request_id(b"a b"));
        assert!(!is_valid_request_id(b"a\tb"));
        assert!(!is_valid_request_id("é".as_bytes()));
    }

    proptest! {
        #[test]
        fn validation_accepts_exactly_short_visible_ascii(raw in proptest::collection::vec(any::<u8>(), 0..260)) {
            let valid = is_valid_request_id(&raw);
            let expected = !raw.is_empty() && raw.len() <= 200 && raw.iter().all(|b| (0x21..=0x7e).contains(b));
            prop_assert_eq!(valid, expected);
        }

        #[test]
        fn validation_never_panics_on_strings(raw in "\\PC*") {
            let _ = is_valid_request_id(raw.as_bytes());
        }
    }
}
