//! The pool report: which of cmwq's worker pools served a workload, their pods
//! and their peak workers.
//!
//! Pools live for the whole process, so a workload's pools are those whose
//! `completed` count grew while it ran ([`cmwq::debug::pools`] before and after).
//! Within noop and mixed, each cmwq executor's runs are diffed alone, so that
//! every pool line names the executors it served. `peak_workers` is the pool's
//! high-water mark since it was created; the report gives it before and after
//! the workload.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::executors::ExecutorKind;
use crate::fmt::cpu_list;

/// The part of a [`cmwq::debug::PoolSnapshot`] the report reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolState {
    pub(crate) id: u32,
    pub(crate) cpu: Option<usize>,
    pub(crate) highpri: bool,
    pub(crate) bh: bool,
    pub(crate) pod: Vec<usize>,
    pub(crate) nice: i32,
    pub(crate) concurrency: usize,
    pub(crate) peak_workers: usize,
    pub(crate) completed: u64,
}

impl From<&cmwq::debug::PoolSnapshot> for PoolState {
    fn from(p: &cmwq::debug::PoolSnapshot) -> PoolState {
        PoolState {
            id: p.id,
            cpu: p.cpu,
            highpri: p.highpri,
            bh: p.bh,
            pod: p.pod.clone(),
            nice: p.nice,
            concurrency: p.concurrency,
            peak_workers: p.peak_workers,
            completed: p.completed,
        }
    }
}

/// Every pool now.
pub(crate) fn snapshot() -> Vec<PoolState> {
    cmwq::debug::pools().iter().map(PoolState::from).collect()
}

/// The pools of `after` that completed items since `before`, with the items
/// (a pool missing from `before` was created since: all its items count).
pub(crate) fn completed_since<'a>(before: &[PoolState], after: &'a [PoolState]) -> Vec<(&'a PoolState, u64)> {
    after
        .iter()
        .filter_map(|a| {
            let was = before.iter().find(|b| b.id == a.id).map_or(0, |b| b.completed);
            let n = a.completed.saturating_sub(was);
            (n > 0).then_some((a, n))
        })
        .collect()
}

/// One pool that completed items during a workload (one producer mode of it,
/// for noop and mixed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolUse {
    /// The workload.
    pub workload: String,
    /// The producers (`1 unpinned producer`, ...) for noop and mixed; `None`
    /// for the workloads that have one way of submitting.
    pub producers: Option<String>,
    /// The pool id.
    pub pool: u32,
    /// The CPU of a per-CPU pool; `None` for an unbound one.
    pub cpu: Option<usize>,
    /// A highpri pool.
    pub highpri: bool,
    /// A BH pool (one context per CPU, `WqFlags::BH`).
    pub bh: bool,
    /// The CPUs of its pod.
    pub pod: Vec<usize>,
    /// Its workers' nice value.
    pub nice: i32,
    /// How many items it lets run at once.
    pub concurrency: usize,
    /// Items it completed during the workload (warm-ups included).
    pub completed: u64,
    /// The most workers it had at once, since it was created, after the workload.
    pub peak_workers: usize,
    /// The same before the workload (0 for a pool created during it).
    pub peak_workers_before: usize,
    /// The executors whose runs it completed items for (noop and mixed).
    pub executors: Vec<String>,
}

impl PoolUse {
    /// The pool in one line: what it is, its items, its peak workers, who used it.
    pub fn line(&self) -> String {
        let what = match self.cpu {
            Some(c) if self.pod == [c] => format!("CPU {c}"),
            Some(c) => format!("CPU {c}, pod {}", cpu_list(&self.pod)),
            None => format!("unbound, pod {}", cpu_list(&self.pod)),
        };
        let hi = match (self.bh, self.highpri) {
            (true, true) => " BH highpri",
            (true, false) => " BH",
            (false, true) => " highpri",
            (false, false) => "",
        };
        let peak = if self.peak_workers > self.peak_workers_before {
            format!("peak workers {} ({} before)", self.peak_workers, self.peak_workers_before)
        } else {
            format!("peak workers {} (unchanged)", self.peak_workers)
        };
        let by = if self.executors.is_empty() {
            String::new()
        } else {
            format!("; {}", self.executors.join(", "))
        };
        format!(
            "pool {} ({what}{hi}, nice {}, {} at once): {} items, {peak}{by}",
            self.pool, self.nice, self.concurrency, self.completed
        )
    }
}

/// The pools a workload used, counted from its start.
#[derive(Debug)]
pub(crate) struct PoolTally {
    start: Vec<PoolState>,
    /// Per pool id, the executors it served.
    by: BTreeMap<u32, Vec<String>>,
}

