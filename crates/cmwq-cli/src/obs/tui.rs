//! `cmwq top`'s live view (ratatui with crossterm): the workqueues with
//! `wq_monitor.py`'s columns, the pools, the threads and the monitor,
//! refreshed every interval. Keys: `q`/Esc/Ctrl-C quit, space pauses, `s`
//! changes the order.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Alignment, Constraint, Layout};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;
use regex::Regex;

use super::wire::{Stats, WqRow};
use crate::demo::Result;

/// The orders `s` cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// As the process lists them (creation order), like `wq_monitor.py`.
    Listed,
    Total,
    InFlight,
    CpuTime,
}

impl Order {
    fn next(self) -> Self {
        match self {
            Order::Listed => Order::Total,
            Order::Total => Order::InFlight,
            Order::InFlight => Order::CpuTime,
            Order::CpuTime => Order::Listed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Order::Listed => "creation",
            Order::Total => "total",
            Order::InFlight => "infl",
            Order::CpuTime => "CPUtime",
        }
    }
}

/// What the view shows.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) pid: u32,
    pub(crate) interval: f64,
    pub(crate) now: Option<Stats>,
    /// The sample before, to mark the rows that moved.
    pub(crate) before: Option<Stats>,
    pub(crate) order: Order,
    pub(crate) paused: bool,
    pub(crate) status: Option<String>,
}

impl View {
    /// The rows to show, filtered and ordered.
    pub(crate) fn rows<'a>(&'a self, re: Option<&Regex>) -> Vec<&'a WqRow> {
        let Some(s) = &self.now else { return Vec::new() };
        let mut v: Vec<&WqRow> =
            s.workqueues.iter().filter(|w| re.is_none_or(|r| r.is_match(&w.name))).collect();
        match self.order {
            Order::Listed => {}
            Order::Total => v.sort_by_key(|w| std::cmp::Reverse(w.started)),
            Order::InFlight => v.sort_by_key(|w| std::cmp::Reverse(w.started.saturating_sub(w.completed))),
            Order::CpuTime => v.sort_by_key(|w| std::cmp::Reverse(w.cpu_time)),
        }
        v
    }

    /// Whether `w` started items since the sample before.
    fn moved(&self, w: &WqRow) -> bool {
        let Some(b) = &self.before else { return false };
        b.workqueues.iter().find(|x| x.name == w.name).is_none_or(|x| x.started != w.started)
    }
}

/// Draws the whole screen.
pub(crate) fn draw(f: &mut Frame, view: &View, re: Option<&Regex>) {
    let pools = view.now.as_ref().map_or(0, |s| s.pools.len());
    let [title, summary, wqs, pool_area, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length((pools as u16).saturating_add(3).min(14)),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let program = view.now.as_ref().map_or("", |s| s.program.as_str());
    f.render_widget(
        Line::from(format!(
            " cmwq top  pid {} ({program})  every {} s  order: {}{}",
            view.pid,
            view.interval,
            view.order.name(),
            if view.paused { "  [paused]" } else { "" }
        ))
        .style(Style::new().add_modifier(Modifier::REVERSED)),
        title,
    );

    if let Some(s) = &view.now {
        let t = &s.threads;
        let m = &s.monitor;
        let text = vec![
            Line::from(format!(
                " threads: {} workers ({} concurrency-managed), peak {}, ceiling {}, throttled {}, panics {}",
                t.workers, t.cm_workers, t.peak_workers, t.max_workers, t.throttled, t.panics
            )),
            Line::from(format!(
                " monitor: {} blocks found ({} by sentinels, {} resumed), {} CPU hogs, {} workers created, {} ticks",
                m.blocked, m.by_sentinel, m.resumed, m.cpu_hogs, m.created, m.ticks
            )),
        ];
        f.render_widget(Paragraph::new(text), summary);
    }

    let header = right(
        "NAME",
        ["total", "infl", "CPUtime", "CPUitsv", "CMW/RPR", "mayday", "rescued", "panics", "blocked"]
            .map(String::from),
    )
    .style(Style::new().bold());
    let shown = view.rows(re);
    let name_len = shown.iter().map(|w| w.name.chars().count()).max().unwrap_or(0).clamp(8, 40) as u16;
    let rows: Vec<Row> = shown
        .into_iter()
        .map(|w| {
            let cells: Vec<String> = super::rows::row(w).split_whitespace().map(str::to_owned).collect();
            // The name may hold spaces: take it whole, and the nine numbers after it.
            let numbers = cells.len().saturating_sub(9);
            let row = right(&w.name, cells.into_iter().skip(numbers));
            if view.moved(w) {
                row.style(Style::new().bold())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(name_len),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" workqueues (bold: started items since the last sample) ")),
        wqs,
    );

    if let Some(s) = &view.now {
        let header = right(
            "pool",
            ["cpu", "nice", "workers", "idle", "busy", "running", "pending", "inactive", "oldest", "hung"]
                .map(String::from),
        )
        .style(Style::new().bold());
        let rows: Vec<Row> = s
            .pools
            .iter()
            .map(|p| {
                let label = if p.label.is_empty() { p.id.to_string() } else { p.label.clone() };
                let row = right(
                    &label,
                    [
                        p.cpu.map_or_else(|| "-".into(), |c| c.to_string()),
                        p.nice.to_string(),
                        p.workers.to_string(),
                        p.idle.to_string(),
                        p.busy.to_string(),
                        p.nr_running.to_string(),
                        p.pending.to_string(),
                        p.inactive.to_string(),
                        p.oldest_wait_ms.map_or_else(|| "-".into(), |ms| format!("{ms} ms")),
                        if p.hung { "HUNG".into() } else { String::new() },
                    ],
                );
                if p.hung {
                    row.style(Style::new().reversed())
                } else {
                    row
                }
            })
            .collect();
        let widths = [
            Constraint::Length(6),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(5),
        ];
        f.render_widget(
            Table::new(rows, widths).header(header).block(Block::bordered().title(" pools ")),
            pool_area,
        );
    }

    let help = " q quit  space pause  s order ";
    let line = match &view.status {
        Some(msg) => Line::from(format!(" {msg}")).style(Style::new().reversed()),
        None => Line::from(help),
    };
    f.render_widget(line, status);
}

/// A row: `first` on the left, the other cells right-aligned.
fn right(first: &str, rest: impl IntoIterator<Item = String>) -> Row<'static> {
    let mut cells = vec![Cell::from(first.to_owned())];
    cells.extend(rest.into_iter().map(|s| Cell::from(Text::from(s).alignment(Alignment::Right))));
    Row::new(cells)
}

