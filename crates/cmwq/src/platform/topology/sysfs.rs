//! Reading [`CpuFacts`] from sysfs: SMT groups from
//! `devices/system/cpu/cpuN/topology/core_cpus_list` (or the older
//! `thread_siblings_list`), the last-level cache from
//! `devices/system/cpu/cpuN/cache/index*/{level,type,shared_cpu_list}`, NUMA
//! nodes from `devices/system/node/nodeN/cpulist`.
//!
//! The root is a parameter so that tests can build a fake tree. Whatever is
//! missing or unreadable falls back to a flat machine: no core information,
//! each CPU its own core; no cache information at all, one LLC for every CPU;
//! no node, node 0.

use std::path::Path;

use super::CpuFacts;

/// The facts of CPUs `0..nr_cpu_ids` under the sysfs mount `root` (`/sys`).
///
/// A CPU already named by an earlier CPU's list joins that group without its
/// own files being read (sysfs lists are symmetric, and a 4096-CPU machine
/// then costs one read per core and one cache walk per LLC, not per CPU). A
/// CPU whose own files are missing (an offline CPU has no `topology/` or
/// `cache/` directory) takes its group from a later CPU's list that names
/// it, else it is alone in its core and LLC, or, when no CPU has cache
/// information at all, in the one LLC of every CPU.
pub(super) fn read_facts(root: &Path, nr_cpu_ids: usize) -> Vec<CpuFacts> {
    let cpu_dir = root.join("devices/system/cpu");
    let core = group_keys(nr_cpu_ids, |cpu| {
        let topo = cpu_dir.join(format!("cpu{cpu}/topology"));
        read_cpulist(&topo.join("core_cpus_list"))
            .or_else(|| read_cpulist(&topo.join("thread_siblings_list")))
    })
    .unwrap_or_else(|| (0..nr_cpu_ids).collect());
    let llc = group_keys(nr_cpu_ids, |cpu| read_llc(&cpu_dir.join(format!("cpu{cpu}/cache"))))
        .unwrap_or_else(|| vec![0; nr_cpu_ids]);
    let node = read_nodes(&root.join("devices/system/node"), nr_cpu_ids);
    (0..nr_cpu_ids).map(|cpu| CpuFacts { core: core[cpu], llc: llc[cpu], node: node[cpu] }).collect()
}

/// One grouping key per CPU from `read(cpu)`, the list of CPUs sharing
/// something with `cpu`: the lowest CPU of the first list naming the CPU
/// (its own list is read only when no earlier one did), else the CPU itself.
/// `None` when no list could be read at all.
fn group_keys(nr_cpu_ids: usize, read: impl Fn(usize) -> Option<Vec<usize>>) -> Option<Vec<usize>> {
    let mut key: Vec<Option<usize>> = vec![None; nr_cpu_ids];
    let mut any = false;
    for cpu in 0..nr_cpu_ids {
        if key[cpu].is_some() {
            continue;
        }
        let Some(list) = read(cpu) else { continue };
        any = true;
        let k = list.iter().copied().chain([cpu]).min().unwrap_or(cpu);
        key[cpu] = Some(k);
        for other in list {
            if other < nr_cpu_ids && key[other].is_none() {
                key[other] = Some(k);
            }
        }
    }
    any.then(|| key.into_iter().enumerate().map(|(cpu, k)| k.unwrap_or(cpu)).collect())
}

/// The CPUs sharing the last-level cache of the CPU whose `cache/` directory
/// is `dir`: the `shared_cpu_list` of its highest-level data or unified cache
/// (unified wins a tie). `None` when there is none or it cannot be read.
fn read_llc(dir: &Path) -> Option<Vec<usize>> {
    let mut best: Option<(u32, bool, Vec<usize>)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with("index")) {
            continue;
        }
        let path = entry.path();
        let unified = match read_trimmed(&path.join("type")).as_deref() {
            Some("Unified") => true,
            Some("Data") => false,
            _ => continue,
        };
        let Some(level) = read_trimmed(&path.join("level")).and_then(|l| l.parse::<u32>().ok()) else {
            continue;
        };
        if best.as_ref().is_some_and(|(l, u, _)| (*l, *u) >= (level, unified)) {
            continue;
        }
        if let Some(cpus) = read_cpulist(&path.join("shared_cpu_list")) {
            best = Some((level, unified, cpus));
        }
    }
    best.map(|(_, _, cpus)| cpus)
}

