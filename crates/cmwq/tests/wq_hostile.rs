//! Hostile input gets a clear answer (issue 14, §4): panics whose payload or
//! closure panics again when dropped, names with quotes, newlines or 10 kB, and a
//! disable depth pushed past its limit. The log is captured by the tests'
//! `tracing` subscriber (`support::traces`), so a test can count the lines it caused.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cmwq::{ErrorKind, Work, Workqueue, WqFlags};
use support::{poll_until, DEADLINE};

/// Installs this binary's capturing subscriber (`support::traces`).
fn log() {
    support::traces::captured();
}

/// The captured log lines (`Ev::line`) that contain `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    let evs = support::traces::captured().lock().unwrap();
    evs.iter().filter(|e| e.line.contains(needle)).map(|e| e.line.clone()).collect()
}

// ---- panics whose clean-up panics again ----

/// Panics when dropped, and counts its drops.
struct Bomb(Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a Bomb went off in drop");
    }
}

#[test]
fn a_panic_payload_that_panics_in_drop_is_contained_and_counted() {
    log();
    let wq = Workqueue::builder("payload-bomb").flags(WqFlags::PERCPU).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let w = Work::new(move |_| std::panic::panic_any(Bomb(d.clone())));
    wq.queue(&w).unwrap();
    w.flush().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the payload is dropped once");
    // The worker goes on: the next item runs.
    let after = Work::new(|_| {});
    wq.queue(&after).unwrap();
    after.flush().unwrap();
    let s = wq.stats();
    assert_eq!(s.panicked, 2, "the item's panic and its payload's panic in drop: {s:?}");
    let lines = lines_with("payload-bomb");
    assert!(lines.iter().any(|l| l.contains("panicked")), "no log line names the queue: {lines:?}");
}

#[test]
fn a_closure_that_panics_when_the_worker_drops_it_is_counted_and_logged() {
    log();
    let wq = Workqueue::builder("closure-bomb").flags(WqFlags::PERCPU).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb = Bomb(drops.clone());
    let w = Work::new(move |_| {
        let _ = &bomb;
    });
    wq.queue(&w).unwrap();
    drop(w); // the worker holds the last handle
    wq.flush().unwrap();
    assert!(poll_until(DEADLINE, || drops.load(Ordering::SeqCst) == 1), "the closure was never dropped");
    let after = Work::new(|_| {});
    wq.queue(&after).unwrap();
    after.flush().unwrap();
    assert_eq!(wq.stats().panicked, 1, "the panic in the closure's drop is counted");
    let lines = lines_with("closure-bomb");
    assert!(lines.iter().any(|l| l.contains("drop")), "no log line names the queue: {lines:?}");
}

// ---- names ----

#[test]
fn names_are_escaped_wherever_they_are_printed() {
    let err = Workqueue::builder("evil\nERROR forged line").build().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidName);
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "a newline reached the message: {msg:?}");
    assert!(msg.starts_with(r#"workqueue "evil\nERROR forged line": "#), "{msg}");

    let wq = Workqueue::builder(r#"say "hi""#).build().unwrap();
    assert_eq!(wq.name(), r#"say "hi""#);
    let msg = wq.queue_on(usize::MAX, &Work::new(|_| {})).unwrap_err().to_string();
    assert!(msg.starts_with(r#"workqueue "say \"hi\"": CPU"#), "{msg}");

    log();
    let quoted = Workqueue::builder(r#"max "quoted""#).build().unwrap();
    quoted.set_max_active(100_000).unwrap();
    let lines = lines_with("quoted");
    assert!(lines.iter().any(|l| l.contains(r#"max \"quoted\""#)), "{lines:?}");
}

#[test]
fn a_long_name_is_truncated_as_the_kernel_does() {
    log();
    let long = "n".repeat(10_000);
    let wq = Workqueue::builder(long.as_str()).build().unwrap();
    assert_eq!(wq.name(), &long[..31], "WQ_NAME_LEN is 32 bytes with the NUL");
    let msg = wq.queue_on(usize::MAX, &Work::new(|_| {})).unwrap_err().to_string();
    assert!(msg.len() < 300, "a {} byte error message", msg.len());
    assert!(!lines_with("Truncating").is_empty(), "no warning for the truncation");
    // A multi-byte character is never cut in half.
    let wide = format!("{}é-and-more-after-the-limit", "x".repeat(30));
    let wq = Workqueue::builder(wide).build().unwrap();
    assert_eq!(wq.name(), "x".repeat(30));
    // A bad long name is refused, and the error is short too.
    let bad = format!("{}\u{7}", "b".repeat(10_000));
    let msg = Workqueue::builder(bad).build().unwrap_err().to_string();
    assert!(msg.len() < 300, "a {} byte error message", msg.len());
}

// ---- disable depth past its limit ----

#[test]
fn disable_past_the_limit_warns_once_per_item() {
    log();
    let count = || lines_with("disable count overflowed").len();
    let before = count();
    let w = Work::new(|_| {});
    for _ in 0..65_535 + 100 {
        w.disable();
    }
    assert_eq!(count() - before, 1, "one warning for this item");
    let other = Work::new(|_| {});
    for _ in 0..65_535 + 100 {
        other.disable();
    }
    assert_eq!(count() - before, 2, "one warning for the other item too");
}
