//! SVG plots of a scenario's results, drawn with `plotters`' SVG backend (no system
//! libraries; text is left to the SVG viewer's fonts).
//!
//! - [`throughput_vs_threads`]: msg/s against `-w`, one line per size / flush / shards /
//!   batch group (log-2 thread axis).
//! - [`latency_vs_throughput`]: three panels (p50, p99, p99.9 RT in ms, log scale) against
//!   msg/s, one line per group, points in thread order.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::scenario::{CellResult, ScenarioError};

/// Picks one percentile (µs) out of a result.
type Percentile = fn(&CellResult) -> u64;

/// The series key: everything but the thread count.
fn group_label(r: &CellResult) -> String {
    let c = &r.cell;
    let mut label = format!("{} B {}", c.size, c.flush);
    if c.shards > 1 {
        label.push_str(&format!(" {} shards", c.shards));
    }
    if c.batch > 1 {
        label.push_str(&format!(" batch {}", c.batch));
    }
    label
}

fn groups(results: &[CellResult]) -> BTreeMap<(String, usize, usize, usize), Vec<&CellResult>> {
    let mut groups: BTreeMap<_, Vec<&CellResult>> = BTreeMap::new();
    for r in results {
        let c = &r.cell;
        groups
            .entry((c.flush.clone(), c.size, c.shards, c.batch))
            .or_default()
            .push(r);
    }
    for series in groups.values_mut() {
        series.sort_by_key(|r| r.cell.threads);
    }
    groups
}

fn plot_error(path: &Path, error: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Plot {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// Draws msg/s against sender threads.
pub fn throughput_vs_threads(
    path: &Path,
    title: &str,
    results: &[CellResult],
) -> Result<(), ScenarioError> {
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max_threads = results.iter().map(|r| r.cell.threads).max().unwrap_or(1);
    let max_tps = results.iter().map(|r| r.tps).fold(1.0_f64, f64::max);
    let x_max = (max_threads.max(2) as f64).log2().ceil() + 0.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: throughput vs threads"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.25f64..x_max, 0f64..max_tps * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("sender threads (-w)")
        .y_desc("msg/s")
        .x_labels(x_max.ceil() as usize + 2)
        .x_label_formatter(&|x| {
            // Ticks sit on powers of two; anything in between is left unlabelled.
            if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
                format!("{}", 2f64.powf(x.round()))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, series) in groups(results).values().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = series
            .iter()
            .map(|r| ((r.cell.threads as f64).log2(), r.tps))
            .collect();
        let label = series.first().map(|r| group_label(r)).unwrap_or_default();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Draws p50 / p99 / p99.9 RT against msg/s, one panel each.
pub fn latency_vs_throughput(
    path: &Path,
    title: &str,
    results: &[CellResult],
) -> Result<(), ScenarioError> {
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = SVGBackend::new(path, (1500, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            &format!("{title}: latency percentiles vs throughput"),
            ("sans-serif", 22),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 3));
    let max_tps = results.iter().map(|r| r.tps).fold(1.0_f64, f64::max);
    let ms = |us: u64| (us.max(1) as f64) / 1000.0;
    let max_ms = results
        .iter()
        .map(|r| ms(r.p999_us))
        .fold(1.0_f64, f64::max);
    let min_ms = results
        .iter()
        .map(|r| ms(r.p50_us))
        .fold(f64::MAX, f64::min)
        .clamp(0.001, 1.0);
    let pick: [(&str, Percentile); 3] = [
        ("p50", |r| r.p50_us),
        ("p99", |r| r.p99_us),
        ("p99.9", |r| r.p999_us),
    ];
    let groups = groups(results);
    for (panel, (name, value)) in panels.iter().zip(pick) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{name} RT"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                0f64..max_tps * 1.1,
                (min_ms * 0.8..max_ms * 1.5).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("msg/s")
            .y_desc("ms")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, series) in groups.values().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = series.iter().map(|r| (r.tps, ms(value(r)))).collect();
            let label = series.first().map(|r| group_label(r)).unwrap_or_default();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
