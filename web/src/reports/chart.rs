//! Charts drawn on the server as SVG (no script, nothing from elsewhere): a bar chart and the
//! weekly heatmap. This module computes the geometry; `templates/reports/chart.html` writes
//! the elements, every text escaped like the rest of the page.

/// The drawing's size in SVG units (scaled to the page's width by CSS).
pub const WIDTH: f64 = 760.0;
/// The drawing's height in SVG units.
pub const HEIGHT: f64 = 284.0;
/// Room for the value ticks, and for the first slanted label's start.
const LEFT: f64 = 72.0;
/// Room for labels slanted at 30° (a country name of 15 characters).
const BOTTOM: f64 = 72.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 8.0;
/// At most this many labels under the bars (every n-th bar is labelled past it).
const MAX_LABELS: usize = 16;

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Left (or anchor) position.
    pub x: String,
    /// Top (or baseline) position.
    pub y: String,
    /// Width.
    pub w: String,
    /// Height.
    pub h: String,
    /// The tooltip: `label: value`.
    pub title: String,
}

/// A label on an axis, at `(x, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Left (or anchor) position.
    pub x: String,
    /// Top (or baseline) position.
    pub y: String,
    /// What it says.
    pub text: String,
}

/// A bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// What it shows, for screen readers (`aria-label`) and as its caption.
    pub caption: String,
    /// A bar chart, if the report draws one.
    pub bars: Vec<Bar>,
    /// Labels under the bars (every n-th past 16).
    pub x_labels: Vec<Tick>,
    /// Values on the vertical axis.
    pub y_ticks: Vec<Tick>,
    /// The horizontal grid lines' heights.
    pub grid: Vec<String>,
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// A bar chart of `(label, value)`; `unit` follows each value in tooltips (`%`, ` s`, ``).
pub fn bars(caption: &str, points: &[(String, f64)], unit: &str) -> Bars {
    let max = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let top = nice_ceiling(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / points.len().max(1) as f64;
    let every = points.len().div_ceil(MAX_LABELS).max(1);
    let mut out = Bars {
        caption: caption.to_owned(),
        bars: Vec::with_capacity(points.len()),
        x_labels: Vec::new(),
        y_ticks: Vec::new(),
        grid: Vec::new(),
    };
    for (i, (label, value)) in points.iter().enumerate() {
        let h = if top > 0.0 {
            plot_h * value.max(0.0) / top
        } else {
            0.0
        };
        let x = LEFT + slot * i as f64;
        out.bars.push(Bar {
            x: n(x + slot * 0.1),
            y: n(TOP + plot_h - h),
            w: n((slot * 0.8).max(0.5)),
            h: n(h),
            title: format!("{label}: {}{unit}", trim(*value)),
        });
        if i % every == 0 {
            out.x_labels.push(Tick {
                x: n(x + slot / 2.0),
                y: n(HEIGHT - BOTTOM + 16.0),
                text: label.clone(),
            });
        }
    }
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(k) / 4.0;
        out.grid.push(n(y));
        out.y_ticks.push(Tick {
            x: n(LEFT - 6.0),
            y: n(y + 4.0),
            text: format!("{}{unit}", trim(v)),
        });
    }
    out
}

