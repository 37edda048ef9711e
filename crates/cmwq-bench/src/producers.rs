//! Persistent producer threads that submit the items of a run: one pinned to
//! each CPU, and one that nobody pinned. They exist for the whole benchmark, so
//! thread counts taken before a run already include them.
//!
//! Two producer modes ([`ProducerMode`]) are measured: pinned producers (one per
//! CPU, each its share of the items; noop also runs the first one alone), and a
//! single unpinned producer that queues every item, as most programs do from a
//! thread nobody placed.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

type Task = Box<dyn FnOnce() + Send + 'static>;

/// How the items of a workload are submitted; selectable with `--only`
/// (`pinned`, `unpinned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProducerMode {
    /// Harness threads pinned one per CPU, each submitting its share (noop also
    /// runs the first one alone).
    Pinned,
    /// One harness thread, never pinned (no affinity call: it keeps the mask of
    /// the thread that started the benchmark), submitting every item.
    Unpinned,
}

impl ProducerMode {
    /// Every mode, in run order.
    pub const ALL: [ProducerMode; 2] = [ProducerMode::Pinned, ProducerMode::Unpinned];

    /// The name used in `--only` and in the JSON (`producer_mode`).
    pub fn name(self) -> &'static str {
        match self {
            ProducerMode::Pinned => "pinned",
            ProducerMode::Unpinned => "unpinned",
        }
    }

    /// The mode named `name`, if any.
    pub fn from_name(name: &str) -> Option<ProducerMode> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The feeds a workload runs in this mode: the pinned producers alone
    /// (`single_pinned`, on a machine with more than one CPU) and together, or
    /// the unpinned producer.
    pub(crate) fn feeds(self, cores: usize, single_pinned: bool) -> Vec<Feed> {
        match self {
            ProducerMode::Pinned if single_pinned && cores > 1 => vec![Feed::Pinned(1), Feed::Pinned(cores)],
            ProducerMode::Pinned => vec![Feed::Pinned(cores.max(1))],
            ProducerMode::Unpinned => vec![Feed::Unpinned],
        }
    }
}

/// Who submits the items of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// The first `n` pinned producers, each its share.
    Pinned(usize),
    /// The unpinned producer, every item.
    Unpinned,
}

impl Feed {
    /// The number of producer threads.
    pub(crate) fn count(self) -> usize {
        match self {
            Feed::Pinned(n) => n.max(1),
            Feed::Unpinned => 1,
        }
    }

    /// The mode this feed belongs to.
    pub(crate) fn mode(self) -> ProducerMode {
        match self {
            Feed::Pinned(_) => ProducerMode::Pinned,
            Feed::Unpinned => ProducerMode::Unpinned,
        }
    }

    /// The feed in words, as the tables and the JSON (`producers_label`) show
    /// it: `1 unpinned producer`, `1 pinned producer`, `1 pinned producer per
    /// CPU` (all `cores` of them), or `n pinned producers`.
    pub(crate) fn label(self, cores: usize) -> String {
        match self {
            Feed::Unpinned => "1 unpinned producer".into(),
            Feed::Pinned(n) if n >= cores.max(1) => "1 pinned producer per CPU".into(),
            Feed::Pinned(1) => "1 pinned producer".into(),
            Feed::Pinned(n) => format!("{n} pinned producers"),
        }
    }
}

