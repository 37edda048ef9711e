//! SVG and PNG plots of the mixed workload, drawn with plotters' pure-Rust
//! backends. Text uses a bundled subset of DejaVu Sans (`assets/`), so nothing
//! depends on fontconfig or freetype.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Error;
use crate::producers::ProducerMode;
use crate::workloads::mixed::MixedRow;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

fn ensure_font() -> Result<(), Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Plot("the bundled font does not parse".into()))
    }
}

/// A chart of lines over categories (the X:Y ratios), with a log Y axis.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    /// Title.
    pub title: String,
    /// Category labels of the X axis.
    pub categories: Vec<String>,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Named series of (category index, value).
    pub series: Vec<(String, Vec<(usize, f64)>)>,
}

/// One per series: the ten executors and the thread reference get their own.
const COLORS: [RGBColor; 12] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x39, 0x3b, 0x79),
];

fn s<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &LineChart) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(s)?;
    let values = c.series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (1.0, 10.0) } else { (lo / 1.3, hi * 1.6) };
    let n = c.categories.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 19))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(70)
        // Room on the left of the first category for the legend.
        .build_cartesian_2d(-3i32..n, (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)))
        .map_err(s)?;
    let cats = c.categories.clone();
    let fmt_x =
        move |x: &i32| usize::try_from(*x).ok().and_then(|i| cats.get(i).cloned()).unwrap_or_default();
    chart
        .configure_mesh()
        .x_labels(c.categories.len() + 4)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&|y| log_label(y))
        .x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .disable_x_mesh()
        .draw()
        .map_err(s)?;
    for (k, (name, pts)) in c.series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<(i32, f64)> = pts.iter().filter(|p| p.1 > 0.0).map(|&(i, v)| (i as i32, v)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(s)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(s)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(s)?;
    root.present().map_err(s)?;
    Ok(())
}

/// Ticks of a log axis over `lo..hi`: 1, 2 and 5 times powers of ten.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut v = Vec::new();
    if !(lo > 0.0 && hi > lo) {
        return v;
    }
    let mut e = lo.log10().floor() as i32;
    while 10f64.powi(e) <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * 10f64.powi(e);
            if t >= lo && t <= hi {
                v.push(t);
            }
        }
        e += 1;
    }
    v
}

/// A tick label: integers from 10 up, one decimal below.
fn log_label(y: &f64) -> String {
    if *y >= 10.0 {
        format!("{y:.0}")
    } else if *y >= 1.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.2}")
    }
}

/// Writes `chart` to `<stem>.svg` and `<stem>.png`; returns the paths.
///
/// # Errors
/// [`Error::Plot`] if drawing or writing fails.
pub(crate) fn render(chart: &LineChart, stem: &Path) -> Result<Vec<PathBuf>, Error> {
    ensure_font()?;
    let size = (1000, 620);
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    draw(SVGBackend::new(&svg, size).into_drawing_area(), chart)?;
    draw(BitMapBackend::new(&png, size).into_drawing_area(), chart)?;
    Ok(vec![svg, png])
}

