//! Delayed work against a paused timer clock: time moves only when a test calls
//! `cmwq::timer::advance`, which fires the due timers before it returns, so each
//! test says exactly which items became pending at which instant, and none sleeps.
//!
//! The clock is process-wide, so every test here pauses it and holds `exclusive()`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{DelayedWork, ErrorKind, Workqueue, WqFlags};
use support::{exclusive, wait_for, Exclusive, Gate, Log};

const MS: Duration = Duration::from_millis(1);

fn paused() -> Exclusive {
    let g = exclusive();
    cmwq::timer::pause();
    // Fire what a failed test may have left armed, so one failure does not
    // cascade into the exact counts of the tests after it.
    cmwq::timer::advance(Duration::from_secs(1 << 20));
    g
}

fn counting() -> (DelayedWork, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    (
        DelayedWork::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        }),
        runs,
    )
}

fn runs(r: &AtomicUsize) -> usize {
    r.load(Ordering::SeqCst)
}

/// An ordered queue whose only slot is held by an item waiting on the returned
/// gate: items queued on it stay pending (queued, not running) until it opens.
fn held_queue(name: &str) -> (Workqueue, Gate, support::OpenOnDrop) {
    let wq = Workqueue::ordered(name).build().unwrap();
    let gate = Gate::new();
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    wq.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        g.wait_blocking();
    })
    .unwrap();
    wait_for("the holder starts", || started.load(Ordering::SeqCst) == 1);
    let guard = gate.open_on_drop();
    (wq, gate, guard)
}

#[test]
fn advance_fires_exactly_the_due_timers() {
    let _g = paused();
    let (wq, gate, _open) = held_queue("d-exact");
    let items: Vec<DelayedWork> = (0..10).map(|_| DelayedWork::new(|_| {})).collect();
    for (i, dw) in items.iter().enumerate() {
        assert!(wq.queue_delayed(dw, MS * (i as u32 + 1)).unwrap());
        assert!(dw.is_pending() && dw.timer_pending());
    }
    assert_eq!(cmwq::timer::advance(MS * 5 - Duration::from_nanos(1)), Some(4));
    assert_eq!(cmwq::timer::advance(Duration::from_nanos(1)), Some(1));
    for (i, dw) in items.iter().enumerate() {
        // Due ones are queued (pending, no timer); the others wait on their timers.
        assert!(dw.is_pending(), "item {i}");
        assert_eq!(dw.timer_pending(), i >= 5, "item {i}");
    }
    assert_eq!(wq.stats().inactive, 5, "the five due items wait behind the holder");
    assert_eq!(cmwq::timer::advance(MS * 100), Some(5));
    gate.open();
    wq.flush().unwrap();
    assert!(items.iter().all(|dw| !dw.is_pending()));
}

#[test]
fn queue_delayed_refuses_a_pending_item_and_zero_delay_skips_the_timer() {
    let _g = paused();
    let wq = Workqueue::builder("d-refuse").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS * 10).unwrap());
    assert!(!wq.queue_delayed(&dw, MS).unwrap(), "already pending (timer)");
    assert!(!wq.queue_delayed(&dw, Duration::ZERO).unwrap(), "already pending (timer)");
    assert!(!wq.queue(dw.work()).unwrap(), "already pending (timer)");
    assert_eq!(cmwq::timer::advance(MS * 9), Some(0), "the refused 1 ms arm changed nothing");
    assert_eq!(cmwq::timer::advance(MS), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);

    // Zero delay: queued at once, no timer, although the clock does not move.
    let armed_before = cmwq::timer::armed();
    assert!(wq.queue_delayed(&dw, Duration::ZERO).unwrap());
    assert!(!dw.timer_pending());
    assert_eq!(cmwq::timer::armed(), armed_before);
    dw.flush().unwrap();
    assert_eq!(runs(&n), 2);
}

