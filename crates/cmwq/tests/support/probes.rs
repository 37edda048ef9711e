//! Running a library call in a work item or on a thread of its own, and knowing,
//! without timing, that it has reached its wait.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::events::Log;
use super::wait::{current_tid, join_bounded, wait_parked, Bounded, BoundedQueue};

/// A call running inside a work item, known to be blocked; see [`blocked_in_item`].
#[derive(Debug)]
pub(crate) struct InItem<R> {
    helper: cmwq::Workqueue,
    work: cmwq::Work,
    result: Arc<Mutex<Option<R>>>,
}

impl<R> InItem<R> {
    /// Waits for the call to return and gives its result.
    pub(crate) fn join(self) -> R {
        self.work.flush_bounded().expect("flush of the helper item");
        let r = self.result.lock().take().expect("the helper item ran");
        drop(self.helper);
        r
    }
}

/// Runs `f` in a work item on `cpu`'s pool and returns once `f` is known to be
/// blocked in an announced wait (`cmwq::blocking`, as every wait of the library is):
/// a probe item queued behind it on the same CPU can only start when the pool stops
/// counting it as running. Logs `<tag> called` before and `<tag> returned` after `f`.
///
/// This is how a test knows, without timing, that a flush or cancel is waiting.
/// Requires that nothing else on that CPU burns without blocking meanwhile.
pub(crate) fn blocked_in_item<R: Send + 'static>(
    cpu: usize,
    log: &Log,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InItem<R> {
    let helper =
        cmwq::Workqueue::builder(format!("helper-{tag}")).flags(cmwq::WqFlags::PERCPU).build().unwrap();
    blocked_in(&helper, cpu, log, tag, f)
}

/// [`blocked_in_item`] with the item on the per-CPU queue `wq`.
pub(crate) fn blocked_in<R: Send + 'static>(
    wq: &cmwq::Workqueue,
    cpu: usize,
    log: &Log,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InItem<R> {
    let result = Arc::new(Mutex::new(None));
    let f = Mutex::new(Some(f));
    let work = {
        let (log, tag, result) = (log.clone(), tag.to_string(), result.clone());
        cmwq::Work::new(move |_| {
            let Some(f) = f.lock().take() else { return };
            log.push(format!("{tag} called"));
            let r = f();
            log.push(format!("{tag} returned"));
            *result.lock() = Some(r);
        })
    };
    let probe_tag = format!("{tag} probe");
    let probe = {
        let (log, probe_tag) = (log.clone(), probe_tag.clone());
        cmwq::Work::new(move |_| log.push(probe_tag.clone()))
    };
    // The probe goes on a queue of its own: `wq` may hold it back by max_active.
    let probe_wq =
        cmwq::Workqueue::builder(format!("probe-{tag}")).flags(cmwq::WqFlags::PERCPU).build().unwrap();
    assert_eq!(wq.queue_on(cpu, &work), Ok(true));
    log.expect(&format!("{tag} called"));
    assert_eq!(probe_wq.queue_on(cpu, &probe), Ok(true));
    log.expect(&probe_tag);
    probe_wq.destroy_bounded().unwrap();
    InItem { helper: wq.clone(), work, result }
}

/// A call running on a thread of its own; see [`parked_in_thread`].
#[derive(Debug)]
pub(crate) struct InThread<R>(std::thread::JoinHandle<R>);

impl<R> InThread<R> {
    /// Waits, at most the deadline, for the call to return and gives its result.
    pub(crate) fn join(self) -> R {
        join_bounded(self.0)
    }
}

/// Runs `f` on a new thread and returns once that thread sits in a real wait (see
/// [`wait_parked`]). Logs `<tag> called` before and `<tag> returned` after `f`.
pub(crate) fn parked_in_thread<R: Send + 'static>(
    log: &Log,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InThread<R> {
    let tid = Arc::new(Mutex::new(None));
    let h = {
        let (log, tag, tid) = (log.clone(), tag.to_string(), tid.clone());
        std::thread::spawn(move || {
            *tid.lock() = Some(current_tid());
            log.push(format!("{tag} called"));
            let r = f();
            log.push(format!("{tag} returned"));
            r
        })
    };
    log.expect(&format!("{tag} called"));
    if let Some(tid) = tid.lock().expect("tid recorded") {
        assert!(wait_parked(tid), "{tag}: the thread never settled into a wait; log: {:?}", log.snapshot());
    } else {
        std::thread::sleep(Duration::from_millis(200));
    }
    InThread(h)
}
