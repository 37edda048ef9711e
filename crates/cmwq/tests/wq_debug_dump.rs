//! `cmwq::debug::dump` (issue 16, §2): the list of live workqueues (a
//! destroyed or dropped queue leaves it), and what the dump shows of a known
//! state: a running item with its worker and age, an inactive item behind
//! `max_active`, a pool with work waiting, and the per-queue counters. Each
//! state is built with gates and channels and waited for by polling; no
//! assertion is about timing beyond "at least". The sleep monitor is off in
//! this binary (`support::hints_only`), so that a blocked item stays counted as
//! running and work behind it waits.

mod support;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use cmwq::debug::{dump, Dump, WqDump};
use cmwq::{Work, Workqueue, WqFlags};
use support::{wait_for, Gate, DEADLINE};

fn row<'a>(d: &'a Dump, name: &str) -> Option<&'a WqDump> {
    d.workqueues.iter().find(|w| w.name == name)
}

#[test]
fn the_list_holds_live_queues_and_drops_destroyed_and_dropped_ones() {
    support::hints_only();
    let a = Workqueue::builder("dump-list-a").build().unwrap();
    let b = Workqueue::builder("dump-list-b").flags(WqFlags::PERCPU).max_active(3).build().unwrap();
    let _ = cmwq::system::percpu();
    let d = dump();
    let ra = row(&d, "dump-list-a").expect("a live unbound queue is listed");
    let rb = row(&d, "dump-list-b").expect("a live per-CPU queue is listed");
    assert!(ra.flags.contains(WqFlags::UNBOUND) && ra.min_active.is_some(), "{ra:?}");
    assert!(!ra.nodes.is_empty(), "an unbound queue counts max_active per node: {ra:?}");
    assert!(ra.nodes.iter().all(|n| n.active == 0 && n.max >= 1), "{ra:?}");
    assert_eq!((rb.max_active, rb.min_active), (3, None));
    assert!(rb.flags.contains(WqFlags::PERCPU) && rb.nodes.is_empty() && !rb.ordered, "{rb:?}");
    let o = Workqueue::ordered("dump-list-ordered").build().unwrap();
    let d = dump();
    let ro = row(&d, "dump-list-ordered").expect("an ordered queue is listed");
    assert!(ro.ordered && ro.max_active == 1, "{ro:?}");
    assert!(d.to_string().contains("workqueue dump-list-ordered: flags=UNBOUND max_active=1"), "{d}");
    drop(o);
    // The system queues are workqueues too (created on first use).
    assert!(row(&d, "events").is_some(), "system queues are listed: {d}");

    a.destroy().unwrap();
    let d = dump();
    assert!(row(&d, "dump-list-a").is_none(), "a destroyed queue left the list");
    assert!(row(&d, "dump-list-b").is_some());

    drop(b);
    let d = dump();
    assert!(row(&d, "dump-list-b").is_none(), "a queue whose last handle was dropped left the list");
    drop(a);
}

#[test]
fn a_blocked_item_shows_as_running_with_its_age_and_the_one_behind_as_inactive() {
    support::hints_only();
    // Per-CPU, both items on one CPU: one pwq holds both.
    let wq = Workqueue::builder("dump-blocked").flags(WqFlags::PERCPU).max_active(1).build().unwrap();
    let cpu = cmwq::allowed_cpus()[0];
    cmwq::debug::set_accounting(true);
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let started = Gate::new();
    let s = started.clone();
    let first = Work::new(move |_| {
        s.open();
        // Blocks without telling the pool; bounded, in case the test fails.
        let _ = rx.lock().unwrap().recv_timeout(DEADLINE);
    });
    let second = Work::new(|_| {});
    wq.queue_on(cpu, &first).unwrap();
    wq.queue_on(cpu, &second).unwrap();
    assert!(started.wait_for(DEADLINE), "the first item started");
    std::thread::sleep(Duration::from_millis(20));

    let d = dump();
    let r = row(&d, "dump-blocked").expect("listed");
    assert_eq!(r.stats.in_flight, 2, "{r:?}");
    assert_eq!(r.stats.inactive, 1, "{r:?}");
    let pwq = r.pwqs.iter().find(|p| !p.running.is_empty()).expect("a pwq runs the first item");
    assert_eq!((pwq.active, pwq.max_active, pwq.inactive, pwq.pending), (1, 1, 1, 0), "{pwq:?}");
    let item = &pwq.running[0];
    assert_eq!(item.work, Some(first.id()), "the running item is `first`");
    assert!(item.exact, "timed from its start: {item:?}");
    assert!(item.running_for >= Duration::from_millis(20), "{item:?}");
    assert!(item.worker.starts_with(cmwq::debug::WORKER_THREAD_PREFIX), "{item:?}");
    assert!(item.tid.is_some(), "{item:?}");
    assert_eq!((item.cpu, pwq.cpu, pwq.pod.as_slice()), (Some(cpu), Some(cpu), &[cpu][..]), "{item:?}");
    assert!(!item.sleeping && !item.cpu_intensive, "it blocks unannounced, and the monitor is off: {item:?}");
    let pool = d.pools.iter().find(|p| p.id == pwq.pool).expect("the pwq's pool is listed");
    assert!(pool.busy >= 1 && pool.workers >= 1, "{pool:?}");
    assert!(pool.inactive >= 1, "{pool:?}");
    assert!(!pool.hung, "{pool:?}");

    let text = d.to_string();
    assert!(text.contains("workqueue dump-blocked: flags="), "{text}");
    assert!(text.contains("active=1/1 pending=0 inactive=1"), "{text}");
    assert!(text.contains("in-flight:"), "{text}");
    assert!(text.contains(&format!(":{:#x} for ", first.id())), "{text}");

    tx.send(()).unwrap();
    wq.flush().unwrap();
    let d = dump();
    let r = row(&d, "dump-blocked").unwrap();
    assert_eq!((r.stats.started, r.stats.completed, r.stats.in_flight, r.stats.inactive), (2, 2, 0, 0));
    assert!(r.pwqs.iter().all(|p| p.running.is_empty() && p.active == 0));
}