#[test]
fn cancel_deletes_the_timer_and_the_item_never_runs() {
    let _g = paused();
    let wq = Workqueue::builder("d-cancel").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    assert!(!dw.cancel(), "idle: nothing to cancel");
    assert!(wq.queue_delayed(&dw, MS * 3).unwrap());
    assert!(dw.cancel());
    assert!(!dw.is_pending() && !dw.timer_pending());
    assert_eq!(cmwq::timer::advance(MS * 10), Some(0));
    wq.flush().unwrap();
    assert_eq!(runs(&n), 0);
    assert!(!dw.flush().unwrap(), "nothing to wait for");

    // The inner Work's cancel handles the timer too.
    assert!(wq.queue_delayed(&dw, MS * 3).unwrap());
    assert!(dw.work().cancel());
    assert_eq!(cmwq::timer::advance(MS * 10), Some(0));

    // cancel_sync as well, and the item can be armed again afterwards.
    assert!(wq.queue_delayed(&dw, MS * 3).unwrap());
    assert!(dw.cancel_sync().unwrap());
    assert_eq!(cmwq::timer::advance(MS * 10), Some(0));
    assert!(wq.queue_delayed(&dw, MS * 3).unwrap());
    assert_eq!(cmwq::timer::advance(MS * 3), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);
}

#[test]
fn cancel_takes_a_fired_item_off_its_queue() {
    let _g = paused();
    let (wq, gate, _open) = held_queue("d-cancel-queued");
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    assert_eq!(cmwq::timer::advance(MS), Some(1));
    assert!(dw.is_pending() && !dw.timer_pending(), "queued behind the holder");
    assert!(dw.cancel());
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs(&n), 0);
}

#[test]
fn mod_delayed_return_values_and_rearming() {
    let _g = paused();
    let wq = Workqueue::builder("d-mod").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    // Idle -> false, and it is armed.
    assert!(!wq.mod_delayed(&dw, MS * 10).unwrap());
    assert!(dw.timer_pending());
    // Armed -> true; the new deadline counts from now.
    assert_eq!(cmwq::timer::advance(MS * 8), Some(0));
    assert!(wq.mod_delayed(&dw, MS * 10).unwrap());
    assert_eq!(cmwq::timer::advance(MS * 5), Some(0), "the old deadline (10 ms) is gone");
    assert_eq!(cmwq::timer::advance(MS * 5), Some(1), "the new one (18 ms) fires");
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);
    // Armed, mod to zero -> true, queued at once.
    assert!(wq.queue_delayed(&dw, MS * 50).unwrap());
    assert!(wq.mod_delayed(&dw, Duration::ZERO).unwrap());
    assert!(!dw.timer_pending());
    dw.flush().unwrap();
    assert_eq!(runs(&n), 2);
    assert_eq!(cmwq::timer::advance(MS * 100), Some(0), "the deleted timer never fires");
    // Idle, mod to zero -> false, queued at once.
    assert!(!wq.mod_delayed(&dw, Duration::ZERO).unwrap());
    dw.flush().unwrap();
    assert_eq!(runs(&n), 3);
}

#[test]
fn mod_delayed_steals_a_queued_item_and_arms_it() {
    let _g = paused();
    let (wq, gate, _open) = held_queue("d-mod-queued");
    let (dw, n) = counting();
    assert!(wq.queue(dw.work()).unwrap());
    assert!(!dw.timer_pending());
    assert!(wq.mod_delayed(&dw, MS * 10).unwrap(), "was pending (queued)");
    assert!(dw.timer_pending());
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs(&n), 0, "taken off the queue, waiting on its timer");
    assert_eq!(cmwq::timer::advance(MS * 10), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);
}

#[test]
fn flush_fires_an_armed_timer_now_and_waits() {
    let _g = paused();
    let wq = Workqueue::builder("d-flush").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    let fired_before = cmwq::timer::fired();
    assert!(wq.queue_delayed(&dw, Duration::from_secs(3600)).unwrap());
    assert!(dw.flush().unwrap());
    assert_eq!(runs(&n), 1, "ran before flush returned");
    assert!(!dw.is_pending());
    assert_eq!(cmwq::timer::fired(), fired_before + 1);
    assert_eq!(cmwq::timer::advance(Duration::from_secs(7200)), Some(0));
    assert_eq!(runs(&n), 1);
}

