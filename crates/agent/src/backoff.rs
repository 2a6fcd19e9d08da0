//! Restart backoff for crashed instances: 0.1 s doubling to 30 s, forgotten after a minute of
//! healthy running.

use std::time::Duration;

/// First delay after a crash.
pub const INITIAL: Duration = Duration::from_millis(100);
/// Longest delay between restarts of a crash-looping instance.
pub const MAX: Duration = Duration::from_secs(30);
/// An instance that ran this long without crashing starts again from `INITIAL`.
pub const RESET_AFTER: Duration = Duration::from_secs(60);

/// The delay before restart number `restarts + 1` of an instance that keeps crashing.
pub fn delay(consecutive_crashes: u32) -> Duration {
    // 0.1 s × 2^(n-1), computed without overflow for any n.
    let doublings = consecutive_crashes.saturating_sub(1).min(16);
    INITIAL.saturating_mul(1 << doublings).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_a_tenth_of_a_second_up_to_thirty_seconds() {
        let delays: Vec<u128> = (1..=11).map(|n| delay(n).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        assert_eq!(delay(u32::MAX), MAX);
        assert_eq!(delay(0), INITIAL);
    }
}
