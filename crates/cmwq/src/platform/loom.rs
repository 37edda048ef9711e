//! The std/loom switch. Every synchronisation type the protocols depend on is
//! imported from here, so that `RUSTFLAGS="--cfg loom"` model-checks the real code.
//!
//! Both backends expose one API, shaped like `parking_lot`: `lock()` returns the
//! guard directly, and `Condvar::wait` takes the guard by value and hands it back.
//! `Arc` is not switched: work items are `Arc<dyn …>` trait objects, which loom's
//! `Arc` cannot hold, and reference counting is not part of any modelled protocol.
//! Nor are, each because no protocol depends on it:
//! - statistics and settings (`context/counters.rs`, `context/config.rs`,
//!   `monitor/stats.rs`, the `FAIL_SPAWNS` test hook): relaxed, and never on a
//!   synchronisation edge;
//! - `OnceLock`s (system queues, the instance, a pwq slot, thread handles):
//!   one-time initialisation, synchronised inside `OnceLock`;
//! - the pool table (`registry.rs`): a read-mostly map from ids to pools that
//!   never change once registered;
//! - the result slots of `work_on_cpu` (`oncpu.rs`): ordered by the flush.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use std::thread_local;

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A mutex (`parking_lot` in production).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(t: T) -> Self {
            Mutex(parking_lot::Mutex::new(t))
        }
        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    /// A reader-writer lock (`parking_lot` in production).
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(parking_lot::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(t: T) -> Self {
            RwLock(parking_lot::RwLock::new(t))
        }
        #[inline]
        pub(crate) fn read(&self) -> parking_lot::RwLockReadGuard<'_, T> {
            self.0.read()
        }
        pub(crate) fn write(&self) -> parking_lot::RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }

    /// A condition variable paired with [`Mutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        pub(crate) fn wait<'a, T>(&self, mut g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut g);
            g
        }
        /// Waits at most `d`.
        pub(crate) fn wait_for<'a, T>(
            &self,
            mut g: MutexGuard<'a, T>,
            d: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.0.wait_for(&mut g, d);
            g
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub(crate) mod thread {
        pub(crate) use std::thread::{yield_now, Thread};

        /// Waits a little for another thread to finish a short critical window:
        /// spin, then yield, then sleep, so a preempted owner gets the CPU.
        pub(crate) fn spin_wait(round: u32) {
            if round < 64 {
                crossbeam_utils::Backoff::new().snooze();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }

        /// Parks the current thread for at most `d` (loom parks without a timeout).
        pub(crate) fn park_timeout(d: std::time::Duration) {
            std::thread::park_timeout(d)
        }

        /// Spawns a detached, named thread and returns its handle for `unpark`.
        pub(crate) fn spawn_named<F>(name: String, f: F) -> std::io::Result<Thread>
        where
            F: FnOnce() + Send + 'static,
        {
            let h = std::thread::Builder::new().name(name).spawn(f)?;
            Ok(h.thread().clone())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use loom::thread_local;

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(t: T) -> Self {
            Mutex(loom::sync::Mutex::new(t))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(t: T) -> Self {
            RwLock(loom::sync::RwLock::new(t))
        }
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap()
        }
        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap()
        }
    }

    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(crate) fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(g).unwrap()
        }
        /// loom has no time: waits for a notification.
        pub(crate) fn wait_for<'a, T>(
            &self,
            g: MutexGuard<'a, T>,
            _d: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.0.wait(g).unwrap()
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub(crate) mod thread {
        //! loom's `unpark` of a thread that waits for a mutex trips loom's own
        //! assertions, so under loom a worker parks on a token guarded by a
        //! mutex and condvar: the same token semantics as `std::thread::park`.
        use std::cell::RefCell;
        use std::sync::Arc;

        #[derive(Debug)]
        struct Parker {
            token: loom::sync::Mutex<bool>,
            cv: loom::sync::Condvar,
        }

        /// The handle a pool keeps to wake a worker.
        #[derive(Debug, Clone)]
        pub(crate) struct Thread(Arc<Parker>);

        impl Thread {
            pub(crate) fn unpark(&self) {
                *self.0.token.lock().unwrap() = true;
                self.0.cv.notify_all();
            }
        }

        loom::thread_local! {
            static ME: RefCell<Option<Thread>> = RefCell::new(None);
        }

        pub(crate) use loom::thread::yield_now;

        pub(crate) fn spin_wait(_round: u32) {
            loom::thread::yield_now();
        }

        pub(crate) fn park_timeout(_d: std::time::Duration) {
            let me = ME.with(|m| m.borrow().clone()).expect("only workers park");
            let mut t = me.0.token.lock().unwrap();
            while !*t {
                t = me.0.cv.wait(t).unwrap();
            }
            *t = false;
        }

        pub(crate) fn spawn_named<F>(_name: String, f: F) -> std::io::Result<Thread>
        where
            F: FnOnce() + Send + 'static,
        {
            let t = Thread(Arc::new(Parker {
                token: loom::sync::Mutex::new(false),
                cv: loom::sync::Condvar::new(),
            }));
            let mine = t.clone();
            // Not joined: a model ends by retiring every worker (`Registry::shutdown`),
            // and loom runs each spawned thread to completion.
            loom::thread::spawn(move || {
                ME.with(|m| *m.borrow_mut() = Some(mine));
                f()
            });
            Ok(t)
        }
    }
}

pub(crate) use imp::*;

/// Debug tracing for loom models: `CMWQ_LOOM_TRACE=1` prints protocol events.
#[cfg(loom)]
macro_rules! ltrace {
    ($($t:tt)*) => {
        if std::env::var_os("CMWQ_LOOM_TRACE").is_some() {
            eprintln!($($t)*);
        }
    };
}
#[cfg(not(loom))]
macro_rules! ltrace {
    ($($t:tt)*) => {};
}
pub(crate) use ltrace;
