//! `PwqTable` on simulated machines: which pools a table makes for each
//! affinity scope, the pool of every CPU, the default pool, cpumasks, strict
//! and non-strict affinity, pool sharing and its reference counts, and the
//! placement of unbound work (`place`) from faked load hints.
//!
//! Simulated topologies are not real (`Topology::real == false`), and building
//! a table only registers pools: no worker thread starts here, and nothing is
//! queued. The load hints `place` reads are atomics, stored directly.

use std::collections::BTreeSet;

use super::PwqTable;
use crate::platform::loom::Ordering;
use crate::platform::topology::{AffinityScope, Topology};
use crate::pool::WorkerPool;
use crate::registry::Registry;
use crate::workqueue::Attrs;

use AffinityScope::{Cache, CacheShard, Cpu, Numa, Smt, System};

/// A registry of its own on `topo`, for the rest of the process (pools are
/// immortal and refer to it).
fn registry(topo: Topology) -> &'static Registry {
    assert!(!topo.real, "a simulated topology: no worker may start");
    Box::leak(Box::new(Registry::new(topo)))
}

/// 2 nodes × 4 last-level caches × 8 cores × SMT2: CPUs `i` and `i + 64` are
/// the threads of core `i`; LLC `l` holds cores `8l..8l + 8`.
fn machine_128() -> &'static Registry {
    registry(Topology::simulated_machine(2, 4, 8, 2))
}

/// The CPUs of NUMA node 1 on [`machine_128`], ascending.
fn node1_of_128() -> Vec<usize> {
    (32..64).chain(96..128).collect()
}

fn attrs(strict: bool, cpumask: Option<Vec<usize>>) -> Attrs {
    Attrs { affinity_strict: strict, cpumask, ..Attrs::default() }
}

impl PwqTable {
    fn pool(&self, i: usize) -> &'static WorkerPool {
        self.pools[i]
    }
    fn pool_of(&self, cpu: usize) -> &'static WorkerPool {
        self.pool(self.pool_of_cpu(cpu))
    }
    fn dfl_pool(&self) -> &'static WorkerPool {
        self.pool(self.dfl as usize)
    }
}

/// Checks `t`, built for `cpumask` (ascending) on `scope`, against the
/// topology: distinct pools, each CPU on the pool of its pod ∩ the mask (the
/// default pool where that is empty), the default pool over the whole mask, the candidates of placement, and each pool's concurrency and affinity.
fn check_table(reg: &Registry, t: &PwqTable, scope: AffinityScope, cpumask: &[usize], strict: bool) {
    let topo = &reg.ctx.topo;
    let pods = topo.pods(scope);
    let what = format!("{scope}, strict {strict}, mask of {} CPUs", cpumask.len());
    // The pods of the mask: each topology pod ∩ the mask, the empty ones left out.
    let mask_pods: BTreeSet<Vec<usize>> = pods
        .pod_cpus
        .iter()
        .map(|p| p.iter().copied().filter(|c| cpumask.contains(c)).collect::<Vec<_>>())
        .filter(|p| !p.is_empty())
        .collect();
    let mut want_pools = mask_pods.clone();
    want_pools.insert(cpumask.to_vec());
    assert_eq!(t.pools.len(), want_pools.len(), "{what}: distinct pools");
    let pool_pods: BTreeSet<Vec<usize>> = t.pools.iter().map(|p| p.pod.to_vec()).collect();
    assert_eq!(pool_pods, want_pools, "{what}: one pool per pod of the mask, and the default");
    for (i, a) in t.pools.iter().enumerate() {
        for b in &t.pools[i + 1..] {
            assert!(!std::ptr::eq(*a, *b), "{what}: a pool is held twice");
        }
    }
    assert_eq!(&t.dfl_pool().pod[..], cpumask, "{what}: the default pool spans the cpumask");
    for cpu in 0..topo.nr_cpu_ids {
        let p = t.pool_of(cpu);
        // The part of the CPU's pod in the mask (`wq_calc_pod_cpumask`), even
        // for a CPU outside the mask; the default pool where that is empty.
        let want: Vec<usize> =
            pods.pod_cpus[pods.cpu_pod[cpu]].iter().copied().filter(|c| cpumask.contains(c)).collect();
        if want.is_empty() {
            assert!(std::ptr::eq(p, t.dfl_pool()), "{what}: CPU {cpu}, no pod in the mask: the default pool");
        } else {
            assert_eq!(p.pod.to_vec(), want, "{what}: CPU {cpu} is on the pool of its pod");
        }
    }
    assert_eq!(t.pool_of_cpu(topo.nr_cpu_ids + 5), t.dfl as usize, "{what}: a CPU id beyond nr_cpu_ids");
    // The candidates of placement: the pools of the mask's CPUs, once each.
    let cands: BTreeSet<Vec<usize>> = t.pod_pools.iter().map(|&i| t.pool(i as usize).pod.to_vec()).collect();
    assert_eq!(cands, mask_pods, "{what}: placement candidates");
    assert_eq!(t.pod_pools.len(), mask_pods.len(), "{what}: candidates are distinct");
    assert_eq!(t.balance, !strict && mask_pods.len() > 1, "{what}: balance");
    for p in t.pools.iter() {
        assert_eq!(p.concurrency, p.pod.len() as i64, "{what}: a pool's concurrency is its pod's CPUs");
        assert_eq!(p.cpu, None, "{what}: unbound");
        assert_eq!(p.nice, 0);
        let want: &[usize] = if strict { &p.pod } else { cpumask };
        assert_eq!(&p.affinity[..], want, "{what}: affinity of the pool of {:?}", p.pod);
        assert!(p.refs.load(Ordering::Relaxed) >= 1, "{what}: a table holds a reference on its pools");
    }
}

