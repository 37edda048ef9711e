//! The executors compared by the harness, behind one [`Executor`] trait.
//!
//! Every adapter uses its peer's defaults; [`Executor::settings`] says which.
//! Jobs are boxed closures; completion is tracked by the caller with a
//! [`Batch`], which also checks that every job ran exactly once.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cmwq::{Workqueue, WqFlags};
use crossbeam_channel::{Receiver, Sender};

use crate::cpu::pin_current_thread;
use crate::error::Error;
use crate::sync::{now_ns, CountLatch};

/// A unit of work handed to an executor.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// How a job running on an executor blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// Announced to cmwq: `cmwq::sleep` (`cmwq::blocking`). The per-CPU pool
    /// starts another worker while the job sleeps.
    Announced,
    /// A plain `std::thread::sleep`: the executor is not told.
    Plain,
}

impl Blocking {
    /// Blocks the calling thread for `d` this way.
    pub(crate) fn block(self, d: Duration) {
        match self {
            Blocking::Announced => cmwq::sleep(d),
            Blocking::Plain => std::thread::sleep(d),
        }
    }

    /// `"announced"` or `"plain"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Blocking::Announced => "announced",
            Blocking::Plain => "plain",
        }
    }
}

/// An executor under test.
pub trait Executor: Send + Sync {
    /// A short, stable name (used in tables, JSON and `--only`).
    fn name(&self) -> &str;

    /// The settings in use, in words (all defaults of the peer).
    fn settings(&self) -> String;

    /// Hands `job` over for execution.
    ///
    /// # Errors
    /// The executor refused the job (for example a destroyed workqueue).
    fn spawn(&self, job: Job) -> Result<(), Error>;
}

/// An executor's settings as reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExecutorInfo {
    /// Name.
    pub name: String,
    /// Settings in words.
    pub settings: String,
}

impl std::fmt::Debug for dyn Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("name", &self.name()).finish()
    }
}

// ---------------------------------------------------------------------------
// Batch: completion and the exactly-once invariant
// ---------------------------------------------------------------------------

/// A batch of `n` jobs: each marks its index as run and counts a latch down. The
/// thread that created the batch waits on it.
#[derive(Debug, Clone)]
pub(crate) struct Batch(Arc<BatchState>);

#[derive(Debug)]
struct BatchState {
    ran: Box<[AtomicU32]>,
    latch: CountLatch,
    /// `now_ns()` when the last job counted down (0 before).
    end_ns: AtomicU64,
}

impl Batch {
    /// A batch of `n` jobs, to be waited on by the calling thread.
    pub(crate) fn new(n: usize) -> Batch {
        let latch = CountLatch::new();
        latch.reset(n);
        Batch(Arc::new(BatchState {
            ran: (0..n).map(|_| AtomicU32::new(0)).collect(),
            latch,
            end_ns: AtomicU64::new(0),
        }))
    }

    /// Marks job `i` as run (call once at its end).
    #[inline]
    pub(crate) fn done(&self, i: usize) {
        self.0.ran[i].fetch_add(1, Ordering::AcqRel);
        // Only the last job reads the clock: a clock read per job would add the
        // same ~25 ns to every executor and hide their differences.
        self.0.latch.count_down_then(|| self.0.end_ns.store(now_ns().max(1), Ordering::Release));
    }

    /// [`now_ns`] when the last job finished, once [`wait`](Self::wait)
    /// returned `Ok` (the last job stores it right after its count-down).
    pub(crate) fn end_ns(&self) -> u64 {
        for i in 0..100_000u32 {
            let t = self.0.end_ns.load(Ordering::Acquire);
            if t != 0 {
                return t;
            }
            if i > 100 {
                std::thread::yield_now();
            }
        }
        now_ns()
    }

