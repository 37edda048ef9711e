//! The sleep monitor (issue 4): a worker that blocks without telling the pool —
//! in a plain `std::thread::sleep`, a `std::sync::Mutex`, a `read` on a pipe — no
//! longer stalls its CPU: another worker starts and the items waiting behind it
//! run while it is blocked. CPU-bound items are not mistaken for blocked ones, and
//! one that hogs the CPU past the threshold is marked CPU-intensive.
//!
//! Assertions are event orders and counts. Each blocker waits for an event that
//! only the items queued behind it produce, with a generous deadline that only
//! turns a stall into a failure (it logs "timed out"). The tests take the pool lock
//! exclusively, as they watch one CPU pool's accounting and the monitor's
//! process-wide counters; it also turns the CPU-intensive rule off, so a test of
//! that rule sets the threshold it needs, and no other test can be rescued by it.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::Work;
use support::{
    assert_second_ran_while_first_blocked, blocked_then_second, burn, burn_cpu, cpu0, exclusive,
    plain_sleeper_then_second, pool_of, warm_queue, Bounded, BoundedQueue, Log, DEADLINE,
};

#[test]
fn plain_thread_sleep_lets_the_next_item_start() {
    let _s = exclusive();
    let log = plain_sleeper_then_second("mon-sleep");
    assert_second_ran_while_first_blocked(&log, "w1 wake");
}

#[test]
fn plain_mutex_lets_the_next_item_start() {
    let _s = exclusive();
    // The test thread holds a std Mutex that w1 wants; w2 hands it over.
    let m = Arc::new(std::sync::Mutex::new(()));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let m = m.clone();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let g = m.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = rx.recv_timeout(DEADLINE);
            drop(g);
        });
        locked_rx.recv().unwrap();
        h
    };
    let tx = std::sync::Mutex::new(Some(tx));
    let log = blocked_then_second(
        "mon-mutex",
        move || {
            let _g = m.lock().unwrap();
            "w1 got the lock"
        },
        move || drop(tx.lock().unwrap().take()),
    );
    holder.join().unwrap();
    assert_second_ran_while_first_blocked(&log, "w1 got the lock");
}

#[test]
fn read_on_a_pipe_lets_the_next_item_start() {
    let _s = exclusive();
    let (reader, writer) = std::io::pipe().unwrap();
    let reader = std::sync::Mutex::new(reader);
    let writer = Arc::new(std::sync::Mutex::new(Some(writer)));
    // Failure guard: if w2 never runs, close the pipe after DEADLINE so that w1 sees
    // end-of-file ("w1 read failed") instead of hanging the test.
    let guard = writer.clone();
    std::thread::spawn(move || {
        std::thread::sleep(DEADLINE);
        guard.lock().unwrap().take();
    });
    let log = blocked_then_second(
        "mon-pipe",
        move || {
            let mut b = [0u8; 1];
            match reader.lock().unwrap().read(&mut b) {
                Ok(1) => "w1 read",
                _ => "w1 read failed",
            }
        },
        move || {
            if let Some(w) = writer.lock().unwrap().as_mut() {
                w.write_all(b"x").unwrap();
            }
        },
    );
    assert_second_ran_while_first_blocked(&log, "w1 read");
}

