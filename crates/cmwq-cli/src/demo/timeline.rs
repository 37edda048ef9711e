//! Timelines of the kernel documentation's "Example Execution Scenarios"
//! (`Documentation/core-api/workqueue.rst`): the documented events, the measured
//! ones, how the two are paired, and the side-by-side table. Pure logic only.

use std::fmt::Write as _;
use std::time::Duration;

/// What happened to a work item, in the documentation's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Starts,
    Sleeps,
    WakesAndBurns,
    WakesAndFinishes,
    Finishes,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Starts => "starts and burns CPU",
            Kind::Sleeps => "sleeps",
            Kind::WakesAndBurns => "wakes up and burns CPU",
            Kind::WakesAndFinishes => "wakes up and finishes",
            Kind::Finishes => "finishes",
        }
    }
}

/// One line of a documented timeline. The documentation's "w1 and w2 start and
/// burn CPU" is two events at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocEvent {
    pub(crate) ms: u32,
    pub(crate) item: u8,
    pub(crate) kind: Kind,
}

const fn ev(ms: u32, item: u8, kind: Kind) -> DocEvent {
    DocEvent { ms, item, kind }
}

use Kind::{Finishes, Sleeps, Starts, WakesAndBurns, WakesAndFinishes};

/// (a) The original wq: a single worker runs the items back to back.
pub(crate) const DOC_SINGLE_WORKER: &[DocEvent] = &[
    ev(0, 0, Starts),
    ev(5, 0, Sleeps),
    ev(15, 0, WakesAndBurns),
    ev(20, 0, Finishes),
    ev(20, 1, Starts),
    ev(25, 1, Sleeps),
    ev(35, 1, WakesAndFinishes),
    ev(35, 2, Starts),
    ev(40, 2, Sleeps),
    ev(50, 2, WakesAndFinishes),
];

/// (b) cmwq with `max_active >= 3`.
pub(crate) const DOC_CMWQ: &[DocEvent] = &[
    ev(0, 0, Starts),
    ev(5, 0, Sleeps),
    ev(5, 1, Starts),
    ev(10, 1, Sleeps),
    ev(10, 2, Starts),
    ev(15, 2, Sleeps),
    ev(15, 0, WakesAndBurns),
    ev(20, 0, Finishes),
    ev(20, 1, WakesAndFinishes),
    ev(25, 2, WakesAndFinishes),
];

/// (c) cmwq with `max_active == 2`.
pub(crate) const DOC_MAX_ACTIVE_2: &[DocEvent] = &[
    ev(0, 0, Starts),
    ev(5, 0, Sleeps),
    ev(5, 1, Starts),
    ev(10, 1, Sleeps),
    ev(15, 0, WakesAndBurns),
    ev(20, 0, Finishes),
    ev(20, 1, WakesAndFinishes),
    ev(20, 2, Starts),
    ev(25, 2, Sleeps),
    ev(35, 2, WakesAndFinishes),
];

/// (d) w0 on a normal queue, w1 and w2 on a `CPU_INTENSIVE` one.
pub(crate) const DOC_CPU_INTENSIVE: &[DocEvent] = &[
    ev(0, 0, Starts),
    ev(5, 0, Sleeps),
    ev(5, 1, Starts),
    ev(5, 2, Starts),
    ev(10, 1, Sleeps),
    ev(15, 2, Sleeps),
    ev(15, 0, WakesAndBurns),
    ev(20, 0, Finishes),
    ev(20, 1, WakesAndFinishes),
    ev(25, 2, WakesAndFinishes),
];

/// One measured event, relative to the moment the first item was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measured {
    pub(crate) at: Duration,
    pub(crate) item: u8,
    pub(crate) kind: Kind,
    /// Which worker thread ran it: 0 for the first thread seen, 1 for the next, ...
    pub(crate) worker: usize,
}

/// A table row: a documented event and its measured counterpart, either of which
/// may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) item: u8,
    pub(crate) kind: Kind,
    pub(crate) doc_ms: Option<u32>,
    pub(crate) measured: Option<Measured>,
}

/// Pairs measured events with documented ones by (item, kind), in documented
/// order. Measured events without a documented counterpart come last, by time.
pub(crate) fn pair(doc: &[DocEvent], measured: &[Measured]) -> Vec<Row> {
    let mut used = vec![false; measured.len()];
    let mut rows: Vec<Row> = doc
        .iter()
        .map(|d| {
            let found = measured
                .iter()
                .enumerate()
                .position(|(i, m)| !used[i] && m.item == d.item && m.kind == d.kind);
            if let Some(i) = found {
                used[i] = true;
            }
            Row { item: d.item, kind: d.kind, doc_ms: Some(d.ms), measured: found.map(|i| measured[i]) }
        })
        .collect();
    let mut extra: Vec<Measured> = measured.iter().zip(&used).filter(|(_, &u)| !u).map(|(m, _)| *m).collect();
    extra.sort_by_key(|m| m.at);
    rows.extend(extra.into_iter().map(|m| Row {
        item: m.item,
        kind: m.kind,
        doc_ms: None,
        measured: Some(m),
    }));
    rows
}

