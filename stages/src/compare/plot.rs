//! Comparison plots (SVG and PNG): found-cell accuracy per seed against the paper, the spread
//! of κ across repeats and seeds, and score-against-accuracy scatters of correlation studies.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::summary::{ConfigRuns, ScoreNoise};
use crate::error::{Error, Result};

/// The text font, shipped with the crate so plots render the same on every machine
/// (DejaVu Sans, Bitstream Vera license: `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 620);
/// Wide enough for one labelled column per first-round candidate.
const WIDE: (u32, u32) = (1500, 620);

/// The paper's NB201 CIFAR-10 result for TE-NAS (mean, std).
pub const PAPER_CIFAR10: (f64, f64) = (93.9, 0.47);

/// Registers the bundled font once per process; every later call returns the first outcome.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| Error::Invalid("the bundled plot font does not parse".into()))
}

fn plot_error<E: std::fmt::Debug>(e: E) -> Error {
    Error::Invalid(format!("drawing a plot: {e:?}"))
}

/// Draws `$draw(root)` once on an SVG and once on a PNG backend; returns both paths.
macro_rules! svg_and_png {
    ($stem:expr, $draw:expr) => {
        svg_and_png!($stem, SIZE, $draw)
    };
    ($stem:expr, $size:expr, $draw:expr) => {{
        register_font()?;
        let stem: &Path = $stem;
        let (svg, png) = (stem.with_extension("svg"), stem.with_extension("png"));
        {
            let root = SVGBackend::new(&svg, $size).into_drawing_area();
            $draw(&root)?;
            root.present().map_err(plot_error)?;
        }
        {
            let root = BitMapBackend::new(&png, $size).into_drawing_area();
            $draw(&root)?;
            root.present().map_err(plot_error)?;
        }
        Ok::<Vec<PathBuf>, Error>(vec![svg, png])
    }};
}

/// CIFAR-10 accuracy of every seed's found cell, one column per configuration, with the
/// paper's mean ± std band and the benchmark's best cell.
pub fn accuracy(stem: &Path, configs: &[ConfigRuns], optimum: Option<f64>) -> Result<Vec<PathBuf>> {
    let values: Vec<f64> = configs
        .iter()
        .flat_map(|c| c.seeds.iter().map(|s| s.cifar10))
        .collect();
    let (paper, band) = PAPER_CIFAR10;
    let lo = values.iter().copied().fold(paper - band, f64::min) - 0.3;
    let hi = values
        .iter()
        .copied()
        .chain(optimum)
        .fold(paper + band, f64::max)
        + 0.3;
    let n = configs.len() as f64;
    svg_and_png!(stem, |root: &DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Found cells: NB201 CIFAR-10 test accuracy per seed",
                (FAMILY, 22),
            )
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, lo..hi)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(configs.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < configs.len() {
                    short(&configs[i as usize].label, 40)
                } else {
                    String::new()
                }
            })
            .y_desc("test accuracy (%)")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(-0.5, paper - band), (n - 0.5, paper + band)],
                BLUE.mix(0.12).filled(),
            )))
            .map_err(plot_error)?
            .label(format!("paper: {paper:.2} ± {band:.2}"))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLUE.mix(0.3).filled()));
        if let Some(best) = optimum {
            chart
                .draw_series(LineSeries::new(
                    vec![(-0.5, best), (n - 0.5, best)],
                    RED.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(format!("NAS-Bench-201 best cell: {best:.2}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        }
        for (i, c) in configs.iter().enumerate() {
            let k = c.seeds.len().max(1) as f64;
            let points = c.seeds.iter().enumerate().map(|(j, s)| {
                // Spread the seeds across the column so equal accuracies stay visible.
                let x = i as f64 + 0.5 * ((j as f64 + 0.5) / k - 0.5);
                Circle::new((x, s.cifar10), 5, BLACK.filled())
            });
            chart.draw_series(points).map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FAMILY, 14))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    })
}

/// κ of each first-round candidate over all seeds and repeats: min–max bar and mean.
pub fn kappa_spread(stem: &Path, label: &str, noise: &[ScoreNoise]) -> Result<Vec<PathBuf>> {
    let lo = noise
        .iter()
        .map(|s| s.kappa.min)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = noise.iter().map(|s| s.kappa.max).fold(1.0, f64::max);
    let n = noise.len() as f64;
    svg_and_png!(stem, WIDE, |root: &DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "κ of first-round candidates across seeds and repeats: {}",
                    short(label, 50)
                ),
                (FAMILY, 20),
            )
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, (lo / 1.5..hi * 1.5).log_scale())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(noise.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < noise.len() {
                    let s = &noise[i as usize];
                    format!("{}:{}", s.edge, op_abbrev(&s.op))
                } else {
                    String::new()
                }
            })
            .x_desc("edge:op removed")
            .y_desc("NTK condition number κ (pruned network)")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(plot_error)?;
        for (i, s) in noise.iter().enumerate() {
            let x = i as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, s.kappa.min), (x, s.kappa.max)],
                    BLUE.stroke_width(3),
                )))
                .map_err(plot_error)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x, s.kappa.mean),
                    4,
                    BLACK.filled(),
                )))
                .map_err(plot_error)?;
        }
        Ok(())
    })
}

/// One score of a correlation study against CIFAR-10 accuracy, τ in the title.
pub fn scatter(
    stem: &Path,
    score_name: &str,
    points: &[(f64, f64)],
    tau: f64,
    log_x: bool,
) -> Result<Vec<PathBuf>> {
    let xs = points.iter().map(|p| p.0);
    let (xlo, xhi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let ylo = (points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) - 1.0).max(0.0);
    let yhi = points.iter().map(|p| p.1).fold(0.0, f64::max) + 1.0;
    let title = format!(
        "{score_name} vs NB201 CIFAR-10 accuracy: Kendall τ = {tau:.3} ({} cells)",
        points.len()
    );
    svg_and_png!(stem, |root: &DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let builder = |root| {
            let mut b = ChartBuilder::on(root);
            b.caption(&title, (FAMILY, 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(60);
            b
        };
        let style = BLUE.mix(0.45).filled();
        if log_x {
            let mut chart = builder(root)
                .build_cartesian_2d((xlo.max(1e-3) / 1.2..xhi * 1.2).log_scale(), ylo..yhi)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .x_desc(score_name)
                .y_desc("CIFAR-10 test accuracy (%)")
                .label_style((FAMILY, 14))
                .draw()
                .map_err(plot_error)?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, style)))
                .map_err(plot_error)?;
        } else {
            let pad = (xhi - xlo).abs().max(1.0) * 0.05;
            let mut chart = builder(root)
                .build_cartesian_2d(xlo - pad..xhi + pad, ylo..yhi)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(score_name)
                .y_desc("CIFAR-10 test accuracy (%)")
                .label_style((FAMILY, 14))
                .draw()
                .map_err(plot_error)?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, style)))
                .map_err(plot_error)?;
        }
        Ok(())
    })
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

fn op_abbrev(op: &str) -> &str {
    match op {
        "none" => "none",
        "skip_connect" => "skip",
        "nor_conv_1x1" => "conv1",
        "nor_conv_3x3" => "conv3",
        "avg_pool_3x3" => "pool",
        other => other,
    }
}
