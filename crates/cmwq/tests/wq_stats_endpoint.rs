//! The stats endpoint (`cmwq::stats`) against bad clients: malformed,
//! oversized and slow ("slow-loris") requests, too many connections and too
//! many requests. Each gets its error reply and a closed connection within its
//! bound, while the endpoint keeps answering others and the process's work
//! items keep running. The endpoint is one per process, so one test runs the
//! cases in order (the rate and connection limits are shared).
//!
//! Two CPU hogs beside this test only stretch it: every wait is bounded by a
//! generous deadline, and no assertion is about time except "within the
//! bound plus slack".
#![cfg(feature = "stats-server")]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use cmwq::stats::{self, MAX_CONNECTIONS, MAX_REQUEST, RATE_BURST, REQUEST_TIMEOUT};
use cmwq::{Work, Workqueue};
use serde_json::Value;

/// Slack on every bound: a loaded machine may run the endpoint's thread late.
const SLACK: Duration = Duration::from_secs(5);

/// Connects, sends `bytes`, closes the writing side if asked, and reads the
/// reply until the server closes. Returns the reply and how long it took.
fn exchange(path: &Path, bytes: &[u8], shut: bool) -> (String, Duration) {
    let t0 = Instant::now();
    let mut s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(REQUEST_TIMEOUT + SLACK)).unwrap();
    // A large request may be cut short by the server's close: that is the point.
    let _ = s.write_all(bytes);
    if shut {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    (String::from_utf8_lossy(&reply).into_owned(), t0.elapsed())
}

/// The error code of a reply line, checking that it is one versioned line.
fn error_code(reply: &str) -> String {
    assert!(reply.ends_with('\n') && reply.matches('\n').count() == 1, "one line: {reply:?}");
    let v: Value = serde_json::from_str(reply).unwrap_or_else(|e| panic!("JSON ({e}): {reply:?}"));
    assert_eq!(v["v"], 1, "{reply}");
    v["error"].as_str().unwrap_or("").to_owned()
}

/// Proves the served process still works: an item runs to completion.
fn work_runs(wq: &Workqueue) {
    let w = Work::new(|_| {});
    assert!(wq.queue(&w).unwrap());
    w.flush().unwrap();
}

/// Waits until the rate limiter has refilled its burst.
fn let_the_bucket_refill() {
    std::thread::sleep(Duration::from_secs(1) * (RATE_BURST / stats::RATE_PER_SEC + 1));
}

#[test]
fn bad_clients_get_an_error_and_a_closed_connection() {
    let wq = Workqueue::builder("stats-endpoint-test").build().unwrap();
    let path = stats::serve().expect("the endpoint starts");
    assert_eq!(stats::serve().unwrap(), path, "serve() is idempotent");
    assert_eq!(stats::socket_path(), Some(path.clone()));
    assert!(stats::endpoints().iter().any(|e| e.pid == std::process::id() && e.path == path));
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = path.parent().unwrap().metadata().unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        assert_eq!(dir.uid(), path.metadata().unwrap().uid());
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Well-formed requests.
    let me = stats::endpoint(std::process::id()).expect("found by pid");
    for op in ["hello", "stats", "dump"] {
        let reply = me.request(op).unwrap();
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!((v["v"].as_u64(), v["op"].as_str()), (Some(1), Some(op)), "{reply}");
    }
    let (reply, _) = exchange(&path, b"{\"v\":1,\"op\":\"hello\"}", true);
    assert_eq!(error_code(&reply), "", "a request ended by EOF instead of a newline is served");

    // Malformed ones: an error line each, then EOF.
    let cases: [(&[u8], &str); 8] = [
        (b"hello\n", "bad-request"),
        (b"[1,2]\n", "bad-request"),
        (b"\xff\xfe\n", "bad-request"),
        (b"{\"op\":\"dump\"}\n", "bad-request"),
        (b"{\"v\":\"1\",\"op\":\"dump\"}\n", "bad-request"),
        (b"{\"v\":2,\"op\":\"dump\"}\n", "unsupported-version"),
        (b"{\"v\":1,\"op\":\"shutdown\"}\n", "unknown-op"),
        (b"{\"v\":1,\"op\":\"dump\"\n", "bad-request"),
    ];
    for (req, want) in cases {
        let (reply, took) = exchange(&path, req, false);
        assert_eq!(error_code(&reply), want, "{req:?} -> {reply}");
        assert!(took < SLACK, "{req:?} took {took:?}");
    }
    work_runs(&wq);

    // Oversized: a line longer than the limit, and 1 MiB without any newline.
    let mut long = vec![b' '; MAX_REQUEST + 10];
    long.push(b'\n');
    let (reply, _) = exchange(&path, &long, false);
    assert_eq!(error_code(&reply), "too-large");
    let (reply, took) = exchange(&path, &vec![b'x'; 1 << 20], false);
    assert_eq!(error_code(&reply), "too-large");
    assert!(took < SLACK, "took {took:?}");
    work_runs(&wq);

    // Slow-loris: half a request, then nothing. Meanwhile the endpoint answers
    // others and work runs.
    let_the_bucket_refill();
    let loris = std::thread::spawn({
        let path = path.clone();
        move || exchange_slowly(&path)
    });
    std::thread::sleep(REQUEST_TIMEOUT / 4);
    let reply = me.request("hello").unwrap();
    assert_eq!(error_code(&format!("{reply}\n")), "", "answered during the slow-loris: {reply}");
    work_runs(&wq);
    let (reply, took) = loris.join().unwrap();
    assert_eq!(error_code(&reply), "timeout");
    assert!(took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT + SLACK, "took {took:?}");

    // Too many connections: the ones past the limit are told `busy`.
    let_the_bucket_refill();
    let idle: Vec<UnixStream> = (0..MAX_CONNECTIONS).map(|_| UnixStream::connect(&path).unwrap()).collect();
    // The server accepts in the order of connection; give it a moment to take them.
    std::thread::sleep(Duration::from_millis(200));
    let (reply, _) = exchange(&path, b"{\"v\":1,\"op\":\"hello\"}\n", false);
    assert_eq!(error_code(&reply), "busy");
    drop(idle);
    work_runs(&wq);

    // Too many requests: past the burst, `rate-limited` with a retry time.
    let_the_bucket_refill();
    let mut limited = None;
    for _ in 0..RATE_BURST * 5 {
        let (reply, _) = exchange(&path, b"{\"v\":1,\"op\":\"hello\"}\n", false);
        if error_code(&reply) == "rate-limited" {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("some request past the burst is limited");
    let v: Value = serde_json::from_str(&limited).unwrap();
    assert!(v["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0 && ms <= 1000), "{limited}");

    // And after all of it, the endpoint still answers and work still runs.
    let_the_bucket_refill();
    assert!(me.request("stats").unwrap().contains("\"op\":\"stats\""));
    work_runs(&wq);
}

/// Sends half a request and waits for the server to give up.
fn exchange_slowly(path: &Path) -> (String, Duration) {
    let t0 = Instant::now();
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(b"{\"v\":1,").unwrap();
    s.set_read_timeout(Some(REQUEST_TIMEOUT + SLACK)).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    (String::from_utf8_lossy(&reply).into_owned(), t0.elapsed())
}