#[test]
fn cpu_time_counts_while_items_are_timed() {
    support::hints_only();
    let wq = Workqueue::builder("dump-cpu-time").build().unwrap();
    cmwq::debug::set_accounting(true);
    wq.spawn(|| support::burn_cpu(Duration::from_millis(5))).unwrap();
    wq.flush().unwrap();
    let s = wq.stats();
    assert!(s.cpu_time >= Duration::from_millis(5), "{s:?}");
    assert_eq!(row(&dump(), "dump-cpu-time").unwrap().stats, s);
}

#[test]
fn a_pool_with_work_waiting_shows_its_oldest_wait() {
    // One CPU's pod, one item at a time: the second item waits on the worklist
    // while the first blocks without telling the pool (the sleep monitor, which
    // would let the second run, is off in this binary).
    support::hints_only();
    let cpu = *cmwq::allowed_cpus().last().unwrap();
    let attrs =
        cmwq::Attrs { affinity_scope: cmwq::AffinityScope::Cpu, affinity_strict: true, ..Default::default() };
    let wq = Workqueue::builder("dump-waiting").attrs(attrs).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let g = gate.clone();
    let started = Gate::new();
    let s = started.clone();
    let first = Work::new(move |_| {
        s.open();
        g.wait_for(DEADLINE);
    });
    let second = Work::new(|_| {});
    wq.queue_on(cpu, &first).unwrap();
    assert!(started.wait_for(DEADLINE));
    wq.queue_on(cpu, &second).unwrap();
    let _ = dump(); // the first look
    std::thread::sleep(Duration::from_millis(20));
    let d = dump();
    let r = row(&d, "dump-waiting").unwrap();
    let pwq = r.pwqs.iter().find(|p| p.pending == 1).unwrap_or_else(|| panic!("the second item waits: {d}"));
    let pool = d.pools.iter().find(|p| p.id == pwq.pool).unwrap();
    assert_eq!(pool.pod, vec![cpu]);
    // An unbound worker's CPU is read from /proc: a strict pod's worker stays there.
    let item = pwq.running.first().unwrap_or_else(|| panic!("the first item runs: {d}"));
    assert_eq!(item.cpu, Some(cpu), "{item:?}");
    assert!(pool.pending >= 1, "{pool:?}");
    let waited = pool.oldest_wait.expect("work waits");
    assert!(waited >= Duration::from_millis(20), "at least since the first look: {pool:?}");
    assert!(!pool.hung, "the watchdog's threshold (30 s) is far: {pool:?}");
    assert!(d.to_string().contains(&format!("pool {} (", pool.id)));

    // The watchdog's notion of a stall: no item started for its threshold.
    // Driven by the paused timer clock, as the watchdog's own tests do.
    let old_thresh = cmwq::watchdog::thresh();
    cmwq::timer::pause();
    let thresh = Duration::from_secs(4);
    cmwq::watchdog::set_thresh(thresh).unwrap();
    for _ in 0..6 {
        cmwq::timer::advance(Duration::from_secs(1));
    }
    let d = dump();
    cmwq::timer::resume();
    cmwq::watchdog::set_thresh(old_thresh).unwrap();
    let p = d.pools.iter().find(|p| p.id == pool.id).unwrap();
    assert_eq!(d.watchdog_thresh, thresh);
    assert!(p.oldest_wait.is_some_and(|w| w >= thresh), "{p:?}");
    assert!(p.hung, "no item started for the threshold: {p:?}");
    assert!(d.to_string().contains(" HUNG"), "{d}");
    gate.open();
    wq.flush().unwrap();
    wait_for("the pool's worklist to drain", || {
        dump().pools.iter().find(|p| p.id == pool.id).is_some_and(|p| p.oldest_wait.is_none())
    });
}