    /// Waits until every job counted down, at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] with the number still outstanding.
    pub(crate) fn wait(&self, what: &str, timeout: Duration) -> Result<(), Error> {
        if self.0.latch.wait_timeout(timeout) {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "{what}: {} of {} items still outstanding after {timeout:?}",
                self.0.latch.remaining(),
                self.0.ran.len()
            )))
        }
    }

    /// How many jobs ran 0, 1 and more than 1 times.
    fn run_counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in self.0.ran.iter() {
            match r.load(Ordering::Acquire) {
                0 => c.0 += 1,
                1 => c.1 += 1,
                _ => c.2 += 1,
            }
        }
        c
    }

    /// Checks that every job ran exactly once.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming how many never ran or ran more than once.
    pub(crate) fn check_exactly_once(&self, what: &str) -> Result<(), Error> {
        match self.run_counts() {
            (0, _, 0) => Ok(()),
            (never, _, more) => Err(Error::Invariant(format!(
                "{what}: of {} items, {never} never ran and {more} ran more than once",
                self.0.ran.len()
            ))),
        }
    }
}

// ---------------------------------------------------------------------------
// The executor kinds
// ---------------------------------------------------------------------------

/// The executors the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutorKind {
    /// cmwq's default workqueue, `Workqueue::builder(..).build()` with no flags
    /// (whatever the library's default is); jobs block through `cmwq::sleep`.
    CmwqDefault,
    /// The same default workqueue, with jobs that block through plain
    /// `std::thread::sleep` (not announced).
    CmwqDefaultPlain,
    /// A per-CPU (bound) cmwq workqueue, `WqFlags::PERCPU`; jobs block through
    /// `cmwq::sleep`.
    CmwqBound,
    /// The same per-CPU workqueue, with jobs that block through plain
    /// `std::thread::sleep` (not announced).
    CmwqBoundPlain,
    /// An `UNBOUND` cmwq workqueue.
    CmwqUnbound,
    /// `rayon::spawn` on rayon's global pool.
    Rayon,
    /// `spawn_blocking` on a default tokio multi-thread runtime.
    TokioBlocking,
    /// One thread per CPU fed by one crossbeam channel.
    FixedPool,
    /// `std::thread::spawn` per item.
    ThreadPerItem,
    /// The pre-cmwq kernel multi-threaded workqueue: one dedicated thread per CPU
    /// per queue, each with its own list; items run on the submitting CPU's thread.
    MtWq,
}

impl ExecutorKind {
    /// Every kind, in table order.
    pub const ALL: [ExecutorKind; 10] = [
        ExecutorKind::CmwqDefault,
        ExecutorKind::CmwqDefaultPlain,
        ExecutorKind::CmwqBound,
        ExecutorKind::CmwqBoundPlain,
        ExecutorKind::CmwqUnbound,
        ExecutorKind::Rayon,
        ExecutorKind::TokioBlocking,
        ExecutorKind::FixedPool,
        ExecutorKind::ThreadPerItem,
        ExecutorKind::MtWq,
    ];

