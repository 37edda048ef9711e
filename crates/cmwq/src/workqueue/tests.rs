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
    let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
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

/// The node count of an unbound queue (`nr_active.rs`): pod A's item holds the
/// one slot of the node; pod B's pwq asks for one while A's item ends. Either
/// B gets the slot itself, or the end of A's item hands it over: a pwq left on
/// the pending list with the slot free would strand its items for good. The
/// mutant (`--cfg cmwq_loom_mutant`) reads the count and sets `PENDING` in two
/// steps, and must fail.
#[test]
fn pending_pwq_gets_the_freed_slot() {
    use super::nr_active::NodeNrActive;
    use super::PoolKey;
    use crate::pwq::PwqRef;

    loom::model(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(2))));
        let pa = reg.get_unbound_pool(&PoolKey::new(0, vec![0], false, &[0, 1]));
        let pb = reg.get_unbound_pool(&PoolKey::new(0, vec![1], false, &[0, 1]));
        let ra = PwqRef { pool: pa, slot: 0, epoch: 1 };
        let rb = PwqRef { pool: pb, slot: 0, epoch: 1 };
        let nna = Arc::new(NodeNrActive::new(1));
        let mut a_pending = false;
        assert!(nna.tryinc(ra, &mut a_pending, false), "A's item takes the node's slot");
        let n2 = nna.clone();
        let b = loom::thread::spawn(move || {
            let mut pending = false;
            let got = n2.tryinc(rb, &mut pending, false);
            (got, pending)
        });
        let handed = nna.dec(); // A's item ends
        let (got, b_pending) = b.join().unwrap();
        if got {
            assert!(!b_pending);
        } else {
            assert!(b_pending);
            let to = handed.expect("B waits on the pending list and the freed slot went to nobody");
            assert!(to.same(&rb));
            let mut p = b_pending;
            assert!(nna.tryinc(rb, &mut p, true), "the slot handed over is free");
            assert!(!p || nna.nr() == 1);
        }
    });
}
