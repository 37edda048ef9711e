//! loom models of the work state word (run with `RUSTFLAGS="--cfg loom"`).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::{Claim, WorkState};

/// Two queuers race for an idle item: exactly one owns it.
#[test]
fn claim_is_exclusive() {
    loom::model(|| {
        let s = Arc::new(WorkState::new());
        let s2 = s.clone();
        let t = thread::spawn(move || matches!(s2.claim_pending(), Claim::Claimed(_)));
        let a = matches!(s.claim_pending(), Claim::Claimed(_));
        let b = t.join().unwrap();
        assert!(a ^ b, "exactly one claim wins");
    });
}

/// The kernel's `set_work_pool_and_clear_pending` guarantee: a queuer that finds the
/// item pending (and so returns false) made its earlier stores visible to the
/// execution that the worker is about to start.
#[test]
fn failed_queue_is_visible_to_execution() {
    loom::model(|| {
        let s = Arc::new(WorkState::new());
        let data = Arc::new(AtomicUsize::new(0));
        assert!(matches!(s.claim_pending(), Claim::Claimed(_)));
        s.set_queued(0, 0);

        let (s2, d2) = (s.clone(), data.clone());
        let queuer = thread::spawn(move || {
            d2.store(1, Ordering::Relaxed);
            s2.claim_pending()
        });
        // The worker dequeues the item and runs the callback, which reads `data`.
        s.clear_pending_for_execution(0);
        let seen = data.load(Ordering::Relaxed);
        let claim = queuer.join().unwrap();
        if claim == Claim::AlreadyPending {
            assert_eq!(seen, 1, "a failed queue's store was lost to the running callback");
        }
    });
}

/// Disable vs queue: while a queuer owns PENDING, disable cannot take it; once
/// disable has released PENDING with depth 1, no queuer can claim the item.
#[test]
fn disable_blocks_queueing() {
    loom::model(|| {
        let s = Arc::new(WorkState::new());
        let disabled = Arc::new(AtomicUsize::new(0));
        let (s2, d2) = (s.clone(), disabled.clone());
        let q = thread::spawn(move || {
            let c = s2.claim_pending();
            if let Claim::Claimed(_) = c {
                assert_eq!(d2.load(Ordering::SeqCst), 0, "claimed a disabled item");
                // As if linked, executed and released by a worker.
                s2.release_pending(0);
            }
            c
        });
        // disable(): grab PENDING, retrying while a queuer holds it.
        while s.test_and_set_pending().pending() {
            thread::yield_now();
        }
        s.release_pending(1);
        disabled.store(1, Ordering::SeqCst);
        let c = q.join().unwrap();
        let snap = s.load();
        assert_eq!(snap.disable_depth(), 1);
        assert!(!snap.pending());
        // A queuer that ran while disable held PENDING saw it pending: also a refusal.
        assert!(matches!(c, Claim::Claimed(_) | Claim::Disabled | Claim::AlreadyPending));
    });
}
