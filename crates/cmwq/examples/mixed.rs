//! CPU work and blocking work mixed on one workqueue (the default: unbound and
//! concurrency managed, one pool per pod): each item burns
//! CPU, then blocks. Concurrency management keeps every CPU busy while items
//! block, with few threads, whether the blocking is announced or not.
//!
//! ```text
//! cargo run -p cmwq --example mixed
//! ```
//!
//! One producer thread (main) spreads `ITEMS` work items over the CPUs with
//! [`Workqueue::queue_on`]. Each item burns `BURN` of CPU time, then blocks for
//! `BLOCK`: even items announce it with [`cmwq::sleep`], so the pool starts the
//! next item on that CPU at once; odd items call plain `std::thread::sleep`,
//! which the sleep monitor (Linux) notices and treats the same way. The ideal
//! makespan is max(total CPU / cores, `BURN + BLOCK`); one thread per CPU that
//! waits out every block would need (`BURN + BLOCK`) × items / cores. The
//! program prints both beside the measured time, then the most worker threads
//! that were alive at once and what the sleep monitor did.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};

const ITEMS: usize = 160;
const BURN: Duration = Duration::from_millis(2);
const BLOCK: Duration = Duration::from_millis(4);
const ROUNDS: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wq = Workqueue::builder("mixed").build()?; // the default: unbound, concurrency managed
    let cpus = cmwq::allowed_cpus();
    let cores = cmwq::available_parallelism().max(1);
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..ITEMS).map(|_| AtomicU32::new(0)).collect());

    let items: Vec<Work> = (0..ITEMS)
        .map(|i| {
            let runs = runs.clone();
            Work::new(move |_| {
                burn_cpu(BURN);
                if i % 2 == 0 {
                    cmwq::sleep(BLOCK); // announced: the next item starts at once
                } else {
                    std::thread::sleep(BLOCK); // not announced: the sleep monitor finds it
                }
                runs[i].fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();

    let ideal = (BURN * ITEMS as u32 / cores as u32).max(BURN + BLOCK);
    let one_per_cpu = (BURN + BLOCK) * ITEMS as u32 / cores as u32;
    println!(
        "{ITEMS} items over CPUs {cpus:?} ({cores} usable): each burns {BURN:?} of CPU, then blocks {BLOCK:?} \
         (half in cmwq::sleep, half in std::thread::sleep)"
    );
    println!("ideal {ideal:.0?}; one thread per CPU would take {one_per_cpu:.0?}");

    for round in 1..=ROUNDS {
        let start = Instant::now();
        for (i, item) in items.iter().enumerate() {
            let queued = wq.queue_on(cpus[i % cpus.len()], item)?;
            assert!(queued, "item {i} was still pending from the last round");
        }
        wq.flush()?;
        let took = start.elapsed();
        let ratio = took.as_secs_f64() / ideal.as_secs_f64();
        let note = if round == 1 { " (pools and workers created on first use)" } else { "" };
        println!("round {round}: {took:.0?} = {ratio:.2}x ideal{note}");
    }

    let (peak, peak_cm) = cmwq::debug::peak_workers();
    let monitor = cmwq::debug::monitor();
    let stats = wq.stats();
    println!("worker threads: at most {peak} alive at once ({peak_cm} in per-CPU pools)");
    println!(
        "sleep monitor: {} unannounced blocks found ({} by idle sentinels), {} ticks, {} threads it started",
        monitor.blocked, monitor.by_sentinel, monitor.ticks, monitor.created
    );
    println!(
        "queue stats: {} started, {} completed, {} concurrency-management wake-ups",
        stats.started, stats.completed, stats.cm_wakeup
    );

    assert!(
        runs.iter().all(|r| r.load(Ordering::Relaxed) == ROUNDS as u32),
        "an item ran too often or not at all"
    );
    assert_eq!(stats.completed, (ITEMS * ROUNDS) as u64);
    wq.destroy()?;
    Ok(())
}

/// Spins until the calling thread has used `d` of CPU time (not wall time, so
/// sharing the CPU with other threads does not shorten the work). Gives up
/// after a generous wall-clock bound, so it never hangs.
fn burn_cpu(d: Duration) {
    let start = cmwq::debug::thread_cpu_time();
    let give_up = Instant::now() + d * 100 + Duration::from_secs(1);
    while cmwq::debug::thread_cpu_time().saturating_sub(start) < d && Instant::now() < give_up {
        std::hint::spin_loop();
    }
}
