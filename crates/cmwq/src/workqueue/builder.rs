//! `Builder`: the checks of `alloc_workqueue`, then the queue.

use std::sync::{Arc, OnceLock};

use super::attrs::Attrs;
use super::core::{Unbound, WqCore};
use super::flags::{WqFlags, UNSUPPORTED, WQ_DFL_ACTIVE, WQ_MAX_ACTIVE};
use super::flush::Flush;
use super::handle::{Workqueue, WqHandle};
use super::nr_active::{NodeNrActive, WQ_DFL_MIN_ACTIVE};
use super::unbound::PwqTable;
use crate::platform::error::{Error, ErrorKind};
use crate::platform::log;
use crate::platform::loom::{AtomicBool, AtomicU32, Mutex};
use crate::pool::Rescuer;
use crate::pwq::PwqStats;
use crate::registry::Registry;

/// Builds a [`Workqueue`]; see [`Workqueue::builder`] and [`Workqueue::ordered`].
/// Nothing is checked until [`build`](Self::build).
///
/// ```
/// use cmwq::{Workqueue, WqFlags};
///
/// let wq = Workqueue::builder("crypto").flags(WqFlags::UNBOUND | WqFlags::CPU_INTENSIVE).max_active(4).build()?;
/// assert_eq!((wq.name(), wq.max_active()), ("crypto", 4));
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    name: String,
    flags: WqFlags,
    max_active: usize,
    ordered: bool,
    system: bool,
    attrs: Option<Attrs>,
}

