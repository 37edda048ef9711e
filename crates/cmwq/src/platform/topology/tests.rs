//! Pods of simulated machines checked against hand-derived memberships, and of
//! this machine checked for consistency.

use super::*;

use AffinityScope::{Cache, CacheShard, Cpu, Numa, Smt, System};

/// The pods of `scope`, as lists of CPUs.
fn pods_of(t: &Topology, scope: AffinityScope) -> Vec<Vec<usize>> {
    t.pods(scope).pod_cpus.clone()
}

/// The CPUs of cores `cores` on an x86-numbered machine of `nr_cores` cores
/// with `smt` threads each, ascending.
fn cpus_of_cores(cores: std::ops::Range<usize>, nr_cores: usize, smt: usize) -> Vec<usize> {
    (0..smt).flat_map(|t| cores.clone().map(move |k| k + t * nr_cores)).collect()
}

/// The invariants every pod type must hold: each CPU below `nr_cpu_ids` in
/// exactly one pod, `cpu_pod` and `pod_cpus` agreeing, pods ascending,
/// non-empty and numbered by their lowest CPU, `pod_node` the common node or
/// `None`, and each scope refining the next coarser one where it must.
fn check_consistent(t: &Topology) {
    assert_eq!(t.facts().len(), t.nr_cpu_ids);
    for scope in AffinityScope::ALL {
        let pt = t.pods(scope);
        assert_eq!(pt.cpu_pod.len(), t.nr_cpu_ids, "{scope}");
        assert_eq!(pt.pod_node.len(), pt.nr_pods(), "{scope}");
        let mut seen = vec![0; t.nr_cpu_ids];
        for (pod, cpus) in pt.pod_cpus.iter().enumerate() {
            assert!(!cpus.is_empty(), "{scope}: pod {pod} is empty");
            assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{scope}: pod {pod} not ascending: {cpus:?}");
            for &c in cpus {
                seen[c] += 1;
                assert_eq!(pt.cpu_pod[c], pod, "{scope}: cpu_pod[{c}] disagrees with pod_cpus");
            }
            let nodes: std::collections::BTreeSet<usize> = cpus.iter().map(|&c| t.cpu_node(c)).collect();
            let expected = if scope == System || nodes.len() != 1 { None } else { nodes.first().copied() };
            assert_eq!(pt.pod_node[pod], expected, "{scope}: pod_node[{pod}]");
        }
        assert!(seen.iter().all(|&n| n == 1), "{scope}: a CPU is in no pod or in several: {seen:?}");
        let firsts: Vec<usize> = pt.pod_cpus.iter().map(|p| p[0]).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{scope}: pods not numbered by lowest CPU");
        for &c in &t.allowed {
            assert!(pt.pod_cpus[pt.cpu_pod[c]].contains(&c), "{scope}: allowed CPU {c}");
        }
    }
    // Finer scopes nest in coarser ones: CPUs sharing a pod of the finer scope
    // share one of the coarser.
    for (fine, coarse) in [(Cpu, Smt), (Smt, CacheShard), (CacheShard, Cache), (Numa, System)] {
        let (f, c) = (t.pods(fine), t.pods(coarse));
        for cpus in &f.pod_cpus {
            let pod = c.cpu_pod[cpus[0]];
            assert!(cpus.iter().all(|&x| c.cpu_pod[x] == pod), "{fine} pod {cpus:?} split by {coarse}");
        }
    }
    assert_eq!(t.pods(System).pod_cpus, [(0..t.nr_cpu_ids).collect::<Vec<_>>()]);
    assert_eq!(t.pods(System).pod_node, [None]);
}

