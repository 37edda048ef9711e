//! Persistent producer threads, one pinned to each CPU, that submit the items of
//! a run. They exist for the whole benchmark, so thread counts taken before a run
//! already include them.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

type Task = Box<dyn FnOnce() + Send + 'static>;

/// One producer thread per CPU.
#[derive(Debug)]
pub(crate) struct Producers {
    txs: Vec<Sender<Task>>,
    done_rx: Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Producers {
    /// Starts one producer pinned to each CPU in `cpus`.
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
                        for task in rx {
                            // A panicking task must not take the producer down
                            // (the caller would wait for it forever).
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
                            let _ = done_tx.send(());
                        }
                    })
                    .expect("start a producer thread"),
            );
            txs.push(tx);
        }
        Producers { txs, done_rx, threads }
    }

    /// Runs `f(i)` on the first `n` producers at once and waits for all of them.
    pub(crate) fn run(&self, n: usize, f: Arc<dyn Fn(usize) + Send + Sync>) {
        let n = n.min(self.txs.len());
        for (i, tx) in self.txs.iter().take(n).enumerate() {
            let f = f.clone();
            tx.send(Box::new(move || f(i))).expect("producer thread alive");
        }
        for _ in 0..n {
            self.done_rx.recv().expect("producer thread alive");
        }
    }

    /// Runs `f` on producer `i` and returns its result.
    pub(crate) fn run_on<R: Send + 'static>(&self, i: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.txs[i]
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("producer thread alive");
        self.done_rx.recv().expect("producer thread alive");
        rx.recv().expect("producer task ran")
    }
}

impl Drop for Producers {
    fn drop(&mut self) {
        self.txs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
