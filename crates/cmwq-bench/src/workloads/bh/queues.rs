//! The queues the bh workload compares, and how each is built.
//!
//! They are built with `Workqueue::builder`, never `cmwq::system::bh()`, so
//! that the workload compiles and runs on a library that refuses
//! `WqFlags::BH` (`ErrorKind::UnsupportedFlag`): such a queue's rows say
//! `n/a: <the error>` instead of figures.

use cmwq::{Workqueue, WqFlags};

/// A row's queue: one of cmwq's, or the bare hand-off they are measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `WqFlags::BH`: each CPU's items run on one pinned high-priority thread.
    Bh,
    /// `WqFlags::BH | WqFlags::HIGHPRI`.
    BhHighpri,
    /// `WqFlags::PERCPU`: the CPU's normal pool.
    PerCpu,
    /// `WqFlags::PERCPU | WqFlags::HIGHPRI`: the CPU's highpri pool (nice -20 where permitted).
    PerCpuHighpri,
    /// No queue: a dedicated thread pinned to the CPU, woken with
    /// `Thread::unpark` (a futex wake), the floor of any hand-off.
    Bare,
}

impl Kind {
    /// The latency rows, in table order.
    pub(crate) const LATENCY: [Kind; 5] =
        [Kind::Bh, Kind::BhHighpri, Kind::PerCpu, Kind::PerCpuHighpri, Kind::Bare];
    /// The storm rows: BH beside the strongest per-CPU queue.
    pub(crate) const STORM: [Kind; 2] = [Kind::Bh, Kind::PerCpuHighpri];

    /// The name in tables, JSON and progress lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Bh => "BH",
            Kind::BhHighpri => "BH | HIGHPRI",
            Kind::PerCpu => "PERCPU",
            Kind::PerCpuHighpri => "PERCPU | HIGHPRI",
            Kind::Bare => "bare pinned thread",
        }
    }

    /// The flags of a cmwq queue; `None` for the bare hand-off.
    fn flags(self) -> Option<WqFlags> {
        match self {
            Kind::Bh => Some(WqFlags::BH),
            Kind::BhHighpri => Some(WqFlags::BH | WqFlags::HIGHPRI),
            Kind::PerCpu => Some(WqFlags::PERCPU),
            Kind::PerCpuHighpri => Some(WqFlags::PERCPU | WqFlags::HIGHPRI),
            Kind::Bare => None,
        }
    }

    /// A fresh queue of this kind: `Ok(None)` for the bare hand-off, `Err`
    /// with the library's words when it refuses the flags (BH before the
    /// library has it).
    pub(crate) fn build(self) -> Result<Option<Workqueue>, String> {
        let Some(flags) = self.flags() else { return Ok(None) };
        let name = format!("bench-{}", self.name().to_lowercase().replace(" | ", "-"));
        Workqueue::builder(name).flags(flags).build().map(Some).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_queues_build_and_bh_builds_or_says_why() {
        for k in Kind::LATENCY {
            match k.build() {
                Ok(Some(wq)) => assert!(wq.flags().contains(k.flags().unwrap()), "{}", k.name()),
                Ok(None) => assert_eq!(k, Kind::Bare),
                // Before the library has BH: refused, and the reason names the flag.
                Err(e) => assert!(matches!(k, Kind::Bh | Kind::BhHighpri) && e.contains("BH"), "{e}"),
            }
        }
    }
}
