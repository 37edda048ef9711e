//! An I/O pool capped with `max_active`: an unbound workqueue that reads files,
//! at most four at a time, however many are queued.
//!
//! ```text
//! cargo run -p cmwq --example io_pool
//! ```
//!
//! Each item reads one of this crate's source files and counts its lines, then
//! waits 10 ms to stand in for a slow disk or a network file system. A few dozen
//! items are queued at once; the queue's `max_active` of 4 keeps the rest on its
//! inactive list until a running one finishes, so no more than four reads are
//! ever in flight. A high-water mark kept with an atomic shows it, and
//! [`Workqueue::stats`] shows the items waiting their turn.
//!
//! An unbound queue is the right home for this: a read that blocks holds one of
//! the four slots and gives its CPU to the next item, and `max_active` limits
//! the queue as a whole (per NUMA node, at least `min_active` each, on a
//! machine with several).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cmwq::{Workqueue, WqFlags};

/// How many reads may be in flight at once.
const MAX_IN_FLIGHT: usize = 4;
/// The extra latency of each read, as on a slow device.
const LATENCY: Duration = Duration::from_millis(10);

/// Counts the items running now and remembers the most ever seen at once.
#[derive(Debug, Default)]
struct Concurrency {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))?;
    let wq = Workqueue::builder("io-pool").flags(WqFlags::UNBOUND).max_active(MAX_IN_FLIGHT).build()?;
    let conc = Arc::new(Concurrency::default());
    let (tx, rx) = mpsc::channel();

    let start = Instant::now();
    for path in files.iter().cloned() {
        let (conc, tx) = (conc.clone(), tx.clone());
        wq.spawn(move || {
            conc.enter();
            // The hint costs nothing on an unbound queue; on a per-CPU queue it
            // would let another item start on this CPU while the read blocks.
            let text = cmwq::blocking(|| std::fs::read_to_string(&path));
            cmwq::sleep(LATENCY);
            conc.leave();
            // The receiver outlives every item: main waits for all of them below.
            let _ = tx.send((path, text.map(|t| t.lines().count())));
        })?;
    }
    drop(tx);
    let queued = wq.stats();
    println!(
        "queued {} reads on {:?} (max_active {}): {} in flight, {} of them waiting for a slot",
        files.len(),
        wq.name(),
        wq.max_active(),
        queued.in_flight,
        queued.inactive,
    );

    let mut lines = 0;
    for _ in &files {
        let (path, result) = rx.recv_timeout(Duration::from_secs(30))?;
        match result {
            Ok(n) => lines += n,
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
    let elapsed = start.elapsed();
    wq.flush()?;

    let peak = conc.peak.load(Ordering::SeqCst);
    let stats = wq.stats();
    println!("read {} files, {lines} lines, in {:.0?}", files.len(), elapsed);
    println!(
        "at most {peak} reads ran at once (limit {MAX_IN_FLIGHT}); one at a time would take {:.0?}",
        LATENCY * files.len() as u32,
    );
    println!(
        "stats: started {}, completed {}, in flight {}",
        stats.started, stats.completed, stats.in_flight
    );
    assert!(peak <= MAX_IN_FLIGHT, "max_active was exceeded: {peak} ran at once");
    assert_eq!(stats.completed, files.len() as u64);
    wq.destroy()?;
    Ok(())
}

/// The `.rs` files under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