#[test]
fn disable_deletes_the_timer_and_blocks_arming_until_enabled() {
    let _g = paused();
    let wq = Workqueue::builder("d-disable").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS * 2).unwrap());
    assert!(dw.disable(), "was pending");
    assert!(!dw.timer_pending());
    assert!(!wq.queue_delayed(&dw, MS).unwrap(), "disabled");
    assert!(!wq.mod_delayed(&dw, MS).unwrap(), "disabled: left alone");
    assert!(!dw.timer_pending());
    assert!(!dw.disable(), "second level, nothing pending");
    assert_eq!(cmwq::timer::advance(MS * 10), Some(0));
    assert!(!dw.enable());
    assert!(dw.enable());
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    assert_eq!(cmwq::timer::advance(MS), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);
    assert!(!dw.disable_sync().unwrap());
    assert!(dw.enable());
}

#[test]
fn enable_of_an_armed_item_is_an_underflow_and_keeps_the_timer() {
    let _g = paused();
    let wq = Workqueue::builder("d-underflow").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    assert!(dw.enable(), "not disabled: warns, depth stays 0");
    assert!(dw.timer_pending(), "the timer survives");
    assert_eq!(cmwq::timer::advance(MS), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1);
}

#[test]
fn queue_delayed_on_checks_the_cpu_and_runs_there() {
    let _g = paused();
    let wq = Workqueue::builder("d-on").flags(WqFlags::PERCPU).build().unwrap();
    let bad = 1 << 20;
    let (dw, _) = counting();
    let e = wq.queue_delayed_on(bad, &dw, MS).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidCpu { cpu, .. } if *cpu == bad), "{e}");
    assert!(e.to_string().contains("d-on"), "the error names the queue: {e}");
    assert!(!dw.is_pending(), "left untouched");
    assert!(wq.mod_delayed_on(bad, &dw, MS).is_err());
    for &cpu in &cmwq::allowed_cpus() {
        let ran_on = Arc::new(parking_lot::Mutex::new(None));
        let r = ran_on.clone();
        let dw = DelayedWork::new(move |_| *r.lock() = cmwq::debug::current_cpu());
        assert!(wq.queue_delayed_on(cpu, &dw, MS * 2).unwrap());
        assert_eq!(cmwq::timer::advance(MS * 2), Some(1));
        dw.flush().unwrap();
        assert_eq!(*ran_on.lock(), Some(cpu));
        assert!(!wq.mod_delayed_on(cpu, &dw, MS).unwrap());
        assert_eq!(cmwq::timer::advance(MS), Some(1));
        dw.flush().unwrap();
        assert_eq!(*ran_on.lock(), Some(cpu));
    }
}

#[test]
fn schedule_delayed_work_uses_the_system_queue() {
    let _g = paused();
    let (dw, n) = counting();
    assert!(cmwq::schedule_delayed_work(&dw, MS * 4));
    assert!(!cmwq::schedule_delayed_work(&dw, MS * 4));
    let cpu = cmwq::allowed_cpus()[0];
    assert!(!cmwq::schedule_delayed_work_on(cpu, &dw, MS).unwrap(), "still pending");
    assert_eq!(cmwq::timer::advance(MS * 4), Some(1));
    dw.flush().unwrap();
    assert!(cmwq::schedule_delayed_work_on(cpu, &dw, MS).unwrap());
    assert_eq!(cmwq::timer::advance(MS), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 2);
}

