//! The public types can be shared and moved across threads: compile-time checks
//! (this file does not build if one of them loses `Send` or `Sync`), and a runtime
//! test that uses the handles from several threads at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cmwq::{Builder, Busy, Error, ErrorKind, SpawnError, Work, Workqueue, WqFlags, WqStats};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

/// Checked at compile time; the test only makes the checks part of the test list.
#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<Work>();
    assert_send_sync::<Workqueue>();
    assert_send_sync::<Error>();
    assert_send_sync::<ErrorKind>();
    assert_send_sync::<WqStats>();
    assert_send_sync::<Busy>();
    assert_send_sync::<WqFlags>();
    assert_send_sync::<Builder>();
    assert_send_sync::<cmwq::debug::PoolSnapshot>();
    // A refused closure travels with its error.
    assert_send::<SpawnError<Box<dyn FnOnce() + Send>>>();
    assert_send_sync::<SpawnError<fn()>>();
    // `&'static Workqueue` of the system queues can be shared.
    assert_send_sync::<&'static Workqueue>();
    // `Error` works with `?` into the usual boxed error type.
    fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err(Workqueue::builder("").flags(WqFlags::PERCPU).build().unwrap_err())?
    }
    assert!(boxed().is_err());
}

#[test]
fn handles_move_and_are_shared_across_threads() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    let wq = Workqueue::builder("send-sync").flags(WqFlags::PERCPU).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });

    // Moved clones: each thread owns a Workqueue and a Work handle.
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (wq, w) = (wq.clone(), w.clone());
            std::thread::spawn(move || {
                let mut queued = 0usize;
                for _ in 0..PER_THREAD {
                    if wq.queue(&w).unwrap() {
                        queued += 1;
                    }
                    let _: Busy = w.busy();
                }
                // Send results and values of every public type back.
                (queued, wq.stats(), w.busy())
            })
        })
        .collect();
    let queued: usize = handles.into_iter().map(|h| h.join().unwrap().0).sum();
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), queued, "one execution per successful queue");

    // Shared by reference from scoped threads.
    let before = runs.load(Ordering::SeqCst);
    let queued: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| (0..PER_THREAD).filter(|_| wq.queue(&w).unwrap()).count()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst) - before, queued);

    // A work item moved into another thread's item and dropped there.
    let inner_runs = Arc::new(AtomicUsize::new(0));
    let ir = inner_runs.clone();
    let inner = Work::new(move |_| {
        ir.fetch_add(1, Ordering::SeqCst);
    });
    let wq2 = wq.clone();
    std::thread::spawn(move || {
        wq2.spawn(move || {
            let _ = cmwq::system::dfl().queue(&inner);
        })
        .unwrap();
    })
    .join()
    .unwrap();
    wq.flush().unwrap();
    cmwq::system::dfl().flush().unwrap();
    assert_eq!(inner_runs.load(Ordering::SeqCst), 1);

    // Errors cross threads.
    wq.destroy().unwrap();
    let wq3 = wq.clone();
    let w3 = w.clone();
    let e: Error = std::thread::spawn(move || wq3.queue(&w3).unwrap_err()).join().unwrap();
    assert_eq!(e.kind(), &ErrorKind::Destroyed);

    // The last handles are dropped on other threads.
    let (wq4, w4) = (wq.clone(), w.clone());
    drop(wq);
    drop(w);
    std::thread::spawn(move || {
        drop(wq4);
        drop(w4);
    })
    .join()
    .unwrap();
}
