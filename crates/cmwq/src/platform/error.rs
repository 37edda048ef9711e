//! Typed errors. Every error names the workqueue it concerns and says what was wrong.

use std::fmt;

/// What went wrong; see [`Error`].
///
/// ```
/// use cmwq::{ErrorKind, Work, Workqueue};
///
/// let wq = Workqueue::builder("ingest").build()?;
/// let w = Work::new(|_| {});
/// match wq.queue_on(usize::MAX, &w) {
///     Err(e) => match e.kind() {
///         ErrorKind::InvalidCpu { cpu, allowed } => {
///             assert_eq!(*cpu, usize::MAX);
///             assert_eq!(*allowed, cmwq::allowed_cpus());
///         }
///         other => panic!("unexpected: {other:?}"),
///     },
///     Ok(_) => unreachable!(),
/// }
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The workqueue name is empty or contains control characters. (A name
    /// longer than 31 bytes is not an error: it is truncated, as the kernel does;
    /// see [`Workqueue::builder`](crate::Workqueue::builder).)
    InvalidName,
    /// A flag that a later version implements; never accepted as a silent no-op.
    /// (No flag is refused this way now; kept so that code matching on it
    /// still builds.)
    UnsupportedFlag(&'static str),
    /// A combination of flags or settings that makes no sense.
    InvalidFlags(String),
    /// A CPU number outside the CPUs this process may run on.
    InvalidCpu {
        /// The CPU asked for.
        cpu: usize,
        /// The CPUs that are valid.
        allowed: Vec<usize>,
    },
    /// The workqueue is being drained; only its own items may queue onto it.
    Draining,
    /// The workqueue is being destroyed, or has been.
    Destroyed,
    /// The call would wait for itself (the kernel would deadlock here).
    WouldDeadlock(&'static str),
    /// The operation is not allowed on an ordered workqueue.
    Ordered(&'static str),
    /// The operation is not allowed on a system workqueue.
    SystemWorkqueue(&'static str),
    /// Unbound attributes out of range or not applicable (`Attrs`).
    InvalidAttrs(String),
    /// The rescuer thread of a `MEM_RECLAIM` workqueue could not be created
    /// (the kernel's `alloc_workqueue` fails the same way); the reason.
    RescuerCreation(String),
    /// A NUMA node id past the last one ([`crate::nr_numa_nodes`]).
    InvalidNode {
        /// The node asked for.
        node: usize,
        /// How many node ids there are.
        nr_nodes: usize,
    },
    /// The process is the child of a `fork()` of a process that had used cmwq:
    /// the workers, the monitor and the timer thread did not survive the fork,
    /// and locks they held stay held. Every cmwq call that can fail refuses
    /// here, before taking a lock. See [`Workqueue`](crate::Workqueue)'s
    /// "fork()" section.
    Forked,
}

/// An error from a workqueue operation. `Display` reads
/// `workqueue "name": problem`, the name escaped as [`str::escape_debug`] does
/// (a quote reads `\"`, a newline `\n`), so a message is always one line.
///
/// ```
/// let err = cmwq::Workqueue::builder("").build().unwrap_err();
/// assert_eq!(err.kind(), &cmwq::ErrorKind::InvalidName);
/// assert!(err.to_string().starts_with(r#"workqueue "": invalid name"#));
/// let _: Box<dyn std::error::Error + Send + Sync> = Box::new(err); // a std error
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    wq: String,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(wq: &str, kind: ErrorKind) -> Self {
        Error { wq: wq.to_owned(), kind }
    }

    /// The name of the workqueue concerned.
    ///
    /// ```
    /// use cmwq::{Workqueue, WqFlags};
    ///
    /// let err = Workqueue::builder("softirq").flags(WqFlags::BH).max_active(4).build().unwrap_err();
    /// assert_eq!(err.workqueue(), "softirq");
    /// assert!(err.to_string().starts_with(r#"workqueue "softirq": "#));
    /// assert!(err.to_string().contains("max_active 0")); // a BH queue takes max_active 0
    /// ```
    pub fn workqueue(&self) -> &str {
        &self.wq
    }

    /// What went wrong.
    ///
    /// ```
    /// use cmwq::{ErrorKind, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("closing").build()?;
    /// wq.destroy()?;
    /// match wq.queue(&Work::new(|_| {})) {
    ///     Err(e) if *e.kind() == ErrorKind::Destroyed => {} // expected at shutdown
    ///     other => panic!("unexpected: {other:?}"),
    /// }
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// A workqueue name as it is printed everywhere (errors and log lines): with
/// [`str::escape_debug`], so that a quote or a control character in a name can
/// neither end the quoted name nor forge a line of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name<'a>(pub(crate) &'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.escape_debug(), f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "workqueue \"{}\": ", Name(&self.wq))?;
        match &self.kind {
            ErrorKind::InvalidName => {
                write!(f, "invalid name (it must be non-empty, without control characters)")
            }
            ErrorKind::UnsupportedFlag(flag) => write!(f, "flag {flag} is not supported yet"),
            ErrorKind::InvalidFlags(why) => write!(f, "invalid flags: {why}"),
            ErrorKind::InvalidCpu { cpu, allowed } => {
                write!(f, "CPU {cpu} is not one this process may run on (allowed: {allowed:?})")
            }
            ErrorKind::Draining => {
                write!(f, "is draining: only its own work items may queue onto it; the caller keeps the work")
            }
            ErrorKind::Destroyed => write!(f, "is destroyed; the caller keeps the work"),
            ErrorKind::WouldDeadlock(what) => write!(f, "{what} would deadlock"),
            ErrorKind::Ordered(op) => write!(f, "{op} is not allowed on an ordered workqueue"),
            ErrorKind::InvalidAttrs(why) => write!(f, "invalid attributes: {why}"),
            ErrorKind::InvalidNode { node, nr_nodes } => {
                write!(f, "NUMA node {node} does not exist (node ids are 0..{nr_nodes})")
            }
            ErrorKind::SystemWorkqueue(op) => write!(f, "{op} is not allowed on a system workqueue"),
            ErrorKind::Forked => write!(
                f,
                "cmwq cannot be used in the child of a fork(): the workers of the parent did not survive it \
                 (exec a program that builds its own workqueues)"
            ),
            ErrorKind::RescuerCreation(why) => write!(f, "cannot create its rescuer thread: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The error of [`Workqueue::spawn`](crate::Workqueue::spawn): the closure comes back
/// untouched, so nothing is lost.
///
/// ```
/// let wq = cmwq::Workqueue::builder("gone").build()?;
/// wq.destroy()?;
/// let err = wq.spawn(|| {}).unwrap_err();
/// println!("{err}"); // workqueue "gone": is destroyed; the caller keeps the work
/// let _closure = err.into_inner();
/// # Ok::<(), cmwq::Error>(())
/// ```
pub struct SpawnError<F> {
    error: Error,
    closure: F,
}

impl<F> SpawnError<F> {
    pub(crate) fn new(error: Error, closure: F) -> Self {
        SpawnError { error, closure }
    }
    /// Why the closure was refused.
    ///
    /// ```
    /// let wq = cmwq::Workqueue::builder("gone").build()?;
    /// wq.destroy()?;
    /// let err = wq.spawn(|| {}).unwrap_err();
    /// assert_eq!(err.error().kind(), &cmwq::ErrorKind::Destroyed);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn error(&self) -> &Error {
        &self.error
    }
    /// Gives the refused closure back.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let wq = cmwq::Workqueue::builder("gone").build()?;
    /// wq.destroy()?;
    /// let done = Arc::new(AtomicBool::new(false));
    /// let d = done.clone();
    /// let job = move || d.store(true, Ordering::Relaxed);
    /// let job = match wq.spawn(job) {
    ///     Ok(()) => unreachable!("a destroyed queue refuses work"),
    ///     Err(e) => e.into_inner(), // nothing is lost
    /// };
    /// job(); // run it here instead
    /// assert!(done.load(Ordering::Relaxed));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn into_inner(self) -> F {
        self.closure
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<F> std::error::Error for SpawnError<F> {}

/// The error without the refused closure, so that `?` works where the closure
/// need not come back (dropping it drops what it captured).
impl<F> From<SpawnError<F>> for Error {
    fn from(e: SpawnError<F>) -> Error {
        e.error
    }
}
