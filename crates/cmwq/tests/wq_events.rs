//! The kernel's workqueue tracepoints as `tracing` events (issue 16, §1 and
//! §5): `workqueue_queue_work`, `workqueue_activate_work`,
//! `workqueue_execute_start` and `workqueue_execute_end`, target `cmwq`, level
//! TRACE, with their context in fields. A small subscriber of this binary
//! keeps every event; each test looks only at its own workqueue's.

#![cfg(feature = "tracing")]

mod support;

use cmwq::{Work, Workqueue, WqFlags};
use support::traces::{captured, Ev};
use support::{Gate, DEADLINE};

/// The tracepoint events of workqueue `wq` so far, in order.
fn events_of(wq: &str) -> Vec<Ev> {
    captured()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.name.starts_with("workqueue_") && e.get("workqueue") == Some(wq))
        .cloned()
        .collect()
}

/// The names of the events of item `id`, in order.
fn names_for(evs: &[Ev], id: usize) -> Vec<&'static str> {
    let id = id.to_string();
    evs.iter().filter(|e| e.get("work") == Some(&id)).map(|e| e.name).collect()
}

fn position(evs: &[Ev], name: &str, id: usize) -> usize {
    let id = id.to_string();
    evs.iter()
        .position(|e| e.name == name && e.get("work") == Some(&id))
        .unwrap_or_else(|| panic!("no {name} for item {id}: {evs:#?}"))
}

#[test]
fn an_item_is_queued_activated_started_and_ended_with_its_context_in_fields() {
    captured();
    let wq = Workqueue::builder("ev-one").flags(WqFlags::PERCPU).build().unwrap();
    let cpu = *cmwq::allowed_cpus().last().unwrap();
    let w = Work::new(|_| {});
    wq.queue_on(cpu, &w).unwrap();
    w.flush().unwrap();
    let evs = events_of("ev-one");
    assert_eq!(
        names_for(&evs, w.id()),
        [
            "workqueue_queue_work",
            "workqueue_activate_work",
            "workqueue_execute_start",
            "workqueue_execute_end"
        ],
        "{evs:#?}"
    );
    for e in &evs {
        assert_eq!((e.level, e.target), (tracing::Level::TRACE, "cmwq"), "{e:?}");
        // The message is the tracepoint's name: the context is in the fields.
        assert_eq!(e.get("message"), Some(e.name), "{e:?}");
    }
    let q = &evs[position(&evs, "workqueue_queue_work", w.id())];
    assert_eq!(q.get("req_cpu"), Some(cpu.to_string().as_str()), "{q:?}");
    assert_eq!(q.get("cpu"), Some(cpu.to_string().as_str()), "a per-CPU queue runs it there: {q:?}");
    assert_eq!(q.get("pod"), Some(cpu.to_string().as_str()), "{q:?}");
    let pool = q.get("pool").expect("the pool id");
    let pool_id: u32 = pool.parse().unwrap();
    let dumped = cmwq::debug::dump();
    let p = dumped.pools.iter().find(|p| p.id == pool_id).expect("the event's pool is a pool");
    assert_eq!(p.cpu, Some(cpu));
    for e in &evs {
        assert_eq!(e.get("pool"), Some(pool), "every event names the same pool: {e:?}");
    }
    let s = &evs[position(&evs, "workqueue_execute_start", w.id())];
    assert_eq!(s.get("cpu"), Some(cpu.to_string().as_str()), "{s:?}");
    assert!(s.get("worker").is_some(), "{s:?}");
}

#[test]
fn an_item_behind_max_active_is_activated_only_when_a_slot_frees() {
    captured();
    let wq = Workqueue::builder("ev-inactive").max_active(1).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let g = gate.clone();
    let started = Gate::new();
    let s = started.clone();
    let first = Work::new(move |_| {
        s.open();
        g.wait_blocking();
    });
    let second = Work::new(|_| {});
    wq.queue(&first).unwrap();
    assert!(started.wait_for(DEADLINE));
    wq.queue(&second).unwrap();

    // Queued, but held on the inactive list: no activation yet.
    let evs = events_of("ev-inactive");
    assert_eq!(names_for(&evs, second.id()), ["workqueue_queue_work"], "{evs:#?}");
    let q = &evs[position(&evs, "workqueue_queue_work", second.id())];
    assert_eq!(q.get("req_cpu"), None, "not asked for a CPU: {q:?}");
    assert_eq!(q.get("cpu"), None, "an unbound pool has no CPU: {q:?}");
    assert!(q.get("pod").is_some_and(|p| !p.is_empty()), "but a pod: {q:?}");

    gate.open();
    wq.flush().unwrap();
    let evs = events_of("ev-inactive");
    let all = [
        "workqueue_queue_work",
        "workqueue_activate_work",
        "workqueue_execute_start",
        "workqueue_execute_end",
    ];
    assert_eq!(names_for(&evs, first.id()), all, "{evs:#?}");
    assert_eq!(names_for(&evs, second.id()), all, "{evs:#?}");
    // The second is activated by the first's end, after its queueing.
    let order = [
        position(&evs, "workqueue_queue_work", second.id()),
        position(&evs, "workqueue_execute_end", first.id()),
        position(&evs, "workqueue_activate_work", second.id()),
        position(&evs, "workqueue_execute_start", second.id()),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}: {evs:#?}");
}

#[test]
fn spawned_closures_have_events_too() {
    captured();
    let wq = Workqueue::builder("ev-spawn").build().unwrap();
    wq.spawn(|| {}).unwrap();
    wq.flush().unwrap();
    let evs = events_of("ev-spawn");
    let names: Vec<_> = evs.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "workqueue_queue_work",
            "workqueue_activate_work",
            "workqueue_execute_start",
            "workqueue_execute_end"
        ],
        "{evs:#?}"
    );
    let id = evs[0].get("work").unwrap();
    assert!(evs.iter().all(|e| e.get("work") == Some(id)), "one id throughout: {evs:#?}");
}
