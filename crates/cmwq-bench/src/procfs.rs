//! Everything read from `/proc`: this process's threads, memory and CPU time,
//! the system's per-CPU counters, the CPU time of named threads, and a
//! background sampler of the thread count.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The value of `field` (e.g. `"Threads"`, `"VmRSS"`) in a `/proc/<pid>/status`
/// text: the first number after the colon (kB for memory fields).
pub(crate) fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn read_status() -> Option<String> {
    std::fs::read_to_string("/proc/self/status").ok()
}

/// `Threads:` of this process (0 where `/proc` is unavailable).
pub(crate) fn threads() -> usize {
    read_status().and_then(|s| status_field(&s, "Threads")).unwrap_or(0) as usize
}

/// `VmRSS:` of this process in bytes (0 where `/proc` is unavailable).
pub(crate) fn rss_bytes() -> u64 {
    read_status().and_then(|s| status_field(&s, "VmRSS")).unwrap_or(0) * 1024
}

/// Returns freed heap memory to the system where the C library allows it
/// (glibc's `malloc_trim`), so that RSS reflects live memory.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain size argument and only releases free
    // memory of the allocator's arenas; it is safe to call at any time.
    #[allow(unsafe_code, reason = "glibc's malloc_trim has no safe binding")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `/proc/loadavg`'s first three fields, if readable.
pub(crate) fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Waits until the thread count stops changing (threads that were joined may
/// still be leaving the kernel's thread group), at most `max`. Returns it.
pub(crate) fn settled_threads(max: Duration) -> usize {
    let deadline = std::time::Instant::now() + max;
    let mut last = threads();
    let mut same = 0;
    while same < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let t = threads();
        if t == last {
            same += 1;
        } else {
            same = 0;
            last = t;
        }
    }
    last
}

/// CPU time of this process (all its threads, living and exited), from
/// `CLOCK_PROCESS_CPUTIME_ID`.
pub(crate) fn process_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).map_or(Duration::ZERO, Into::into)
}

/// Jiffies of the CPUs in `cpus` from a `/proc/stat` text: (busy, idle, steal),
/// summed. Busy is user + nice + system + irq + softirq; idle includes iowait.
pub(crate) fn parse_proc_stat(stat: &str, cpus: &[usize]) -> (u64, u64, u64) {
    let mut t = (0, 0, 0);
    for line in stat.lines() {
        let mut f = line.split_whitespace();
        let Some(cpu) = f.next().and_then(|n| n.strip_prefix("cpu")).and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&cpu) {
            continue;
        }
        let v: Vec<u64> = f.map(|x| x.parse().unwrap_or(0)).collect();
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        t.0 += g(0) + g(1) + g(2) + g(5) + g(6);
        t.1 += g(3) + g(4);
        t.2 += g(7);
    }
    t
}

/// A point in time for [`CpuSplit`]: wall clock, this process's CPU time and the
/// system's per-CPU counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMark {
    wall: std::time::Instant,
    ours: Duration,
    stat: (u64, u64, u64),
}

impl CpuMark {
    /// Now, for the CPUs in `cpus`.
    pub(crate) fn now(cpus: &[usize]) -> CpuMark {
        let stat =
            std::fs::read_to_string("/proc/stat").map(|s| parse_proc_stat(&s, cpus)).unwrap_or_default();
        CpuMark { wall: std::time::Instant::now(), ours: process_cpu_time(), stat }
    }
}

/// Where the CPUs' time went between marks, as fractions of wall time × CPUs:
/// this process, other processes (busy time not ours), idle, and stolen by the
/// hypervisor. `/proc/stat` counts in jiffies (10 ms), so short spans are coarse;
/// sums over several runs are better.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CpuSplit {
    /// This process.
    pub ours: f64,
    /// Other processes.
    pub others: f64,
    /// Idle (and iowait).
    pub idle: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
    /// Wall seconds covered (summed over the spans added).
    pub wall_s: f64,
}

/// Accumulates spans between [`CpuMark`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuAccount {
    wall_ns: u128,
    ours_ns: u128,
    busy: u64,
    idle: u64,
    steal: u64,
}

impl CpuAccount {
    /// Adds the span from `a` to `b`.
    pub(crate) fn add(&mut self, a: &CpuMark, b: &CpuMark) {
        self.wall_ns += b.wall.duration_since(a.wall).as_nanos();
        self.ours_ns += b.ours.saturating_sub(a.ours).as_nanos();
        self.busy += b.stat.0.saturating_sub(a.stat.0);
        self.idle += b.stat.1.saturating_sub(a.stat.1);
        self.steal += b.stat.2.saturating_sub(a.stat.2);
    }

