//! `work_on_cpu` and `schedule_on_each_cpu`: run a function on a given CPU's
//! worker and wait for it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::platform::error::Error;
use crate::system;
use crate::work::Work;

/// Runs `f` on a worker of `cpu` (on the system per-CPU workqueue) and returns its
/// result (`work_on_cpu`). Waits for it; from a work item the wait is announced
/// as blocking. A panic in `f` is resumed in the caller.
///
/// ```
/// let cpu = cmwq::allowed_cpus()[0];
/// let ran_on = cmwq::work_on_cpu(cpu, cmwq::debug::current_cpu)?;
/// assert_eq!(ran_on, Some(cpu));
/// # Ok::<(), cmwq::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu) for a CPU this process
/// may not use (no panic).
pub fn work_on_cpu<F, R>(cpu: usize, f: F) -> Result<R, Error>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let slot = Arc::new(parking_lot::Mutex::new(None));
    let out = slot.clone();
    // `Work::new` takes an `Fn`; the closure is moved out on the item's only run.
    let f = parking_lot::Mutex::new(Some(f));
    let work = Work::new(move |_| {
        if let Some(f) = f.lock().take() {
            *out.lock() = Some(catch_unwind(AssertUnwindSafe(f)));
        }
    });
    system::percpu().queue_on(cpu, &work)?;
    work.flush()?;
    let result = slot.lock().take().expect("the queued item ran before flush returned");
    Ok(result.unwrap_or_else(|p| resume_unwind(p)))
}

/// Runs `f` once on every CPU in [`allowed_cpus`](crate::allowed_cpus), in parallel
/// on the system per-CPU workqueue, and waits for all (`schedule_on_each_cpu`).
/// A panic in any of them is resumed in the caller after all have finished.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// cmwq::schedule_on_each_cpu(move || s.lock().unwrap().push(cmwq::debug::current_cpu()))?;
/// let mut cpus: Vec<usize> = seen.lock().unwrap().iter().map(|c| c.unwrap()).collect();
/// cpus.sort();
/// assert_eq!(cpus, cmwq::allowed_cpus()); // once on every CPU
/// # Ok::<(), cmwq::Error>(())
/// ```
///
/// # Errors
/// Only if the set of CPUs changed under it ([`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu)).
pub fn schedule_on_each_cpu<F>(f: F) -> Result<(), Error>
where
    F: Fn() + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let panics = Arc::new(parking_lot::Mutex::new(None));
    let works: Vec<Work> = crate::allowed_cpus()
        .into_iter()
        .map(|_| {
            let (f, panics) = (f.clone(), panics.clone());
            Work::new(move |_| {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f())) {
                    panics.lock().get_or_insert(p);
                }
            })
        })
        .collect();
    for (cpu, w) in crate::allowed_cpus().into_iter().zip(&works) {
        system::percpu().queue_on(cpu, w)?;
    }
    for w in &works {
        w.flush()?;
    }
    if let Some(p) = panics.lock().take() {
        resume_unwind(p);
    }
    Ok(())
}