    /// The name used in output and in `--only`.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::CmwqDefault => "cmwq-default",
            ExecutorKind::CmwqDefaultPlain => "cmwq-default-plain",
            ExecutorKind::CmwqBound => "cmwq-bound",
            ExecutorKind::CmwqBoundPlain => "cmwq-bound-plain",
            ExecutorKind::CmwqUnbound => "cmwq-unbound",
            ExecutorKind::Rayon => "rayon",
            ExecutorKind::TokioBlocking => "tokio-blocking",
            ExecutorKind::FixedPool => "fixed-pool",
            ExecutorKind::ThreadPerItem => "thread-per-item",
            ExecutorKind::MtWq => "mt-wq",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<ExecutorKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this kind differs from another only in how its jobs block (so
    /// workloads that never block skip it).
    pub fn only_differs_in_blocking(self) -> bool {
        matches!(self, ExecutorKind::CmwqDefaultPlain | ExecutorKind::CmwqBoundPlain)
    }

    /// The kind whose jobs block announced where this one's block plain
    /// (`cmwq-bound` for `cmwq-bound-plain`), if this is such a twin.
    pub fn announced_twin(self) -> Option<ExecutorKind> {
        match self {
            ExecutorKind::CmwqDefaultPlain => Some(ExecutorKind::CmwqDefault),
            ExecutorKind::CmwqBoundPlain => Some(ExecutorKind::CmwqBound),
            _ => None,
        }
    }

    /// How jobs on this kind block: announced on the cmwq kinds but the
    /// `-plain` ones, plain everywhere else.
    pub(crate) fn blocking(self) -> Blocking {
        match self {
            ExecutorKind::CmwqDefault | ExecutorKind::CmwqBound | ExecutorKind::CmwqUnbound => {
                Blocking::Announced
            }
            _ => Blocking::Plain,
        }
    }

    /// Whether this is one of the cmwq kinds.
    pub fn is_cmwq(self) -> bool {
        matches!(
            self,
            ExecutorKind::CmwqDefault
                | ExecutorKind::CmwqDefaultPlain
                | ExecutorKind::CmwqBound
                | ExecutorKind::CmwqBoundPlain
                | ExecutorKind::CmwqUnbound
        )
    }

    /// Creates the executor (threads of per-adapter executors start here).
    ///
    /// # Errors
    /// The executor could not be created.
    pub fn build(self, cpus: &[usize]) -> Result<Box<dyn Executor>, Error> {
        Ok(match self {
            ExecutorKind::CmwqDefault | ExecutorKind::CmwqDefaultPlain => {
                Box::new(CmwqExec::new(self, None)?)
            }
            ExecutorKind::CmwqBound | ExecutorKind::CmwqBoundPlain => {
                Box::new(CmwqExec::new(self, Some(WqFlags::PERCPU))?)
            }
            ExecutorKind::CmwqUnbound => Box::new(CmwqExec::new(self, Some(WqFlags::UNBOUND))?),
            ExecutorKind::Rayon => Box::new(RayonExec),
            ExecutorKind::TokioBlocking => Box::new(TokioExec::new()?),
            ExecutorKind::FixedPool => Box::new(FixedPool::new(cpus.len(), "fixed-pool")?),
            ExecutorKind::ThreadPerItem => Box::new(ThreadPerItem::default()),
            ExecutorKind::MtWq => Box::new(MtWq::new(cpus, "mt-wq")?),
        })
    }
}

// ---------------------------------------------------------------------------
// cmwq
// ---------------------------------------------------------------------------

/// A cmwq workqueue with default settings but `flags`; `wq.spawn` per job.
#[derive(Debug)]
pub(crate) struct CmwqExec {
    kind: ExecutorKind,
    /// The flags asked for; `None`: none set (the library's default queue).
    asked: Option<WqFlags>,
    wq: Workqueue,
}

impl CmwqExec {
    /// `flags: None` calls no `flags` setter at all: `builder(..).build()`.
    fn new(kind: ExecutorKind, flags: Option<WqFlags>) -> Result<CmwqExec, Error> {
        let b = Workqueue::builder(format!("bench-{}", kind.name()));
        let b = match flags {
            Some(f) => b.flags(f),
            None => b,
        };
        let wq = b.build().map_err(|e| Error::Executor(format!("{}: {e}", kind.name())))?;
        Ok(CmwqExec { kind, asked: flags, wq })
    }
}

impl Executor for CmwqExec {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn settings(&self) -> String {
        let how = match self.kind.blocking() {
            Blocking::Announced => "blocks via cmwq::sleep (announced)",
            Blocking::Plain => "blocks via std::thread::sleep (NOT announced)",
        };
        let what = match self.asked {
            None => format!(
                "default workqueue: builder(..).build(), no flags set (the library's default; flags now {:?})",
                self.wq.flags()
            ),
            Some(f) if f.contains(WqFlags::UNBOUND) => "UNBOUND workqueue (WqFlags::UNBOUND)".into(),
            Some(_) => "per-CPU workqueue (WqFlags::PERCPU; items run on the submitting CPU's pool)".into(),
        };
        format!(
            "{what}; wq.spawn per item; max_active {} (default); idle timeout {:?}; worker ceiling {}; {how}",
            self.wq.max_active(),
            cmwq::idle_timeout(),
            cmwq::max_workers(),
        )
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        self.wq.spawn(job).map_err(|e| Error::Executor(format!("{}: {}", self.name(), e.error())))
    }
}

impl Drop for CmwqExec {
    fn drop(&mut self) {
        let _ = self.wq.destroy();
    }
}

// ---------------------------------------------------------------------------
// rayon
// ---------------------------------------------------------------------------

static RAYON_STARTED: AtomicBool = AtomicBool::new(false);

/// Threads of rayon's global pool, if this harness started it (asking rayon
/// otherwise would start it).
pub(crate) fn rayon_global_threads() -> usize {
    if RAYON_STARTED.load(Ordering::Acquire) {
        rayon::current_num_threads()
    } else {
        0
    }
}

/// `rayon::spawn` on the global pool.
#[derive(Debug)]
pub(crate) struct RayonExec;

impl Executor for RayonExec {
    fn name(&self) -> &str {
        "rayon"
    }