#[test]
fn x86_128_cpus_two_nodes_four_llcs_each_smt2() {
    // 64 cores; CPUs i and i + 64 are the threads of core i; LLC l holds cores
    // 8l..8l+8; node n holds LLCs 4n..4n+4.
    let t = Topology::simulated_machine(2, 4, 8, 2);
    check_consistent(&t);
    assert_eq!(t.nr_cpu_ids, 128);
    assert_eq!(t.allowed, (0..128).collect::<Vec<_>>());
    assert_eq!(t.nr_nodes(), 2);
    assert_eq!(
        [t.cpu_node(0), t.cpu_node(31), t.cpu_node(32), t.cpu_node(64), t.cpu_node(96)],
        [0, 0, 1, 0, 1]
    );
    assert_eq!(t.cpu_node(128), 0, "beyond nr_cpu_ids");
    assert_eq!(t.cache_shard_size(), 8);

    assert_eq!(pods_of(&t, Cpu), (0..128).map(|c| vec![c]).collect::<Vec<_>>());
    assert_eq!(pods_of(&t, Smt), (0..64).map(|k| vec![k, k + 64]).collect::<Vec<_>>());
    assert_eq!(t.pods(Smt).cpu_pod[100], 36);

    let llcs: Vec<Vec<usize>> = (0..8).map(|l| cpus_of_cores(8 * l..8 * l + 8, 64, 2)).collect();
    assert_eq!(llcs[1], [8, 9, 10, 11, 12, 13, 14, 15, 72, 73, 74, 75, 76, 77, 78, 79]);
    assert_eq!(pods_of(&t, Cache), llcs);
    assert_eq!(
        t.pods(Cache).pod_node,
        [Some(0), Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), Some(1)]
    );
    // 8 cores per LLC at shard size 8: one shard per LLC, 16 CPUs each.
    assert_eq!(pods_of(&t, CacheShard), llcs);

    let numa: Vec<Vec<usize>> = (0..2).map(|n| cpus_of_cores(32 * n..32 * n + 32, 64, 2)).collect();
    assert_eq!(pods_of(&t, Numa), numa);
    assert_eq!(t.pods(Numa).pod_node, [Some(0), Some(1)]);
    assert_eq!(t.pods(Numa).cpu_pod[64], 0);
    assert_eq!(t.pods(Numa).cpu_pod[127], 1);

    assert_eq!(pods_of(&t, System), [(0..128).collect::<Vec<_>>()]);
    assert_eq!(t.pods(System).pod_node, [None]);
}

#[test]
fn x86_128_cpus_cache_shards_of_4_and_3_cores() {
    let facts = CpuFacts::x86_numbered(&[8; 8], 2, 4);
    let t = Topology::from_facts(facts.clone(), (0..128).collect(), 4);
    check_consistent(&t);
    // (8 + 2) / 4 = 2 shards of 4 cores per LLC; shard s of LLC l is pod 2l + s.
    let want: Vec<Vec<usize>> = (0..16).map(|s| cpus_of_cores(4 * s..4 * s + 4, 64, 2)).collect();
    assert_eq!(want[3], [12, 13, 14, 15, 76, 77, 78, 79]);
    assert_eq!(pods_of(&t, CacheShard), want);
    assert_eq!(t.pods(CacheShard).pod_node[7], Some(0));
    assert_eq!(t.pods(CacheShard).pod_node[8], Some(1));

    // (8 + 1) / 3 = 3 shards: 8 % 3 = 2 large ones of 3 cores, then one of 2.
    let t = Topology::from_facts(facts, (0..128).collect(), 3);
    check_consistent(&t);
    let mut want = Vec::new();
    for l in 0..8 {
        for (start, len) in [(0, 3), (3, 3), (6, 2)] {
            want.push(cpus_of_cores(8 * l + start..8 * l + start + len, 64, 2));
        }
    }
    assert_eq!(pods_of(&t, CacheShard), want);
}

#[test]
fn adjacent_sibling_numbering_gives_contiguous_pods() {
    // The other common numbering (siblings 2k and 2k + 1), with only part of
    // the CPUs allowed: pods still cover every CPU.
    let facts: Vec<CpuFacts> =
        (0..128).map(|c| CpuFacts { core: c / 2, llc: c / 16, node: c / 64 }).collect();
    let t = Topology::from_facts(facts, (0..128).step_by(3).collect(), 4);
    check_consistent(&t);
    assert_eq!(pods_of(&t, Smt), (0..64).map(|k| vec![2 * k, 2 * k + 1]).collect::<Vec<_>>());
    assert_eq!(pods_of(&t, Cache), (0..8).map(|l| (16 * l..16 * l + 16).collect()).collect::<Vec<Vec<_>>>());
    assert_eq!(
        pods_of(&t, CacheShard),
        (0..16).map(|s| (8 * s..8 * s + 8).collect()).collect::<Vec<Vec<_>>>()
    );
    assert_eq!(pods_of(&t, Numa), [(0..64).collect::<Vec<_>>(), (64..128).collect()]);
}

