//! Threads of this process that keep one CPU busy: the "busy CPU" of the bh
//! rows. They spin at normal priority, pinned to the CPU, so that a worker
//! woken there has to win the CPU from them (the scheduler decides how soon).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;

/// `n` spinning threads pinned to one CPU; they stop when this is dropped.
pub(crate) struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Spinners {
    /// Starts `n` threads spinning on `cpu` and returns once all of them spin.
    pub(crate) fn start(cpu: usize, n: usize) -> Result<Spinners, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = Arc::new(AtomicUsize::new(0));
        let mut s = Spinners { stop: stop.clone(), threads: Vec::new() };
        for i in 0..n {
            let (stop, spinning) = (stop.clone(), spinning.clone());
            let t = std::thread::Builder::new()
                .name(format!("bench-spin/{cpu}.{i}"))
                .spawn(move || {
                    let _ = crate::cpu::pin_current_thread(cpu);
                    spinning.fetch_add(1, Ordering::Release);
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
                .map_err(|e| Error::Executor(format!("spinner thread: {e}")))?;
            s.threads.push(t);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while spinning.load(Ordering::Acquire) < n {
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!("{n} spinners on CPU {cpu} did not start in 10 s")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(s)
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
