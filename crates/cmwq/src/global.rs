//! The process's cmwq instance: built on first use with the real topology, its
//! sleep monitor installed on the pools' doorbell. Everything public that does
//! not take a workqueue or a work item starts here.

use std::sync::OnceLock;

use crate::platform::error::Error;
use crate::platform::topology::Topology;
use crate::registry::Registry;
use crate::workqueue::{Builder, Workqueue};

/// The process-wide instance.
pub(crate) fn registry() -> &'static Registry {
    static GLOBAL: OnceLock<&'static Registry> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::detect())));
        crate::platform::fork::watch();
        crate::monitor::install(reg);
        // `CMWQ_STATS=1`: the endpoint's thread may ask for the instance at
        // once; it waits for this initialisation to finish.
        #[cfg(all(feature = "stats-server", not(loom)))]
        crate::stats::start_from_env();
        reg
    })
}

impl Builder {
    /// Creates the workqueue (`alloc_workqueue`).
    ///
    /// ```
    /// use cmwq::{Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("disk-io").flags(WqFlags::UNBOUND).max_active(4).build()?;
    /// assert_eq!(wq.max_active(), 4);
    /// let err = Workqueue::builder("bad").flags(WqFlags::PERCPU | WqFlags::UNBOUND).build().unwrap_err();
    /// assert_eq!(err.workqueue(), "bad"); // every error names its workqueue
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName): an empty name or
    /// one with control characters;
    /// [`ErrorKind::RescuerCreation`](crate::ErrorKind::RescuerCreation): the rescuer
    /// thread of a `MEM_RECLAIM` queue could not be started;
    /// [`ErrorKind::InvalidFlags`](crate::ErrorKind::InvalidFlags): `PERCPU` with
    /// `UNBOUND`, an ordered queue with `PERCPU` or a `max_active` other than 1,
    /// `BH` with a flag other than `HIGHPRI` and `PERCPU`, with a `max_active`
    /// other than 0, or ordered ([`WqFlags::BH`](crate::WqFlags::BH)).
    ///
    /// [`ErrorKind::Forked`](crate::ErrorKind::Forked) in the child of a
    /// `fork()` of a process that had used cmwq.
    pub fn build(self) -> Result<Workqueue, Error> {
        if crate::platform::fork::is_forked_child() {
            return Err(self.forked());
        }
        self.build_in(registry())
    }
}
