//! The stats endpoint: a running program answers `cmwq top` and `cmwq dump`
//! (the kernel's `wq_monitor.py` and `wq_dump.py`) over a Unix socket.
//!
//! Opt-in, at run time: `CMWQ_STATS=1` in the environment starts it when the
//! process first uses cmwq, [`serve`] starts it from the program. Until then it
//! costs nothing: no thread, no socket, one `getenv` when cmwq starts. Started,
//! it is one thread (`cmwq/stats`) that sleeps in `poll` between requests, and
//! whose answers take each pool's lock only as long as [`debug::pools`]
//! does. It never runs on a worker and never blocks one.
//!
//! ```
//! let path = cmwq::stats::serve()?; // CMWQ_STATS=1 does the same at first use
//! assert!(path.ends_with(format!("{}.sock", std::process::id())));
//!
//! // What `cmwq top --pid PID -j` asks, from any process of the same user:
//! let me = cmwq::stats::endpoint(std::process::id()).expect("serving");
//! let reply: serde_json::Value = serde_json::from_str(&me.request("stats")?)?;
//! assert_eq!(reply["v"], 1);
//! assert!(reply["workqueues"].is_array());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! - **Same user only.** The socket is `DIR/PID.sock`, mode 0600, in a
//!   directory of this user made 0700: `$XDG_RUNTIME_DIR/cmwq` where that
//!   variable names a directory of this user (systemd's `/run/user/UID`), else
//!   `/tmp/cmwq-UID`. A directory that exists with another owner, other
//!   permission bits, or as a symlink is refused (someone may have planted
//!   it): [`serve`] fails and says why. The server also checks the peer's
//!   credentials (`SO_PEERCRED`) on every connection and refuses any other
//!   effective uid, root included, with a `forbidden` reply; the client checks
//!   the server's the same way, and that its pid is the one the socket is
//!   named after. A filesystem socket, not an abstract one: an abstract name
//!   has no permissions at all, and a directory is what lets a client list the
//!   servers.
//! - **Bounded.** A request is one line of at most [`MAX_REQUEST`] bytes that
//!   must arrive whole within [`REQUEST_TIMEOUT`] of the connection; at most
//!   [`MAX_CONNECTIONS`] are open at once; requests are limited to
//!   [`RATE_PER_SEC`] a second after a burst of [`RATE_BURST`]; a reply not
//!   read within [`WRITE_TIMEOUT`] is dropped. Each of these gets an error
//!   reply (below) and a closed connection; nothing makes the thread wait on
//!   one client (every socket is non-blocking), and nothing panics.
//! - **Read-only.** No request changes anything in the process.
//! - **Cleaned up.** The socket is removed when the process exits normally
//!   (`atexit`); one left by a killed process is removed by the next client
//!   that finds it ([`endpoints`]) and by the next process with that pid.
//!
//! # Protocol, version 1
//!
//! One request per connection: the client sends one JSON object on one line,
//! the server answers one line and closes. Every object has `"v": 1`. Replies
//! may gain keys within version 1; none is removed or renamed.
//!
//! | request | reply |
//! |---|---|
//! | `{"v":1,"op":"hello"}` | `{"v":1,"op":"hello","pid":…,"program":…,"cmwq":"0.1.0","ops":["hello","stats","dump"],"limits":{…}}` |
//! | `{"v":1,"op":"stats"}` | `{"v":1,"op":"stats","timestamp":…,"workqueues":[…],"threads":{…},"monitor":{…}}`: what `cmwq top` shows; each workqueue has `wq_monitor.py -j`'s keys |
//! | `{"v":1,"op":"dump"}` | `{"v":1,"op":"dump","timestamp":…,…}`: what `cmwq dump` shows |
//!
//! Errors: `{"v":1,"error":CODE,"message":…}`, then the connection is closed.
//!
//! | `error` | when |
//! |---|---|
//! | `bad-request` | not UTF-8, not a JSON object, no `"v"` or `"op"`, or of the wrong type |
//! | `unsupported-version` | `"v"` is not 1 (with `"supported":[1]`) |
//! | `unknown-op` | `"op"` is none of the above |
//! | `too-large` | no newline within [`MAX_REQUEST`] bytes |
//! | `timeout` | the line was not whole within [`REQUEST_TIMEOUT`] |
//! | `rate-limited` | over the rate (with `"retry_after_ms"`) |
//! | `busy` | [`MAX_CONNECTIONS`] open already |
//! | `forbidden` | another user |
//!
//! By hand: `echo '{"v":1,"op":"hello"}' | socat - UNIX-CONNECT:/tmp/cmwq-$(id -u)/PID.sock`.
//!
//! [`debug::pools`]: crate::debug::pools

