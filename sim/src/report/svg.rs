//! SVG plots over time, one line per policy. Text is written as SVG `<text>` elements
//! (plotters' built-in layout estimate, no font files), so this needs no system fonts.

use plotters::prelude::*;

use super::Meta;
use crate::measure::PolicyReport;

/// One plot: a file name (`offered-load.svg`) and its SVG text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plot {
    /// A file name for it.
    pub name: &'static str,
    /// The SVG document.
    pub svg: String,
}

const SIZE: (u32, u32) = (960, 480);

const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// A series: a name, a colour, points (a `None` y is a gap), and whether it is dashed.
struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, Option<f64>)>,
    dashed: bool,
}

/// Three plots: offered load against capacity, success rate, and retries per second.
#[must_use]
pub fn svg_plots(meta: &Meta, reports: &[PolicyReport]) -> Vec<Plot> {
    let xs = |r: &PolicyReport, i: usize| i as f64 * r.timeline.bucket_s;
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let mut offered: Vec<Series> = reports
        .iter()
        .enumerate()
        .map(|(k, r)| Series {
            name: format!("{} offered", r.policy),
            color: color(k),
            points: r
                .timeline
                .offered_per_s
                .iter()
                .enumerate()
                .map(|(i, &y)| (xs(r, i), Some(y)))
                .collect(),
            dashed: false,
        })
        .collect();
    if let Some(r) = reports.first() {
        offered.push(Series {
            name: "capacity".to_owned(),
            color: BLACK,
            points: r
                .timeline
                .capacity_per_s
                .iter()
                .enumerate()
                .map(|(i, &y)| (xs(r, i), y))
                .collect(),
            dashed: true,
        });
    }
    let success = reports
        .iter()
        .enumerate()
        .map(|(k, r)| Series {
            name: r.policy.clone(),
            color: color(k),
            points: r
                .timeline
                .success_rate
                .iter()
                .enumerate()
                .map(|(i, &y)| (xs(r, i), y.map(|y| y * 100.0)))
                .collect(),
            dashed: false,
        })
        .collect::<Vec<_>>();
    let retries = reports
        .iter()
        .enumerate()
        .map(|(k, r)| Series {
            name: r.policy.clone(),
            color: color(k),
            points: r
                .timeline
                .retries_per_s
                .iter()
                .enumerate()
                .map(|(i, &y)| (xs(r, i), Some(y)))
                .collect(),
            dashed: false,
        })
        .collect::<Vec<_>>();
    vec![
        Plot {
            name: "offered-load.svg",
            svg: chart(
                &format!("{}: offered load vs capacity", meta.scenario),
                "attempts/s",
                &offered,
                None,
            ),
        },
        Plot {
            name: "success-rate.svg",
            svg: chart(
                &format!("{}: success rate", meta.scenario),
                "success %",
                &success,
                Some((0.0, 100.0)),
            ),
        },
        Plot {
            name: "retries.svg",
            svg: chart(
                &format!("{}: retries per second", meta.scenario),
                "retries/s",
                &retries,
                None,
            ),
        },
    ]
}

fn chart(title: &str, y_label: &str, series: &[Series], y_range: Option<(f64, f64)>) -> String {
    let finite = |v: f64| v.is_finite().then_some(v);
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter_map(finite)
        .fold(1.0, f64::max);
    let (y_min, y_max) = y_range.unwrap_or_else(|| {
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .filter_map(finite)
            .fold(0.0, f64::max);
        (0.0, if top > 0.0 { top * 1.05 } else { 1.0 })
    });
    let mut svg = String::new();
    // Drawing into a String cannot fail for I/O reasons; a drawing error leaves a partial
    // SVG, which is still returned rather than panicking.
    let _ = draw(&mut svg, title, y_label, series, (x_max, y_min, y_max));
    svg
}

fn draw(
    svg: &mut String,
    title: &str,
    y_label: &str,
    series: &[Series],
    (x_max, y_min, y_max): (f64, f64, f64),
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_label)
        .light_line_style(WHITE)
        .draw()?;
    for s in series {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        // Split at gaps so a missing value is not bridged by a line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &s.points {
            match y.filter(|y| y.is_finite()) {
                Some(y) => runs.last_mut().map_or((), |r| r.push((x, y))),
                None => runs.push(Vec::new()),
            }
        }
        let mut labelled = false;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(run, 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(run, style))?
            };
            if !labelled {
                let color = s.color;
                anno.label(s.name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
                labelled = true;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