    fn settings(&self) -> String {
        let env = std::env::var("RAYON_NUM_THREADS").map(|v| format!(" (RAYON_NUM_THREADS={v})"));
        format!(
            "rayon::spawn on the global pool: {} threads{} (default: one per CPU); blocks via std::thread::sleep",
            rayon::current_num_threads(),
            env.unwrap_or_default()
        )
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        rayon::spawn(job);
        RAYON_STARTED.store(true, Ordering::Release);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// tokio
// ---------------------------------------------------------------------------

/// `spawn_blocking` on a default multi-thread runtime (`Runtime::new()`'s builder).
#[derive(Debug)]
pub(crate) struct TokioExec {
    rt: Option<tokio::runtime::Runtime>,
}

impl TokioExec {
    fn new() -> Result<TokioExec, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .build()
            .map_err(|e| Error::Executor(format!("tokio runtime: {e}")))?;
        Ok(TokioExec { rt: Some(rt) })
    }
}

impl Executor for TokioExec {
    fn name(&self) -> &str {
        "tokio-blocking"
    }

    fn settings(&self) -> String {
        let workers = self.rt.as_ref().map_or(0, |rt| rt.metrics().num_workers());
        format!(
            "Handle::spawn_blocking on a default multi-thread runtime: {workers} worker threads, \
             max_blocking_threads 512, keep-alive 10 s (defaults); blocks via std::thread::sleep"
        )
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        match &self.rt {
            Some(rt) => {
                drop(rt.handle().spawn_blocking(job));
                Ok(())
            }
            None => Err(Error::Executor("tokio runtime shut down".into())),
        }
    }
}

impl Drop for TokioExec {
    fn drop(&mut self) {
        // Waits for the worker and blocking threads to finish.
        drop(self.rt.take());
    }
}

// ---------------------------------------------------------------------------
// Fixed pool
// ---------------------------------------------------------------------------

/// In-flight accounting for the queue emulations' `flush`.
#[derive(Debug, Default)]
struct InFlight {
    n: Mutex<usize>,
    cv: Condvar,
}

impl InFlight {
    fn add(&self) {
        *self.n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn done(&self) {
        let mut n = self.n.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            self.cv.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut n = self.n.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = self.cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn worker_loop(rx: Receiver<Job>, inflight: Arc<InFlight>) {
    for job in rx {
        job();
        inflight.done();
    }
}

fn spawn_thread(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|e| Error::Executor(format!("{name}: {e}")))
}

/// A fixed pool: `n` threads taking jobs from one crossbeam channel.
#[derive(Debug)]
pub(crate) struct FixedPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    inflight: Arc<InFlight>,
}

impl FixedPool {
    /// A pool of `n` threads.
    ///
    /// # Errors
    /// A thread could not be created.
    pub(crate) fn new(n: usize, name: &str) -> Result<FixedPool, Error> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let inflight = Arc::new(InFlight::default());
        let mut pool = FixedPool { tx: Some(tx), threads: Vec::with_capacity(n), inflight };
        for i in 0..n.max(1) {
            let (rx, inflight) = (rx.clone(), pool.inflight.clone());
            pool.threads.push(spawn_thread(format!("{name}/{i}"), move || worker_loop(rx, inflight))?);
        }
        Ok(pool)
    }

