//! A labelled horizontal bar chart in SVG (plotters, SVG backend only), for
//! the benches whose results read better as a picture: one bar per result,
//! an optional whisker for its spread, bars coloured by group.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Label drawn on the bar (the value is appended).
    pub label: String,
    /// Length of the bar.
    pub value: f64,
    /// Spread drawn as a whisker under the bar (low, high), if any.
    pub spread: Option<(f64, f64)>,
    /// Colour group (0: reference, 1: xdpwall, 2: peers, 3: other).
    pub group: usize,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x99, 0x99, 0x99),
];

/// Draws `bars` top to bottom into `path`, titled `title`, the axis named
/// `unit` (also appended to each label's value).
///
/// # Errors
/// The file cannot be written.
pub fn bars(path: &Path, title: &str, unit: &str, bars: &[Bar]) -> Result<()> {
    let n = bars.len().max(1);
    let height = 90 + 30 * n as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    draw(&root, title, unit, bars).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    unit: &str,
    bars: &[Bar],
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let n = bars.len().max(1);
    let xmax = bars
        .iter()
        .map(|b| b.spread.map_or(b.value, |s| s.1.max(b.value)))
        .fold(1e-9, f64::max)
        * 1.05;
    // Bar i is drawn at the top for i = 0.
    let y = |i: usize| (n - 1 - i) as f64;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(8)
        .build_cartesian_2d(0f64..xmax, 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .light_line_style(WHITE)
        .x_desc(unit)
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let c = COLOURS[b.group.min(COLOURS.len() - 1)];
        Rectangle::new(
            [(0.0, y(i) + 0.18), (b.value, y(i) + 0.92)],
            c.mix(0.45).filled(),
        )
    }))?;
    chart.draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
        b.spread.map(|(lo, hi)| {
            PathElement::new(
                vec![(lo, y(i) + 0.09), (hi, y(i) + 0.09)],
                BLACK.stroke_width(2),
            )
        })
    }))?;
    let style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        Text::new(
            format!("{}: {:.1} {unit}", b.label, b.value),
            (xmax * 0.005, y(i) + 0.55),
            style.clone(),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_holds_every_bar_with_its_label_and_value() {
        let dir = std::env::temp_dir().join(format!("xw-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("p.svg");
        let b = vec![
            Bar {
                label: "bare XDP_DROP".into(),
                value: 30.0,
                spread: Some((30.0, 37.0)),
                group: 0,
            },
            Bar {
                label: "xdpwall, 10000 rules".into(),
                value: 168.0,
                spread: None,
                group: 1,
            },
        ];
        bars(&path, "per packet", "ns", &b).expect("draw");
        let svg = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("bare XDP_DROP: 30.0 ns"));
        assert!(svg.contains("xdpwall, 10000 rules: 168.0 ns"));
        assert!(svg.contains("per packet"));
        // The background and two bars; one whisker (the only 2-px line).
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 1, "{svg}");
    }
}