impl Builder {
    /// Sets the flags. Default: empty, which builds an unbound, concurrency
    /// managed queue at normal priority (`PERCPU` asks for a per-CPU one). Any
    /// set is accepted here; [`build`](Self::build) refuses `PERCPU` with
    /// `UNBOUND`, and `BH` with anything but `HIGHPRI` and `PERCPU` (which it
    /// implies), with a `max_active` other than 0, or ordered (the kernel's
    /// `__WQ_BH_ALLOWS`; see [`WqFlags::BH`]). `MEM_RECLAIM` gives the queue a
    /// rescuer thread, started by `build` (see [`WqFlags::MEM_RECLAIM`]); it
    /// combines with every other flag but `BH`, and with [`Workqueue::ordered`].
    ///
    /// ```
    /// use cmwq::{ErrorKind, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("urgent").flags(WqFlags::HIGHPRI | WqFlags::CPU_INTENSIVE).build()?;
    /// assert!(wq.flags().contains(WqFlags::HIGHPRI));
    ///
    /// let err = Workqueue::builder("both").flags(WqFlags::PERCPU | WqFlags::UNBOUND).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidFlags(_)));
    ///
    /// let bh = Workqueue::builder("rx").flags(WqFlags::BH | WqFlags::HIGHPRI).build()?;
    /// assert!(bh.flags().contains(WqFlags::PERCPU)); // BH implies PERCPU
    /// let err = Workqueue::builder("bh-io").flags(WqFlags::BH | WqFlags::MEM_RECLAIM).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidFlags(m) if m.contains("MEM_RECLAIM")));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn flags(mut self, flags: WqFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets `max_active`: per CPU for per-CPU queues; for unbound ones, split
    /// between the NUMA nodes of its CPUs (each node at least
    /// [`min_active`](Workqueue::min_active)).
    /// Default 0, which means [`WQ_DFL_ACTIVE`] (1024). Values above
    /// [`WQ_MAX_ACTIVE`] (2048) are clamped with a warning, as in the kernel. Ordered
    /// queues accept only 1 (or 0); anything larger fails in `build`. A
    /// [`WqFlags::BH`] queue accepts only 0 (its items are never held back:
    /// internally `i32::MAX`, the kernel's `INT_MAX`); anything else fails in
    /// `build`.
    ///
    /// ```
    /// use cmwq::{ErrorKind, Workqueue, WQ_DFL_ACTIVE, WQ_MAX_ACTIVE};
    ///
    /// assert_eq!(Workqueue::builder("a").max_active(16).build()?.max_active(), 16);
    /// assert_eq!(Workqueue::builder("b").max_active(0).build()?.max_active(), WQ_DFL_ACTIVE);
    /// assert_eq!(Workqueue::builder("c").max_active(1 << 20).build()?.max_active(), WQ_MAX_ACTIVE);
    ///
    /// let err = Workqueue::ordered("d").max_active(2).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidFlags(_)));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn max_active(mut self, n: usize) -> Self {
        self.max_active = n;
        self
    }

    /// Sets the attributes of an unbound queue ([`Attrs`]): the nice value of
    /// its workers, its CPUs, its affinity scope and strictness. Without it the
    /// queue gets `Attrs::default()`, with nice -20 for `HIGHPRI` and otherwise
    /// the nice value the process started with. `build` refuses attributes on a
    /// `PERCPU` queue, and out-of-range values.
    ///
    /// ```
    /// use cmwq::{AffinityScope, Attrs, ErrorKind, Workqueue, WqFlags};
    ///
    /// let attrs = Attrs { affinity_scope: AffinityScope::Numa, ..Attrs::default() };
    /// let wq = Workqueue::builder("numa-local").attrs(attrs).build()?;
    /// assert_eq!(wq.attrs().unwrap().affinity_scope, AffinityScope::Numa);
    ///
    /// let err = Workqueue::builder("too-nice").attrs(Attrs::default().with_nice(20)).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidAttrs(_)));
    /// let err = Workqueue::builder("bound").flags(WqFlags::PERCPU).attrs(Attrs::default()).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidAttrs(_)));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn attrs(mut self, attrs: Attrs) -> Self {
        self.attrs = Some(attrs);
        self
    }

    /// `build` (`global.rs`) on a given instance: the checks of
    /// `alloc_workqueue`, then the queue.
    pub(crate) fn build_in(self, registry: &'static Registry) -> Result<Workqueue, Error> {
        // Checked in full, then cut to length: a control character past the
        // limit is refused too, and every error carries the short name.
        let bad_name = self.name.is_empty() || self.name.chars().any(char::is_control);
        let name = truncate_name(&self.name);
        if name.len() < self.name.len() {
            // `alloc_workqueue` (kernel/workqueue.c): `vsnprintf` into
            // `wq->name[WQ_NAME_LEN]`, then `pr_warn_once` on truncation.
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                log::warn!(workqueue = name, "workqueue: name exceeds WQ_NAME_LEN. Truncating")
            });
        }
        let e = |kind| Err(Error::new(name, kind));
        if bad_name {
            return e(ErrorKind::InvalidName);
        }
        let unknown = self.flags - WqFlags::all();
        if !unknown.is_empty() {
            return e(ErrorKind::InvalidFlags(format!(
                "unknown flag bits {:#x} (the kernel's WQ_SYSFS and internal flags have no meaning here)",
                unknown.bits()
            )));
        }
        for (flag, name) in UNSUPPORTED {
            if self.flags.contains(flag) {
                return e(ErrorKind::UnsupportedFlag(name));
            }
        }
        if self.flags.contains(WqFlags::BH) {
            check_bh(&self)?;
        }
        if self.flags.contains(WqFlags::PERCPU | WqFlags::UNBOUND) {
            return e(ErrorKind::InvalidFlags("PERCPU and UNBOUND exclude each other".into()));
        }
        let mut flags = self.flags;
        // A BH queue is per-CPU (`WQ_BH` implies `WQ_PERCPU`).
        if flags.contains(WqFlags::BH) {
            flags |= WqFlags::PERCPU;
        }
        // `WQ_POWER_EFFICIENT` is per-CPU unless the power-efficient setting is on.
        if flags.contains(WqFlags::POWER_EFFICIENT) && !flags.contains(WqFlags::UNBOUND) {
            flags |= if registry.ctx.config.power_efficient() { WqFlags::UNBOUND } else { WqFlags::PERCPU };
            if flags.contains(WqFlags::UNBOUND) {
                flags -= WqFlags::PERCPU;
            }
        }
        if self.ordered {
            if flags.contains(WqFlags::PERCPU) {
                return e(ErrorKind::InvalidFlags(
                    "an ordered workqueue is unbound; PERCPU makes no sense".into(),
                ));
            }
            if self.max_active > 1 {
                return e(ErrorKind::InvalidFlags(format!(
                    "an ordered workqueue has max_active 1, not {}",
                    self.max_active
                )));
            }
            flags |= WqFlags::UNBOUND;
        }
        // Neither `PERCPU` nor `UNBOUND`: unbound and concurrency managed, the
        // default the kernel is moving to (`README.md`, "Which queue").
        if !flags.contains(WqFlags::PERCPU) {
            flags |= WqFlags::UNBOUND;
        }
        let unbound = match (flags.contains(WqFlags::UNBOUND), self.attrs) {
            (false, Some(_)) => {
                return e(ErrorKind::InvalidAttrs(
                    "attributes apply to unbound workqueues, not PERCPU ones".into(),
                ))
            }
            (false, None) => None,
            (true, attrs) => {
                let attrs = attrs.unwrap_or_else(|| Attrs {
                    nice: if flags.contains(WqFlags::HIGHPRI) {
                        crate::pool::HIGHPRI_NICE
                    } else {
                        registry.ctx.topo.base_nice
                    },
                    ..Attrs::default()
                });
                attrs.check(name, &registry.ctx.topo)?;
                let scope = registry.ctx.config.resolve_scope(attrs.affinity_scope);
                let table = PwqTable::new(registry, attrs, scope, self.ordered, 1);
                Some(Unbound::new(table))
            }
        };
        let max_active = match self.max_active {
            _ if self.ordered => 1,
            // `alloc_workqueue`: a BH queue's `max_active` is `INT_MAX`.
            _ if flags.contains(WqFlags::BH) => BH_MAX_ACTIVE,
            0 => WQ_DFL_ACTIVE,
            n if n > WQ_MAX_ACTIVE => {
                log::warn!(
                    workqueue = name,
                    max_active = n,
                    limit = WQ_MAX_ACTIVE,
                    "workqueue: max_active requested is out of range, clamping between 1 and the limit"
                );
                WQ_MAX_ACTIVE
            }
            n => n,
        };
        // `init_rescuer`: a MEM_RECLAIM queue is built with its rescuer, or not at all.
        let rescuer = if flags.contains(WqFlags::MEM_RECLAIM) {
            match Rescuer::start(&self.name) {
                Ok(r) => Some(r),
                Err(err) => return e(ErrorKind::RescuerCreation(err.to_string())),
            }
        } else {
            None
        };
        let nr_slots = if unbound.is_some() { 0 } else { registry.ctx.topo.nr_cpu_ids };
        let has_nna = unbound.is_some() && !self.ordered;
        let core = Arc::new(WqCore {
            name: name.into(),
            flags,
            ordered: self.ordered,
            system: self.system,
            registry,
            max_active: AtomicU32::new(max_active as u32),
            nr_drainers: AtomicU32::new(0),
            destroying: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            pwqs: (0..nr_slots).map(|_| OnceLock::new()).collect(),
            nna: if has_nna {
                (0..=registry.ctx.topo.nr_nodes()).map(|_| NodeNrActive::new(0)).collect()
            } else {
                Box::new([])
            },
            min_active: AtomicU32::new(max_active.min(WQ_DFL_MIN_ACTIVE) as u32),
            unbound,
            flush: Flush::new(),
            retired: Mutex::new(PwqStats::default()),
            rescuer,
            flush_dep_warned: AtomicBool::new(false),
            bh_block_warned: AtomicBool::new(false),
        });
        core.update_node_max();
        registry.register_workqueue(Arc::downgrade(&core));
        Ok(Workqueue(Arc::new(WqHandle { core })))
    }

    /// The error of `build` in a forked child.
    #[cold]
    pub(crate) fn forked(&self) -> Error {
        Error::new(truncate_name(&self.name), ErrorKind::Forked)
    }

    pub(crate) fn system(mut self) -> Self {
        self.system = true;
        self
    }
}

