//! The closures of [`Workqueue::spawn`](crate::Workqueue::spawn): one-shot items
//! without a work-item header.
//!
//! A spawned closure can never be queued again, cancelled or flushed by handle:
//! nobody holds one. So it needs none of a [`Work`](super::Work)'s state word,
//! flush sequence numbers or busy record, and its list entry carries the boxed
//! closure alone: one allocation per spawn (none for a closure that captures
//! nothing, and none beyond the caller's own for a closure that is already a
//! `Box<dyn FnOnce() + Send>`, the job type executors pass around). The only way
//! to get a handle to a spawned item is [`current_work`](crate::current_work) from
//! inside it; the header that call needs is made then (`Work::spawned_header`), and
//! the worker resolves it when the closure returns, so the handle flushes and
//! reports `busy()` as a work item's would.

use std::any::Any;
use std::fmt;

/// A job already boxed as executors box theirs.
type BoxedJob = Box<dyn FnOnce() + Send + 'static>;

/// A closure behind a box, callable once, that can give the closure back.
pub(crate) trait SpawnFn: Send + 'static {
    fn run(self: Box<Self>);
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<F: FnOnce() + Send + 'static> SpawnFn for F {
    #[inline]
    fn run(self: Box<Self>) {
        (*self)()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A spawned closure, boxed once.
pub(crate) enum Spawned {
    /// Any closure, in its own box.
    Generic(Box<dyn SpawnFn>),
    /// A closure that came as a `Box<dyn FnOnce() + Send>`: kept as it is, not boxed twice.
    Boxed(BoxedJob),
}

impl Spawned {
    /// Boxes `f` (or keeps it, if it is a [`BoxedJob`] already).
    #[inline]
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Spawned {
        let mut f = Some(f);
        if let Some(job) = (&mut f as &mut dyn Any).downcast_mut::<Option<BoxedJob>>() {
            return Spawned::Boxed(job.take().expect("the closure is there"));
        }
        Spawned::Generic(Box::new(f.expect("the closure is there")))
    }

    /// Calls the closure, consuming it.
    #[inline]
    pub(crate) fn run(self) {
        match self {
            Spawned::Generic(f) => f.run(),
            Spawned::Boxed(f) => f(),
        }
    }

    /// Gives back the closure that [`new`](Self::new) got, when queueing was refused.
    pub(crate) fn into_closure<F: FnOnce() + Send + 'static>(self) -> F {
        let mut out: Option<F> = None;
        match self {
            Spawned::Generic(f) => out = Some(*f.into_any().downcast::<F>().expect("the type spawned")),
            Spawned::Boxed(f) => {
                *(&mut out as &mut dyn Any).downcast_mut::<Option<BoxedJob>>().expect("the type spawned") =
                    Some(f)
            }
        }
        out.expect("the closure is there")
    }

    /// Where the closure's captures live, for a cache prefetch.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *const u8 {
        match self {
            Spawned::Generic(f) => (&**f as *const dyn SpawnFn).cast(),
            Spawned::Boxed(f) => (&**f as *const (dyn FnOnce() + Send)).cast(),
        }
    }
}

impl fmt::Debug for Spawned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned").field("closure", &self.data_ptr()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_boxed_job_is_kept_and_a_closure_is_boxed() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let job: BoxedJob = Box::new(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let addr = (&*job as *const (dyn FnOnce() + Send)).cast::<u8>();
        let s = Spawned::new(job);
        assert!(matches!(s, Spawned::Boxed(_)), "a boxed job is not boxed again");
        assert_eq!(s.data_ptr(), addr, "the caller's box itself is kept");
        s.run();
        let h = hits.clone();
        let s = Spawned::new(move || {
            h.fetch_add(10, Ordering::SeqCst);
        });
        assert!(matches!(s, Spawned::Generic(_)));
        s.run();
        assert_eq!(hits.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn a_refused_closure_comes_back_as_it_went_in() {
        fn round_trip<F: FnOnce() + Send + 'static>(f: F) -> F {
            Spawned::new(f).into_closure::<F>()
        }
        let (v, hits) = (vec![1, 2, 3], Arc::new(AtomicUsize::new(0)));
        let h = hits.clone();
        let back = round_trip(move || {
            h.fetch_add(v.len(), Ordering::SeqCst);
        });
        back();
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let job: BoxedJob = Box::new(|| ());
        let addr = (&*job as *const (dyn FnOnce() + Send)).cast::<u8>();
        let back: BoxedJob = Spawned::new(job).into_closure();
        assert_eq!((&*back as *const (dyn FnOnce() + Send)).cast::<u8>(), addr);
    }
}