#[test]
fn x86_256_cpus_uneven_llcs_follow_the_shard_remainder_rule() {
    // 128 cores of 2 threads: CPU k and k + 128 are core k. LLCs of 3, 12, 20,
    // 36, 28 and 29 cores; three LLCs per node.
    let llc_cores = [3, 12, 20, 36, 28, 29];
    let t = Topology::from_llc_sizes(&llc_cores, 2, 3);
    check_consistent(&t);
    assert_eq!(t.nr_cpu_ids, 256);
    assert_eq!(t.nr_nodes(), 2);

    // Shard sizes in cores, by DIV_ROUND_CLOSEST(cores, 8) shards with the
    // remainder one each to the first shards.
    let shard_cores: [&[usize]; 6] =
        [&[3], &[6, 6], &[7, 7, 6], &[8, 7, 7, 7, 7], &[7, 7, 7, 7], &[8, 7, 7, 7]];
    let (mut want_llc, mut want_shard) = (Vec::new(), Vec::new());
    let mut start = 0;
    for (cores, shards) in llc_cores.iter().zip(shard_cores) {
        assert_eq!(shards.iter().sum::<usize>(), *cores);
        want_llc.push(cpus_of_cores(start..start + cores, 128, 2));
        let mut s = start;
        for &n in shards {
            want_shard.push(cpus_of_cores(s..s + n, 128, 2));
            s += n;
        }
        start += cores;
    }
    assert_eq!(pods_of(&t, Cache), want_llc);
    assert_eq!(pods_of(&t, CacheShard), want_shard);
    assert_eq!(t.pods(CacheShard).nr_pods(), 19);
    assert_eq!(want_shard[6], cpus_of_cores(35..43, 128, 2), "the first shard of the 36-core LLC is large");

    // SMT siblings always share a shard (and every coarser pod).
    for k in 0..128 {
        for scope in [Smt, CacheShard, Cache, Numa] {
            let pt = t.pods(scope);
            assert_eq!(pt.cpu_pod[k], pt.cpu_pod[k + 128], "{scope}: CPU {k} and its sibling");
        }
    }
    let numa = [cpus_of_cores(0..35, 128, 2), cpus_of_cores(35..128, 128, 2)];
    assert_eq!(pods_of(&t, Numa), numa);
    assert_eq!(t.pods(Numa).pod_node, [Some(0), Some(1)]);
    assert!(t.pods(CacheShard).pod_node[..6].iter().all(|&n| n == Some(0)));
    assert!(t.pods(CacheShard).pod_node[6..].iter().all(|&n| n == Some(1)));
}

#[test]
fn four_threads_per_core_stay_together() {
    // 10 cores of 4 threads (core k: CPUs k, k + 10, k + 20, k + 30), two LLCs
    // of 5 cores, shard size 2: (5 + 1) / 2 = 3 shards of 2, 2 and 1 cores.
    let t = Topology::from_facts(CpuFacts::x86_numbered(&[5, 5], 4, 1), (0..40).collect(), 2);
    check_consistent(&t);
    let ranges = [0..2, 2..4, 4..5, 5..7, 7..9, 9..10];
    let want: Vec<Vec<usize>> = ranges.into_iter().map(|r| cpus_of_cores(r, 10, 4)).collect();
    assert_eq!(want[2], [4, 14, 24, 34]);
    assert_eq!(pods_of(&t, CacheShard), want);
    assert_eq!(pods_of(&t, Smt)[9], [9, 19, 29, 39]);
    assert_eq!(t.nr_nodes(), 2, "one LLC per node");
}

#[test]
fn shard_size_zero_is_one_core_per_shard() {
    let t = Topology::from_facts(CpuFacts::x86_numbered(&[4, 4], 2, 2), (0..16).collect(), 0);
    check_consistent(&t);
    assert_eq!(t.cache_shard_size(), 1);
    assert_eq!(pods_of(&t, CacheShard), pods_of(&t, Smt));
    assert_eq!(pods_of(&t, CacheShard)[5], [5, 13]);
}