impl Workqueue {
    /// Starts building a workqueue named `name` (`alloc_workqueue`). The name
    /// appears in errors and in the log, escaped as [`str::escape_debug`] does (a
    /// quote prints as `\"`), so it can never end the quoted name or forge a
    /// line of its own.
    ///
    /// **Length.** As in the kernel (`WQ_NAME_LEN` = 32 bytes with the NUL), a
    /// name keeps at most 31 bytes: [`build`](Builder::build) truncates a longer
    /// one (at a character boundary) and warns once per process, as
    /// `alloc_workqueue`'s `pr_warn_once` does. It is not refused, so code ported
    /// from the kernel keeps working. An empty name, or one with a control
    /// character anywhere (past the limit too), is refused with
    /// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName).
    ///
    /// ```
    /// use cmwq::Workqueue;
    ///
    /// let wq = Workqueue::builder("a-rather-long-name-for-a-workqueue").build()?;
    /// assert_eq!(wq.name(), "a-rather-long-name-for-a-workqu"); // 31 bytes, and a warning
    /// let wq = Workqueue::builder(r#"say "hi""#).build()?;
    /// let err = wq.queue_on(usize::MAX, &cmwq::Work::new(|_| {})).unwrap_err();
    /// assert!(err.to_string().starts_with(r#"workqueue "say \"hi\"": "#));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    ///
    /// ```
    /// use cmwq::{Work, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("net-rx").flags(WqFlags::HIGHPRI).max_active(8).build()?;
    /// let w = Work::new(|_| { /* handle a packet batch */ });
    /// wq.queue(&w)?;
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            flags: WqFlags::empty(),
            max_active: 0,
            ordered: false,
            system: false,
            attrs: None,
        }
    }

    /// Starts building an ordered workqueue: one item at a time, in queueing order
    /// (`alloc_ordered_workqueue`). Among the flags, `HIGHPRI`, `FREEZABLE` and
    /// `MEM_RECLAIM` are meaningful; `PERCPU` is refused (an ordered queue is
    /// unbound).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("journal").build()?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let items: Vec<Work> = (0..5)
    ///     .map(|i| {
    ///         let log = log.clone();
    ///         Work::new(move |_| log.lock().unwrap().push(i))
    ///     })
    ///     .collect();
    /// for w in &items {
    ///     wq.queue(w)?;
    /// }
    /// wq.flush()?;
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]); // in queueing order
    /// assert_eq!(wq.max_active(), 1);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn ordered(name: impl Into<String>) -> Builder {
        Builder { ordered: true, ..Self::builder(name) }
    }
}

