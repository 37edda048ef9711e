//! A broken internal invariant ends the process: continuing with a pool whose
//! accounting is half-updated would lose or duplicate work silently, which is
//! worse (rayon-core's `unwind.rs` does the same). A panic in a user's work item
//! is not a bug of ours: it is caught per item (`pool/worker.rs`).

/// Reports a broken internal invariant and aborts.
#[cold]
pub(crate) fn abort_on_bug(what: &str) -> ! {
    eprintln!("cmwq: internal error: {what}; aborting");
    std::process::abort()
}

/// Aborts the process if cmwq's own code panics while this guard lives (held
/// by every worker thread around its loop).
#[derive(Debug)]
pub(crate) struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        // Under loom a detected deadlock unwinds every model thread; let it report.
        if std::thread::panicking() && !cfg!(loom) {
            abort_on_bug("panic inside the cmwq worker loop");
        }
    }
}