    /// CPU time of this process over the spans added.
    pub(crate) fn ours(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.ours_ns).unwrap_or(u64::MAX))
    }

    /// The split over `cores` CPUs, with `hz` jiffies per second.
    pub(crate) fn split(&self, cores: usize, hz: u64) -> CpuSplit {
        let cap = self.wall_ns as f64 * cores.max(1) as f64;
        if cap == 0.0 {
            return CpuSplit::default();
        }
        let j = 1e9 / hz.max(1) as f64;
        let ours = self.ours_ns as f64 / cap;
        let busy = self.busy as f64 * j / cap;
        CpuSplit {
            ours,
            others: (busy - ours).max(0.0),
            idle: self.idle as f64 * j / cap,
            steal: self.steal as f64 * j / cap,
            wall_s: self.wall_ns as f64 / 1e9,
        }
    }
}

/// Jiffies per second of `/proc/stat` (`USER_HZ`).
pub(crate) fn user_hz() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten();
    hz.and_then(|h| u64::try_from(h).ok()).filter(|&h| h > 0).unwrap_or(100)
}

/// The thread ids of this process's threads whose name (`comm`) satisfies `want`.
fn threads_named(want: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            want(comm.trim_end_matches('\n')).then_some(tid)
        })
        .collect()
}

/// The thread id of the first thread of this process named `name`.
pub(crate) fn find_thread(name: &str) -> Option<u32> {
    threads_named(|c| c == name).first().copied()
}

/// The thread ids of this process's threads whose name starts with `prefix`.
pub(crate) fn find_threads(prefix: &str) -> Vec<u32> {
    threads_named(|c| c.starts_with(prefix))
}

/// The first field of a `schedstat` text: time on the CPU in ns.
pub(crate) fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (clock ticks) of a `/proc/.../stat` line: fields 14 and 15,
/// counted after the `)` that closes the command name.
pub(crate) fn parse_stat_cpu_ticks(s: &str) -> Option<u64> {
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of thread `tid` of this process: `schedstat` where the kernel has it
/// (ns), else `stat` (clock ticks, converted). With the source's name.
pub(crate) fn thread_cpu(tid: u32) -> Option<(Duration, &'static str)> {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/self/task/{tid}/{f}")).ok();
    if let Some(ns) = read("schedstat").and_then(|s| parse_schedstat(&s)) {
        return Some((Duration::from_nanos(ns), "schedstat"));
    }
    let ticks = read("stat").and_then(|s| parse_stat_cpu_ticks(&s))?;
    Some((Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / user_hz())), "stat"))
}

/// A background thread that, while a window is open, samples `Threads:` every
/// `interval` and keeps the peak of `Threads - cmwq workers` and of `Threads`.
/// The caller turns those into one executor's threads.
#[derive(Debug)]
pub(crate) struct Sampler {
    shared: Arc<SamplerShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct SamplerShared {
    active: AtomicBool,
    stop: AtomicBool,
    peak_all: AtomicUsize,
    peak_non_cmwq: AtomicUsize,
}

impl SamplerShared {
    fn record(&self, t: usize) {
        let c = cmwq::debug::nr_workers();
        self.peak_all.fetch_max(t, Ordering::Relaxed);
        self.peak_non_cmwq.fetch_max(t.saturating_sub(c), Ordering::Relaxed);
    }

    fn sample(&self) {
        self.record(threads());
    }
}

/// Reads `Threads:` through one open descriptor (`pread` at 0): half the cost
/// of opening the file each time.
struct StatusReader {
    file: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl StatusReader {
    fn new() -> StatusReader {
        StatusReader { file: std::fs::File::open("/proc/self/status").ok(), buf: vec![0; 8192] }
    }

    fn threads(&mut self) -> usize {
        use std::os::unix::fs::FileExt;
        let n = match &self.file {
            Some(f) => f.read_at(&mut self.buf, 0).unwrap_or(0),
            None => return threads(),
        };
        std::str::from_utf8(&self.buf[..n]).ok().and_then(|s| status_field(s, "Threads")).unwrap_or(0)
            as usize
    }
}

/// Peaks seen in one sampling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peaks {
    /// Peak of `Threads:`.
    pub all: usize,
    /// Peak of `Threads:` minus cmwq's live workers at the same moment.
    pub non_cmwq: usize,
}

impl Sampler {
    /// Starts the sampler thread (idle until [`open`](Self::open)).
    ///
    /// # Panics
    /// If the thread cannot be created.
    pub(crate) fn start(interval: Duration) -> Sampler {
        let shared = Arc::new(SamplerShared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let mut reader = StatusReader::new();
                while !s.stop.load(Ordering::Acquire) {
                    if s.active.load(Ordering::Acquire) {
                        s.record(reader.threads());
                        std::thread::sleep(interval);
                    } else {
                        std::thread::park_timeout(Duration::from_millis(100));
                    }
                }
            })
            .expect("start the sampler thread");
        Sampler { shared, thread: Some(thread) }
    }