/// Runs the live view until the user quits.
pub(crate) fn run(ep: &cmwq::stats::Endpoint, interval: f64, re: Option<&Regex>) -> Result<()> {
    let mut view = View {
        pid: ep.pid,
        interval,
        now: None,
        before: None,
        order: Order::Listed,
        paused: false,
        status: None,
    };
    let every = Duration::from_secs_f64(interval);
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> Result<()> {
        let mut next = Instant::now();
        loop {
            if Instant::now() >= next && !view.paused {
                match super::fetch::<Stats>(ep, "stats") {
                    Ok(s) => {
                        view.before = view.now.replace(s);
                        view.status = None;
                    }
                    Err(e) => view.status = Some(format!("{e} (q quits)")),
                }
                next = Instant::now() + every;
            }
            terminal.draw(|f| draw(f, &view, re))?;
            let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(250));
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                        KeyCode::Char(' ') => view.paused = !view.paused,
                        KeyCode::Char('s') => view.order = view.order.next(),
                        _ => {}
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::wire::PoolRow;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn sample() -> Stats {
        let wq = |name: &str, started| WqRow {
            name: name.into(),
            started,
            completed: started - 1,
            ..WqRow::default()
        };
        Stats {
            pid: 42,
            program: "demo".into(),
            workqueues: vec![wq("mixed-percpu", 10), wq("mixed-unbound", 30)],
            pools: vec![PoolRow {
                id: 3,
                label: "cpu0".into(),
                cpu: Some(0),
                workers: 2,
                hung: true,
                ..PoolRow::default()
            }],
            ..Stats::default()
        }
    }

    #[test]
    fn the_screen_shows_columns_rows_and_pools() {
        let view = View {
            pid: 42,
            interval: 1.0,
            now: Some(sample()),
            before: None,
            order: Order::Total,
            paused: false,
            status: None,
        };
        let mut t = Terminal::new(TestBackend::new(120, 20)).unwrap();
        t.draw(|f| draw(f, &view, None)).unwrap();
        let screen: String = t.backend().buffer().content().iter().map(|c| c.symbol()).collect();
        for s in
            ["cmwq top  pid 42 (demo)", "CPUitsv", "CMW/RPR", "mixed-unbound", "mixed-percpu", "cpu0", "HUNG"]
        {
            assert!(screen.contains(s), "{s:?} not on the screen");
        }
        // Ordered by total: the unbound queue (30) comes first.
        assert!(screen.find("mixed-unbound").unwrap() < screen.find("mixed-percpu").unwrap());
    }

    #[test]
    fn orders_cycle_and_filter() {
        let mut view = View {
            pid: 1,
            interval: 1.0,
            now: Some(sample()),
            before: None,
            order: Order::Listed,
            paused: false,
            status: None,
        };
        assert_eq!(view.rows(None)[0].name, "mixed-percpu");
        view.order = view.order.next();
        assert_eq!(view.rows(None)[0].name, "mixed-unbound");
        let re = Regex::new("percpu").unwrap();
        assert_eq!(view.rows(Some(&re)).len(), 1);
        let mut o = Order::Listed;
        for _ in 0..4 {
            o = o.next();
        }
        assert_eq!(o, Order::Listed);
    }
}
