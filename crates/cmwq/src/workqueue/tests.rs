//! loom models of delayed work on the real code (run with `RUSTFLAGS="--cfg loom"`):
//! a timer firing races a canceller, and a timer firing races `mod_delayed`.
//! The clock is paused, and a model thread fires the timers with `advance`,
//! as the timer thread would.

use loom::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::platform::topology::Topology;
use crate::registry::Registry;
use crate::{DelayedWork, Workqueue};

const MS: Duration = Duration::from_millis(1);

fn setup() -> (&'static Registry, Workqueue, DelayedWork, Arc<AtomicUsize>) {
    let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
    reg.timers.pause();
    let wq = Workqueue::builder("model").build_in(reg).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let dw = DelayedWork::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    (reg, wq, dw, runs)
}

/// Cancel against fire: the arm ends in exactly one of "cancelled" and "ran once".
#[test]
fn cancel_races_the_timer() {
    loom::model(|| {
        let (reg, wq, dw, runs) = setup();
        assert!(wq.queue_delayed(&dw, MS).unwrap());
        let firer = loom::thread::spawn(move || reg.timers.advance(MS));
        let cancelled = dw.cancel();
        let fired = firer.join().unwrap();
        dw.work().flush().unwrap();
        assert!(!dw.is_pending());
        assert_eq!(
            runs.load(Ordering::SeqCst),
            usize::from(!cancelled),
            "cancelled={cancelled} fired={fired:?}"
        );
        drop(dw);
        drop(wq);
        reg.shutdown();
    });
}

/// `mod_delayed` against fire: `true` means the pending instance was taken back
/// (it never runs); `false` means it had already started. Either way the item
/// ends armed again.
#[test]
fn mod_delayed_races_the_timer() {
    loom::model(|| {
        let (reg, wq, dw, runs) = setup();
        assert!(wq.queue_delayed(&dw, MS).unwrap());
        let firer = loom::thread::spawn(move || reg.timers.advance(MS));
        let was_pending = wq.mod_delayed(&dw, MS * 10).unwrap();
        firer.join().unwrap();
        dw.work().flush().unwrap();
        assert!(dw.timer_pending(), "mod_delayed always ends armed");
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(!was_pending));
        assert!(dw.cancel());
        drop(dw);
        drop(wq);
        reg.shutdown();
    });
}