#[test]
fn an_llc_smaller_than_a_shard_is_one_shard() {
    let t = Topology::from_llc_sizes(&[3, 5, 11], 2, 3);
    check_consistent(&t);
    // 3 and 5 cores round to one shard; 11 cores to (11 + 4) / 8 = 1 as well.
    assert_eq!(pods_of(&t, CacheShard), pods_of(&t, Cache));
    assert_eq!(t.pods(CacheShard).nr_pods(), 3);
    assert_eq!(pods_of(&t, CacheShard)[0], [0, 1, 2, 19, 20, 21]);
}

#[test]
fn the_simulated_flat_machine() {
    for n in [1, 2, 7] {
        let t = Topology::simulated(n);
        check_consistent(&t);
        assert_eq!(t.pods(Cpu).nr_pods(), n);
        assert_eq!(t.pods(Smt).nr_pods(), n);
        for scope in [Cache, CacheShard, Numa, System] {
            assert_eq!(pods_of(&t, scope), [(0..n).collect::<Vec<_>>()], "{scope} of {n} CPUs");
        }
        assert_eq!(t.pods(Numa).pod_node, [Some(0)]);
        assert_eq!(t.nr_nodes(), 1);
        assert!(!t.real);
    }
    // 20 one-thread cores in one LLC: (20 + 4) / 8 = 3 shards of 7, 7 and 6.
    let t = Topology::simulated(20);
    check_consistent(&t);
    let want: Vec<Vec<usize>> = vec![(0..7).collect(), (7..14).collect(), (14..20).collect()];
    assert_eq!(pods_of(&t, CacheShard), want);
}

#[test]
fn sparse_node_ids_size_tables_by_the_highest() {
    let facts = vec![CpuFacts { core: 0, llc: 0, node: 0 }, CpuFacts { core: 1, llc: 1, node: 2 }];
    let t = Topology::from_facts(facts, vec![0, 1], 8);
    check_consistent(&t);
    assert_eq!(t.nr_nodes(), 3);
    assert_eq!(t.cpu_node(1), 2);
    assert_eq!(t.pods(Numa).pod_node, [Some(0), Some(2)]);
}

#[test]
fn an_llc_spanning_nodes_has_no_node() {
    // Sub-NUMA clustering: one L3 over two nodes.
    let facts: Vec<CpuFacts> = (0..8).map(|c| CpuFacts { core: c, llc: 0, node: c / 4 }).collect();
    let t = Topology::from_facts(facts, (0..8).collect(), 2);
    check_consistent(&t);
    assert_eq!(t.pods(Cache).pod_node, [None]);
    // Shards of 2 cores happen to fall within a node.
    assert_eq!(t.pods(CacheShard).pod_node, [Some(0), Some(0), Some(1), Some(1)]);
}

#[test]
#[should_panic(expected = "AffinityScope::Default must be resolved")]
fn pods_of_the_default_scope_is_a_bug() {
    let _ = Topology::simulated(2).pods(AffinityScope::Default);
}

#[test]
fn the_shard_size_variable() {
    assert_eq!(shard_size_from(None), 8);
    assert_eq!(shard_size_from(Some("4")), 4);
    assert_eq!(shard_size_from(Some(" 16\n")), 16);
    assert_eq!(shard_size_from(Some("0")), 0, "0 reaches effective_shard_size, which makes it 1");
    assert_eq!(shard_size_from(Some("-1")), 8);
    assert_eq!(shard_size_from(Some("eight")), 8);
}

#[test]
fn this_machine_has_consistent_pods() {
    let t = Topology::detect();
    check_consistent(&t);
    assert!(t.real);
    assert!(!t.allowed.is_empty());
    assert!(t.cache_shard_size() >= 1);
    // Every allowed CPU is in exactly one pod of each scope.
    for scope in AffinityScope::ALL {
        let pt = t.pods(scope);
        for &c in &t.allowed {
            let n = pt.pod_cpus.iter().filter(|p| p.contains(&c)).count();
            assert_eq!(n, 1, "{scope}: allowed CPU {c} is in {n} pods");
        }
    }
    assert!(t.pods(Cpu).nr_pods() >= t.pods(Smt).nr_pods());
    assert!(t.pods(Smt).nr_pods() >= t.pods(CacheShard).nr_pods());
    assert!(t.pods(CacheShard).nr_pods() >= t.pods(Cache).nr_pods());
    assert!(t.nr_nodes() >= t.pods(Numa).nr_pods());
}
