//! `cmwq dump`: the kernel's `wq_dump.py` for a running program: affinity
//! scopes, worker pools, workqueue → pool per CPU, rescuers, and unbound
//! queues' per-node `max_active`; then what the kernel's
//! `show_all_workqueues()` prints (running items and how long they have run).

use std::fmt::Write as _;
use std::io::Write;

use clap::Args;

use super::wire::{Dump, WqDump};
use crate::demo::Result;

/// Options of `cmwq dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// The process to dump (default: the only one that serves cmwq stats to this user)
    #[arg(long, value_name = "PID")]
    pub(crate) pid: Option<u32>,
}

/// Runs `cmwq dump`.
pub(crate) fn run(args: &DumpArgs, out: &mut dyn Write) -> Result<()> {
    let ep = super::pick(args.pid)?;
    let d: Dump = super::fetch(&ep, "dump")?;
    out.write_all(render(&d).as_bytes())?;
    Ok(())
}

/// A CPU set as the kernel prints a cpumask (`%*pb`): 32-bit words in hex,
/// most significant first, separated by commas; `00000000` when empty.
pub(crate) fn cpumask(cpus: &[usize]) -> String {
    let words = cpus.iter().map(|c| c / 32 + 1).max().unwrap_or(1);
    let mut w = vec![0u32; words];
    for &c in cpus {
        w[c / 32] |= 1 << (c % 32);
    }
    w.iter().rev().map(|x| format!("{x:08x}")).collect::<Vec<_>>().join(",")
}

/// A section title, underlined as `wq_dump.py` does.
fn title(s: &mut String, t: &str) {
    let _ = writeln!(s, "{t}\n{}", "=".repeat(t.len()));
}

/// The type column of "Workqueue CPU -> pool": `percpu`, `unbound`,
/// `unbound,S` (strict) or `ordered`.
pub(crate) fn wq_type(w: &WqDump) -> &'static str {
    if !w.unbound {
        "percpu"
    } else if w.ordered == Some(true) {
        "ordered"
    } else if w.strict == Some(true) {
        "unbound,S"
    } else {
        "unbound"
    }
}

