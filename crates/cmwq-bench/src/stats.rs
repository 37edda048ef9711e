//! Percentiles and medians.

use serde::Serialize;

/// The `p`-th percentile (0..=100) of an ascending slice, nearest-rank method:
/// the smallest value such that at least `p` % of the samples are at or below it.
/// `None` for an empty slice.
///
/// # Panics
/// If `p` is not within 0..=100 (NaN included).
pub(crate) fn percentile_sorted<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    assert!((0.0..=100.0).contains(&p), "percentile {p} out of 0..=100");
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p/100 * n), 1-based, at least 1.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The median of unsorted values (the lower middle for an even count, like
/// [`percentile_sorted`] at 50). `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

/// [`median`] of counts (0 when empty).
pub(crate) fn median_usize(v: &[usize]) -> usize {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    median(&f).unwrap_or(0.0) as usize
}

/// The smallest and the largest value.
pub(crate) fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Latency {
    /// The percentiles of `samples` in ns (any order; all 0 when empty).
    pub fn of_ns(samples: &[u64]) -> Latency {
        let mut s = samples.to_vec();
        s.sort_unstable();
        let us = |p| percentile_sorted(&s, p).unwrap_or(0) as f64 / 1e3;
        Latency { p50_us: us(50.0), p90_us: us(90.0), p99_us: us(99.0), max_us: us(100.0) }
    }

    /// The median over runs of each percentile, and the largest maximum.
    pub fn median_of(runs: &[Latency]) -> Latency {
        let m = |f: fn(&Latency) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0);
        Latency {
            p50_us: m(|l| l.p50_us),
            p90_us: m(|l| l.p90_us),
            p99_us: m(|l| l.p99_us),
            max_us: runs.iter().map(|l| l.max_us).fold(0.0, f64::max),
        }
    }

    /// p50, p90, p99 and max, rounded to `decimals`, for a table row.
    pub(crate) fn cells(&self, decimals: usize) -> [String; 4] {
        [self.p50_us, self.p90_us, self.p99_us, self.max_us].map(|x| format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_sorted(&v, 0.0), Some(1));
        assert_eq!(percentile_sorted(&v, 1.0), Some(1));
        assert_eq!(percentile_sorted(&v, 50.0), Some(50));
        assert_eq!(percentile_sorted(&v, 90.0), Some(90));
        assert_eq!(percentile_sorted(&v, 99.0), Some(99));
        assert_eq!(percentile_sorted(&v, 99.5), Some(100));
        assert_eq!(percentile_sorted(&v, 100.0), Some(100));
        let e: [u64; 0] = [];
        assert_eq!(percentile_sorted(&e, 50.0), None);
        assert_eq!(percentile_sorted(&[7u64], 99.0), Some(7));
        // Small sets: p50 of 4 values is the 2nd, p99 the last.
        assert_eq!(percentile_sorted(&[10u64, 20, 30, 40], 50.0), Some(20));
        assert_eq!(percentile_sorted(&[10u64, 20, 30, 40], 99.0), Some(40));
    }

    #[test]
    #[should_panic]
    fn percentile_out_of_range() {
        let _ = percentile_sorted(&[1u64], 101.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median_usize(&[5, 1, 3]), 3);
        assert_eq!(median_usize(&[]), 0);
        assert_eq!(min_max(&[2.0, 1.0, 3.0]), (1.0, 3.0));
    }

    #[test]
    fn latency_percentiles() {
        let samples: Vec<u64> = (1..=100).rev().map(|x| x * 1000).collect();
        let l = Latency::of_ns(&samples);
        assert_eq!((l.p50_us, l.p90_us, l.p99_us, l.max_us), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Latency::of_ns(&[]), Latency::default());
        let m = Latency::median_of(&[l, Latency { max_us: 500.0, ..Latency::default() }, l]);
        assert_eq!((m.p50_us, m.max_us), (50.0, 500.0));
        assert_eq!(l.cells(1)[0], "50.0");
    }
}
