//! Order statistics of a set of timings, and how they are printed.

use std::time::Duration;

/// Median, 90th percentile, minimum and maximum of a non-empty set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub median: Duration,
    pub p90: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` for no timings. The median of an even count is the mean of the middle two; p90
    /// is the nearest rank (the smallest timing at least 90% of them do not exceed).
    pub fn of(timings: &[Duration]) -> Option<Self> {
        let mut sorted = timings.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        Some(Self {
            median,
            p90: sorted[(n * 9).div_ceil(10) - 1],
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// Milliseconds with one decimal, right-aligned in `width`.
pub fn ms(d: Duration, width: usize) -> String {
    format!("{:>width$.1}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn an_odd_count_has_its_middle_value_as_median() {
        let s = Summary::of(&millis(&[30, 10, 20])).unwrap();
        assert_eq!(s.median, Duration::from_millis(20));
        assert_eq!(
            (s.min, s.max),
            (Duration::from_millis(10), Duration::from_millis(30))
        );
    }

    #[test]
    fn an_even_count_has_the_mean_of_its_middle_values_as_median() {
        let s = Summary::of(&millis(&[40, 10, 20, 30])).unwrap();
        assert_eq!(s.median, Duration::from_millis(25));
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        let ten = Summary::of(&millis(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).unwrap();
        assert_eq!(ten.p90, Duration::from_millis(9));
        let eleven = Summary::of(&millis(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])).unwrap();
        assert_eq!(eleven.p90, Duration::from_millis(10));
        let one = Summary::of(&millis(&[7])).unwrap();
        assert_eq!(one.p90, Duration::from_millis(7));
    }

    #[test]
    fn no_timings_have_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }
}
