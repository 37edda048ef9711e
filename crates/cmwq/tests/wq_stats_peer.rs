//! The stats endpoint refuses a peer of another user (`SO_PEERCRED`), even one
//! that got past the socket directory's permissions.
//!
//! Needs root: the test forks a child that takes another effective uid
//! (`seteuid(65534)`, nobody) but keeps root's filesystem uid (`setfsuid(0)`,
//! allowed because its real uid is still 0), so the 0700 directory lets it
//! reach the socket, and only the server's credential check stands between it
//! and the data. The child does nothing but raw system calls, then `_exit`s.
//! Without root it says so and passes: the directory alone then keeps other
//! users out, which `wq_stats_endpoint` checks.
#![cfg(feature = "stats-server")]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

/// Exit codes of the child.
const REFUSED: i32 = 0;
const NO_SETEUID: i32 = 2;
const NO_CONNECT: i32 = 3;
const GOT_DATA: i32 = 4;
const NO_REPLY: i32 = 5;

#[test]
fn a_peer_of_another_uid_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root, so no client of another uid can be made here");
        return;
    }
    let path = cmwq::stats::serve().expect("the endpoint starts");
    // Everything the child needs, made before the fork (it must not allocate).
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: all-zero bytes are a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = cpath.as_bytes_with_nul();
    assert!(bytes.len() <= addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let request = b"{\"v\":1,\"op\":\"dump\"}\n";
    let mut reply = [0u8; 512];
    let want = b"{\"v\":1,\"error\":\"forbidden\"";

    // SAFETY: the child makes only async-signal-safe system calls on memory
    // prepared above, then `_exit`s; the parent only waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain system calls on valid arguments; see above.
        let code = unsafe {
            if libc::seteuid(65534) != 0 {
                NO_SETEUID
            } else {
                libc::setfsuid(0);
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
                if fd < 0 || libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
                    NO_CONNECT
                } else {
                    libc::write(fd, request.as_ptr().cast(), request.len());
                    let tv = libc::timeval { tv_sec: 10, tv_usec: 0 };
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_RCVTIMEO,
                        (&tv as *const libc::timeval).cast(),
                        std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                    );
                    let mut got = 0usize;
                    loop {
                        let n = libc::read(fd, reply[got..].as_mut_ptr().cast(), reply.len() - got);
                        if n <= 0 {
                            break;
                        }
                        got += n as usize;
                        if got == reply.len() {
                            break;
                        }
                    }
                    if got == 0 {
                        NO_REPLY
                    } else if reply[..got].starts_with(want)
                        && !reply[..got].windows(7).any(|w| w == b"\"pools\"")
                    {
                        REFUSED
                    } else {
                        GOT_DATA
                    }
                }
            }
        };
        // SAFETY: ends the child at once, without the parent's atexit handlers
        // (which would remove the parent's socket).
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid, writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "the child did not exit normally: {status:#x}");
            break libc::WEXITSTATUS(status);
        }
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, REFUSED, "child exit code (2 seteuid, 3 connect, 4 got data, 5 no reply)");
    // The same user is still served.
    let me = cmwq::stats::endpoint(std::process::id()).unwrap();
    assert!(me.request("hello").unwrap().contains("\"op\":\"hello\""));
}
