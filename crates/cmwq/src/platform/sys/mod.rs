//! Every `unsafe` platform call of the library: CPU number, affinity, thread ids,
//! nice values, the thread CPU clock and a cache prefetch. Each block states the
//! callee's contract. [`probe`] reads another thread's scheduler state and CPU
//! clock with them; `sock` holds the stats endpoint's socket calls.

#[cfg(not(loom))]
pub(crate) mod probe;
#[cfg(all(feature = "stats-server", not(loom)))]
pub(crate) mod sock;

use std::io;
use std::time::Duration;

/// The CPU the calling thread runs on now (`sched_getcpu`, a vDSO call).
pub(crate) fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling thread's CPU.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// The number of CPU ids the system may use (`_SC_NPROCESSORS_CONF`), at least 1.
pub(crate) fn nr_cpu_ids() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// The CPUs the process may run on, ascending: the union of the calling thread's
/// affinity mask and the main thread's. A program that pinned the thread which
/// first uses cmwq (a benchmark's producer, say) still gets every CPU it was
/// started with; `taskset` on the whole process still narrows it.
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    let mut cpus = affinity_of(0)?;
    // SAFETY: getpid has no preconditions.
    let main = unsafe { libc::getpid() };
    if let Ok(more) = affinity_of(main) {
        cpus.extend(more);
        cpus.sort_unstable();
        cpus.dedup();
    }
    Ok(cpus)
}

/// The CPUs in thread `tid`'s affinity mask (0: the calling thread), ascending.
fn affinity_of(tid: libc::pid_t) -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero bytes are a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size we pass; a tid that
    // does not exist makes the call fail with ESRCH, nothing else.
    let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads bit `c` of an initialised set; c < CPU_SETSIZE.
    Ok((0..max).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Restricts the calling thread to `cpus`.
pub(crate) fn set_current_thread_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cpu id beyond CPU_SETSIZE"));
        }
        // SAFETY: `cpu` < CPU_SETSIZE (checked above) and `set` is initialised.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The kernel thread id of the calling thread.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Sets the nice value of the calling thread only (Linux nice is per thread).
pub(crate) fn set_current_thread_nice(nice: i32) -> io::Result<()> {
    let tid = gettid() as libc::id_t;
    // SAFETY: setpriority on our own tid with PRIO_PROCESS affects only this thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sched_setscheduler` of the calling thread.
fn set_current_thread_policy(policy: libc::c_int, prio: i32) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: prio };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread in the `SCHED_IDLE` policy: it runs only when its CPU
/// has nothing else to run (and gets a tiny share when it competes). Lowering a
/// thread's policy needs no privilege.
#[cfg_attr(loom, allow(dead_code))] // used by the idle sentinels, absent under loom
pub(crate) fn set_current_thread_sched_idle() -> io::Result<()> {
    set_current_thread_policy(libc::SCHED_IDLE, 0)
}

/// Puts the calling thread in `SCHED_FIFO` at real-time priority `prio` (1 is
/// the lowest). Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` allowing `prio`.
#[cfg_attr(loom, allow(dead_code))] // the BH contexts are absent under loom
pub(crate) fn set_current_thread_fifo(prio: i32) -> io::Result<()> {
    set_current_thread_policy(libc::SCHED_FIFO, prio)
}

/// Puts the calling thread back in `SCHED_OTHER` (its nice value is kept).
/// Lowering a thread's policy needs no privilege.
#[cfg_attr(loom, allow(dead_code))] // the BH contexts are absent under loom
pub(crate) fn set_current_thread_other() -> io::Result<()> {
    set_current_thread_policy(libc::SCHED_OTHER, 0)
}

/// `sched_yield`: the calling thread goes to the back of its priority's run
/// queue.
#[cfg_attr(loom, allow(dead_code))] // the BH contexts are absent under loom
pub(crate) fn sched_yield() {
    // SAFETY: sched_yield takes no arguments and cannot fail on Linux.
    unsafe {
        libc::sched_yield();
    }
}

