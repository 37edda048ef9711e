//! The CPU-hog report (`wq_cpu_intensive_report`): each time an item of a
//! workqueue is found on the CPU past `cpu_intensive_thresh`, its count goes up;
//! from the warning threshold on, the count is logged with exponential back-off.

use std::collections::HashMap;
use std::time::Duration;

use crate::platform::log;

/// `WCI_MAX_ENTS`: at most this many distinct workqueues are tracked.
const MAX_ENTRIES: usize = 128;

/// Counts per workqueue name (the kernel keys by work function; a Rust closure
/// has no name worth printing, so the workqueue stands in for it).
#[derive(Debug, Default)]
pub(super) struct HogTable {
    counts: HashMap<String, u64>,
}

/// Whether the `cnt`-th occurrence is reported: from `warn_thresh` on, at
/// `warn_thresh`, +1, +3, +7, … (`is_power_of_2(cnt + 1 - thresh)`); 0 never.
pub(super) fn should_report(cnt: u64, warn_thresh: u64) -> bool {
    warn_thresh != 0 && cnt >= warn_thresh && (cnt + 1 - warn_thresh).is_power_of_two()
}

impl HogTable {
    /// Counts one occurrence for `wq` and logs it when [`should_report`] says so.
    /// Returns the count (0 once the table is full and `wq` is not in it).
    pub(super) fn report(&mut self, wq: &str, thresh: Duration, warn_thresh: u64) -> u64 {
        if !self.counts.contains_key(wq) && self.counts.len() >= MAX_ENTRIES {
            return 0;
        }
        let cnt = self.counts.entry(wq.to_string()).or_default();
        *cnt += 1;
        let cnt = *cnt;
        if should_report(cnt, warn_thresh) {
            log::warn!(
                workqueue = wq,
                thresh_us = u64::try_from(thresh.as_micros()).unwrap_or(u64::MAX),
                times = cnt,
                "workqueue: an item hogged the CPU past the threshold, consider switching to WQ_UNBOUND"
            );
        }
        cnt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_back_off_exponentially_like_the_kernel() {
        let reported: Vec<u64> = (1..=40).filter(|&c| should_report(c, 4)).collect();
        assert_eq!(reported, vec![4, 5, 7, 11, 19, 35]);
        assert!((1..100).all(|c| !should_report(c, 0)), "0 disables the report");
        let reported: Vec<u64> = (1..=10).filter(|&c| should_report(c, 1)).collect();
        assert_eq!(reported, vec![1, 2, 4, 8]);
    }

    #[test]
    fn counts_per_workqueue_and_caps_the_table() {
        let mut t = HogTable::default();
        let d = Duration::from_millis(10);
        assert_eq!(t.report("a", d, 4), 1);
        assert_eq!(t.report("a", d, 4), 2);
        assert_eq!(t.report("b", d, 4), 1);
        for i in 0..200 {
            t.report(&format!("q{i}"), d, 4);
        }
        assert_eq!(t.counts.len(), MAX_ENTRIES);
        assert_eq!(t.report("new", d, 4), 0, "a full table tracks no new queue");
        assert_eq!(t.report("a", d, 4), 3, "known queues still count");
    }
}
