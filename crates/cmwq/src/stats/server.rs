//! The endpoint's thread: one `poll` loop over the listening socket and at
//! most [`MAX_CONNECTIONS`] connections, each with a deadline. See
//! `stats/README.md` for the states of a connection.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::proto::{self, Reject, Request};
use super::{MAX_CONNECTIONS, MAX_REQUEST, RATE_BURST, RATE_PER_SEC, REQUEST_TIMEOUT, WRITE_TIMEOUT};
use crate::platform::log;
use crate::platform::sys::sock::{self, PollFd};

/// The longest the loop sleeps with nothing to wait for (it has nothing else
/// to do; this only bounds how stale a missed wake-up could leave it).
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// Connections accepted per round, so that a flood of connects cannot starve
/// the connections already open.
const ACCEPTS_PER_ROUND: usize = 32;

/// Where a connection is.
#[derive(Debug)]
enum Phase {
    /// Reading the request line, until the deadline.
    Reading,
    /// Writing the reply from `written` on, until the deadline; then closed.
    Writing { reply: Vec<u8>, written: usize },
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    deadline: Instant,
    phase: Phase,
}

impl Conn {
    fn reply(&mut self, reply: Vec<u8>, now: Instant) {
        self.phase = Phase::Writing { reply, written: 0 };
        self.deadline = now + WRITE_TIMEOUT;
    }
}

/// What reading a request found.
#[derive(Debug)]
enum Got {
    /// Not whole yet.
    Pending,
    /// `buf` holds the whole request line, without its newline.
    Line,
    /// An error reply is due.
    Refused(Reject),
    /// The peer went away before sending anything, or the socket failed.
    Gone,
}

/// What happened to a connection in one step.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Open,
    Close,
}

/// A token bucket over all requests: [`RATE_BURST`] at once, then
/// [`RATE_PER_SEC`] a second.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket { tokens: f64::from(RATE_BURST), last: now }
    }

    /// Takes a token, or says how long until the next one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * f64::from(RATE_PER_SEC);
        self.tokens = (self.tokens + refill).min(f64::from(RATE_BURST));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / f64::from(RATE_PER_SEC)))
        }
    }
}

/// The server's state, owned by its thread.
#[derive(Debug)]
pub(super) struct Server {
    listener: UnixListener,
    conns: Vec<Conn>,
    bucket: Bucket,
    uid: u32,
    /// Answers a parsed request with its reply line.
    answer: fn(Request) -> Vec<u8>,
}