impl PoolTally {
    /// A tally from the pools as they are now.
    pub(crate) fn start() -> PoolTally {
        PoolTally::from_states(snapshot())
    }

    pub(crate) fn from_states(start: Vec<PoolState>) -> PoolTally {
        PoolTally { start, by: BTreeMap::new() }
    }

    /// Records `executor` as a user of the pools that completed items between
    /// `before` and `after`.
    pub(crate) fn attribute(&mut self, executor: &str, before: &[PoolState], after: &[PoolState]) {
        for (p, _) in completed_since(before, after) {
            let v = self.by.entry(p.id).or_default();
            if !v.iter().any(|e| e == executor) {
                v.push(executor.to_string());
            }
        }
    }

    /// The pools that completed items since the start, as of `end`; each
    /// names its executors in table order.
    pub(crate) fn finish(self, workload: &str, producers: Option<&str>, end: &[PoolState]) -> Vec<PoolUse> {
        completed_since(&self.start, end)
            .into_iter()
            .map(|(p, n)| PoolUse {
                workload: workload.into(),
                producers: producers.map(Into::into),
                pool: p.id,
                cpu: p.cpu,
                highpri: p.highpri,
                bh: p.bh,
                pod: p.pod.clone(),
                nice: p.nice,
                concurrency: p.concurrency,
                completed: n,
                peak_workers: p.peak_workers,
                peak_workers_before: self.start.iter().find(|b| b.id == p.id).map_or(0, |b| b.peak_workers),
                executors: {
                    let mut v = self.by.get(&p.id).cloned().unwrap_or_default();
                    v.sort_by_key(|e| ExecutorKind::ALL.iter().position(|k| k.name() == e));
                    v
                },
            })
            .collect()
    }
}

/// The heading of one group of pool lines: `noop, 1 unpinned producer: 2 pools`.
fn heading(workload: &str, producers: Option<&str>, n: usize) -> String {
    let what = producers.map_or_else(|| workload.to_string(), |p| format!("{workload}, {p}"));
    format!("{what}: {n} pool{}", if n == 1 { "" } else { "s" })
}

/// The groups of `uses` for `workload`, in order: (producers, pools).
fn groups<'a>(uses: &'a [PoolUse], workload: &str) -> Vec<(Option<&'a str>, Vec<&'a PoolUse>)> {
    let mut v: Vec<(Option<&str>, Vec<&PoolUse>)> = Vec::new();
    for u in uses.iter().filter(|u| u.workload == workload) {
        let p = u.producers.as_deref();
        match v.iter_mut().find(|g| g.0 == p) {
            Some(g) => g.1.push(u),
            None => v.push((p, vec![u])),
        }
    }
    v
}

/// Progress lines for one group: its heading, then one line per pool.
pub(crate) fn progress(uses: &[PoolUse]) -> Vec<String> {
    let Some(first) = uses.first() else { return Vec::new() };
    let mut v = vec![heading(&first.workload, first.producers.as_deref(), uses.len())];
    v.extend(uses.iter().map(|u| format!("  {}", u.line())));
    v
}