#[test]
fn the_callback_gets_the_delayed_handle_and_can_rearm_itself() {
    let _g = paused();
    let wq = Workqueue::builder("d-periodic").flags(WqFlags::PERCPU).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let (n2, wq2) = (n.clone(), wq.clone());
    let dw = DelayedWork::new(move |dw| {
        assert!(!dw.is_pending(), "PENDING is released before the callback");
        if n2.fetch_add(1, Ordering::SeqCst) < 4 {
            assert!(wq2.queue_delayed(dw, MS * 10).unwrap());
        }
    });
    assert!(wq.queue_delayed(&dw, MS * 10).unwrap());
    for round in 1..=5 {
        assert_eq!(cmwq::timer::advance(MS * 10), Some(1), "round {round}");
        // Wait for this round's callback (and its re-arm) before moving the clock.
        wait_for("the round's run", || runs(&n) == round);
        dw.work().flush().unwrap();
    }
    assert!(!dw.is_pending());
    assert_eq!(cmwq::timer::advance(MS * 100), Some(0));
    assert_eq!(runs(&n), 5);
}

#[test]
fn cancel_sync_stops_a_self_rearming_item() {
    let _g = paused();
    let wq = Workqueue::builder("d-periodic-stop").flags(WqFlags::PERCPU).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let (n2, wq2) = (n.clone(), wq.clone());
    let dw = DelayedWork::new(move |dw| {
        // Re-arm before counting: the test moves the clock once it sees the count,
        // and a timer armed after that move would wait for the next one.
        let _ = wq2.queue_delayed(dw, MS);
        n2.fetch_add(1, Ordering::SeqCst);
    });
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    for _ in 0..3 {
        let before = runs(&n);
        cmwq::timer::advance(MS);
        wait_for("a run", || runs(&n) > before);
    }
    assert!(dw.cancel_sync().unwrap() || !dw.is_pending());
    assert!(!dw.is_pending() && !dw.timer_pending());
    let after = runs(&n);
    assert_eq!(cmwq::timer::advance(MS * 100), Some(0));
    wq.flush().unwrap();
    assert_eq!(runs(&n), after);
}

#[test]
fn arming_from_outside_a_draining_queue_is_refused() {
    let _g = paused();
    let wq = Workqueue::builder("d-drain").flags(WqFlags::PERCPU).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let g2 = gate.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let s2 = started.clone();
    wq.spawn(move || {
        s2.fetch_add(1, Ordering::SeqCst);
        g2.wait_blocking();
    })
    .unwrap();
    wait_for("the blocker starts", || started.load(Ordering::SeqCst) == 1);
    let drainer = {
        let wq = wq.clone();
        std::thread::spawn(move || wq.drain())
    };
    let (dw, _) = counting();
    wait_for("drain refuses outside queueing", || match wq.queue_delayed(&dw, MS) {
        Err(e) => {
            assert_eq!(*e.kind(), ErrorKind::Draining, "{e}");
            true
        }
        Ok(armed) => {
            assert!(armed && dw.cancel(), "the drain has not begun yet: undo the arm");
            false
        }
    });
    assert!(!dw.is_pending(), "the refused item is left untouched");
    assert!(matches!(wq.mod_delayed(&dw, MS), Err(e) if *e.kind() == ErrorKind::Draining));
    gate.open();
    drainer.join().unwrap().unwrap();
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    assert!(dw.cancel());
}

