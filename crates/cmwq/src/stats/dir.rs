//! Where the sockets live: one directory per user, made 0700, and trusted
//! only while it still is.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::platform::sys::sock::geteuid;

/// The directories a user's endpoints may be in, in the order they are
/// preferred: `$XDG_RUNTIME_DIR/cmwq` where that variable names an absolute
/// directory of this user (systemd's `/run/user/UID`, already 0700), then
/// `/tmp/cmwq-UID`. A server binds in the first; a client looks in both, since
/// a program started by cron or a service manager may lack the variable.
pub(super) fn candidates() -> Vec<PathBuf> {
    let uid = geteuid();
    let mut v = Vec::with_capacity(2);
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        let ours = std::fs::symlink_metadata(&xdg).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if xdg.is_absolute() && ours {
            v.push(xdg.join("cmwq"));
        }
    }
    v.push(PathBuf::from(format!("/tmp/cmwq-{uid}")));
    v
}

/// Creates `dir` with mode 0700 if it is missing, then checks it as
/// [`check`] does.
pub(super) fn ensure(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
    }
    check(dir)
}

/// Refuses a directory that another user could have planted or can write
/// into: it must be a real directory (not a symlink), owned by this process's
/// effective uid, with no permission bits for group or others.
pub(super) fn check(dir: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(dir)?;
    let uid = geteuid();
    let problem = if !m.is_dir() {
        Some("is not a directory".to_owned())
    } else if m.uid() != uid {
        Some(format!("belongs to uid {}, not to this user (uid {uid})", m.uid()))
    } else if m.mode() & 0o077 != 0 {
        Some(format!("has mode {:o}; it must be 0700", m.mode() & 0o7777))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} {p}; remove it or fix it to serve cmwq stats", dir.display()),
        )),
    }
}

/// The socket of process `pid` in `dir`.
pub(super) fn socket_in(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

/// The pid a socket file's name stands for (`1234.sock`).
pub(super) fn pid_of(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".sock")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A fresh, empty directory for a test, named for it and this process.
#[cfg(test)]
pub(super) fn scratch_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmwq-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names() {
        assert_eq!(pid_of("1234.sock"), Some(1234));
        assert_eq!(pid_of(".sock"), None);
        assert_eq!(pid_of("+12.sock"), None);
        assert_eq!(pid_of("12.sock.tmp"), None);
        assert_eq!(pid_of("99999999999.sock"), None);
        assert_eq!(socket_in(Path::new("/d"), 7), PathBuf::from("/d/7.sock"));
    }

    #[test]
    fn only_a_private_directory_of_this_user_is_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let base = scratch_dir("dir-test");
        let d = base.join("ours");
        ensure(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        ensure(&d).unwrap(); // exists already: checked, accepted
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = check(&d).unwrap_err();
        assert!(e.to_string().contains("must be 0700"), "{e}");
        let link = base.join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(check(&link).unwrap_err().to_string().contains("not a directory"));
        let file = base.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure(&file).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_last_candidate_is_in_tmp() {
        let c = candidates();
        assert_eq!(c.last().unwrap(), &PathBuf::from(format!("/tmp/cmwq-{}", geteuid())));
    }
}