/// One producer thread per CPU, pinned, and one unpinned.
#[derive(Debug)]
pub(crate) struct Producers {
    txs: Vec<Sender<Task>>,
    unpinned: Option<Sender<Task>>,
    done_rx: Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

/// Runs the tasks sent to `rx`, counting each one on `done_tx`.
fn serve(rx: Receiver<Task>, done_tx: Sender<()>) {
    for task in rx {
        // A panicking task must not take the producer down (the caller would
        // wait for it forever).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
        let _ = done_tx.send(());
    }
}

impl Producers {
    /// Starts one producer pinned to each CPU in `cpus`, and the unpinned one.
    /// The unpinned one makes no affinity call: it inherits the calling
    /// thread's mask, the CPUs the benchmark runs on.
    ///
    /// # Panics
    /// If a thread cannot be created.
    pub(crate) fn new(cpus: &[usize]) -> Producers {
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
        let mut txs = Vec::new();
        let mut threads = Vec::new();
        for &cpu in cpus {
            let (tx, rx) = crossbeam_channel::unbounded::<Task>();
            let done_tx = done_tx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("bench-producer/{cpu}"))
                    .spawn(move || {
                        let _ = crate::cpu::pin_current_thread(cpu);
                        serve(rx, done_tx);
                    })
                    .expect("start a producer thread"),
            );
            txs.push(tx);
        }
        let (tx, rx) = crossbeam_channel::unbounded::<Task>();
        threads.push(
            std::thread::Builder::new()
                .name("bench-producer/u".into())
                .spawn(move || serve(rx, done_tx))
                .expect("start the unpinned producer thread"),
        );
        Producers { txs, unpinned: Some(tx), done_rx, threads }
    }

    /// Runs `f(i)` on each producer of `feed` at once (`i` from 0) and waits
    /// for all of them. A pinned feed is capped at the pinned producers there are.
    pub(crate) fn run(&self, feed: Feed, f: Arc<dyn Fn(usize) + Send + Sync>) {
        let txs: Vec<&Sender<Task>> = match feed {
            Feed::Pinned(n) => self.txs.iter().take(n).collect(),
            Feed::Unpinned => self.unpinned.iter().collect(),
        };
        for (i, tx) in txs.iter().enumerate() {
            let f = f.clone();
            tx.send(Box::new(move || f(i))).expect("producer thread alive");
        }
        for _ in 0..txs.len() {
            self.done_rx.recv().expect("producer thread alive");
        }
    }

    /// Runs `f` on pinned producer `i` and returns its result.
    pub(crate) fn run_on<R: Send + 'static>(&self, i: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
        self.call(&self.txs[i], f)
    }

    /// Runs `f` on the unpinned producer and returns its result.
    pub(crate) fn run_unpinned<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        self.call(self.unpinned.as_ref().expect("producer thread alive"), f)
    }

    fn call<R: Send + 'static>(&self, tx: &Sender<Task>, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (rtx, rx) = crossbeam_channel::bounded(1);
        tx.send(Box::new(move || {
            let _ = rtx.send(f());
        }))
        .expect("producer thread alive");
        self.done_rx.recv().expect("producer thread alive");
        rx.recv().expect("producer task ran")
    }
}

impl Drop for Producers {
    fn drop(&mut self) {
        self.txs.clear();
        self.unpinned = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn mode_names_round_trip() {
        for m in ProducerMode::ALL {
            assert_eq!(ProducerMode::from_name(m.name()), Some(m));
        }
        assert_eq!(ProducerMode::from_name("nope"), None);
        assert_eq!(ProducerMode::from_name("cmwq-bound"), None);
    }

    #[test]
    fn feeds_and_labels() {
        assert_eq!(ProducerMode::Pinned.feeds(2, true), [Feed::Pinned(1), Feed::Pinned(2)]);
        assert_eq!(ProducerMode::Pinned.feeds(2, false), [Feed::Pinned(2)]);
        assert_eq!(ProducerMode::Pinned.feeds(1, true), [Feed::Pinned(1)], "one CPU: one pinned feed");
        assert_eq!(ProducerMode::Unpinned.feeds(4, true), [Feed::Unpinned]);
        assert_eq!(Feed::Unpinned.label(2), "1 unpinned producer");
        assert_eq!(Feed::Pinned(1).label(2), "1 pinned producer");
        assert_eq!(Feed::Pinned(2).label(2), "1 pinned producer per CPU");
        assert_eq!(Feed::Pinned(1).label(1), "1 pinned producer per CPU");
        assert_eq!(Feed::Pinned(3).label(8), "3 pinned producers");
        assert_eq!((Feed::Unpinned.count(), Feed::Pinned(4).count(), Feed::Pinned(0).count()), (1, 4, 1));
        assert_eq!(Feed::Unpinned.mode(), ProducerMode::Unpinned);
        assert_eq!(Feed::Pinned(2).mode(), ProducerMode::Pinned);
    }

    #[test]
    fn the_unpinned_producer_keeps_the_full_mask() {
        let cpus = crate::cpu::allowed_cpus();
        let p = Producers::new(&cpus);
        /// Per call: the producer index and the CPUs it may run on.
        type Seen = Arc<Mutex<Vec<(usize, Vec<usize>)>>>;
        let seen: Seen = Arc::default();
        let s = seen.clone();
        p.run(Feed::Unpinned, Arc::new(move |i| s.lock().unwrap().push((i, crate::cpu::allowed_cpus()))));
        assert_eq!(*seen.lock().unwrap(), [(0, cpus.clone())], "one call, with every CPU allowed");
        seen.lock().unwrap().clear();
        let s = seen.clone();
        p.run(
            Feed::Pinned(cpus.len()),
            Arc::new(move |i| s.lock().unwrap().push((i, crate::cpu::allowed_cpus()))),
        );
        let mut v = seen.lock().unwrap().clone();
        v.sort();
        let want: Vec<(usize, Vec<usize>)> = cpus.iter().enumerate().map(|(i, &c)| (i, vec![c])).collect();
        assert_eq!(v, want, "one pinned producer per CPU");
    }
}