#[test]
fn destroy_runs_armed_items_and_refuses_new_timers() {
    let _g = paused();
    let wq = Workqueue::builder("d-destroy").flags(WqFlags::PERCPU).build().unwrap();
    let log = Log::<&'static str>::default();
    let (l1, l2) = (log.clone(), log.clone());
    let far = DelayedWork::new(move |_| l1.push("far"));
    let wq2 = wq.clone();
    let rearm_err = Arc::new(parking_lot::Mutex::new(None));
    let re = rearm_err.clone();
    let chain = DelayedWork::new(move |dw| {
        l2.push("chain");
        *re.lock() = Some(wq2.queue_delayed(dw, MS).map_err(|e| e.kind().clone()));
    });
    assert!(wq.queue_delayed(&far, Duration::from_secs(3600)).unwrap());
    assert!(wq.queue_delayed(&chain, Duration::from_secs(3600)).unwrap());
    let armed = cmwq::timer::armed();
    wq.destroy().unwrap();
    let mut ran = log.snapshot();
    ran.sort_unstable();
    assert_eq!(ran, ["chain", "far"], "both ran before destroy returned");
    assert_eq!(cmwq::timer::armed(), armed - 2);
    assert_eq!(*rearm_err.lock(), Some(Err(ErrorKind::Destroyed)), "a timer armed while destroying");
    assert!(!chain.is_pending(), "the refused re-arm left the item idle");
    let e = wq.queue_delayed(&far, MS).unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::Destroyed);
    assert!(e.to_string().contains("d-destroy"), "{e}");
}

#[test]
fn an_armed_timer_keeps_a_dropped_queue_attached() {
    let _g = paused();
    let wq = Workqueue::builder("d-detached").flags(WqFlags::UNBOUND).build().unwrap();
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS * 5).unwrap());
    drop(wq);
    assert_eq!(cmwq::timer::advance(MS * 5), Some(1));
    dw.flush().unwrap();
    assert_eq!(runs(&n), 1, "the item ran on the detached queue");
}

#[test]
fn resume_fires_what_became_due() {
    let _g = paused();
    let wq = Workqueue::builder("d-resume").flags(WqFlags::PERCPU).build().unwrap();
    let (dw, n) = counting();
    assert!(wq.queue_delayed(&dw, MS).unwrap());
    assert_eq!(cmwq::timer::advance(Duration::ZERO), Some(0));
    cmwq::timer::resume();
    assert!(!cmwq::timer::is_paused());
    assert_eq!(cmwq::timer::advance(MS), None, "advance needs a paused clock");
    wait_for("the real clock fires it", || runs(&n) == 1);
    cmwq::timer::pause();
}

/// Many items armed, fired and cancelled from two threads at once: every arm
/// ends in exactly one run or exactly one successful cancel, never both, never
/// neither.
#[test]
fn stress_every_arm_runs_once_or_is_cancelled_once() {
    let _g = paused();
    const ITEMS: usize = 400;
    const ROUNDS: usize = 25;
    let wq = Workqueue::builder("d-stress").flags(WqFlags::PERCPU).max_active(64).build().unwrap();
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..ITEMS).map(|_| AtomicUsize::new(0)).collect());
    let items: Vec<DelayedWork> = (0..ITEMS)
        .map(|i| {
            let r = runs.clone();
            DelayedWork::new(move |_| {
                r[i].fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let mut arms = vec![0usize; ITEMS];
    let cancels: Arc<Vec<AtomicUsize>> = Arc::new((0..ITEMS).map(|_| AtomicUsize::new(0)).collect());
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..ROUNDS {
        for (i, dw) in items.iter().enumerate() {
            let d = MS * (rnd() % 8) as u32;
            if wq.queue_delayed(dw, d).unwrap() {
                arms[i] += 1;
            }
        }
        // A canceller races the clock.
        let canceller = {
            let items = items.clone();
            let cancels = cancels.clone();
            let mut s = rnd();
            std::thread::spawn(move || {
                for _ in 0..ITEMS / 2 {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let i = (s % ITEMS as u64) as usize;
                    if items[i].cancel() {
                        cancels[i].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        for _ in 0..8 {
            cmwq::timer::advance(MS);
        }
        canceller.join().unwrap();
        cmwq::timer::advance(MS * 8);
        wq.flush().unwrap();
    }
    for i in 0..ITEMS {
        let (r, c) = (runs[i].load(Ordering::SeqCst), cancels[i].load(Ordering::SeqCst));
        assert_eq!(r + c, arms[i], "item {i}: {r} runs + {c} cancels != {} arms", arms[i]);
    }
    assert!(items.iter().all(|d| !d.is_pending()));
}
