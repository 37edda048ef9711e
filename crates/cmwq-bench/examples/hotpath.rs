//! A small driver of the queue → execute hot path, for profilers
//! (`valgrind --tool=callgrind`, `perf record`): `BATCHES` batches of `K` no-op
//! items, the producer waiting on a latch after each batch.
//!
//! ```text
//! cargo build --profile bench -p cmwq-bench --example hotpath
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.queue \
//!     target/release/examples/hotpath queue 200 1000
//! callgrind_annotate --inclusive=no /tmp/cg.queue | head -60
//! ```
//!
//! Modes: `queue` (preallocated items on a per-CPU queue, `WqFlags::PERCPU` as in
//! every mode but `unbound`), `unbound` (the same on
//! an unbound queue), `queue_on` (producer pinned to the first CPU, `queue_on` the
//! second), `spawn` (`wq.spawn`), `boxed` (`wq.spawn` of boxed jobs, as `cmwq
//! bench`'s noop) and `mtwq` (the same jobs on the MT-wq emulation), `rayon`
//! (`rayon::spawn`), `channel` (mpsc into one thread). Idle wake-up latency is
//! `cmwq bench --only wake`.

use std::time::Instant;

use cmwq::{Work, Workqueue, WqFlags};
use cmwq_bench::CountLatch;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "queue".into());
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let k: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let latch = CountLatch::leaked();

    let run = |produce: &mut dyn FnMut()| {
        // One warm-up batch (pool and worker creation), then the measured ones.
        latch.reset(k);
        produce();
        latch.wait();
        let t = Instant::now();
        for _ in 0..batches {
            latch.reset(k);
            produce();
            latch.wait();
        }
        let el = t.elapsed();
        println!(
            "{mode}: {batches} batches x {k} items: {:.1} ns/item",
            el.as_nanos() as f64 / (batches * k) as f64
        );
    };

    match mode.as_str() {
        "queue" | "unbound" => {
            let flags = if mode == "unbound" { WqFlags::UNBOUND } else { WqFlags::PERCPU };
            let wq = Workqueue::builder("hotpath").flags(flags).build().unwrap();
            let works: Vec<Work> = (0..k)
                .map(|_| {
                    Work::new(move |_| {
                        latch.count_down();
                    })
                })
                .collect();
            run(&mut || {
                for w in &works {
                    assert!(matches!(wq.queue(w), Ok(true)));
                }
            });
            wq.destroy().unwrap();
        }
        "queue_on" => {
            // Producer pinned to the first allowed CPU, items to the second one.
            let cpus = cmwq_bench::allowed_cpus();
            let (a, b) = (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]));
            let wq = Workqueue::builder("hotpath").flags(WqFlags::PERCPU).build().unwrap();
            let works: Vec<Work> = (0..k)
                .map(|_| {
                    Work::new(move |_| {
                        latch.count_down();
                    })
                })
                .collect();
            cmwq_bench::pin_current_thread(a).unwrap();
            run(&mut || {
                for w in &works {
                    assert!(matches!(wq.queue_on(b, w), Ok(true)));
                }
            });
            wq.destroy().unwrap();
        }
        "spawn" => {
            let wq = Workqueue::builder("hotpath").flags(WqFlags::PERCPU).build().unwrap();
            run(&mut || {
                for _ in 0..k {
                    assert!(wq
                        .spawn(move || {
                            latch.count_down();
                        })
                        .is_ok());
                }
            });
            wq.destroy().unwrap();
        }
        "rayon" => run(&mut || {
            for _ in 0..k {
                rayon::spawn(move || {
                    latch.count_down();
                });
            }
        }),
        // Boxed jobs, as `cmwq bench`'s noop submits them: `wq.spawn(job)` against the
        // MT-wq emulation's `queue` (a crossbeam channel per CPU). Run under
        // `taskset -c 0` to put producer and worker on one CPU (noop, 1 producer).
        "boxed" | "mtwq" => {
            type Job = Box<dyn FnOnce() + Send + 'static>;
            let job = move || -> Job {
                Box::new(move || {
                    latch.count_down();
                })
            };
            if mode == "boxed" {
                let wq = Workqueue::builder("hotpath").flags(WqFlags::PERCPU).build().unwrap();
                run(&mut || {
                    for _ in 0..k {
                        assert!(wq.spawn(job()).is_ok());
                    }
                });
                wq.destroy().unwrap();
            } else {
                let q = cmwq_bench::MtWq::new(&cmwq_bench::allowed_cpus(), "hotpath").unwrap();
                run(&mut || {
                    for _ in 0..k {
                        q.queue(job()).unwrap();
                    }
                });
            }
        }
        "channel" => {
            let (tx, rx) = std::sync::mpsc::channel::<usize>();
            std::thread::spawn(move || {
                for _ in rx {
                    latch.count_down();
                }
            });
            run(&mut || {
                for i in 0..k {
                    tx.send(i).unwrap();
                }
            });
        }
        other => {
            eprintln!(
                "unknown mode {other}: queue | unbound | queue_on | spawn | boxed | mtwq | rayon | channel"
            );
            std::process::exit(2);
        }
    }
}
