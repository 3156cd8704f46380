//! Figures of a scored series: a panel per chosen metric and a panel of the score with its
//! threshold and alarms; labelled anomalies are shaded in every panel. PNG or SVG by extension.

use anyhow::{bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// What one figure shows. All slices are indexed by time step.
pub struct Figure<'a> {
    pub title: String,
    /// Metric panels, top to bottom: (name, values).
    pub metrics: Vec<(String, Vec<f64>)>,
    pub scores: &'a [f64],
    pub thresholds: &'a [f64],
    pub alarms: &'a [u8],
    pub labels: Option<&'a [u8]>,
}

const WIDTH: u32 = 1400;
const METRIC_PANEL: u32 = 140;
const SCORE_PANEL: u32 = 260;
const SHADE: RGBColor = RGBColor(255, 205, 205);

/// Draws `figure` into `path` (`.png` or `.svg`), atomically: a failed draw leaves no file.
pub fn draw(path: &Path, figure: &Figure) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ext = match ext.as_deref() {
        Some(e @ ("png" | "svg")) => e.to_string(),
        _ => bail!(
            "{}: choose a .png or .svg file name for the figure",
            path.display()
        ),
    };
    if figure.scores.is_empty() {
        bail!("there are no scores to plot");
    }
    // plotters writes to a path of its own: the figure is drawn into a private scratch file,
    // then written to `path` as every output is (atomically, or in place for a FIFO/device).
    let scratch = tempfile::tempdir().context("cannot create a scratch folder for the figure")?;
    let tmp = scratch.path().join(format!("figure.{ext}"));
    let height = METRIC_PANEL * figure.metrics.len() as u32 + SCORE_PANEL + 40;
    let drawn = if ext == "png" {
        let root = BitMapBackend::new(&tmp, (WIDTH, height)).into_drawing_area();
        render(&root, figure).and_then(|_| root.present().map_err(|e| anyhow::anyhow!("{e}")))
    } else {
        let root = SVGBackend::new(&tmp, (WIDTH, height)).into_drawing_area();
        render(&root, figure).and_then(|_| root.present().map_err(|e| anyhow::anyhow!("{e}")))
    };
    drawn.with_context(|| format!("cannot draw {}", path.display()))?;
    let bytes = std::fs::read(&tmp).context("cannot read back the drawn figure")?;
    crate::output::write_atomic(path, &bytes)
}

fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &Figure) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&f.title, ("sans-serif", 20)).map_err(err)?;
    let n = f.scores.len();
    let (metric_area, score_area) = root.split_vertically(METRIC_PANEL * f.metrics.len() as u32);
    let rows = metric_area.split_evenly((f.metrics.len().max(1), 1));
    for ((name, values), area) in f.metrics.iter().zip(rows.iter()) {
        let (lo, hi) = range(values.iter().copied());
        let mut chart = ChartBuilder::on(area)
            .margin(4)
            .x_label_area_size(0)
            .y_label_area_size(60)
            .caption(name, ("sans-serif", 13))
            .build_cartesian_2d(0..n, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(3)
            .draw()
            .map_err(err)?;
        shade(&mut chart, f.labels, lo, hi).map_err(err)?;
        chart
            .draw_series(LineSeries::new(values.iter().copied().enumerate(), &BLACK))
            .map_err(err)?;
    }
    let finite = f
        .scores
        .iter()
        .chain(f.thresholds)
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = range(finite);
    let mut chart = ChartBuilder::on(&score_area)
        .margin(4)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .caption(
            "score, threshold (red), alarms (red marks), labelled anomalies (shaded)",
            ("sans-serif", 13),
        )
        .build_cartesian_2d(0..n, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time step")
        .draw()
        .map_err(err)?;
    shade(&mut chart, f.labels, lo, hi).map_err(err)?;
    chart
        .draw_series(LineSeries::new(f.scores.iter().copied().enumerate(), &BLUE))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            f.thresholds.iter().map(|t| t.clamp(lo, hi)).enumerate(),
            &RED,
        ))
        .map_err(err)?;
    chart
        .draw_series(
            f.alarms
                .iter()
                .enumerate()
                .filter(|(_, &a)| a != 0)
                .map(|(t, _)| PathElement::new(vec![(t, lo), (t, lo + (hi - lo) * 0.04)], RED)),
        )
        .map_err(err)?;
    Ok(())
}

/// Shades each labelled segment across the panel.
fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<
            plotters::coord::types::RangedCoordusize,
            plotters::coord::types::RangedCoordf64,
        >,
    >,
    labels: Option<&[u8]>,
    lo: f64,
    hi: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let Some(labels) = labels else { return Ok(()) };
    let segments = vigil_core::metrics::adjust::segments(labels);
    chart.draw_series(
        segments
            .into_iter()
            .map(|s| Rectangle::new([(s.start, lo), (s.end, hi)], SHADE.filled())),
    )?;
    Ok(())
}

/// A y range covering the finite values, never empty.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}