impl Server {
    pub(super) fn new(listener: UnixListener, answer: fn(Request) -> Vec<u8>) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            conns: Vec::new(),
            bucket: Bucket::new(Instant::now()),
            uid: sock::geteuid(),
            answer,
        })
    }

    /// Serves for ever. An error of `poll` itself (it has none but `ENOMEM`
    /// here) is logged and retried after a pause, never fatal.
    pub(super) fn run(mut self) {
        loop {
            if let Err(e) = self.round() {
                log::warn!("cmwq: stats endpoint: {e}; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// One wait and what follows it.
    fn round(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let wait =
            self.conns.iter().map(|c| c.deadline.saturating_duration_since(now)).min().unwrap_or(IDLE_WAIT);
        let mut fds = Vec::with_capacity(1 + self.conns.len());
        fds.push(PollFd::new(self.listener.as_fd(), true));
        for c in &self.conns {
            fds.push(PollFd::new(c.stream.as_fd(), matches!(c.phase, Phase::Reading)));
        }
        sock::poll(&mut fds, wait)?;
        let listener_ready = fds[0].ready();
        let ready: Vec<bool> = fds[1..].iter().map(PollFd::ready).collect();
        drop(fds);
        let now = Instant::now();
        let mut open = Vec::with_capacity(self.conns.len());
        for (mut c, ready) in std::mem::take(&mut self.conns).into_iter().zip(ready) {
            let mut step = if ready { c.service(now, self.answer) } else { Step::Open };
            if step == Step::Open && now >= c.deadline {
                step = c.expire();
            }
            if step == Step::Open {
                open.push(c);
            } else {
                drain(&c.stream);
            }
        }
        self.conns = open;
        if listener_ready {
            self.accept(now);
        }
        Ok(())
    }

    /// Accepts waiting connections, checks each peer, and refuses what must be.
    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_ROUND {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: the connection waits in the backlog.
                    log::debug!("cmwq: stats endpoint: accept: {e}");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Every connection: the peer's effective uid when it connected.
            let refused = match sock::peer_cred(stream.as_fd()) {
                Ok((_, uid)) if uid == self.uid => None,
                Ok(_) | Err(_) => Some(Reject::Forbidden),
            };
            let refused =
                refused.or_else(|| (self.conns.len() >= MAX_CONNECTIONS).then_some(Reject::Busy)).or_else(
                    || self.bucket.take(now).err().map(|d| Reject::RateLimited(d.as_millis() as u64 + 1)),
                );
            match refused {
                // Best effort, without waiting: a fresh socket's buffer takes the
                // short reply; then the connection is dropped.
                Some(r) => {
                    let _ = (&stream).write(&r.reply());
                    drain(&stream);
                }
                None => self.conns.push(Conn {
                    stream,
                    buf: Vec::new(),
                    deadline: now + REQUEST_TIMEOUT,
                    phase: Phase::Reading,
                }),
            }
        }
    }
}

impl Conn {
    /// Reads or writes what the connection is ready for; once the request is
    /// whole, answers it and starts writing at once.
    fn service(&mut self, now: Instant, answer: fn(Request) -> Vec<u8>) -> Step {
        if let Phase::Reading = self.phase {
            let reply = match self.read_request() {
                Got::Pending => return Step::Open,
                Got::Gone => return Step::Close,
                Got::Line => respond(&std::mem::take(&mut self.buf), answer),
                Got::Refused(r) => r.reply(),
            };
            self.reply(reply, now);
        }
        let Phase::Writing { reply, written } = &mut self.phase else { return Step::Open };
        loop {
            match self.stream.write(&reply[*written..]) {
                Ok(n) => {
                    *written += n;
                    if *written == reply.len() {
                        return Step::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        }
    }

    /// Reads what has arrived.
    fn read_request(&mut self) -> Got {
        let mut chunk = [0u8; 1024];
        loop {
            let room = (MAX_REQUEST + 1 - self.buf.len()).min(chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                // The peer finished writing: what it sent is the request.
                Ok(0) if self.buf.is_empty() => return Got::Gone,
                Ok(0) => return Got::Line,
                Ok(n) => {
                    let start = self.buf.len();
                    self.buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = self.buf[start..].iter().position(|&b| b == b'\n') {
                        self.buf.truncate(start + at);
                        return Got::Line;
                    }
                    if self.buf.len() > MAX_REQUEST {
                        self.buf = Vec::new();
                        return Got::Refused(Reject::TooLarge);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Got::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Got::Gone,
            }
        }
    }

    /// Past the deadline: a slow request gets a `timeout` reply (best effort),
    /// a slow reader is dropped.
    fn expire(&mut self) -> Step {
        if let Phase::Reading = self.phase {
            drop((&self.stream).write(&Reject::Timeout.reply()));
        }
        Step::Close
    }
}

/// Reads and drops what the peer sent and nobody read (at most 64 KiB, never
/// waiting), so that closing the connection gives the peer a clean end of
/// file after its reply: Linux resets a Unix stream whose unread data is
/// dropped at close, and the peer then reads `ECONNRESET` after the reply.
/// A peer still sending (an oversized request) may get the reset anyway,
/// after the reply.
fn drain(mut stream: &UnixStream) {
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// The reply to one request line.
fn respond(line: &[u8], answer: fn(Request) -> Vec<u8>) -> Vec<u8> {
    match proto::parse(line) {
        Ok(req) => answer(req),
        Err(r) => r.reply(),
    }
}

/// Removes the socket when the thread ends (it ends only by a panic, which
/// would be a bug: the process goes on without the endpoint).
#[derive(Debug)]
pub(super) struct RemoveOnDrop(pub(super) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        for _ in 0..RATE_BURST {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1) / RATE_PER_SEC);
        assert!(b.take(t0 + Duration::from_secs(1) / RATE_PER_SEC).is_ok());
        assert!(b.take(t0 + Duration::from_secs(1) / RATE_PER_SEC).is_err());
        // Refills up to the burst only.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..RATE_BURST {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }
}
