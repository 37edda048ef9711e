//! The client side: finding the endpoints of this user, and asking one.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::dir;
use crate::platform::sys::sock;

/// The longest reply a client reads (a dump of thousands of workqueues fits).
const MAX_REPLY: usize = 64 << 20;

/// A process that serves cmwq stats to this user: its socket.
///
/// ```
/// let _ = cmwq::stats::serve()?;
/// let me = cmwq::stats::endpoint(std::process::id()).expect("this process serves");
/// let reply = me.request("hello")?;
/// assert!(reply.starts_with(r#"{"v":1,"op":"hello""#), "{reply}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// The serving process.
    pub pid: u32,
    /// Its socket.
    pub path: PathBuf,
}

impl Endpoint {
    /// Sends `{"v":1,"op":OP}` and returns the reply line (without its
    /// newline): a JSON object, `"error"` in it when the server refused.
    /// Gives up after 5 s.
    ///
    /// # Errors
    /// The connection failed or timed out, the server is not this user (or
    /// not the process the socket is named after), or the reply was not a line.
    pub fn request(&self, op: &str) -> io::Result<String> {
        let line = serde_json::json!({ "v": super::proto::VERSION, "op": op }).to_string();
        self.send(line.as_bytes(), Duration::from_secs(5))
    }

    /// Sends `line` as it is (a newline is added when missing) and returns
    /// the reply line; for tools and tests that speak the protocol themselves.
    ///
    /// # Errors
    /// As [`request`](Self::request), with `timeout` for the whole exchange.
    pub fn send(&self, line: &[u8], timeout: Duration) -> io::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut s = UnixStream::connect(&self.path)?;
        let (pid, uid) = sock::peer_cred(s.as_fd())?;
        let me = sock::geteuid();
        if uid != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is served by uid {uid}, not by this user (uid {me})", self.path.display()),
            ));
        }
        // A pid of 0: the server is in a pid namespace this one cannot see.
        if pid != 0 && pid as u32 != self.pid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is served by pid {pid}, not by pid {}", self.path.display(), self.pid),
            ));
        }
        let left = |d: Instant| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        s.set_write_timeout(Some(left(deadline)))?;
        s.write_all(line)?;
        if line.last() != Some(&b'\n') {
            s.write_all(b"\n")?;
        }
        let mut reply = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            s.set_read_timeout(Some(left(deadline)))?;
            let n = match s.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the endpoint did not answer in time",
                    ));
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n]);
            if reply.last() == Some(&b'\n') || reply.len() > MAX_REPLY {
                break;
            }
        }
        if reply.pop() != Some(b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the endpoint's reply was not one whole line",
            ));
        }
        String::from_utf8(reply)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the reply is not UTF-8"))
    }
}

/// The directories this user's endpoints may be in (whether or not they
/// exist): `$XDG_RUNTIME_DIR/cmwq` where that is set, then `/tmp/cmwq-UID`.
pub fn socket_dirs() -> Vec<PathBuf> {
    dir::candidates()
}

/// The processes that serve cmwq stats to this user, by pid. Sockets left by
/// processes that are gone (killed before they could remove theirs) are
/// removed on the way. Directories that another user could have planted or
/// can write into are ignored.
pub fn endpoints() -> Vec<Endpoint> {
    let mut found: Vec<Endpoint> = Vec::new();
    for d in dir::candidates() {
        if dir::check(&d).is_err() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(dir::pid_of) else { continue };
            if found.iter().any(|f| f.pid == pid) {
                continue;
            }
            let path = e.path();
            if is_live(pid, &path) {
                found.push(Endpoint { pid, path });
            }
        }
    }
    found.sort_by_key(|e| e.pid);
    found
}

/// The endpoint of process `pid`, if it serves this user.
pub fn endpoint(pid: u32) -> Option<Endpoint> {
    dir::candidates().into_iter().find_map(|d| {
        dir::check(&d).ok()?;
        let path = dir::socket_in(&d, pid);
        is_live(pid, &path).then_some(Endpoint { pid, path })
    })
}

/// Whether `path` is a socket that `pid` still listens on. One whose process
/// is gone is removed (its directory was checked: only this user can have put
/// it there); one whose process lives is left, listening or not: `serve`
/// binds the socket before it listens (and sets its mode after), so a probe
/// in between is refused, and removing the file then made that `serve` fail
/// (`ENOENT`) and the process serve nothing.
fn is_live(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(m) = std::fs::symlink_metadata(path) else { return false };
    if !m.file_type().is_socket() {
        return false;
    }
    let alive = Path::new(&format!("/proc/{pid}")).exists();
    let listening = alive
        && match UnixStream::connect(path) {
            Ok(_) => true,
            // Full backlog or interrupted: alive, just busy.
            Err(e) => e.kind() != io::ErrorKind::ConnectionRefused && e.kind() != io::ErrorKind::NotFound,
        };
    if !alive {
        let _ = std::fs::remove_file(path);
    }
    listening
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A live process's socket that nobody listens on (yet) is not live, and
    /// stays; a gone process's is removed.
    #[test]
    fn a_socket_not_listening_yet_is_left_to_its_live_process() {
        let dir = dir::scratch_dir("is-live");
        let path = dir.join("1.sock");
        // Bound, then closed: the file stays and connecting is refused, as
        // between `serve`'s bind and its listen.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(!is_live(std::process::id(), &path));
        assert!(path.exists(), "the socket of a live process was removed");
        // No process 0 in /proc: gone.
        assert!(!is_live(0, &path));
        assert!(!path.exists(), "the socket of a gone process was left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