/// The whole dump, as text.
pub(crate) fn render(d: &Dump) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "cmwq dump: pid {} ({})\n", d.pid, d.program);

    title(&mut s, "Affinity Scopes");
    let _ = writeln!(s, "wq_unbound_cpumask={}", cpumask(&d.allowed_cpus));
    for sc in &d.scopes {
        let _ = writeln!(s, "\n{}{}", sc.name.to_uppercase(), if sc.default { " (default)" } else { "" });
        let _ = writeln!(s, "  nr_pods  {}", sc.pod_cpus.len());
        let _ = write!(s, "  pod_cpus");
        for (i, p) in sc.pod_cpus.iter().enumerate() {
            let _ = write!(s, " [{i}]={}", cpumask(p));
        }
        let _ = write!(s, "\n  pod_node");
        for (i, n) in sc.pod_node.iter().enumerate() {
            // -1: the kernel's NUMA_NO_NODE, a pod that spans nodes.
            let _ = write!(s, " [{i}]={}", n.map_or(-1, |n| n as i64));
        }
        let _ = write!(s, "\n  cpu_pod ");
        for (c, p) in &sc.cpu_pod {
            let _ = write!(s, " [{c}]={}", p.map_or_else(|| "-".to_owned(), |p| p.to_string()));
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s);
    title(&mut s, "Worker Pools");
    let id_len = d.pools.iter().map(|p| p.id.to_string().len()).max().unwrap_or(1);
    // In the order of their ids, as the kernel's idr walk gives them. A
    // per-CPU pool's `ref` is its pwqs (the kernel's refcnt counts them).
    let mut pools: Vec<_> = d.pools.iter().collect();
    pools.sort_by_key(|p| p.id);
    let refs_of = |p: &super::wire::PoolRow| match p.cpu {
        Some(_) => Some(d.workqueues.iter().flat_map(|w| &w.pwqs).filter(|q| q.pool == p.id).count()),
        None => p.refs,
    };
    let ref_len = pools.iter().map(|p| refs_of(p).unwrap_or(0).to_string().len()).max().unwrap_or(1);
    for p in pools {
        let refs = refs_of(p).map_or_else(|| "-".to_owned(), |r| r.to_string());
        let _ = write!(
            s,
            "pool[{:0id_len$}] ref={refs:>ref_len$} nice={:3} idle/workers={:3}/{:3} ",
            p.id, p.nice, p.idle, p.workers
        );
        // Refused the nice value it asks for (no `CAP_SYS_NICE`): say so.
        if let Some(w) = p.nice_wanted.filter(|&w| w != p.nice) {
            let _ = write!(s, "nice_wanted={w} ");
        }
        match p.cpu {
            Some(c) => {
                let bh = if p.bh { " bh" } else { "" };
                let _ = write!(s, "cpu={c:3}{bh}{}", if p.highpri { " highpri" } else { "" });
            }
            None => {
                let _ = write!(s, "cpus={} pod_cpus={}", cpumask(&p.cpus), cpumask(&p.pod));
            }
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s);
    title(&mut s, "Workqueue CPU -> pool");
    let name_len = d.workqueues.iter().map(|w| w.name.len()).max().unwrap_or(0).max(24);
    let cpus = &d.allowed_cpus;
    let cell = |c: usize| c.to_string().len().max(id_len);
    let _ = write!(s, "[{:^w$}\\ {:9}", "workqueue", "type   CPU", w = name_len - 2);
    for &c in cpus {
        let _ = write!(s, " {c:>w$}", w = cell(c));
    }
    let _ = writeln!(s, " dfl]");
    for w in &d.workqueues {
        let _ = write!(s, "{:name_len$} {:10}", w.name, wq_type(w));
        for &c in cpus {
            let pool = w
                .pwqs
                .iter()
                .rev()
                .find(|p| p.cpu == Some(c) || (p.cpu.is_none() && p.pod.contains(&c)))
                .map_or_else(|| "-".to_owned(), |p| p.pool.to_string());
            let _ = write!(s, " {pool:>w$}", w = cell(c));
        }
        if w.unbound {
            let dfl = match (w.ordered, w.pwqs.as_slice()) {
                (Some(true), [only]) => only.pool.to_string(),
                _ => "-".to_owned(),
            };
            let _ = write!(s, " {dfl:>id_len$}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "(-: no pwq on that CPU's pool yet; pwqs are made on first use)");

    let _ = writeln!(s);
    title(&mut s, "Workqueue -> rescuer");
    let mask_len = cpumask(cpus).len().max("unbound_cpus".len());
    let _ = writeln!(
        s,
        "[{:^w$}\\ {:mask_len$}    pid {:mask_len$} ]",
        "workqueue",
        "unbound_cpus",
        "rescuer_cpus",
        w = name_len - 2
    );
    let reclaim: Vec<&WqDump> = d.workqueues.iter().filter(|w| w.flags.contains("MEM_RECLAIM")).collect();
    for w in &reclaim {
        let ucpus = w.cpumask.as_deref().map(cpumask).unwrap_or_default();
        let r = w.rescuer.as_ref();
        let pid = r.and_then(|r| r.tid).map_or_else(|| "-".to_owned(), |t| t.to_string());
        let rcpus = r.and_then(|r| r.cpus.as_deref()).map_or_else(|| "-".to_owned(), cpumask);
        let _ = writeln!(s, "{:name_len$} {ucpus:mask_len$} {pid:>6} {rcpus:mask_len$}", w.name);
    }
    if reclaim.is_empty() {
        let _ = writeln!(s, "(no MEM_RECLAIM workqueue)");
    }

    let _ = writeln!(s);
    title(&mut s, "Unbound workqueue -> node_nr/max_active");
    let _ = writeln!(s, "online_cpus={}", cpumask(cpus));
    for (n, c) in d.nodes.iter().enumerate() {
        let _ = writeln!(s, "NODE[{n:02}]={}", cpumask(c));
    }
    let _ = writeln!(s);
    let _ = write!(s, "[{:^w$}\\ min max", "workqueue", w = name_len - 2);
    for n in 0..d.nodes.len() {
        if n == 0 {
            let _ = write!(s, "  NODE 0");
        } else {
            let _ = write!(s, " {n:7}");
        }
    }
    let _ = writeln!(s, " {:>7} ]", "dfl");
    for w in d.workqueues.iter().filter(|w| w.unbound) {
        let min = w.min_active.map_or_else(|| "-".to_owned(), |m| m.to_string());
        let _ = write!(s, "{:name_len$} {min:>3} {:3}", w.name, w.max_active);
        // One column per node, then `dfl` (pools whose pod spans nodes).
        for n in (0..d.nodes.len()).map(Some).chain([None]) {
            match w.nodes.iter().find(|c| c.node == n) {
                Some(c) => {
                    let _ = write!(s, " {:3}/{:3}", c.active, c.max);
                }
                None => {
                    let _ = write!(s, " {:>3}/{:>3}", "-", "-");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "(-: not counted per node, as an ordered queue)");

    if !d.text.is_empty() {
        let _ = writeln!(s);
        title(&mut s, "Busy workqueues and worker pools (show_all_workqueues)");
        s.push_str(&d.text);
        if !d.text.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::wire::{NodeCount, PoolRow, Pwq, RescuerInfo, Scope};

    #[test]
    fn cpumasks_print_as_the_kernel_does() {
        assert_eq!(cpumask(&[]), "00000000");
        assert_eq!(cpumask(&[0, 1, 2, 3]), "0000000f");
        assert_eq!(cpumask(&[1, 33]), "00000002,00000002");
        assert_eq!(cpumask(&[31]), "80000000");
    }

    fn sample() -> Dump {
        Dump {
            pid: 9,
            program: "demo".into(),
            allowed_cpus: vec![0, 1],
            nodes: vec![vec![0, 1]],
            scopes: vec![Scope {
                name: "cache_shard".into(),
                default: true,
                pod_cpus: vec![vec![0, 1]],
                pod_node: vec![Some(0)],
                cpu_pod: vec![(0, Some(0)), (1, Some(0))],
            }],
            workqueues: vec![
                WqDump {
                    name: "mixed-percpu".into(),
                    flags: "PERCPU | MEM_RECLAIM".into(),
                    rescuer: Some(RescuerInfo { tid: Some(4242), cpus: Some(vec![0, 1]) }),
                    max_active: 1024,
                    pwqs: vec![Pwq { pool: 0, cpu: Some(0), pod: vec![0], ..Pwq::default() }],
                    ..WqDump::default()
                },
                WqDump {
                    name: "mixed-unbound".into(),
                    flags: "UNBOUND".into(),
                    unbound: true,
                    ordered: Some(false),
                    strict: Some(true),
                    max_active: 4,
                    min_active: Some(4),
                    nodes: vec![
                        NodeCount { node: Some(0), active: 2, max: 4 },
                        NodeCount { node: None, active: 0, max: 4 },
                    ],
                    pwqs: vec![Pwq { pool: 4, pod: vec![0, 1], ..Pwq::default() }],
                    ..WqDump::default()
                },
            ],
            pools: vec![
                PoolRow { id: 0, cpu: Some(0), pod: vec![0], workers: 2, idle: 1, ..PoolRow::default() },
                PoolRow {
                    id: 4,
                    nice_wanted: Some(-7),
                    pod: vec![0, 1],
                    cpus: vec![0, 1],
                    refs: Some(1),
                    workers: 3,
                    ..PoolRow::default()
                },
            ],
            text: "Showing busy workqueues and worker pools:\n".into(),
            ..Dump::default()
        }
    }

    #[test]
    fn the_sections_of_wq_dump() {
        let text = render(&sample());
        let titles = [
            "Affinity Scopes",
            "Worker Pools",
            "Workqueue CPU -> pool",
            "Workqueue -> rescuer",
            "Unbound workqueue -> node_nr/max_active",
        ];
        let mut at = 0;
        for t in titles {
            let found = text[at..].find(&format!("{t}\n{}\n", "=".repeat(t.len())));
            at += found.unwrap_or_else(|| panic!("{t} missing or out of order:\n{text}"));
        }
        assert!(text.contains("CACHE_SHARD (default)\n  nr_pods  1\n  pod_cpus [0]=00000003\n"), "{text}");
        assert!(text.contains("pool[0] ref=1 nice=  0 idle/workers=  1/  2 cpu=  0\n"), "{text}");
        assert!(
            text.contains(
                "pool[4] ref=1 nice=  0 idle/workers=  0/  3 nice_wanted=-7 cpus=00000003 pod_cpus=00000003\n"
            ),
            "{text}"
        );
        let row = |name: &str| {
            text.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().collect::<Vec<_>>()
        };
        assert_eq!(row("mixed-percpu ")[1..], ["percpu", "0", "-"]);
        assert_eq!(row("mixed-unbound ")[1..], ["unbound,S", "4", "4", "-"]);
        let rescuers = &text[text.find("Workqueue -> rescuer").unwrap()..];
        let line = rescuers.lines().find(|l| l.starts_with("mixed-percpu ")).unwrap();
        assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["mixed-percpu", "4242", "00000003"]);
        assert!(text.contains("NODE[00]=00000003"));
        assert!(text.contains("\nmixed-unbound              4   4   2/  4   0/  4\n"), "{text}");
        assert!(text.ends_with("Showing busy workqueues and worker pools:\n"));
    }
}