/// The internal `max_active` of a BH queue (`INT_MAX` in `alloc_workqueue`):
/// its items are never held back.
pub(crate) const BH_MAX_ACTIVE: usize = i32::MAX as usize;

/// Flags a BH queue may carry besides `BH` (`__WQ_BH_ALLOWS`).
const BH_ALLOWS: WqFlags = WqFlags::BH.union(WqFlags::HIGHPRI).union(WqFlags::PERCPU);

/// `alloc_workqueue`'s BH checks, which the kernel WARNs about and fails with
/// NULL: only `HIGHPRI` and `PERCPU` beside `BH`, `max_active` 0, not ordered.
fn check_bh(b: &Builder) -> Result<(), Error> {
    let name = truncate_name(&b.name);
    let bad = b.flags - BH_ALLOWS;
    let why = if !bad.is_empty() {
        let names: Vec<&str> = bad.iter_names().map(|(n, _)| n).collect();
        format!(
            "BH allows only HIGHPRI and PERCPU beside it (the kernel's __WQ_BH_ALLOWS), not {}",
            names.join(" | ")
        )
    } else if b.ordered {
        "a BH workqueue cannot be ordered (its items run in queueing order per CPU already)".into()
    } else if b.max_active != 0 {
        format!("a BH workqueue takes max_active 0 (its items are never held back), not {}", b.max_active)
    } else {
        return Ok(());
    };
    Err(Error::new(name, ErrorKind::InvalidFlags(why)))
}

/// The kernel's `WQ_NAME_LEN`: a name holds at most `WQ_NAME_LEN - 1` bytes.
pub(crate) const WQ_NAME_LEN: usize = 32;

/// `name` cut to at most `WQ_NAME_LEN - 1` bytes, at a character boundary.
fn truncate_name(name: &str) -> &str {
    let mut end = name.len().min(WQ_NAME_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}
