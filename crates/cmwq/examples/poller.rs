//! A self-rearming poller: a `DelayedWork` that checks an inbox every 100 ms,
//! is told to check at once when something urgent arrives, and stops cleanly.
//!
//! ```text
//! cargo run -p cmwq --example poller
//! ```
//!
//! Each run of the item drains the inbox (standing in for a directory, a device
//! register or a non-blocking socket) and re-arms itself with
//! [`Workqueue::queue_delayed`], unless it has polled `MAX_POLLS` times or its
//! stop flag is set. [`Workqueue::mod_delayed`] with a zero delay moves an armed
//! poll to now. To stop, the flag is set and [`DelayedWork::cancel_sync`] deletes
//! an armed timer and waits for a running poll; the item cannot re-arm itself
//! meanwhile, so afterwards it is certainly idle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::{DelayedWork, Workqueue};

/// Time between polls.
const PERIOD: Duration = Duration::from_millis(100);
/// The poller gives up on its own after this many polls.
const MAX_POLLS: u32 = 100;
/// How long main waits for any one message before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the poller watches, and what main uses to control it.
#[derive(Debug, Default)]
struct Shared {
    inbox: Mutex<VecDeque<(String, Instant)>>,
    polls: AtomicU32,
    stop: AtomicBool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wq = Workqueue::builder("poller").build()?;
    let shared = Arc::new(Shared::default());
    let (delivered, received) = mpsc::channel();

    let poller = {
        let (wq, shared) = (wq.clone(), shared.clone());
        DelayedWork::new(move |dw| {
            let polls = shared.polls.fetch_add(1, Ordering::Relaxed) + 1;
            // Re-arm first, so the period does not drift by the poll's own length.
            // Ok(false) while cancel_sync is stopping the item: it stays stopped.
            if polls < MAX_POLLS && !shared.stop.load(Ordering::Relaxed) {
                if let Err(e) = wq.queue_delayed(dw, PERIOD) {
                    eprintln!("poller: not re-armed: {e}");
                }
            }
            let batch: Vec<_> = shared.inbox.lock().unwrap().drain(..).collect();
            for (msg, sent) in batch {
                // Main may have stopped listening; the message is dropped then.
                let _ = delivered.send((msg, sent.elapsed(), polls));
            }
        })
    };
    wq.queue_delayed(&poller, PERIOD)?;

    let post = |msg: &str| shared.inbox.lock().unwrap().push_back((msg.to_owned(), Instant::now()));
    for msg in ["disk 80% full", "backup done"] {
        post(msg);
        let (msg, waited, poll) = received.recv_timeout(PATIENCE)?;
        println!("poll {poll:>2}: {msg:<16} picked up after {waited:>6.1?} (waits for the next poll)");
    }

    post("link down");
    // Poll now instead of at the next period: the armed timer is moved to now.
    let how = if wq.mod_delayed(&poller, Duration::ZERO)? { "armed poll moved to now" } else { "queued now" };
    let (msg, waited, poll) = received.recv_timeout(PATIENCE)?;
    println!("poll {poll:>2}: {msg:<16} picked up after {waited:>6.1?} (mod_delayed: {how})");

    shared.stop.store(true, Ordering::Relaxed);
    // The flag keeps a poll that starts from now on from re-arming; cancel_sync
    // deletes the timer a poll has already armed, and waits for a running one.
    let how = if poller.cancel_sync()? {
        "cancel_sync deleted the armed timer"
    } else {
        "the last poll saw the flag and did not re-arm"
    };
    let polls = shared.polls.load(Ordering::Relaxed);
    println!("stopped after {polls} polls: {how}");

    // Stopped for good: no timer armed, nothing queued, no poll runs later.
    assert!(!poller.is_pending());
    std::thread::sleep(PERIOD * 2);
    assert_eq!(shared.polls.load(Ordering::Relaxed), polls, "the poller ran after cancel_sync");
    println!("no poll in the {:?} after cancel_sync ({:?})", PERIOD * 2, poller.busy());
    wq.destroy()?;
    Ok(())
}