mod client;
mod dir;
mod proto;
mod reply;
mod server;

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use client::{endpoint, endpoints, socket_dirs, Endpoint};

use crate::platform::log;

/// The longest request line, in bytes before its newline.
pub const MAX_REQUEST: usize = 4096;
/// How long a request may take to arrive whole, from the connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client may take to read its reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; more get `busy`.
pub const MAX_CONNECTIONS: usize = 16;
/// Requests a second, over time.
pub const RATE_PER_SEC: u32 = 10;
/// Requests at once, after a quiet while.
pub const RATE_BURST: u32 = 20;
/// The environment variable that starts the endpoint at first use: `1`.
pub const ENV: &str = "CMWQ_STATS";

/// The socket this process serves on, once started.
static SERVING: Mutex<Option<PathBuf>> = Mutex::new(None);
/// The socket to remove at exit, and the process that may remove it (not a
/// forked child, which inherits the `atexit` handler but not the server).
static AT_EXIT: OnceLock<(u32, PathBuf)> = OnceLock::new();

/// Starts the endpoint, once per process, and returns its socket's path;
/// later calls return the same path. `CMWQ_STATS=1` calls it when the process
/// first uses cmwq.
///
/// # Errors
/// The socket directory cannot be made or is not trusted (it exists with
/// another owner or other permissions: the message names it), the socket
/// cannot be bound, the thread cannot be started, or this is the child of a
/// `fork()` of a process that used cmwq (its pools are not usable there).
pub fn serve() -> io::Result<PathBuf> {
    let mut serving = SERVING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &*serving {
        return Ok(p.clone());
    }
    if crate::platform::fork::is_forked_child() {
        return Err(io::Error::other(
            "cmwq stats: the child of a fork() of a process that used cmwq cannot serve",
        ));
    }
    let pid = std::process::id();
    let mut last = None;
    for d in dir::candidates() {
        match bind(&d, pid) {
            Ok((listener, path)) => {
                let server = server::Server::new(listener, reply::answer)?;
                let guard = server::RemoveOnDrop(path.clone());
                std::thread::Builder::new().name("cmwq/stats".into()).spawn(move || {
                    let _guard = guard;
                    server.run();
                })?;
                if AT_EXIT.set((pid, path.clone())).is_ok() {
                    let _ = crate::platform::sys::at_exit(remove_at_exit);
                }
                *serving = Some(path.clone());
                return Ok(path);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cmwq stats: no socket directory")))
}

/// Binds `DIR/PID.sock`, after making or checking `dir`.
fn bind(d: &std::path::Path, pid: u32) -> io::Result<(std::os::unix::net::UnixListener, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    dir::ensure(d)?;
    let path = dir::socket_in(d, pid);
    // Left by an earlier process with this pid (killed, so it could not remove it).
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cmwq stats: cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// The socket this process serves on, if [`serve`] has started it.
pub fn socket_path() -> Option<PathBuf> {
    SERVING.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

extern "C" fn remove_at_exit() {
    if let Some((pid, path)) = AT_EXIT.get() {
        if *pid == std::process::id() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `CMWQ_STATS=1`: called once, when the process first uses cmwq.
pub(crate) fn start_from_env() {
    let Some(v) = std::env::var_os(ENV) else { return };
    match v.to_str() {
        Some("1") => {
            if let Err(e) = serve() {
                log::warn!("cmwq: {ENV}=1 but the stats endpoint did not start: {e}");
            }
        }
        Some("0") | Some("") => {}
        _ => log::warn!("cmwq: {ENV}={v:?} is not understood; set it to 1 to serve stats"),
    }
}