    /// Waits until every job queued so far has finished.
    pub(crate) fn flush(&self) {
        self.inflight.wait_idle();
    }
}

impl Executor for FixedPool {
    fn name(&self) -> &str {
        "fixed-pool"
    }

    fn settings(&self) -> String {
        format!(
            "{} threads (one per CPU, not pinned) fed by one crossbeam unbounded channel; \
             blocks via std::thread::sleep",
            self.threads.len()
        )
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        self.inflight.add();
        match self.tx.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => {
                self.inflight.done();
                Err(Error::Executor("fixed-pool: shut down".into()))
            }
        }
    }
}

impl Drop for FixedPool {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Thread per item
// ---------------------------------------------------------------------------

/// `std::thread::spawn` per job. Handles are kept and joined when the adapter
/// is dropped, so that thread counts after it are exact.
#[derive(Debug, Default)]
pub(crate) struct ThreadPerItem {
    handles: Mutex<Vec<JoinHandle<()>>>,
    spawned: AtomicUsize,
}

impl Executor for ThreadPerItem {
    fn name(&self) -> &str {
        "thread-per-item"
    }

    fn settings(&self) -> String {
        "std::thread::spawn per item (default 2 MiB stacks); blocks via std::thread::sleep".into()
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let h = std::thread::Builder::new()
            .spawn(job)
            .map_err(|e| Error::Executor(format!("thread-per-item: thread {n}: {e}")))?;
        let mut hs = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        hs.push(h);
        // Reap finished threads now and then, so long runs keep few handles.
        if hs.len() >= 4096 {
            let (done, live): (Vec<_>, Vec<_>) = hs.drain(..).partition(|h| h.is_finished());
            *hs = live;
            drop(hs);
            for h in done {
                let _ = h.join();
            }
        }
        Ok(())
    }
}

impl Drop for ThreadPerItem {
    fn drop(&mut self) {
        let hs = std::mem::take(self.handles.get_mut().unwrap_or_else(|e| e.into_inner()));
        for h in hs {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------
// MT wq emulation
// ---------------------------------------------------------------------------

/// The pre-cmwq kernel multi-threaded workqueue: one dedicated thread per CPU for
/// this queue alone (pinned to it), each with its own list. `queue` puts a job on
/// the submitting CPU's thread (`queue_work`), so a job that blocks holds up
/// everything behind it on that CPU of that queue.
#[derive(Debug)]
pub struct MtWq {
    cpus: Vec<usize>,
    /// Indexed by CPU id; `None` for CPUs this process may not use.
    txs: Vec<Option<Sender<Job>>>,
    threads: Vec<JoinHandle<()>>,
    inflight: Arc<InFlight>,
}

impl MtWq {
    /// One queue: a pinned thread per CPU in `cpus`.
    ///
    /// # Errors
    /// A thread could not be created.
    pub fn new(cpus: &[usize], name: &str) -> Result<MtWq, Error> {
        let max = cpus.iter().copied().max().unwrap_or(0);
        let inflight = Arc::new(InFlight::default());
        let mut q = MtWq { cpus: cpus.to_vec(), txs: vec![None; max + 1], threads: Vec::new(), inflight };
        for &cpu in cpus {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            let inflight = q.inflight.clone();
            q.threads.push(spawn_thread(format!("{name}/{cpu}"), move || {
                let _ = pin_current_thread(cpu);
                worker_loop(rx, inflight)
            })?);
            q.txs[cpu] = Some(tx);
        }
        Ok(q)
    }

    /// Queues `job` on `cpu`'s thread of this queue.
    ///
    /// # Errors
    /// `cpu` has no thread here.
    pub fn queue_on(&self, cpu: usize, job: Job) -> Result<(), Error> {
        let tx = self.txs.get(cpu).and_then(Option::as_ref);
        self.inflight.add();
        match tx.map(|tx| tx.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => {
                self.inflight.done();
                Err(Error::Executor(format!("mt-wq: no thread for CPU {cpu}")))
            }
        }
    }

    /// Queues `job` on the calling CPU's thread (the first CPU if unknown).
    ///
    /// # Errors
    /// As [`queue_on`](Self::queue_on).
    pub fn queue(&self, job: Job) -> Result<(), Error> {
        let cpu = cmwq::debug::current_cpu().filter(|c| self.txs.get(*c).is_some_and(Option::is_some));
        self.queue_on(cpu.unwrap_or(self.cpus[0]), job)
    }

    /// Waits until every job queued so far has finished (`flush_workqueue`).
    pub fn flush(&self) {
        self.inflight.wait_idle();
    }
}

impl Executor for MtWq {
    fn name(&self) -> &str {
        "mt-wq"
    }

    fn settings(&self) -> String {
        format!(
            "one queue = {} dedicated threads (one pinned per CPU, own list each); items run on the \
             submitting CPU's thread; blocks via std::thread::sleep",
            self.threads.len()
        )
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        self.queue(job)
    }
}

impl Drop for MtWq {
    fn drop(&mut self) {
        self.txs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ExecutorKind::ALL {
            assert_eq!(ExecutorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ExecutorKind::from_name("nope"), None);
    }

    #[test]
    fn plain_twins() {
        for k in ExecutorKind::ALL {
            match k.announced_twin() {
                Some(a) => {
                    assert!(k.only_differs_in_blocking());
                    assert_eq!(k.name(), format!("{}-plain", a.name()));
                    assert_eq!((k.blocking(), a.blocking()), (Blocking::Plain, Blocking::Announced));
                }
                None => assert!(!k.only_differs_in_blocking()),
            }
        }
        assert_eq!(ExecutorKind::CmwqDefaultPlain.announced_twin(), Some(ExecutorKind::CmwqDefault));
    }

    #[test]
    fn the_default_queue_is_built_without_flags() {
        let d = CmwqExec::new(ExecutorKind::CmwqDefault, None).unwrap();
        let p = CmwqExec::new(ExecutorKind::CmwqBound, Some(WqFlags::PERCPU)).unwrap();
        assert!(d.settings().starts_with("default workqueue: builder(..).build(), no flags set"));
        assert!(p.settings().starts_with("per-CPU workqueue (WqFlags::PERCPU"));
        assert!(!p.wq.flags().contains(WqFlags::UNBOUND), "PERCPU stays per-CPU whatever the default");
    }

    #[test]
    fn batch_counts_runs() {
        let b = Batch::new(3);
        let t0 = now_ns();
        b.done(0);
        b.done(2);
        assert_eq!(b.run_counts(), (1, 2, 0));
        assert!(b.check_exactly_once("t").is_err());
        assert_eq!(b.0.end_ns.load(Ordering::Acquire), 0, "only the last job stamps the end");
        b.done(1);
        b.wait("t", Duration::from_secs(1)).unwrap();
        assert!(b.end_ns() >= t0, "the last job stamped the end before waking the waiter");
        b.check_exactly_once("t").unwrap();
        b.0.ran[1].fetch_add(1, Ordering::Relaxed);
        assert!(matches!(b.check_exactly_once("t"), Err(Error::Invariant(_))));
    }

    #[test]
    fn queue_emulations_flush_and_run_everything() {
        let cpus = crate::cpu::allowed_cpus();
        let q = MtWq::new(&cpus, "t-mt").unwrap();
        let p = FixedPool::new(2, "t-fp").unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let (a, b) = (n.clone(), n.clone());
            q.queue(Box::new(move || {
                a.fetch_add(1, Ordering::Relaxed);
            }))
            .unwrap();
            p.spawn(Box::new(move || {
                b.fetch_add(1, Ordering::Relaxed);
            }))
            .unwrap();
        }
        q.flush();
        p.flush();
        assert_eq!(n.load(Ordering::Relaxed), 100);
        assert!(q.queue_on(usize::MAX / 2, Box::new(|| {})).is_err());
        q.flush(); // the refused job left no in-flight count behind
    }
}