/// CPU-bound items are not taken for blocked ones: the monitor never takes a
/// worker out of `nr_running`, so they run one at a time and no thread is made.
///
/// On a virtual machine the kernel may charge a thread for time its vCPU was
/// stolen by the host (jumps of 25 ms were seen here), so an item may really
/// be charged past the threshold. The test therefore sets a threshold well above
/// the items' own CPU use and checks the monitor against what each item was
/// charged: every CPU-intensive mark, and every second runner or new thread,
/// must be explained by an item that was charged at least the threshold.
#[test]
fn cpu_bound_items_get_no_extra_threads_and_run_one_at_a_time() {
    let _s = exclusive();
    const THRESH: Duration = Duration::from_millis(50);
    cmwq::set_cpu_intensive_thresh(THRESH);
    let wq = warm_queue("mon-cpu");
    let before = pool_of(cpu0(), false).unwrap();
    let mon = cmwq::debug::monitor();
    let (running, peak, done, charged) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    const N: usize = 40;
    let items: Vec<Work> = (0..N)
        .map(|_| {
            let (running, peak, done, charged) =
                (running.clone(), peak.clone(), done.clone(), charged.clone());
            Work::new(move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let c0 = cmwq::debug::thread_cpu_time();
                burn(Duration::from_millis(2)); // 2 ms of wall time: at most that much CPU
                if cmwq::debug::thread_cpu_time() - c0 >= THRESH / 2 {
                    charged.fetch_add(1, Ordering::SeqCst); // stolen time charged to us
                }
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for w in &items {
        assert!(wq.queue_on(cpu0(), w).unwrap());
    }
    wq.flush_bounded().unwrap();
    cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    assert_eq!(done.load(Ordering::SeqCst), N);
    let after = pool_of(cpu0(), false).unwrap();
    let mon2 = cmwq::debug::monitor();
    let hogs = wq.stats().cpu_intensive as usize;
    let charged = charged.load(Ordering::SeqCst);
    assert_eq!(mon2.blocked, mon.blocked, "the monitor took a running worker for a blocked one");
    assert!(
        hogs <= charged,
        "{hogs} items marked CPU-intensive, but only {charged} were charged near the threshold"
    );
    assert!(
        peak.load(Ordering::SeqCst) <= 1 + hogs,
        "CPU-bound items ran concurrently on one CPU without a CPU-intensive mark"
    );
    assert!(
        after.created - before.created <= hogs as u64,
        "a CPU-bound pool created threads: {before:?} -> {after:?}"
    );
    wq.destroy_bounded().unwrap();
}

/// w1 burns CPU until w2 starts; w2 can only start once the monitor marks w1
/// CPU-intensive (after 10 ms of CPU).
#[test]
fn a_cpu_hog_is_marked_cpu_intensive_and_the_next_item_starts() {
    let _s = exclusive();
    cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    let wq = warm_queue("mon-hog");
    let log = Log::new();
    let w2_started = Arc::new(AtomicBool::new(false));
    let w1 = {
        let (log, w2_started) = (log.clone(), w2_started.clone());
        Work::new(move |_| {
            log.push("w1 start");
            let deadline = Instant::now() + DEADLINE;
            while !w2_started.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            log.push("w1 end");
        })
    };
    let w2 = {
        let (log, w2_started) = (log.clone(), w2_started.clone());
        Work::new(move |_| {
            w2_started.store(true, Ordering::SeqCst);
            log.push("w2 start");
        })
    };
    assert!(wq.queue_on(cpu0(), &w1).unwrap());
    log.expect("w1 start");
    assert!(wq.queue_on(cpu0(), &w2).unwrap());
    wq.flush_bounded().unwrap();
    log.assert_before("w2 start", "w1 end");
    assert_eq!(wq.stats().cpu_intensive, 1);
    assert!(wq.stats().cm_wakeup >= 1);
    wq.destroy_bounded().unwrap();
}

/// With the threshold at zero, a CPU-bound item keeps its CPU to the end, as
/// before the detection existed.
#[test]
fn a_zero_threshold_disables_cpu_intensive_detection() {
    let _s = exclusive();
    cmwq::set_cpu_intensive_thresh(Duration::ZERO);
    let wq = warm_queue("mon-nohog");
    let log = Log::new();
    let w1 = {
        let log = log.clone();
        Work::new(move |_| {
            log.push("w1 start");
            burn_cpu(Duration::from_millis(60));
            log.push("w1 end");
        })
    };
    let w2 = {
        let log = log.clone();
        Work::new(move |_| log.push("w2 start"))
    };
    assert!(wq.queue_on(cpu0(), &w1).unwrap());
    log.expect("w1 start");
    assert!(wq.queue_on(cpu0(), &w2).unwrap());
    wq.flush_bounded().unwrap();
    cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    log.assert_before("w1 end", "w2 start");
    assert_eq!(wq.stats().cpu_intensive, 0);
    wq.destroy_bounded().unwrap();
}

/// After the blocked worker returns, `nr_running` is exact again: the pool goes
/// back to zero running workers and a CPU-bound pair is serialised again.
#[test]
fn accounting_is_exact_after_the_blocked_worker_returns() {
    let _s = exclusive();
    let wq = warm_queue("mon-exact");
    support::assert_exact_after_plain_sleepers(&wq, Duration::from_millis(3));
    wq.destroy_bounded().unwrap();
}
