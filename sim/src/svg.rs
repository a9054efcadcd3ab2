//! The SVG report: throughput and latency per policy, and for each policy
//! the share of I/O every path served over time, with the scenario's events
//! marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::PolicyResult;

const WIDTH: u32 = 1260;
const TOP_HEIGHT: u32 = 340;
const PANEL_HEIGHT: u32 = 230;
const COLUMNS: usize = 3;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// Renders the report as an SVG document.
///
/// # Errors
/// Drawing errors from plotters (none are expected for in-memory output).
pub fn render(title: &str, results: &[PolicyResult]) -> Fallible<String> {
    let rows = results.len().div_ceil(COLUMNS);
    let height = TOP_HEIGHT + 40 + u32::try_from(rows).unwrap_or(1) * PANEL_HEIGHT;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 22))?;
        let (top, bottom) = root.split_vertically(TOP_HEIGHT);
        let (left, right) = top.split_horizontally(WIDTH / 2);
        throughput(&left, results)?;
        latency(&right, results)?;
        let bottom = bottom.titled("Share of I/O per path over time (dashed: events)", ("sans-serif", 16))?;
        let panels = bottom.split_evenly((rows.max(1), COLUMNS));
        for (panel, result) in panels.iter().zip(results) {
            shares(panel, result)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn short_names(results: &[PolicyResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            r.policy
                .parse::<rsdsm_engine::LoadBalancePolicy>()
                .map_or(r.policy.clone(), |p| p.short_name().into())
        })
        .collect()
}

fn index_i32(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

fn throughput(area: &DrawingArea<SVGBackend<'_>, Shift>, results: &[PolicyResult]) -> Fallible<()> {
    let names = short_names(results);
    let n = index_i32(results.len());
    let top = results.iter().map(|r| r.iops).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("Throughput (I/O per second)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len())
        .x_label_formatter(&|v| segment_label(v, &names))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(results.iter().enumerate().map(|(i, r)| {
        let i = index_i32(i);
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), r.iops)],
            Palette99::pick(0).mix(0.7).filled(),
        );
        bar.set_margin(0, 0, 6, 6);
        bar
    }))?;
    Ok(())
}

fn latency(area: &DrawingArea<SVGBackend<'_>, Shift>, results: &[PolicyResult]) -> Fallible<()> {
    let names = short_names(results);
    let n = index_i32(results.len());
    let top = results.iter().map(|r| r.lat_us.p999).fold(10.0, f64::max) * 1.5;
    let bottom = results.iter().map(|r| r.lat_us.p50).fold(f64::MAX, f64::min).clamp(1.0, top) / 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption("Latency, microseconds (p50, p99, p99.9; log scale)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((0..n - 1).into_segmented(), (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len())
        .x_label_formatter(&|v| segment_label(v, &names))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let (width, _) = chart.plotting_area().dim_in_pixel();
    let segment = width / u32::try_from(results.len().max(1)).unwrap_or(1);
    let bar = (segment * 8 / 10) / 3;
    let labels = ["p50", "p99", "p99.9"];
    for (k, label) in labels.iter().enumerate() {
        let color = Palette99::pick(k + 1).mix(0.8);
        let k32 = u32::try_from(k).unwrap_or(0);
        let left = segment / 10 + k32 * bar;
        let right = segment.saturating_sub(left + bar);
        chart
            .draw_series(results.iter().enumerate().map(|(i, r)| {
                let v = [r.lat_us.p50, r.lat_us.p99, r.lat_us.p999].get(k).copied().unwrap_or(0.0);
                let i = index_i32(i);
                let mut rect = Rectangle::new(
                    [(SegmentValue::Exact(i), bottom), (SegmentValue::Exact(i + 1), v.max(bottom))],
                    color.filled(),
                );
                rect.set_margin(0, 0, left, right);
                rect
            }))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

fn segment_label(v: &SegmentValue<i32>, names: &[String]) -> String {
    match v {
        SegmentValue::CenterOf(i) => {
            usize::try_from(*i).ok().and_then(|i| names.get(i)).cloned().unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn shares(area: &DrawingArea<SVGBackend<'_>, Shift>, result: &PolicyResult) -> Fallible<()> {
    let end = result.bucket_ms * result.timeline.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(&result.policy, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(36)
        .build_cartesian_2d(0.0..end.max(1.0), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(3)
        .x_label_formatter(&|v| format!("{v:.0} ms"))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .label_style(("sans-serif", 10))
        .draw()?;
    for mark in &result.events {
        chart.draw_series(DashedLineSeries::new(
            [(mark.at_ms, 0.0), (mark.at_ms, 1.0)],
            4,
            3,
            BLACK.mix(0.5).stroke_width(1),
        ))?;
    }
    for (k, path) in result.path_share.keys().enumerate() {
        let color = Palette99::pick(k + 4);
        let points = result.timeline.iter().enumerate().map(|(b, shares)| {
            #[allow(clippy::cast_precision_loss, reason = "bucket index")]
            let x = (b as f64 + 0.5) * result.bucket_ms;
            (x, shares.get(path).copied().unwrap_or(0.0))
        });
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(path.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 9))
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