/// The two charts of the mixed workload (`mixed` rows, on `cores` CPUs) from
/// the producers of `mode`: makespan / ideal, and peak threads, against X:Y,
/// one line per executor. `None` if mixed did not run in that mode.
pub(crate) fn mixed_charts(
    mixed: &[MixedRow],
    cores: usize,
    mode: ProducerMode,
) -> Option<(LineChart, LineChart)> {
    let rows: Vec<&MixedRow> = mixed.iter().filter(|r| r.producer_mode == mode.name()).collect();
    let first = *rows.first()?;
    let mut mults: Vec<u32> = rows.iter().map(|r| r.block_mult).collect();
    mults.sort_unstable();
    mults.dedup();
    let cats: Vec<String> = mults.iter().map(|m| format!("1:{m}")).collect();
    let idx = |m: u32| mults.iter().position(|&x| x == m).unwrap_or(0);
    let mut names: Vec<&str> = Vec::new();
    for r in &rows {
        if !names.contains(&r.executor.as_str()) {
            names.push(&r.executor);
        }
    }
    let series = |f: &dyn Fn(&MixedRow) -> f64| -> Vec<(String, Vec<(usize, f64)>)> {
        names
            .iter()
            .map(|n| {
                let pts = rows.iter().filter(|r| r.executor == *n).map(|r| (idx(r.block_mult), f(r)));
                (n.to_string(), pts.collect())
            })
            .collect()
    };
    let (label, sub) = (
        &first.producers_label,
        format!("{} items, X = {} µs, {} CPUs, median of {}", first.items, first.burn_us, cores, first.runs),
    );
    let ratio = LineChart {
        title: format!("mixed, {label}: makespan / ideal — {sub}"),
        categories: cats.clone(),
        x_desc: "X:Y (burn : block)".into(),
        y_desc: "makespan / max(CPU/cores, chain) (log)".into(),
        series: series(&|r| r.ratio_to_ideal),
    };
    let mut tseries = series(&|r| r.peak_threads as f64);
    // The reference of the queue the mode is about: the per-CPU one beside
    // pinned producers, the default one beside the unpinned producer.
    let lead = match mode {
        ProducerMode::Pinned => ["cmwq-bound", "cmwq-default"],
        ProducerMode::Unpinned => ["cmwq-default", "cmwq-bound"],
    };
    if let Some(lead) = lead.into_iter().find(|l| names.contains(l)) {
        let reference: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| r.executor == lead)
            .map(|r| (idx(r.block_mult), r.thread_reference as f64))
            .collect();
        tseries.push((format!("cores + blocked + 2 ({lead})"), reference));
    }
    let threads = LineChart {
        title: format!("mixed, {label}: peak threads — {sub}"),
        categories: cats,
        x_desc: "X:Y (burn : block)".into(),
        y_desc: "peak threads (log)".into(),
        series: tseries,
    };
    Some((ratio, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_ticks_and_labels() {
        assert_eq!(log_ticks(0.8, 25.0), vec![1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(log_ticks(1.5, 1.9), Vec::<f64>::new());
        assert_eq!(log_ticks(0.0, 1.0), Vec::<f64>::new());
        assert_eq!(log_label(&2.0), "2.0");
        assert_eq!(log_label(&20.0), "20");
        assert_eq!(log_label(&0.5), "0.50");
    }

    #[test]
    fn mixed_charts_per_producer_mode() {
        use crate::workloads::mixed::test_row;
        let u = "1 unpinned producer";
        let mut rows = vec![
            test_row("cmwq-bound", "1 pinned producer per CPU", "1:0", 10.0),
            test_row("cmwq-default", u, "1:4", 12.0),
            test_row("cmwq-default", u, "1:0", 11.0),
            test_row("cmwq-bound", u, "1:0", 20.0),
            test_row("rayon", u, "1:16", 30.0),
        ];
        rows[1].thread_reference = 9;
        let (ratio, threads) = mixed_charts(&rows, 2, ProducerMode::Unpinned).unwrap();
        assert!(ratio.title.starts_with("mixed, 1 unpinned producer: makespan / ideal — 1 items"));
        assert_eq!(ratio.categories, ["1:0", "1:4", "1:16"], "sorted by block multiple");
        let names: Vec<&str> = threads.series.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["cmwq-default", "cmwq-bound", "rayon", "cores + blocked + 2 (cmwq-default)"]);
        assert_eq!(threads.series[0].1, [(1, 1.0), (0, 1.0)]);
        assert_eq!(threads.series[3].1, [(1, 9.0), (0, 3.0)], "the default queue's reference");
        let (_, pinned) = mixed_charts(&rows, 2, ProducerMode::Pinned).unwrap();
        let names: Vec<&str> = pinned.series.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            ["cmwq-bound", "cores + blocked + 2 (cmwq-bound)"],
            "the per-CPU queue's reference"
        );
        assert!(mixed_charts(&rows[..1], 2, ProducerMode::Unpinned).is_none(), "no unpinned rows: no chart");
    }
}