/// The documented makespan: the last documented event.
pub(crate) fn doc_makespan(doc: &[DocEvent]) -> u32 {
    doc.iter().map(|d| d.ms).max().unwrap_or(0)
}

/// The measured makespan: the last measured event.
pub(crate) fn measured_makespan(measured: &[Measured]) -> Option<Duration> {
    measured.iter().map(|m| m.at).max()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `A`, `B`, ... for the first 26 workers, then `#26`, `#27`, ...
fn worker_label(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'A' + n).to_string(),
        _ => format!("#{i}"),
    }
}

/// The side-by-side table, then the makespans.
pub(crate) fn render(doc: &[DocEvent], measured: &[Measured]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  {:>10}  {:>11}  {:>8}  {:<6}  event", "documented", "measured", "delta", "worker");
    for r in pair(doc, measured) {
        let doc_col = r.doc_ms.map_or_else(|| "-".to_owned(), |d| format!("{d} ms"));
        let (meas_col, delta_col, worker_col) = match r.measured {
            Some(m) => (
                format!("{:.2} ms", ms(m.at)),
                r.doc_ms.map_or_else(String::new, |d| format!("{:+.2}", ms(m.at) - f64::from(d))),
                worker_label(m.worker),
            ),
            None => ("-".to_owned(), String::new(), String::new()),
        };
        let _ = writeln!(
            s,
            "  {doc_col:>10}  {meas_col:>11}  {delta_col:>8}  {worker_col:<6}  w{} {}",
            r.item,
            r.kind.describe()
        );
    }
    let doc_total = doc_makespan(doc);
    let _ = match measured_makespan(measured) {
        Some(m) => writeln!(
            s,
            "  makespan: documented {doc_total} ms, measured {:.2} ms ({:+.2} ms)",
            ms(m),
            ms(m) - f64::from(doc_total)
        ),
        None => writeln!(s, "  makespan: documented {doc_total} ms, measured: no events"),
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(at_us: u64, item: u8, kind: Kind, worker: usize) -> Measured {
        Measured { at: Duration::from_micros(at_us), item, kind, worker }
    }

    #[test]
    fn pairs_by_item_and_kind_not_by_position() {
        let doc = [ev(0, 0, Starts), ev(5, 0, Sleeps), ev(5, 1, Starts)];
        // Measured in another order, with one event the documentation lacks.
        let meas =
            [m(5_100, 1, Starts, 1), m(9_000, 2, Starts, 2), m(50, 0, Starts, 0), m(5_000, 0, Sleeps, 0)];
        let rows = pair(&doc, &meas);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].measured, Some(meas[2]));
        assert_eq!(rows[1].measured, Some(meas[3]));
        assert_eq!(rows[2].measured, Some(meas[0]));
        assert_eq!((rows[3].doc_ms, rows[3].measured), (None, Some(meas[1])));
    }

    #[test]
    fn missing_measured_event_stays_documented() {
        let doc = [ev(0, 0, Starts), ev(5, 0, Finishes)];
        let rows = pair(&doc, &[m(10, 0, Starts, 0)]);
        assert_eq!(rows[1].doc_ms, Some(5));
        assert_eq!(rows[1].measured, None);
    }

    #[test]
    fn render_shows_delta_worker_and_makespan() {
        let doc = [ev(0, 0, Starts), ev(5, 0, Finishes)];
        let out = render(&doc, &[m(30, 0, Starts, 0), m(5_250, 0, Finishes, 1)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[1].contains("0 ms") && lines[1].contains("0.03 ms") && lines[1].contains("+0.03"));
        assert!(lines[1].ends_with("A       w0 starts and burns CPU"), "{}", lines[1]);
        assert!(lines[2].contains("+0.25") && lines[2].contains("B       w0 finishes"), "{}", lines[2]);
        assert_eq!(lines[3], "  makespan: documented 5 ms, measured 5.25 ms (+0.25 ms)");
        assert!(render(&doc, &[]).contains("measured: no events"));
    }

    #[test]
    fn documented_timelines_are_consistent() {
        for (doc, makespan) in
            [(DOC_SINGLE_WORKER, 50), (DOC_CMWQ, 25), (DOC_MAX_ACTIVE_2, 35), (DOC_CPU_INTENSIVE, 25)]
        {
            assert!(doc.windows(2).all(|w| w[0].ms <= w[1].ms), "time-ordered");
            assert_eq!(doc_makespan(doc), makespan);
            for item in 0..3 {
                let kinds: Vec<Kind> = doc.iter().filter(|d| d.item == item).map(|d| d.kind).collect();
                let want: &[Kind] = if item == 0 {
                    &[Starts, Sleeps, WakesAndBurns, Finishes]
                } else {
                    &[Starts, Sleeps, WakesAndFinishes]
                };
                assert_eq!(kinds, want, "w{item}");
            }
        }
    }

    #[test]
    fn worker_labels() {
        assert_eq!(worker_label(0), "A");
        assert_eq!(worker_label(25), "Z");
        assert_eq!(worker_label(26), "#26");
    }
}
