//! The run context the workloads share: sizes, CPUs, producers, the thread
//! sampler, the executors and producer modes selected, and the steps every
//! workload repeats (a fresh executor, a timed batch, the exactly-once check,
//! thread accounting, the pools used).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::Error;
use crate::executors::{rayon_global_threads, Batch, Executor, ExecutorInfo, ExecutorKind, Job};
use crate::pools::{self, PoolState, PoolTally, PoolUse};
use crate::procfs::{self, CpuAccount, Peaks, Sampler};
use crate::producers::{Feed, ProducerMode, Producers};
use crate::sync::now_ns;

/// Makes job `i` of a batch.
pub(crate) type MakeJob = Arc<dyn Fn(usize, &Batch) -> Job + Send + Sync>;

/// State shared by the workloads.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) cpus: Vec<usize>,
    pub(crate) producers: Producers,
    pub(crate) sampler: Sampler,
    pub(crate) kinds: Vec<ExecutorKind>,
    /// The producer modes selected (noop and mixed run each).
    pub(crate) modes: Vec<ProducerMode>,
    pub(crate) infos: Vec<ExecutorInfo>,
    /// The pools each workload used, for the report.
    pub(crate) pools: Vec<PoolUse>,
    /// Invariant failures, for the report.
    pub(crate) notes: Vec<String>,
    pub(crate) started: Instant,
    pub(crate) progress: &'a mut dyn FnMut(&str),
}

impl Ctx<'_> {
    /// One progress line, stamped with the time since the start.
    pub(crate) fn say(&mut self, msg: &str) {
        let line = format!("[{:6.1}s] {msg}", self.started.elapsed().as_secs_f64());
        (self.progress)(&line);
    }

    pub(crate) fn cores(&self) -> usize {
        self.cpus.len()
    }

    /// The measured rounds: every executor gets one run per round, so that slow
    /// phases of a shared machine hit all of them alike.
    pub(crate) fn rounds(&self) -> usize {
        self.cfg.runs.max(1)
    }

    /// The selected executors whose jobs do not block differently (for the
    /// workloads whose jobs never block).
    pub(crate) fn non_blocking_kinds(&self) -> Vec<ExecutorKind> {
        self.kinds.iter().copied().filter(|k| !k.only_differs_in_blocking()).collect()
    }

    /// Before an executor's batch: cmwq's idle workers retired, the thread count
    /// settled. Returns the threads that belong to no executor.
    pub(crate) fn prepare(&self) -> usize {
        retire_cmwq_workers();
        let t = procfs::settled_threads(Duration::from_millis(300));
        t.saturating_sub(cmwq::debug::nr_workers() + rayon_global_threads())
    }

    /// The executor's threads at the peaks of a sampling window.
    pub(crate) fn threads_of(&self, kind: ExecutorKind, peaks: Peaks, other: usize) -> usize {
        executor_threads(kind, peaks, other, rayon_global_threads())
    }

    /// Creates an executor and records its settings.
    pub(crate) fn build(&mut self, kind: ExecutorKind) -> Result<Arc<dyn Executor>, Error> {
        let e: Arc<dyn Executor> = Arc::from(kind.build(&self.cpus)?);
        if !self.infos.iter().any(|i| i.name == e.name()) {
            self.infos.push(ExecutorInfo { name: e.name().to_string(), settings: e.settings() });
        }
        Ok(e)
    }

    /// The feeds of the selected producer modes, in order (see
    /// [`ProducerMode::feeds`]).
    pub(crate) fn feeds(&self, single_pinned: bool) -> Vec<Feed> {
        self.modes.iter().flat_map(|m| m.feeds(self.cores(), single_pinned)).collect()
    }

    /// The pools now, if `kind` is a cmwq executor (the others use none).
    pub(crate) fn pools_before(&self, kind: ExecutorKind) -> Option<Vec<PoolState>> {
        kind.is_cmwq().then(pools::snapshot)
    }

    /// Names `kind` as a user of the pools that completed items since `before`
    /// (from [`pools_before`](Self::pools_before)). Call once its executor is
    /// dropped: destroying the queue drained it.
    pub(crate) fn pools_after(
        &self,
        tally: &mut PoolTally,
        kind: ExecutorKind,
        before: Option<Vec<PoolState>>,
    ) {
        if let Some(before) = before {
            tally.attribute(kind.name(), &before, &pools::snapshot());
        }
    }

    /// Closes a tally: its pools go to the report, one progress line each.
    pub(crate) fn pools_done(&mut self, tally: PoolTally, workload: &str, producers: Option<&str>) {
        let uses = tally.finish(workload, producers, &pools::snapshot());
        for line in pools::progress(&uses) {
            self.say(&format!("[pools] {line}"));
        }
        self.pools.extend(uses);
    }

    /// Runs `items` jobs made by `make`, submitted by the producers of `feed`
    /// (each its share), and waits for them. Returns the batch and the time
    /// from the first submission until the last job finished (ns).
    pub(crate) fn timed_batch(
        &self,
        exec: &Arc<dyn Executor>,
        feed: Feed,
        items: usize,
        make: MakeJob,
        timeout: Duration,
    ) -> Result<(Batch, u64), Error> {
        let batch = Batch::new(items);
        let err: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let per = items.div_ceil(feed.count());
        let f = {
            let (batch, exec, err) = (batch.clone(), exec.clone(), err.clone());
            Arc::new(move |p: usize| {
                let lo = (p * per).min(items);
                for i in lo..(lo + per).min(items) {
                    if let Err(e) = exec.spawn(make(i, &batch)) {
                        *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        return;
                    }
                }
            })
        };
        let t0 = now_ns();
        self.producers.run(feed, f);
        if let Some(e) = err.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        batch.wait(exec.name(), timeout)?;
        let el = batch.end_ns().saturating_sub(t0);
        Ok((batch, el))
    }

    /// Checks batches once their executor is gone (so a late duplicate run
    /// would be seen too). Returns whether all ran exactly once, and records
    /// a note otherwise.
    pub(crate) fn exactly_once(&mut self, what: &str, batches: &[Batch]) -> bool {
        for b in batches {
            if let Err(e) = b.check_exactly_once(what) {
                self.say(&format!("ERROR: {e}"));
                self.notes.push(format!("INVARIANT BROKEN: {e}"));
                return false;
            }
        }
        true
    }
}

