//! `work_on_cpu` and `schedule_on_each_cpu`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cmwq::{ErrorKind, Work, Workqueue};

#[test]
fn work_on_cpu_runs_there_and_returns_the_result() {
    for cpu in cmwq::allowed_cpus() {
        let (ran_on, v) = cmwq::work_on_cpu(cpu, move || (cmwq::debug::current_cpu(), cpu * 10)).unwrap();
        assert_eq!(ran_on, Some(cpu));
        assert_eq!(v, cpu * 10);
    }
}

#[test]
fn work_on_cpu_rejects_an_invalid_cpu_without_panicking() {
    let bad = cmwq::allowed_cpus().last().unwrap() + 1000;
    let e = cmwq::work_on_cpu(bad, || ()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidCpu { cpu, .. } if *cpu == bad));
    assert_eq!(e.workqueue(), "events");
}

#[test]
fn work_on_cpu_resumes_a_panic_in_the_caller() {
    let cpu = cmwq::allowed_cpus()[0];
    let r = std::panic::catch_unwind(|| cmwq::work_on_cpu(cpu, || panic!("boom in work_on_cpu")));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"boom in work_on_cpu"));
    // The pool still works afterwards.
    assert_eq!(cmwq::work_on_cpu(cpu, || 7).unwrap(), 7);
}

#[test]
fn work_on_cpu_from_a_work_item() {
    let wq = Workqueue::builder("oncpu-nested").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let got = Arc::new(Mutex::new(None));
    let g2 = got.clone();
    let cpus = cmwq::allowed_cpus();
    let target = *cpus.last().unwrap();
    let w = Work::new(move |_| {
        *g2.lock().unwrap() = Some(cmwq::work_on_cpu(target, cmwq::debug::current_cpu));
    });
    wq.queue_on(cpus[0], &w).unwrap();
    w.flush().unwrap();
    assert_eq!(got.lock().unwrap().take(), Some(Ok(Some(target))));
}

#[test]
fn schedule_on_each_cpu_runs_once_per_cpu() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let (s2, c2) = (seen.clone(), count.clone());
    cmwq::schedule_on_each_cpu(move || {
        c2.fetch_add(1, Ordering::SeqCst);
        s2.lock().unwrap().push(cmwq::debug::current_cpu().unwrap());
    })
    .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, cmwq::allowed_cpus());
    assert_eq!(count.load(Ordering::SeqCst), cmwq::allowed_cpus().len());
}
