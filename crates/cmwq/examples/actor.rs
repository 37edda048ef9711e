//! An ordered workqueue used as an actor: messages from several threads are
//! handled one at a time, in the order they were sent, by state that only the
//! actor touches.
//!
//! ```text
//! cargo run -p cmwq --example actor
//! ```
//!
//! An ordered queue (`alloc_ordered_workqueue`) runs one item at a time, in
//! queueing order. Sending a message is queueing a closure that applies it to
//! the actor's state, so the state needs no locking discipline of its own: it
//! sits behind a `Mutex` only to be shared between the closures, and that mutex
//! is never contended (each handler takes it with `try_lock` and would fail
//! otherwise). Four threads send numbered messages at once; the actor checks
//! that each sender's messages arrive in the order they were sent, and answers a
//! query through a reply channel after a final flush.

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cmwq::Workqueue;

const SENDERS: usize = 4;
const MESSAGES_PER_SENDER: u64 = 500;

/// What the actor understands.
#[derive(Debug)]
enum Msg {
    /// An entry for the journal: the `seq`-th message of sender `from`.
    Append { from: usize, seq: u64, text: String },
    /// Asks for a summary of the journal.
    Summary(mpsc::Sender<Summary>),
}

/// The actor's state: a journal of entries, and per sender the last number seen.
#[derive(Debug, Default)]
struct Journal {
    entries: Vec<(usize, u64, String)>,
    last_seq: Vec<Option<u64>>,
    out_of_order: usize,
}

#[derive(Debug, Clone)]
struct Summary {
    entries: usize,
    per_sender: Vec<u64>,
    out_of_order: usize,
    /// Times the next entry came from another sender than the one before.
    switches: usize,
    last: String,
}

impl Journal {
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Append { from, seq, text } => {
                if self.last_seq.len() <= from {
                    self.last_seq.resize(from + 1, None);
                }
                let expected = self.last_seq[from].map_or(0, |s| s + 1);
                if seq != expected {
                    self.out_of_order += 1;
                }
                self.last_seq[from] = Some(seq);
                self.entries.push((from, seq, text));
            }
            Msg::Summary(reply) => {
                let summary = Summary {
                    entries: self.entries.len(),
                    per_sender: self.last_seq.iter().map(|s| s.map_or(0, |s| s + 1)).collect(),
                    out_of_order: self.out_of_order,
                    switches: self.entries.windows(2).filter(|w| w[0].0 != w[1].0).count(),
                    last: self.entries.last().map_or_else(String::new, |e| e.2.clone()),
                };
                // The asker may have given up waiting; nothing to do then.
                let _ = reply.send(summary);
            }
        }
    }
}

/// A handle to the actor: cheap to share between threads.
#[derive(Debug)]
struct Actor {
    mailbox: Workqueue,
    state: Arc<Mutex<Journal>>,
}

impl Actor {
    fn new(name: &str) -> Result<Actor, cmwq::Error> {
        Ok(Actor { mailbox: Workqueue::ordered(name).build()?, state: Arc::default() })
    }

    /// Queues `msg`; the actor handles it after every message queued before it.
    fn send(&self, msg: Msg) -> Result<(), cmwq::Error> {
        let state = self.state.clone();
        self.mailbox
            .spawn(move || {
                let mut journal = state.try_lock().expect("an ordered queue runs one handler at a time");
                journal.handle(msg);
            })
            .map_err(|e| e.error().clone())
    }

    /// Sends a query and waits for the answer.
    fn summary(&self) -> Result<Summary, Box<dyn std::error::Error>> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Summary(tx))?;
        Ok(rx.recv_timeout(Duration::from_secs(30))?)
    }

    /// Waits until every message sent so far has been handled.
    fn flush(&self) -> Result<(), cmwq::Error> {
        self.mailbox.flush()
    }

    /// Handles what is left, then stops the actor: later sends get an error.
    fn shut_down(self) -> Result<(), cmwq::Error> {
        self.mailbox.destroy()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let actor = Actor::new("journal")?;

    std::thread::scope(|s| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|from| {
                let actor = &actor;
                s.spawn(move || -> Result<(), cmwq::Error> {
                    for seq in 0..MESSAGES_PER_SENDER {
                        actor.send(Msg::Append { from, seq, text: format!("s{from}#{seq}") })?;
                    }
                    Ok(())
                })
            })
            .collect();
        senders.into_iter().try_for_each(|h| h.join().expect("sender panicked"))
    })?;

    // Every sender has returned; wait for the actor to catch up. (The query below
    // would be handled after them anyway: it is just one more message.)
    actor.flush()?;
    let summary = actor.summary()?;
    println!(
        "{SENDERS} senders sent {MESSAGES_PER_SENDER} messages each; the actor handled {}",
        summary.entries
    );
    println!("the senders' messages interleaved {} times; last handled: {}", summary.switches, summary.last);
    println!("per sender: {:?}; out of order: {}", summary.per_sender, summary.out_of_order);
    let stats = actor.mailbox.stats();
    println!(
        "mailbox: {} handlers started, {} completed (the query included)",
        stats.started, stats.completed
    );

    assert_eq!(summary.entries as u64, SENDERS as u64 * MESSAGES_PER_SENDER);
    assert_eq!(summary.per_sender, vec![MESSAGES_PER_SENDER; SENDERS]);
    assert_eq!(summary.out_of_order, 0, "a sender's messages were reordered");
    actor.shut_down()?;
    Ok(())
}
