//! CPU placement of the calling thread, and burning CPU time.

use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs in the calling thread's affinity mask, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else { return Vec::new() };
    (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
}

/// Restricts the calling thread to `cpu`.
///
/// # Errors
/// `cpu` is beyond the kernel's CPU set size, or not usable by this process.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    set_current_affinity(&[cpu])
}

/// Restricts the calling thread to `cpus`.
///
/// # Errors
/// A CPU beyond the kernel's CPU set size, or none of them usable.
pub fn set_current_affinity(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    Ok(sched_setaffinity(Pid::from_raw(0), &set)?)
}

/// Spins until the calling thread has used `d` of CPU time.
pub fn burn(d: Duration) {
    let start = cmwq::debug::thread_cpu_time();
    while cmwq::debug::thread_cpu_time().saturating_sub(start) < d {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_moves_the_thread() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(cmwq::debug::current_cpu(), Some(last));
            assert!(pin_current_thread(usize::MAX).is_err());
            set_current_affinity(&cpus).unwrap();
            assert_eq!(allowed_cpus(), cpus);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn burn_uses_cpu_time() {
        let t0 = cmwq::debug::thread_cpu_time();
        burn(Duration::from_millis(2));
        assert!(cmwq::debug::thread_cpu_time() - t0 >= Duration::from_millis(2));
    }
}
