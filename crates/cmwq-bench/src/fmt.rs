//! Number formatting and markdown tables.

use std::fmt::Write as _;

/// Items per second in a readable unit.
pub(crate) fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k/s", x / 1e3)
    } else {
        format!("{x:.0} /s")
    }
}

/// Bytes in a readable unit (binary prefixes).
pub(crate) fn bytes(x: f64) -> String {
    let a = x.abs();
    if a >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", x / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

/// CPUs as ranges: `0-3,6`. Expects them ascending.
pub(crate) fn cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j == i { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// The exactly-once column: `yes`, or a bold `NO`.
pub(crate) fn yes(b: bool) -> String {
    if b { "yes" } else { "**NO**" }.into()
}

/// A markdown table from a header and rows.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", header.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

/// A markdown section: `## title`, the table, and a one-paragraph legend
/// (empty for none). Empty when there are no rows.
pub(crate) fn section(title: &str, header: &[&str], rows: &[Vec<String>], legend: &str) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let legend = if legend.is_empty() { String::new() } else { format!("\n{legend}\n") };
    format!("## {title}\n\n{}{legend}\n", table(header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(rate(2_500_000.0), "2.50 M/s");
        assert_eq!(rate(2_500.0), "2.5 k/s");
        assert_eq!(rate(25.0), "25 /s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(2048.0), "2.0 KiB");
        assert_eq!(bytes(-3.0 * 1024.0 * 1024.0), "-3.0 MiB");
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(cpu_list(&[5]), "5");
        assert_eq!(cpu_list(&[]), "");
    }

    #[test]
    fn markdown_table_shape() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n");
        assert_eq!(section("x", &["a"], &[], "legend"), "");
        assert_eq!((yes(true), yes(false)), ("yes".to_string(), "**NO**".to_string()));
        assert_eq!(section("x", &["a"], &[vec!["1".into()]], "L"), "## x\n\n| a |\n|---|\n| 1 |\n\nL\n\n");
    }
}