/// A value as text: whole numbers without decimals, others with one.
pub fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v` (the axis's top); 1 for nothing.
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= v - 1e-9 {
            return step * mag;
        }
    }
    10.0 * mag
}

/// One cell of the heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Left (or anchor) position.
    pub x: String,
    /// Top (or baseline) position.
    pub y: String,
    /// `heat0` (none) … `heat5` (the busiest hour).
    pub class: &'static str,
    /// Its tooltip.
    pub title: String,
}

/// Calls per weekday and hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    /// What it shows, for screen readers and as a caption.
    pub caption: String,
    /// The 7 × 24 cells, Monday first.
    pub cells: Vec<Cell>,
    /// Rows of cells, as shown and as written to CSV.
    pub rows: Vec<Tick>,
    /// The hour labels.
    pub cols: Vec<Tick>,
}

/// Cell size of the heatmap.
pub const CELL_W: f64 = 28.0;
/// Cell height of the heatmap.
pub const CELL_H: f64 = 24.0;

/// The heatmap of `grid` (weekday × hour), rows named by `days`.
pub fn heat(caption: &str, grid: &[[i64; 24]; 7], days: &[&str; 7]) -> Heat {
    let max = grid.iter().flatten().copied().max().unwrap_or(0);
    let mut out = Heat {
        caption: caption.to_owned(),
        cells: Vec::with_capacity(7 * 24),
        rows: Vec::new(),
        cols: Vec::new(),
    };
    for (d, row) in grid.iter().enumerate() {
        out.rows.push(Tick {
            x: n(LEFT - 6.0),
            y: n(TOP + CELL_H * d as f64 + CELL_H * 0.65),
            text: days[d].to_owned(),
        });
        for (h, &calls) in row.iter().enumerate() {
            out.cells.push(Cell {
                x: n(LEFT + CELL_W * h as f64),
                y: n(TOP + CELL_H * d as f64),
                class: heat_class(calls, max),
                title: format!("{} {h:02}:00: {calls} calls", days[d]),
            });
        }
    }
    for h in (0..24).step_by(3) {
        out.cols.push(Tick {
            x: n(LEFT + CELL_W * h as f64 + CELL_W / 2.0),
            y: n(TOP + CELL_H * 7.0 + 16.0),
            text: format!("{h:02}"),
        });
    }
    out
}

fn heat_class(calls: i64, max: i64) -> &'static str {
    const CLASSES: [&str; 6] = ["heat0", "heat1", "heat2", "heat3", "heat4", "heat5"];
    if calls <= 0 || max <= 0 {
        return CLASSES[0];
    }
    // 1..=5, proportional to the busiest hour.
    let level = ((calls * 5 + max - 1) / max).clamp(1, 5);
    CLASSES[usize::try_from(level).unwrap_or(5)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops() {
        let table = [
            (0.0, 1.0),
            (0.7, 1.0),
            (1.0, 1.0),
            (1.2, 2.0),
            (2.2, 2.5),
            (3.0, 5.0),
            (7.0, 10.0),
            (42.0, 50.0),
            (100.0, 100.0),
            (101.0, 200.0),
        ];
        for (v, top) in table {
            assert!(
                (nice_ceiling(v) - top).abs() < 1e-9,
                "{v} → {}",
                nice_ceiling(v)
            );
        }
    }

    #[test]
    fn bars_scale_to_the_top_and_label_at_most_sixteen() {
        let points: Vec<(String, f64)> = (0..40).map(|i| (format!("d{i}"), f64::from(i))).collect();
        let c = bars("calls", &points, "");
        assert_eq!(c.bars.len(), 40);
        assert!(c.x_labels.len() <= MAX_LABELS);
        assert_eq!(c.bars[0].h, "0.0");
        // 39 of an axis up to 50: 78 % of the plot's 200 units.
        assert_eq!(c.bars[39].h, "156.0");
        assert_eq!(c.bars[39].title, "d39: 39");
        assert_eq!(c.y_ticks.last().map(|t| t.text.as_str()), Some("50"));
        let empty = bars("nothing", &[], "%");
        assert!(empty.bars.is_empty());
        assert_eq!(empty.y_ticks[4].text, "1%");
    }

    #[test]
    fn heat_levels() {
        assert_eq!(heat_class(0, 10), "heat0");
        assert_eq!(heat_class(1, 10), "heat1");
        assert_eq!(heat_class(10, 10), "heat5");
        assert_eq!(heat_class(6, 10), "heat3");
        let mut grid = [[0; 24]; 7];
        grid[2][9] = 4;
        let h = heat("calls", &grid, &["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(h.cells.len(), 168);
        assert_eq!(h.cells[2 * 24 + 9].class, "heat5");
        assert_eq!(h.cells[2 * 24 + 9].title, "c 09:00: 4 calls");
        assert_eq!(h.cols.len(), 8);
    }
}
