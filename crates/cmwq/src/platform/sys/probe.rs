//! How the monitor observes one worker thread without stopping it: the state
//! letter of `/proc/self/task/TID/stat`, read with `pread` on a file the worker
//! opened when it started (~3 µs), and the thread's CPU clock (~0.3 µs).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

/// Opened by a thread for itself (a worker, when it starts: `WorkerShared::probe`),
/// read by any other thread of the process.
#[derive(Debug)]
pub(crate) struct Probe {
    /// `/proc/self/task/TID/stat`; `None` where /proc is missing.
    stat: Option<File>,
    /// The thread's CPU-time clock.
    clock: Option<libc::clockid_t>,
}

/// What the scheduler says about a thread (`stat` field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchedState {
    /// `R`: on a CPU or waiting for one.
    Runnable,
    /// `S` (interruptible) or `D` (uninterruptible): blocked.
    Blocked,
    /// Anything else (stopped, traced, zombie) or unreadable.
    Other,
}

impl Probe {
    /// The calling thread's probe.
    pub(crate) fn current() -> Probe {
        let tid = super::gettid();
        Probe {
            stat: File::open(format!("/proc/self/task/{tid}/stat")).ok(),
            clock: super::current_thread_cpu_clock(),
        }
    }

    /// Whether this probe can tell blocked from running (needs /proc).
    pub(crate) fn usable(&self) -> bool {
        self.stat.is_some() && self.clock.is_some()
    }

    /// The thread's scheduler state now.
    pub(crate) fn state(&self) -> SchedState {
        let Some(f) = &self.stat else { return SchedState::Other };
        // `pid (comm) S ...`: comm is at most 16 bytes, the state follows it.
        let mut buf = [0u8; 128];
        match f.read_at(&mut buf, 0) {
            Ok(n) => parse_state(&buf[..n]),
            Err(_) => SchedState::Other,
        }
    }

    /// CPU time the thread has used; `None` once it exited.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        super::clock_time(self.clock?)
    }
}

/// The state letter of a `stat` line: the first field after the last `)` (the
/// command name may itself contain `)` and spaces).
pub(crate) fn parse_state(line: &[u8]) -> SchedState {
    let Some(close) = line.iter().rposition(|&b| b == b')') else { return SchedState::Other };
    match line.get(close + 2) {
        Some(b'R') => SchedState::Runnable,
        Some(b'S' | b'D') => SchedState::Blocked,
        _ => SchedState::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_state_letter() {
        assert_eq!(parse_state(b"1234 (cmwq/0:1) S 1 2 3"), SchedState::Blocked);
        assert_eq!(parse_state(b"1234 (cmwq/0:1) D 1 2 3"), SchedState::Blocked);
        assert_eq!(parse_state(b"1234 (cmwq/0:1) R 1 2 3"), SchedState::Runnable);
        assert_eq!(parse_state(b"1234 (a) b) c) R 1"), SchedState::Runnable);
        assert_eq!(parse_state(b"1234 (x) T 1"), SchedState::Other);
        assert_eq!(parse_state(b"1234 (trunc"), SchedState::Other);
        assert_eq!(parse_state(b""), SchedState::Other);
    }

    #[test]
    fn sees_its_own_thread_running() {
        let p = Probe::current();
        if !p.usable() {
            return; // no /proc here
        }
        assert_eq!(p.state(), SchedState::Runnable);
        let t0 = p.cpu_time().unwrap();
        let advanced = (0..100_000_000u64).any(|_| p.cpu_time().unwrap() > t0);
        assert!(advanced, "the thread CPU clock never moved while this thread spun");
    }

    #[test]
    fn sees_a_sleeping_thread_blocked() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(Probe::current()).unwrap();
            let _ = done_rx.recv();
        });
        let p = rx.recv().unwrap();
        if p.usable() {
            // It blocks in recv() soon; a bounded wait, no timing assumption.
            let mut blocked = false;
            for _ in 0..10_000 {
                if p.state() == SchedState::Blocked {
                    blocked = true;
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            assert!(blocked, "a thread waiting in recv() never showed as blocked");
        }
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
