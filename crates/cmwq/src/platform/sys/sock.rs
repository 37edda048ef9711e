//! What the stats endpoint needs from Linux beyond std: the effective uid, a
//! Unix socket peer's credentials (`SO_PEERCRED`, unstable in std), and
//! `poll(2)` over several sockets from one thread.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// The effective uid of the process: the one its files and sockets get, and
/// the one `SO_PEERCRED` reports of it.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The credentials a connected Unix socket's peer had when it called
/// `connect` (or `socketpair`): `(pid, effective uid)`.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(i32, u32)> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor for the borrow's lifetime; `cred` is a
    // writable `ucred` and `len` holds its exact size, which is what
    // SO_PEERCRED writes (and it updates `len`). A descriptor that is not a
    // Unix socket makes the call fail with an errno, nothing else.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::other("SO_PEERCRED returned a short ucred"));
    }
    Ok((cred.pid, cred.uid))
}

/// One descriptor to wait on, and what it turned out to be ready for.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub(crate) struct PollFd(libc::pollfd);

impl PollFd {
    /// Waits for `fd` to be readable (`read`) or writable (`!read`).
    pub(crate) fn new(fd: BorrowedFd<'_>, read: bool) -> Self {
        let events = if read { libc::POLLIN } else { libc::POLLOUT };
        PollFd(libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 })
    }

    /// Whether the descriptor is ready, or in a state (hang-up, error) that the
    /// next read or write will report.
    pub(crate) fn ready(&self) -> bool {
        self.0.revents != 0
    }
}

/// Waits until one of `fds` is ready or `timeout` has passed (rounded up to a
/// millisecond; at most about 24 days). Returns how many are ready; an
/// interrupted wait returns 0.
///
/// The descriptors must stay open until it returns: the callers build the
/// slice from descriptors they own and keep for the call.
pub(crate) fn poll(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `PollFd` is `repr(transparent)` over `libc::pollfd`, so `fds` is a
    // valid, writable array of `fds.len()` pollfd entries; poll only writes
    // their `revents`. Descriptors are plain integers to the kernel: a closed
    // one is reported as POLLNVAL, never a memory error.
    let rc = unsafe { libc::poll(fds.as_mut_ptr().cast::<libc::pollfd>(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    Ok(rc as usize)
}