/// The node of each CPU from `node/nodeN/cpulist`; 0 for CPUs no node lists.
fn read_nodes(dir: &Path, nr_cpu_ids: usize) -> Vec<usize> {
    let mut node = vec![0; nr_cpu_ids];
    let Ok(entries) = std::fs::read_dir(dir) else { return node };
    let mut nodes: Vec<(usize, Vec<usize>)> = entries
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.strip_prefix("node")?.parse::<usize>().ok()?;
            Some((id, read_cpulist(&e.path().join("cpulist"))?))
        })
        .collect();
    nodes.sort_unstable_by_key(|&(id, _)| std::cmp::Reverse(id)); // the lowest node wins a CPU listed twice
    for (id, cpus) in nodes {
        for cpu in cpus.into_iter().filter(|&c| c < nr_cpu_ids) {
            node[cpu] = id;
        }
    }
    node
}

/// A file's contents without surrounding whitespace; `None` if unreadable.
fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// A cpulist file; `None` if unreadable or malformed.
fn read_cpulist(path: &Path) -> Option<Vec<usize>> {
    parse_cpulist(&std::fs::read_to_string(path).ok()?)
}

/// Parses the kernel's cpulist format (`bitmap_print_to_pagebuf()` with a
/// list): comma-separated CPU ids and inclusive ranges, "0-3,8,10-11",
/// possibly empty, with a trailing newline. The result is ascending and
/// without duplicates; `None` if malformed (including a descending range).
fn parse_cpulist(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Some(cpus);
    }
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse::<usize>().ok()?, hi.trim().parse::<usize>().ok()?),
            None => {
                let c = part.parse::<usize>().ok()?;
                (c, c)
            }
        };
        // Refuse absurd ranges rather than allocate for them.
        if lo > hi || hi - lo > 1 << 20 {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake sysfs tree in a fresh temporary directory, removed on drop.
    struct FakeSys {
        root: PathBuf,
    }

    impl FakeSys {
        fn new(name: &str) -> FakeSys {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!("cmwq-sysfs-{}-{name}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            FakeSys { root }
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }

        fn cache(&self, cpu: usize, index: usize, level: u32, kind: &str, shared: &str) {
            let dir = format!("devices/system/cpu/cpu{cpu}/cache/index{index}");
            self.write(&format!("{dir}/level"), &format!("{level}\n"));
            self.write(&format!("{dir}/type"), &format!("{kind}\n"));
            self.write(&format!("{dir}/shared_cpu_list"), &format!("{shared}\n"));
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn keys(facts: &[CpuFacts]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        (
            facts.iter().map(|f| f.core).collect(),
            facts.iter().map(|f| f.llc).collect(),
            facts.iter().map(|f| f.node).collect(),
        )
    }

    #[test]
    fn parses_cpulists() {
        assert_eq!(parse_cpulist("0-3,8,10-11\n"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(parse_cpulist("5"), Some(vec![5]));
        assert_eq!(parse_cpulist("\n"), Some(vec![]));
        assert_eq!(parse_cpulist("64,0"), Some(vec![0, 64]), "sorted");
        assert_eq!(parse_cpulist("0-2,1-3"), Some(vec![0, 1, 2, 3]), "deduplicated");
        assert_eq!(parse_cpulist("3-1"), None);
        assert_eq!(parse_cpulist("0-"), None);
        assert_eq!(parse_cpulist("a"), None);
        assert_eq!(parse_cpulist("0,,1"), None);
        assert_eq!(parse_cpulist("0-4294967295"), None);
    }

    /// 8 CPUs the x86 way: 4 cores (CPU i and i + 4 are siblings), two L3s
    /// (cores 0-1 and 2-3), each its own node.
    fn full_tree(sys: &FakeSys) {
        for cpu in 0..8 {
            let core = cpu % 4;
            let siblings = format!("{},{}", core, core + 4);
            let l3 = if core < 2 { "0-1,4-5" } else { "2-3,6-7" };
            sys.write(
                &format!("devices/system/cpu/cpu{cpu}/topology/core_cpus_list"),
                &format!("{siblings}\n"),
            );
            sys.cache(cpu, 0, 1, "Data", &siblings);
            sys.cache(cpu, 1, 1, "Instruction", &siblings);
            sys.cache(cpu, 2, 2, "Unified", &siblings);
            sys.cache(cpu, 3, 3, "Unified", l3);
            // Instruction caches never count, whatever their level.
            sys.cache(cpu, 4, 4, "Instruction", "0-7");
        }
        sys.write("devices/system/node/node0/cpulist", "0-1,4-5\n");
        sys.write("devices/system/node/node1/cpulist", "2-3,6-7\n");
        sys.write("devices/system/node/possible", "0-1\n"); // not a node directory
    }

    #[test]
    fn reads_cores_llcs_and_nodes() {
        let sys = FakeSys::new("full");
        full_tree(&sys);
        let (core, llc, node) = keys(&read_facts(&sys.root, 8));
        assert_eq!(core, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(llc, [0, 0, 2, 2, 0, 0, 2, 2]);
        assert_eq!(node, [0, 0, 1, 1, 0, 0, 1, 1]);
    }

    #[test]
    fn a_cpu_without_files_joins_the_groups_that_name_it() {
        let sys = FakeSys::new("offline");
        full_tree(&sys);
        // CPU 6 went offline: its topology/ and cache/ directories are gone and
        // the node no longer lists it; CPU 9 (beyond the tree) has nothing.
        std::fs::remove_dir_all(sys.root.join("devices/system/cpu/cpu6")).unwrap();
        sys.write("devices/system/node/node1/cpulist", "2-3,7\n");
        let (core, llc, node) = keys(&read_facts(&sys.root, 10));
        assert_eq!(core, [0, 1, 2, 3, 0, 1, 2, 3, 8, 9]);
        assert_eq!(llc, [0, 0, 2, 2, 0, 0, 2, 2, 8, 9]);
        assert_eq!(node, [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_later_list_names_an_earlier_cpu_without_files() {
        let sys = FakeSys::new("offline0");
        full_tree(&sys);
        std::fs::remove_dir_all(sys.root.join("devices/system/cpu/cpu0")).unwrap();
        let (core, llc, _) = keys(&read_facts(&sys.root, 8));
        assert_eq!(core, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(llc, [0, 0, 2, 2, 0, 0, 2, 2]);
    }

    #[test]
    fn group_keys_reads_only_cpus_no_earlier_list_named() {
        // 8 CPUs, siblings i and i + 4: CPUs 4-7 are named by 0-3's lists.
        let reads = std::cell::RefCell::new(Vec::new());
        let keys = group_keys(8, |cpu| {
            reads.borrow_mut().push(cpu);
            Some(vec![cpu % 4, cpu % 4 + 4])
        });
        assert_eq!(keys, Some(vec![0, 1, 2, 3, 0, 1, 2, 3]));
        assert_eq!(*reads.borrow(), [0, 1, 2, 3]);
        assert_eq!(group_keys(3, |_| None), None, "nothing readable");
        assert_eq!(group_keys(3, |c| (c == 1).then(|| vec![1, 2])), Some(vec![0, 1, 1]));
    }

    #[test]
    fn thread_siblings_list_stands_in_for_core_cpus_list() {
        let sys = FakeSys::new("siblings");
        for cpu in 0..4 {
            let s = if cpu % 2 == 0 { "0,2" } else { "1,3" };
            sys.write(&format!("devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"), s);
        }
        let (core, llc, node) = keys(&read_facts(&sys.root, 4));
        assert_eq!(core, [0, 1, 0, 1]);
        assert_eq!(llc, [0; 4], "no cache information: one LLC");
        assert_eq!(node, [0; 4], "no node directory: node 0");
    }

    #[test]
    fn the_highest_data_or_unified_cache_is_the_llc_and_unified_wins_a_tie() {
        let sys = FakeSys::new("llc");
        for cpu in 0..4 {
            sys.cache(cpu, 0, 1, "Data", &cpu.to_string());
            sys.cache(cpu, 1, 2, "Data", if cpu < 2 { "0-1" } else { "2-3" });
            sys.cache(cpu, 2, 2, "Unified", "0-3");
        }
        let (_, llc, _) = keys(&read_facts(&sys.root, 4));
        assert_eq!(llc, [0; 4]);

        let sys = FakeSys::new("llc-data");
        for cpu in 0..4 {
            sys.cache(cpu, 0, 1, "Unified", &cpu.to_string());
            sys.cache(cpu, 1, 2, "Data", if cpu < 2 { "0-1" } else { "2-3" });
        }
        let (_, llc, _) = keys(&read_facts(&sys.root, 4));
        assert_eq!(llc, [0, 0, 2, 2], "a data cache above a unified one is the last level");
    }

    #[test]
    fn missing_or_garbled_files_fall_back_to_a_flat_machine() {
        let sys = FakeSys::new("empty");
        let facts = read_facts(&sys.root, 4);
        assert_eq!(keys(&facts), (vec![0, 1, 2, 3], vec![0; 4], vec![0; 4]));

        let sys = FakeSys::new("garbled");
        for cpu in 0..4 {
            sys.write(&format!("devices/system/cpu/cpu{cpu}/topology/core_cpus_list"), "zero\n");
            sys.cache(cpu, 3, 3, "Unified", "0-x");
            sys.write(&format!("devices/system/cpu/cpu{cpu}/cache/index2/level"), "two\n");
            sys.write(&format!("devices/system/cpu/cpu{cpu}/cache/index2/type"), "Unified\n");
            sys.write(&format!("devices/system/cpu/cpu{cpu}/cache/index2/shared_cpu_list"), "0-3\n");
        }
        sys.write("devices/system/node/node1/cpulist", "bad\n");
        sys.write("devices/system/node/nodeX/cpulist", "0-3\n");
        let facts = read_facts(&sys.root, 4);
        assert_eq!(keys(&facts), (vec![0, 1, 2, 3], vec![0; 4], vec![0; 4]));
    }
}