#[test]
fn each_scope_gives_one_pool_per_pod_and_the_default() {
    let reg = machine_128();
    let all: Vec<usize> = (0..128).collect();
    // Pod pools (+ the default pool where no pod is the whole mask).
    let want =
        [(Cpu, 128 + 1), (Smt, 64 + 1), (Cache, 8 + 1), (CacheShard, 8 + 1), (Numa, 2 + 1), (System, 1)];
    for strict in [false, true] {
        for (scope, n) in want {
            let t = PwqTable::new(reg, attrs(strict, None), scope, false, 1);
            assert_eq!(t.pools.len(), n, "{scope}, strict {strict}");
            check_table(reg, &t, scope, &all, strict);
        }
    }
    // Every table is gone: so is every reference.
    for p in reg.pools() {
        assert_eq!(p.refs.load(Ordering::Relaxed), 0, "pool of {:?}", p.pod);
        assert_eq!(p.lock().nr_workers, 0, "no worker was started");
    }
}

#[test]
fn an_ordered_table_maps_every_cpu_to_the_default_pool() {
    let reg = machine_128();
    for strict in [false, true] {
        for scope in AffinityScope::ALL {
            let t = PwqTable::new(reg, attrs(strict, None), scope, true, 1);
            assert_eq!(t.pools.len(), 1, "{scope}: only the default pool");
            assert_eq!(t.dfl_pool().pod.len(), 128);
            assert_eq!(t.dfl_pool().concurrency, 128);
            assert!((0..128).all(|c| t.pool_of_cpu(c) == t.dfl as usize), "{scope}");
            assert!(!t.balance, "{scope}: an ordered queue's items never move");
        }
    }
    let mask = node1_of_128();
    let t = PwqTable::new(reg, attrs(false, Some(mask.clone())), Cache, true, 1);
    assert_eq!(t.pools.len(), 1);
    assert_eq!(t.dfl_pool().pod.to_vec(), mask);
    assert!((0..128).all(|c| t.pool_of_cpu(c) == t.dfl as usize));
}

#[test]
fn a_cpumask_of_one_node_gives_only_that_nodes_pods() {
    let reg = machine_128();
    let mask = node1_of_128();
    // Node 1 holds LLCs 4..8 (and their shards), cores 32..64, one NUMA pod.
    let want = [(Cpu, 64 + 1), (Smt, 32 + 1), (Cache, 4 + 1), (CacheShard, 4 + 1), (Numa, 1), (System, 1)];
    for strict in [false, true] {
        for (scope, n) in want {
            let t = PwqTable::new(reg, attrs(strict, Some(mask.clone())), scope, false, 1);
            assert_eq!(t.pools.len(), n, "{scope}, strict {strict}");
            check_table(reg, &t, scope, &mask, strict);
            // Node 0's CPUs have no pod in the mask: the default pool.
            for cpu in (0..32).chain(64..96) {
                assert_eq!(t.pool_of_cpu(cpu), t.dfl as usize, "{scope}: CPU {cpu} of node 0");
            }
            // No pool reaches into node 0.
            for p in t.pools.iter() {
                assert!(p.pod.iter().all(|&c| reg.ctx.topo.cpu_node(c) == 1), "{scope}: {:?}", p.pod);
                assert_eq!(p.node, Some(1), "{scope}: the pool of {:?} lies in node 1", p.pod);
            }
        }
    }
    // A mask that cuts through pods: the pools are the pods' parts in it.
    let half: Vec<usize> = (0..128).filter(|c| c % 2 == 0).collect();
    for scope in AffinityScope::ALL {
        let t = PwqTable::new(reg, attrs(false, Some(half.clone())), scope, false, 1);
        check_table(reg, &t, scope, &half, false);
    }
    // CPUs outside the allowed set are ignored; the mask is sorted and deduplicated.
    let messy = vec![127, 96, 96, 100];
    let t = PwqTable::new(reg, attrs(false, Some(messy)), Cache, false, 1);
    check_table(reg, &t, Cache, &[96, 100, 127], false);
}