    /// Opens a window: resets the peaks and starts sampling.
    pub(crate) fn open(&self) {
        self.shared.peak_all.store(0, Ordering::Relaxed);
        self.shared.peak_non_cmwq.store(0, Ordering::Relaxed);
        self.shared.sample();
        self.shared.active.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Closes the window (one last sample) and returns its peaks.
    pub(crate) fn close(&self) -> Peaks {
        self.shared.sample();
        self.shared.active.store(false, Ordering::Release);
        Peaks {
            all: self.shared.peak_all.load(Ordering::Relaxed),
            non_cmwq: self.shared.peak_non_cmwq.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let s = "Name:\tx\nThreads:\t7\nVmRSS:\t  1234 kB\nVmRSSX:\t1 kB\n";
        assert_eq!(status_field(s, "Threads"), Some(7));
        assert_eq!(status_field(s, "VmRSS"), Some(1234));
        assert_eq!(status_field(s, "VmHWM"), None);
        assert!(threads() >= 1);
        assert!(rss_bytes() > 0);
    }

    #[test]
    fn proc_stat_split() {
        let stat = "cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 10 1 5 100 4 2 3 7 0 0\ncpu1 20 0 0 50 0 0 0 1 0 0\ncpu2 1 1 1 1 1 1 1 1\n";
        assert_eq!(parse_proc_stat(stat, &[0]), (21, 104, 7));
        assert_eq!(parse_proc_stat(stat, &[0, 1]), (41, 154, 8));
        let t0 = std::time::Instant::now();
        let a = CpuMark { wall: t0, ours: Duration::ZERO, stat: (0, 0, 0) };
        // 1 s on 2 CPUs at 100 Hz: we used 0.5 s, the system 1.5 s busy, 0.4 s idle, 0.1 s stolen.
        let b = CpuMark {
            wall: t0 + Duration::from_secs(1),
            ours: Duration::from_millis(500),
            stat: (150, 40, 10),
        };
        let mut acc = CpuAccount::default();
        acc.add(&a, &b);
        let s = acc.split(2, 100);
        let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
        assert!(
            close(s.ours, 0.25) && close(s.others, 0.5) && close(s.idle, 0.2) && close(s.steal, 0.05),
            "{s:?}"
        );
        assert!(close(s.wall_s, 1.0));
        assert_eq!(acc.ours(), Duration::from_millis(500));
        assert_eq!(CpuAccount::default().split(2, 100), CpuSplit::default());
        assert!(process_cpu_time() > Duration::ZERO);
        assert!(user_hz() > 0);
    }

    #[test]
    fn parses_schedstat_and_stat() {
        assert_eq!(parse_schedstat("275138297 366583739 230\n"), Some(275_138_297));
        assert_eq!(parse_schedstat(""), None);
        let stat = "17021 (a) b) S 17020 17021 17021 0 -1 4194560 6722 408850 0 178 8 19 5785 272 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(27));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn finds_a_named_thread_and_its_cpu_time() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::Builder::new()
            .name("bench-procfs-t".into())
            .spawn(move || {
                crate::cpu::burn(Duration::from_millis(2));
                let _ = rx.recv();
            })
            .unwrap();
        let tid = (0..2000).find_map(|_| {
            std::thread::sleep(Duration::from_millis(1));
            find_thread("bench-procfs-t")
        });
        if let Some(tid) = tid {
            let (cpu, src) = thread_cpu(tid).unwrap();
            assert!(src == "schedstat" || src == "stat");
            assert!(cpu <= Duration::from_secs(60));
            assert_eq!(find_threads("bench-procfs-"), vec![tid]);
        }
        assert_eq!(find_thread("no-such-thread-x"), None);
        drop(tx);
        h.join().unwrap();
    }

    #[test]
    fn sampler_sees_a_new_thread() {
        let s = Sampler::start(Duration::from_millis(1));
        let base = settled_threads(Duration::from_millis(50));
        s.open();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        std::thread::sleep(Duration::from_millis(10));
        let p = s.close();
        drop(tx);
        h.join().unwrap();
        // Other tests start and end threads meanwhile: only check what must hold.
        assert!(base >= 2 && p.all >= 3, "peak {} base {base}", p.all);
        assert!(StatusReader::new().threads() >= 1);
        assert!(p.non_cmwq <= p.all);
    }
}
