//! `fork()` in a process that has used cmwq: the child's calls get a typed error
//! ([`ErrorKind::Forked`]) instead of queueing into pools whose threads did not
//! survive the fork, hanging in `flush()`, or blocking on a lock some thread held
//! at the moment of the fork.
//!
//! Each test forks; the child makes one call and leaves with `_exit(code)`; the
//! parent waits for it with a timeout (a child that hangs is killed, and the
//! test fails). The child touches nothing but the call under test.

use std::time::{Duration, Instant};

use cmwq::{ErrorKind, Work, Workqueue};

/// Exit codes of the child.
const OK_FORKED: i32 = 0;
const WRONG_ERROR: i32 = 2;
const NO_ERROR: i32 = 3;

/// Forks; the child runs `child` and exits with its code. Returns the child's
/// exit code, or panics if it did not exit within the timeout (it is killed).
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child calls only `child` (a cmwq call that must return at
    // once) and `_exit`; the parent only waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(99);
        // SAFETY: _exit ends the child at once, without running the parent's
        // atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid, writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "the child did not exit normally: status {status:#x}");
            return libc::WEXITSTATUS(status);
        }
        assert_eq!(r, 0, "waitpid: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung in its cmwq call (killed after 20 s)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The child's verdict on a call's result.
fn verdict<T: std::fmt::Debug>(r: Result<T, cmwq::Error>, wq: &str) -> i32 {
    match r {
        Err(e) if *e.kind() == ErrorKind::Forked && e.workqueue() == wq && e.to_string().contains("fork") => {
            OK_FORKED
        }
        Err(_) => WRONG_ERROR,
        Ok(_) => NO_ERROR,
    }
}

/// A queue that has run an item in this process (its pool's threads exist).
fn used_queue(name: &str) -> Workqueue {
    let wq = Workqueue::builder(name).build().unwrap();
    let w = Work::new(|_| {});
    wq.queue(&w).unwrap();
    w.flush().unwrap();
    wq
}

#[test]
fn queueing_in_a_forked_child_is_refused_with_a_typed_error() {
    let wq = used_queue("fork-queue");
    let w = Work::new(|_| {});
    assert_eq!(in_child(|| verdict(wq.queue(&w), "fork-queue")), OK_FORKED);
    assert_eq!(in_child(|| verdict(wq.spawn(|| {}).map_err(cmwq::Error::from), "fork-queue")), OK_FORKED);
    // The parent is unaffected.
    assert!(wq.queue(&w).unwrap());
    w.flush().unwrap();
}

#[test]
fn flushing_in_a_forked_child_is_refused_instead_of_hanging() {
    let wq = used_queue("fork-flush");
    assert_eq!(in_child(|| verdict(wq.flush(), "fork-flush")), OK_FORKED);
    // Before: the queueing returned Ok(true), nothing ran, and the flush hung.
    let w = Work::new(|_| {});
    let code = in_child(|| match verdict(wq.queue(&w), "fork-flush") {
        OK_FORKED => verdict(w.flush(), ""),
        other => other,
    });
    assert_eq!(code, OK_FORKED);
}

#[test]
fn building_a_queue_in_a_forked_child_is_refused() {
    let _wq = used_queue("fork-build");
    assert_eq!(in_child(|| verdict(Workqueue::builder("fork-child").build(), "fork-child")), OK_FORKED);
}

#[test]
fn a_lock_held_at_fork_time_does_not_block_the_child() {
    // Other threads queue and flush without pause while we fork: some fork lands
    // while one of them holds a pool lock.
    let wq = used_queue("fork-busy");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (wq, stop) = (wq.clone(), stop.clone());
            std::thread::spawn(move || {
                let w = Work::new(|_| {});
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    wq.queue(&w).unwrap();
                    w.flush().unwrap();
                }
            })
        })
        .collect();
    let w = Work::new(|_| {});
    for _ in 0..20 {
        assert_eq!(in_child(|| verdict(wq.queue(&w), "fork-busy")), OK_FORKED);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
}
