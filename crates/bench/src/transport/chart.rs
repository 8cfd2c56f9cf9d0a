//! The transport bench's charts, through the project's bar chart
//! ([`crate::plot`]): delivered events/s per row, and timestamp reorders of
//! the rows with two producer CPUs.

use std::path::Path;

use super::{Transport, TransportReport, TransportRow};

/// A short label of a row for the charts.
fn bar_label(r: &TransportRow) -> String {
    let who = if r.consumer.starts_with("C ") {
        r.consumer.clone()
    } else {
        format!("Rust {}", r.consumer)
    };
    format!(
        "{} {}p {} B {} · {who}",
        r.transport.name(),
        r.producers,
        r.record_bytes,
        r.wakeup.label()
    )
}

/// Colour group of a row: ring/perf × Rust/C.
fn bar_group(r: &TransportRow) -> usize {
    match (r.transport, r.consumer.starts_with("C ")) {
        (Transport::Ringbuf, false) => 1,
        (Transport::Ringbuf, true) => 0,
        (Transport::Perfbuf, false) => 2,
        (Transport::Perfbuf, true) => 3,
    }
}

/// Delivered k events/s per row, a whisker over the repetitions; coloured
/// ring/Rust blue, ring/C green, perf/Rust orange, perf/C grey.
#[must_use]
pub fn delivered_bars(rows: &[TransportRow]) -> Vec<crate::plot::Bar> {
    rows.iter()
        .map(|r| {
            let lo = r
                .delivered_per_s_reps
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let hi = r.delivered_per_s_reps.iter().copied().fold(0.0, f64::max);
            crate::plot::Bar {
                label: bar_label(r),
                value: r.delivered_per_s / 1e3,
                spread: (r.delivered_per_s_reps.len() > 1).then_some((lo / 1e3, hi / 1e3)),
                group: bar_group(r),
            }
        })
        .collect()
}

/// Late records (older than the newest delivered before them) per 1,000
/// delivered, for the rows with more than one producer CPU (one CPU cannot
/// reorder), the largest lateness in the label.
#[must_use]
pub fn order_bars(rows: &[TransportRow]) -> Vec<crate::plot::Bar> {
    rows.iter()
        .filter(|r| r.producers > 1)
        .map(|r| crate::plot::Bar {
            label: format!("{} (max late {:.0} µs)", bar_label(r), r.max_lateness_us),
            value: r.late_records as f64 * 1000.0 / r.delivered.max(1) as f64,
            spread: None,
            group: bar_group(r),
        })
        .collect()
}

/// The path of the reorder chart next to `path` (`x.svg` → `x-order.svg`).
#[must_use]
pub fn order_svg_path(path: &Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "transport".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-order.svg"))
}

/// Draws the delivered rates to `path` and the reorders next to it
/// ([`order_svg_path`]); returns the second path.
///
/// # Errors
/// A file cannot be written.
pub fn svg(r: &TransportReport, path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let reps = r.rows.iter().map(|x| x.reps).max().unwrap_or(1);
    let events = r.rows.first().map_or(0, |x| x.produced);
    crate::plot::bars(
        path,
        &format!(
            "bench transport: delivered events/s, median of {reps} (whisker min–max), {events} per cell"
        ),
        "k events/s",
        &delivered_bars(&r.rows),
    )?;
    let order = order_svg_path(path);
    crate::plot::bars(
        &order,
        "bench transport, 2 producer CPUs: records delivered after a newer one, per 1,000",
        "per 1,000",
        &order_bars(&r.rows),
    )?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::super::testdata::sample_rows;
    use super::*;

    #[test]
    fn charts_hold_every_row_with_its_series() {
        let dir = std::env::temp_dir().join(format!("xw-transport-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.svg");
        let r = TransportReport::new(sample_rows(), Vec::new());
        let order = svg(&r, &path).expect("draw");
        assert_eq!(order, dir.join("t-order.svg"));
        let main = std::fs::read_to_string(&path).expect("read");
        let ord = std::fs::read_to_string(&order).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(main.starts_with("<svg"));
        // Background + one bar per row; one whisker per row (3 reps each).
        assert_eq!(main.matches("<rect").count(), 1 + r.rows.len(), "{main}");
        assert_eq!(main.matches("stroke-width=\"2\"").count(), r.rows.len());
        assert!(
            main.contains("ringbuf 1p 104 B adaptive · Rust epoll: 2000.0 k events/s"),
            "{main}"
        );
        assert!(main.contains("perfbuf 1p 104 B batch 64 · C epoll: 1600.0 k events/s"));
        assert!(main.contains("ringbuf 2p 1540 B adaptive · Rust busy: 800.0 k events/s"));
        // Reorders: only the two-producer rows, per 1,000 records.
        assert_eq!(ord.matches("<rect").count(), 1 + 2, "{ord}");
        assert!(
            ord.contains("ringbuf 2p 1540 B adaptive · Rust busy (max late 0 µs): 5.0 per 1,000"),
            "{ord}"
        );
        assert!(ord
            .contains("perfbuf 2p 1540 B batch 64 · Rust busy (max late 0 µs): 4000.0 per 1,000"));
        // The groups: ring/Rust, ring/C, perf/Rust, perf/C.
        let groups: Vec<usize> = delivered_bars(&r.rows).iter().map(|b| b.group).collect();
        assert_eq!(groups, vec![1, 1, 0, 2, 2, 3, 1, 2]);
    }
}