/// Registers `child` to run in the child of every later `fork()`
/// (`pthread_atfork` with no prepare or parent handler).
pub(crate) fn at_fork_child(child: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `child` is a plain function that lives as long as the process; the
    // null handlers are allowed ("may be NULL", pthread_atfork(3)). The handler
    // runs in the single-threaded child and must be async-signal-safe, which the
    // caller's is (one atomic store).
    let rc = unsafe { libc::pthread_atfork(None, None, Some(child)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Registers `f` to run when the process exits normally (`atexit`: a return
/// from `main`, or `exit`).
#[cfg_attr(loom, allow(dead_code))] // used by the idle sentinels, absent under loom
pub(crate) fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `f` is a plain function that lives as long as the process; atexit
    // only records it.
    let rc = unsafe { libc::atexit(f) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit refused the handler"))
    }
}

/// Moves thread `tid` of this process out of `SCHED_IDLE` into `SCHED_OTHER`,
/// and lets it run on `cpus`. Widening the affinity needs no
/// privilege; leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of
/// 20 or more ("Treat SCHED_IDLE as nice 20" in the kernel's
/// `user_check_sched_setscheduler`), so that part may be refused (`EPERM`).
#[cfg_attr(loom, allow(dead_code))] // used by the idle sentinels, absent under loom
pub(crate) fn release_idle_thread(tid: i32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < 8 * std::mem::size_of::<libc::cpu_set_t>()) {
        // SAFETY: `cpu` < CPU_SETSIZE (filtered above) and `set` is initialised.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; a tid that no longer
    // exists only makes the call fail with ESRCH. The result does not matter: the
    // policy below is what counts.
    let _ = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param; a tid that no longer exists only
    // makes the call fail with ESRCH.
    let rc = unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The nice value of the calling thread.
pub(crate) fn current_thread_nice() -> i32 {
    let tid = gettid() as libc::id_t;
    // SAFETY: getpriority only reads the priority of our own thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }
}

/// The calling thread's timer slack (`PR_GET_TIMERSLACK`): how late past its
/// deadline the kernel may end a sleep of this thread to batch timer interrupts
/// (50 µs by default for normal threads).
pub(crate) fn current_thread_timer_slack() -> Duration {
    // SAFETY: PR_GET_TIMERSLACK reads a value of our own thread; the unused
    // arguments are zero as prctl(2) asks.
    let rc = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    // On failure assume the default.
    Duration::from_nanos(if rc < 0 { 50_000 } else { rc as u64 })
}

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`, ~0.3 µs).
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`): how late the
/// kernel may fire its timed waits to batch wake-ups (50 µs by default).
pub(crate) fn set_current_thread_timer_slack(ns: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects only the
    // calling thread; the unused arguments are zero as prctl(2) asks.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The id of the calling thread's CPU-time clock (`pthread_getcpuclockid`), which
/// any thread of the process may read with [`clock_time`] while this one lives.
#[cfg(not(loom))]
pub(crate) fn current_thread_cpu_clock() -> Option<libc::clockid_t> {
    let mut id: libc::clockid_t = 0;
    // SAFETY: pthread_self() is the calling thread, alive for the call; `id` is a
    // valid, writable clockid_t.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    (rc == 0).then_some(id)
}

/// Reads clock `id` (here: another thread's CPU clock, ~0.3 µs). `None` if the
/// clock is gone (its thread exited).
#[cfg(not(loom))]
pub(crate) fn clock_time(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; an invalid clock id only makes
    // clock_gettime fail with EINVAL.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Asks the CPU to start loading the cache lines at `p` (a hint; no fault, no
/// stall, nothing on other architectures). The worker loop prefetches the item it
/// will run next while it runs this one: items that waited behind many others
/// have usually left the cache.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p as *const i8;
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is in
        // the target's baseline). A prefetch is a hint that never dereferences in
        // the language's sense: it cannot fault, and an unmapped address is ignored.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The CPU thread `tid` of this process last ran on (`processor`, field 39 of
/// `/proc/self/task/TID/stat`); `None` where /proc is missing or the thread
/// exited.
pub(crate) fn thread_last_cpu(tid: i32) -> Option<usize> {
    let line = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
    // `pid (comm) S ...`: the command name may hold spaces and `)`; the fields
    // after its last `)` start with field 3.
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(39 - 3)?.parse().ok()
}
