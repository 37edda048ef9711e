//! The allowed-CPU count: the affinity mask, lowered by the cgroup CPU quota
//! (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), as Go 1.25 does
//! for GOMAXPROCS. The quota of every ancestor cgroup counts; the lowest wins.

use std::path::{Path, PathBuf};

/// The number of CPUs this process may use: `affinity` (the mask's size), or
/// the cgroup quota rounded up if that is lower; at least 1.
pub(super) fn allowed_cpu_count(affinity: usize) -> usize {
    let quota = cgroup_cpu_limit().map(|q| q.ceil() as usize);
    quota.map_or(affinity, |q| q.min(affinity)).max(1)
}

/// The CPU bandwidth the cgroups of this process allow, in CPUs (`None`: no limit
/// or no cgroup filesystem).
pub(super) fn cgroup_cpu_limit() -> Option<f64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let paths = parse_proc_cgroup(&cgroup);
    let mounts = parse_mountinfo(&mountinfo);
    let mut best: Option<f64> = None;
    let mut lower = |q: Option<f64>| {
        if let Some(q) = q {
            best = Some(best.map_or(q, |b: f64| b.min(q)));
        }
    };
    if let (Some(path), Some(m)) = (&paths.v2, &mounts.v2) {
        for dir in ancestors(m, path) {
            lower(std::fs::read_to_string(dir.join("cpu.max")).ok().and_then(|s| parse_cpu_max(&s)));
        }
    }
    if let (Some(path), Some(m)) = (&paths.v1_cpu, &mounts.v1_cpu) {
        for dir in ancestors(m, path) {
            let quota = std::fs::read_to_string(dir.join("cpu.cfs_quota_us"));
            let period = std::fs::read_to_string(dir.join("cpu.cfs_period_us"));
            if let (Ok(q), Ok(p)) = (quota, period) {
                lower(parse_cfs(&q, &p));
            }
        }
    }
    best
}

/// v2 `cpu.max`: `"$MAX $PERIOD"`, where `$MAX` may be `max` (no limit).
pub(super) fn parse_cpu_max(s: &str) -> Option<f64> {
    let mut it = s.split_whitespace();
    let max = it.next()?;
    let period: f64 = it.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if max == "max" || period <= 0.0 {
        return None;
    }
    let max: f64 = max.parse().ok()?;
    (max > 0.0).then(|| max / period)
}

/// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`; a quota of -1 means no limit.
pub(super) fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let q: i64 = quota.trim().parse().ok()?;
    let p: i64 = period.trim().parse().ok()?;
    (q > 0 && p > 0).then(|| q as f64 / p as f64)
}

/// The cgroup paths of this process: the v2 one (`0::/path`) and the v1 one of
/// the `cpu` controller (`N:cpu,cpuacct:/path`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CgroupPaths {
    pub(super) v2: Option<String>,
    pub(super) v1_cpu: Option<String>,
}

pub(super) fn parse_proc_cgroup(s: &str) -> CgroupPaths {
    let mut out = CgroupPaths::default();
    for line in s.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        if id == "0" && ctrls.is_empty() {
            out.v2 = Some(path.to_string());
        } else if ctrls.split(',').any(|c| c == "cpu") {
            out.v1_cpu = Some(path.to_string());
        }
    }
    out
}

/// A cgroup filesystem mount: which cgroup path it shows (`root`) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    pub(super) root: String,
    pub(super) point: PathBuf,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CgroupMounts {
    pub(super) v2: Option<Mount>,
    pub(super) v1_cpu: Option<Mount>,
}

/// Finds the cgroup2 mount and the v1 mount carrying the `cpu` controller in
/// `/proc/self/mountinfo` (fields: id parent dev root point opts [optional…] -
/// fstype source superopts).
pub(super) fn parse_mountinfo(s: &str) -> CgroupMounts {
    let mut out = CgroupMounts::default();
    for line in s.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else { continue };
        let m = Mount { root: unescape(root), point: PathBuf::from(unescape(point)) };
        match *fstype {
            "cgroup2" if out.v2.is_none() => out.v2 = Some(m),
            "cgroup"
                if out.v1_cpu.is_none() && r.get(2).is_some_and(|o| o.split(',').any(|c| c == "cpu")) =>
            {
                out.v1_cpu = Some(m)
            }
            _ => {}
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directories of `path` and of each ancestor cgroup visible in mount `m`,
/// innermost first.
pub(super) fn ancestors(m: &Mount, path: &str) -> Vec<PathBuf> {
    // The part of `path` below the mount's root; outside it (another namespace),
    // only the mount point itself is visible.
    let rel = path.strip_prefix(m.root.trim_end_matches('/')).unwrap_or("");
    let mut dirs = Vec::new();
    let mut p = Path::new(rel.trim_start_matches('/'));
    loop {
        dirs.push(m.point.join(p));
        match p.parent() {
            Some(up) => p = up,
            None => break,
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgroup_v2_cpu_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("250000 100000"), Some(2.5));
        assert_eq!(parse_cpu_max("150000"), Some(1.5), "the period defaults to 100 ms");
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("garbage 100000"), None);
        assert_eq!(parse_cpu_max("0 100000"), None);
    }

    #[test]
    fn parses_cgroup_v1_cfs_quota() {
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("200000\n", "100000\n"), Some(2.0));
        assert_eq!(parse_cfs("50000", "100000"), Some(0.5));
        assert_eq!(parse_cfs("x", "100000"), None);
        assert_eq!(parse_cfs("100", "0"), None);
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let v2 = parse_proc_cgroup("0::/user.slice/app.scope\n");
        assert_eq!(v2, CgroupPaths { v2: Some("/user.slice/app.scope".into()), v1_cpu: None });
        let v1 = parse_proc_cgroup(
            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n",
        );
        assert_eq!(v1.v1_cpu.as_deref(), Some("/docker/abc"));
        assert_eq!(v1.v2.as_deref(), Some("/"));
        assert_eq!(parse_proc_cgroup("3:cpuset:/x\n"), CgroupPaths::default(), "cpuset is not cpu");
    }

    #[test]
    fn parses_mountinfo_and_walks_ancestors() {
        let mi = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
36 25 0:31 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate
40 36 0:35 /docker /sys/fs/cgroup/cpu\\040x rw shared:20 - cgroup cgroup rw,cpu,cpuacct
41 36 0:36 / /sys/fs/cgroup/cpuset rw shared:21 - cgroup cgroup rw,cpuset
";
        let m = parse_mountinfo(mi);
        let v2 = m.v2.unwrap();
        assert_eq!(v2, Mount { root: "/".into(), point: "/sys/fs/cgroup".into() });
        let v1 = m.v1_cpu.unwrap();
        assert_eq!(v1.point, PathBuf::from("/sys/fs/cgroup/cpu x"), "octal escapes are decoded");
        assert_eq!(
            ancestors(&v2, "/a/b"),
            vec![
                PathBuf::from("/sys/fs/cgroup/a/b"),
                PathBuf::from("/sys/fs/cgroup/a"),
                PathBuf::from("/sys/fs/cgroup/")
            ]
        );
        assert_eq!(ancestors(&v1, "/docker/abc"), vec![v1.point.join("abc"), v1.point.join("")]);
        assert_eq!(ancestors(&v2, "/"), vec![PathBuf::from("/sys/fs/cgroup/")]);
    }

    #[test]
    fn the_allowed_count_is_at_least_one_and_at_most_the_mask() {
        let n = allowed_cpu_count(3);
        assert!((1..=3).contains(&n));
        assert_eq!(allowed_cpu_count(0), 1);
    }
}