#[test]
fn strict_and_non_strict_and_nice_values_are_distinct_pools() {
    let reg = machine_128();
    let loose = PwqTable::new(reg, attrs(false, None), Cache, false, 1);
    let strict = PwqTable::new(reg, attrs(true, None), Cache, false, 1);
    let niced = PwqTable::new(reg, attrs(false, None).with_nice(5), Cache, false, 1);
    for (a, b) in [(&loose, &strict), (&loose, &niced), (&strict, &niced)] {
        for p in a.pools.iter() {
            assert!(b.pools.iter().all(|q| !std::ptr::eq(*p, *q)), "pool of {:?} shared", p.pod);
        }
    }
    // Same pods, different affinity.
    for cpu in [0, 17, 64, 127] {
        assert_eq!(loose.pool_of(cpu).pod, strict.pool_of(cpu).pod);
        assert_eq!(loose.pool_of(cpu).affinity.len(), 128);
        assert_eq!(strict.pool_of(cpu).affinity, strict.pool_of(cpu).pod);
    }
    assert!(niced.pools.iter().all(|p| p.nice == 5));
    // A strict pod pool and the strict default pool are different pools even
    // where a non-strict one would share its affinity.
    assert!(!std::ptr::eq(strict.pool_of(0), strict.dfl_pool()));
}

#[test]
fn tables_with_equal_attrs_share_pools_and_count_references() {
    let reg = machine_128();
    let refs = |t: &PwqTable| t.pools.iter().map(|p| p.refs.load(Ordering::Relaxed)).collect::<Vec<_>>();
    for scope in AffinityScope::ALL {
        for strict in [false, true] {
            let a = PwqTable::new(reg, attrs(strict, None), scope, false, 1);
            let n = a.pools.len();
            assert_eq!(refs(&a), vec![1; n], "{scope}: one reference per table");
            // The same attributes: the same pools, one more reference each.
            let b = PwqTable::new(reg, attrs(strict, None), scope, false, 2);
            assert_eq!(b.pools.len(), n);
            for (pa, pb) in a.pools.iter().zip(b.pools.iter()) {
                assert!(std::ptr::eq(*pa, *pb), "{scope}: pool of {:?} not shared", pa.pod);
            }
            for cpu in 0..128 {
                assert!(std::ptr::eq(a.pool_of(cpu), b.pool_of(cpu)));
            }
            assert_eq!(refs(&a), vec![2; n], "{scope}");
            // An ordered table with the same attributes holds only the default pool.
            let o = PwqTable::new(reg, attrs(strict, None), scope, true, 1);
            assert!(std::ptr::eq(o.dfl_pool(), a.dfl_pool()));
            assert_eq!(a.dfl_pool().refs.load(Ordering::Relaxed), 3);
            drop(o);
            let pools: Vec<&'static WorkerPool> = a.pools.to_vec();
            drop(a);
            assert!(pools.iter().all(|p| p.refs.load(Ordering::Relaxed) == 1), "{scope}");
            drop(b);
            assert!(pools.iter().all(|p| p.refs.load(Ordering::Relaxed) == 0), "{scope}");
            assert!(pools.iter().all(|p| p.is_unused()));
            // Made again: the same pools come back (the registry keeps them).
            let c = PwqTable::new(reg, attrs(strict, None), scope, false, 3);
            for (p, q) in pools.iter().zip(c.pools.iter()) {
                assert!(std::ptr::eq(*p, *q), "{scope}: a pool was made anew");
            }
            assert_eq!(refs(&c), vec![1; n]);
        }
    }
    assert!(reg.pools().all(|p| p.refs.load(Ordering::Relaxed) == 0));
    assert!(reg.pools().all(|p| p.lock().nr_workers == 0), "no worker was started");
}