/// The markdown of `workload`'s pools: per producer mode a heading and one
/// bullet per pool. Empty when it used none.
pub(crate) fn markdown(uses: &[PoolUse], workload: &str) -> String {
    let gs = groups(uses, workload);
    if gs.is_empty() {
        return String::new();
    }
    let mut s = format!("### {workload}: cmwq's pools\n\n");
    for (p, us) in gs {
        s += &format!("{}\n\n", heading(workload, p, us.len()));
        for u in us {
            s += &format!("- {}\n", u.line());
        }
        s += "\n";
    }
    s += "Pools that completed items during the workload (`cmwq::debug::pools()` before and after). \
          `at once`: the items a pool lets run before a blocked one must hand its CPU on; peak workers: \
          the pool's high-water mark since it was created (pools live for the process), after the workload \
          and before it.\n\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: u32, cpu: Option<usize>, pod: &[usize], peak: usize, completed: u64) -> PoolState {
        PoolState {
            id,
            cpu,
            highpri: false,
            bh: false,
            pod: pod.to_vec(),
            nice: 0,
            concurrency: pod.len(),
            peak_workers: peak,
            completed,
        }
    }

    #[test]
    fn diff_keeps_only_pools_that_completed_items() {
        let before = [st(0, Some(0), &[0], 2, 100), st(1, Some(1), &[1], 3, 50)];
        let after = [
            st(0, Some(0), &[0], 2, 100), // idle throughout
            st(1, Some(1), &[1], 5, 80),  // 30 items
            st(7, None, &[0, 1], 4, 12),  // created during the workload
        ];
        let d: Vec<(u32, u64)> = completed_since(&before, &after).iter().map(|(p, n)| (p.id, *n)).collect();
        assert_eq!(d, [(1, 30), (7, 12)]);
        // A counter that went backwards (cannot happen; a reused id would) counts nothing.
        assert!(completed_since(&after, &before).is_empty());
    }

    #[test]
    fn tally_attributes_pools_to_executors() {
        let s0 = vec![st(0, Some(0), &[0], 1, 10), st(1, Some(1), &[1], 1, 10)];
        let mut t = PoolTally::from_states(s0.clone());
        let s1 = vec![st(0, Some(0), &[0], 4, 30), st(1, Some(1), &[1], 1, 10)];
        t.attribute("cmwq-bound", &s0, &s1);
        let s2 = vec![st(0, Some(0), &[0], 4, 30), st(1, Some(1), &[1], 1, 10), st(5, None, &[0, 1], 6, 40)];
        t.attribute("cmwq-unbound", &s1, &s2);
        t.attribute("cmwq-default", &s1, &s2); // named in table order, not as attributed
        t.attribute("cmwq-bound", &s1, &s1); // a run that completed nothing names no pool
        let s3 = vec![st(0, Some(0), &[0], 4, 35), st(1, Some(1), &[1], 1, 10), st(5, None, &[0, 1], 6, 40)];
        t.attribute("cmwq-bound", &s2, &s3); // named once per pool
        let uses = t.finish("mixed", Some("1 unpinned producer"), &s3);
        let got: Vec<(u32, u64, usize, usize, Vec<String>)> = uses
            .iter()
            .map(|u| (u.pool, u.completed, u.peak_workers_before, u.peak_workers, u.executors.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 25, 1, 4, vec!["cmwq-bound".to_string()]),
                (5, 40, 0, 6, vec!["cmwq-default".to_string(), "cmwq-unbound".to_string()])
            ]
        );
        assert!(uses
            .iter()
            .all(|u| u.workload == "mixed" && u.producers.as_deref() == Some("1 unpinned producer")));
        assert!(PoolTally::from_states(s3.clone()).finish("noop", None, &s3).is_empty());
    }

    fn use_of(pool: u32, cpu: Option<usize>, pod: &[usize], producers: Option<&str>) -> PoolUse {
        PoolUse {
            workload: "mixed".into(),
            producers: producers.map(Into::into),
            pool,
            cpu,
            highpri: false,
            bh: false,
            pod: pod.to_vec(),
            nice: 0,
            concurrency: pod.len(),
            completed: 480,
            peak_workers: 9,
            peak_workers_before: 3,
            executors: vec!["cmwq-default".into(), "cmwq-default-plain".into()],
        }
    }

    #[test]
    fn lines_and_markdown() {
        let u = use_of(4, None, &[0, 1, 2, 3], Some("1 unpinned producer"));
        assert_eq!(
            u.line(),
            "pool 4 (unbound, pod 0-3, nice 0, 4 at once): 480 items, peak workers 9 (3 before); \
             cmwq-default, cmwq-default-plain"
        );
        let mut c = use_of(0, Some(1), &[1], None);
        (c.highpri, c.nice, c.peak_workers_before, c.executors) = (true, -20, 9, Vec::new());
        assert_eq!(
            c.line(),
            "pool 0 (CPU 1 highpri, nice -20, 1 at once): 480 items, peak workers 9 (unchanged)"
        );
        let uses = [
            use_of(0, Some(0), &[0], Some("1 pinned producer per CPU")),
            use_of(4, None, &[0, 1], Some("1 unpinned producer")),
            use_of(1, Some(1), &[1], Some("1 pinned producer per CPU")),
        ];
        let md = markdown(&uses, "mixed");
        assert!(md.starts_with(
            "### mixed: cmwq's pools\n\nmixed, 1 pinned producer per CPU: 2 pools\n\n- pool 0 (CPU 0,"
        ));
        assert!(md.contains("\n\nmixed, 1 unpinned producer: 1 pool\n\n- pool 4 (unbound, pod 0-1,"));
        assert_eq!(markdown(&uses, "noop"), "", "no pools: no section");
        let p = progress(&uses[1..2]);
        assert_eq!(p[0], "mixed, 1 unpinned producer: 1 pool");
        assert!(p[1].starts_with("  pool 4 (unbound"));
        assert!(progress(&[]).is_empty());
    }
}