/// The order in which round `round` (from 1) runs `n` executors: the table
/// order rotated by one more place each round, so that every executor runs
/// first (after the previous workload or ratio) as often as any other. The
/// cyclic order stays: each executor still follows the same one, but for the
/// first of a round.
pub(crate) fn round_order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    let first = if n == 0 { 0 } else { round.saturating_sub(1) % n };
    (0..n).map(move |i| (first + i) % n)
}

/// Per-executor results collected across the interleaved rounds.
#[derive(Default)]
pub(crate) struct Cell {
    pub(crate) values: Vec<f64>,
    pub(crate) threads: Vec<usize>,
    pub(crate) blocked: Vec<usize>,
    /// Per run: the sum over CPUs of each CPU's peak of blocked items.
    pub(crate) blocked_per_cpu: Vec<usize>,
    pub(crate) samples: Vec<u64>,
    pub(crate) batches: Vec<Batch>,
    pub(crate) acct: CpuAccount,
}

/// How an executor's threads are told apart from the others in `Threads:`.
///
/// `other` is the count of threads that belong to no executor (harness, host),
/// taken before the executor was created; cmwq's workers and rayon's global pool
/// live for the process and are subtracted live when they are not the executor
/// under test. Everything else an executor starts dies with its adapter.
pub(crate) fn executor_threads(kind: ExecutorKind, peaks: Peaks, other: usize, rayon_now: usize) -> usize {
    match kind {
        k if k.is_cmwq() => peaks.all.saturating_sub(other + rayon_now),
        ExecutorKind::Rayon => peaks.non_cmwq.saturating_sub(other),
        _ => peaks.non_cmwq.saturating_sub(other + rayon_now),
    }
}

/// Lets cmwq's idle workers exit (idle timeout lowered to 1 ms until none is
/// left, at most 5 s, then restored), so that every executor starts without
/// threads left by the one before.
pub(crate) fn retire_cmwq_workers() {
    if cmwq::debug::nr_workers() == 0 {
        return;
    }
    let prev = cmwq::idle_timeout();
    cmwq::set_idle_timeout(Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while cmwq::debug::nr_workers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    cmwq::set_idle_timeout(prev);
}

/// Items of the warm-up run that precedes each measured run (a quarter of the
/// run, at least one; none if `cfg.warmup` is off).
pub(crate) fn warmup_items(cfg: &Config, items: usize) -> usize {
    if cfg.warmup {
        (items / 4).max(1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_one_executor_later() {
        let order = |round| round_order(4, round).collect::<Vec<_>>();
        assert_eq!(order(1), [0, 1, 2, 3]);
        assert_eq!(order(2), [1, 2, 3, 0]);
        assert_eq!(order(5), [0, 1, 2, 3]);
        assert_eq!(round_order(0, 3).count(), 0);
    }

    #[test]
    fn thread_accounting() {
        let p = Peaks { all: 20, non_cmwq: 12 };
        // cmwq: everything but the others and rayon's pool.
        assert_eq!(executor_threads(ExecutorKind::CmwqBound, p, 5, 2), 13);
        // rayon: its own pool counts, cmwq's live workers do not.
        assert_eq!(executor_threads(ExecutorKind::Rayon, p, 5, 2), 7);
        // others: neither.
        assert_eq!(executor_threads(ExecutorKind::TokioBlocking, p, 5, 2), 5);
        assert_eq!(executor_threads(ExecutorKind::MtWq, p, 50, 2), 0);
    }

    #[test]
    fn warmups() {
        assert_eq!(warmup_items(&Config::full(), 600), 150);
        assert_eq!(warmup_items(&Config::full(), 2), 1);
        assert_eq!(warmup_items(&Config::tiny(), 600), 0);
    }
}