#[test]
fn uneven_cache_shards_give_pools_as_large_as_their_pods() {
    // 128 cores of 2 threads in LLCs of 3, 12, 20, 36, 28 and 29 cores: 19
    // shards of 3 to 8 cores (platform/topology/tests.rs has them by hand).
    let reg = registry(Topology::from_llc_sizes(&[3, 12, 20, 36, 28, 29], 2, 3));
    let topo = &reg.ctx.topo;
    assert_eq!(topo.nr_cpu_ids, 256);
    let pods = topo.pods(CacheShard);
    assert_eq!(pods.nr_pods(), 19);
    let all: Vec<usize> = (0..256).collect();
    for strict in [false, true] {
        let t = PwqTable::new(reg, attrs(strict, None), CacheShard, false, 1);
        assert_eq!(t.pools.len(), 19 + 1);
        check_table(reg, &t, CacheShard, &all, strict);
        for pod in &pods.pod_cpus {
            let p = t.pool_of(pod[0]);
            assert_eq!(p.concurrency, pod.len() as i64, "the pool of shard {pod:?}");
        }
        let sizes: BTreeSet<i64> = t.pod_pools.iter().map(|&i| t.pool(i as usize).concurrency).collect();
        assert_eq!(sizes, BTreeSet::from([6, 12, 14, 16]), "shards of 3, 6, 7 and 8 cores");
        assert_eq!(t.dfl_pool().concurrency, 256);
    }
}

/// Fakes a pool's load hints: `running` workers counted, `queued` items waiting.
fn set_load(p: &WorkerPool, running: i64, queued: usize) {
    p.nr_running.store(running, Ordering::Relaxed);
    p.queued.store(queued, Ordering::Relaxed);
}

fn clear_loads(t: &PwqTable) {
    for p in t.pools.iter() {
        set_load(p, 0, 0);
    }
}

#[test]
fn placement_stays_local_until_the_pod_is_busy_then_picks_the_least_loaded() {
    let reg = machine_128();
    // Eight LLC pods of 16 CPUs; CPU 0 is in LLC 0, CPU 40 in LLC 5.
    let t = PwqTable::new(reg, attrs(false, None), Cache, false, 1);
    assert!(t.balance);
    let local = t.pool_of_cpu(0);
    let llc = |l: usize| t.pool_of_cpu(8 * l);
    // Idle everywhere: local.
    for cpu in 0..128 {
        assert_eq!(t.place(cpu), t.pool_of_cpu(cpu), "CPU {cpu}, all idle");
    }
    // Busy but for one CPU (running + waiting < concurrency): still local,
    // however idle the others are.
    set_load(t.pool(local), 10, 5);
    assert_eq!(t.place(0), local, "15 of 16: not busy");
    assert_eq!(t.place(64), local, "the sibling thread's CPU, same pod");
    // Busy: the least loaded pod takes it.
    for l in 1..8 {
        set_load(t.pool(llc(l)), 12, 0);
    }
    set_load(t.pool(llc(5)), 3, 1);
    set_load(t.pool(local), 16, 0);
    assert_eq!(t.place(0), llc(5), "running alone fills the pod");
    set_load(t.pool(local), 1, 15);
    assert_eq!(t.place(0), llc(5), "waiting items count as much as running ones");
    // Only the queueing CPU's pod decides whether to move: a CPU of an
    // unbusy pod stays where it is.
    assert_eq!(t.place(40), llc(5));
    assert_eq!(t.place(8), llc(1), "LLC 1 is loaded but not busy");
    // Every pod as busy as the local one: nowhere better, stays local.
    for l in 0..8 {
        set_load(t.pool(llc(l)), 16, 4);
    }
    assert_eq!(t.place(0), local, "ties keep the item local");
    assert_eq!(t.place(127), llc(7));
    // One pod a little less busy (over capacity, still the least loaded).
    set_load(t.pool(llc(2)), 16, 3);
    assert_eq!(t.place(0), llc(2));
    assert_eq!(t.place(100), llc(2), "CPU 100 is core 36, LLC 4");
    // A negative count (a hint read mid-update) counts as nobody running.
    clear_loads(&t);
    set_load(t.pool(local), 16, 0);
    for l in 1..8 {
        set_load(t.pool(llc(l)), 2, 0);
    }
    set_load(t.pool(llc(6)), -3, 1);
    assert_eq!(t.place(0), llc(6));
    clear_loads(&t);
}

#[test]
fn placement_weighs_load_by_each_pods_cpus() {
    // Shards of 6 to 16 CPUs: busy relative to their size.
    let reg = registry(Topology::from_llc_sizes(&[3, 12, 20, 36, 28, 29], 2, 3));
    let t = PwqTable::new(reg, attrs(false, None), CacheShard, false, 1);
    let pods = &reg.ctx.topo.pods(CacheShard).pod_cpus;
    // Pod 0: 3 cores (6 CPUs); pod 6: 8 cores (16 CPUs); pod 1: 6 cores (12 CPUs).
    let (small, big, mid) = (t.pool_of_cpu(pods[0][0]), t.pool_of_cpu(pods[6][0]), t.pool_of_cpu(pods[1][0]));
    assert_eq!([t.pool(small).concurrency, t.pool(big).concurrency, t.pool(mid).concurrency], [6, 16, 12]);
    for &i in t.pod_pools.iter() {
        let p = t.pool(i as usize);
        set_load(p, p.concurrency, 0);
    }
    set_load(t.pool(mid), 12, 0);
    // 3 of 6 (1/2) against 7 of 16 (7/16): the bigger pod is less loaded.
    set_load(t.pool(small), 3, 0);
    set_load(t.pool(big), 7, 0);
    assert_eq!(t.place(pods[1][0]), big);
    // 2 of 6 (1/3) against 7 of 16: now the small one.
    set_load(t.pool(small), 2, 0);
    assert_eq!(t.place(pods[1][0]), small);
    clear_loads(&t);
}

#[test]
fn strict_ordered_and_single_pod_tables_never_move_work() {
    let reg = machine_128();
    let strict = PwqTable::new(reg, attrs(true, None), Cache, false, 1);
    let ordered = PwqTable::new(reg, attrs(false, None), Cache, true, 1);
    let system = PwqTable::new(reg, attrs(false, None), System, false, 1);
    let one_pod = PwqTable::new(reg, attrs(false, Some((0..8).collect())), Cache, false, 1);
    // The control: the same conditions move a non-strict table's item.
    let loose = PwqTable::new(reg, attrs(false, None), Cache, false, 1);
    assert!(!strict.balance && !ordered.balance && !system.balance && !one_pod.balance);
    assert!(loose.balance);
    for cpu in [0, 40, 64, 127] {
        // The queueing CPU's pool far past busy, every other pool idle.
        for t in [&strict, &ordered, &system, &one_pod, &loose] {
            clear_loads(t);
        }
        for t in [&strict, &ordered, &system, &one_pod, &loose] {
            let p = t.pool_of(cpu);
            set_load(p, p.concurrency, 100);
        }
        assert_eq!(strict.place(cpu), strict.pool_of_cpu(cpu), "strict, CPU {cpu}");
        assert_eq!(ordered.place(cpu), ordered.dfl as usize, "ordered, CPU {cpu}");
        assert_eq!(system.place(cpu), system.dfl as usize, "one pod, CPU {cpu}");
        assert_eq!(one_pod.place(cpu), one_pod.pool_of_cpu(cpu), "a mask of one pod, CPU {cpu}");
        assert_ne!(loose.place(cpu), loose.pool_of_cpu(cpu), "non-strict, CPU {cpu}: moves");
    }
    for t in [&strict, &ordered, &system, &one_pod, &loose] {
        clear_loads(t);
    }
}

#[test]
fn work_queued_from_outside_the_cpumask_starts_on_the_default_pool() {
    let reg = machine_128();
    let mask = node1_of_128();
    let t = PwqTable::new(reg, attrs(false, Some(mask.clone())), Cache, false, 1);
    // CPU 0 is outside: the default pool over the mask, not busy.
    assert_eq!(t.place(0), t.dfl as usize);
    // The default pool busy: the least loaded of the mask's pods.
    set_load(t.dfl_pool(), 64, 0);
    for &i in t.pod_pools.iter() {
        set_load(t.pool(i as usize), 10, 0);
    }
    let llc6 = t.pool_of_cpu(48);
    set_load(t.pool(llc6), 2, 0);
    assert_eq!(t.place(0), llc6);
    assert!(t.pod_pools.iter().all(|&i| t.pool(i as usize).pod.iter().all(|c| mask.contains(c))));
    clear_loads(&t);
}
