//! Comparison plots (SVG and PNG): found-cell accuracy per seed and its mean with an interval
//! against the paper and the best cell, the spread of κ across repeats and seeds, and
//! score-against-accuracy scatters of correlation studies.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::datasets::Nb201Dataset;
use super::outcome::LEVEL;
use super::published::{published_tau, BEST_PUBLISHED};
use super::summary::ScoreNoise;
use super::{ConfigReport, Study, DATASETS};
use crate::error::{Error, Result};
use tenas_core::bench::nb201::Nb201Table;
use tenas_core::data::dataset::Dataset;
use tenas_core::stats::BootstrapInterval;

/// The text font, shipped with the crate so plots render the same on every machine
/// (DejaVu Sans, Bitstream Vera license: `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 620);
/// Wide enough for one labelled column per first-round candidate.
const WIDE: (u32, u32) = (1500, 620);
/// Pixels per configuration in a found-cell plot: a 42-character label fits.
const COLUMN_WIDTH: u32 = 300;
/// Where a configuration's mean stands right of its column centre (its seeds stand left).
const MEAN_OFFSET: f64 = 0.15;

/// Registers the bundled font once per process; every later call returns the first outcome.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| Error::invalid("the bundled plot font does not parse"))
}

fn plot_error<E: std::fmt::Debug>(e: E) -> Error {
    Error::invalid(format!("drawing a plot: {e:?}"))
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

/// One configuration's column in a found-cell plot.
pub struct FoundColumn<'a> {
    pub label: &'a str,
    /// One found cell's accuracy per seed.
    pub values: Vec<f64>,
    /// Their mean with its bootstrap interval (NaN bounds: none drawn).
    pub mean: BootstrapInterval,
}

/// One dataset's found-cell accuracy per seed, spread across each configuration's column, the
/// mean with its bootstrap interval, the paper's mean ± std band and the benchmark's best cell.
pub fn found_cells(
    stem: &Path,
    dataset: &Nb201Dataset,
    columns: &[FoundColumn<'_>],
    best: f64,
) -> Result<Vec<PathBuf>> {
    let (paper, band) = dataset.paper;
    let (lo, hi) = columns
        .iter()
        .flat_map(|c| c.values.iter().chain([&c.mean.lower, &c.mean.upper]))
        .chain([&(paper - band), &(paper + band), &best])
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    // Headroom above the data keeps the legend (upper right) off every point.
    let span = (hi - lo).max(0.5);
    let n = columns.len() as f64;
    let mean_color = RGBColor(214, 96, 0);
    // Room for a readable label under every column.
    let size = (
        (COLUMN_WIDTH * columns.len() as u32 + 160).max(SIZE.0),
        SIZE.1,
    );
    svg_and_png!(stem, size, |root: &DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Found cells: NB201 {} test accuracy", dataset.title),
                (FAMILY, 22),
            )
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, lo - 0.08 * span..hi + 0.35 * span)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(columns.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < columns.len() {
                    format!(
                        "#{} {}",
                        i as usize + 1,
                        short(columns[i as usize].label, 42)
                    )
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
        chart
            .draw_series(LineSeries::new(
                vec![(-0.5, best), (n - 0.5, best)],
                RED.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(format!("NAS-Bench-201 best cell: {best:.2}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        let seed_style = BLACK.mix(0.45).filled();
        let points = columns.iter().enumerate().flat_map(|(i, c)| {
            let k = c.values.len().max(1) as f64;
            c.values.iter().enumerate().map(move |(j, &v)| {
                // Seeds spread over the column's left part so equal accuracies stay visible;
                // the mean and its interval stand to the right.
                let x = i as f64 - 0.35 + 0.3 * (j as f64 + 0.5) / k;
                Circle::new((x, v), 4, seed_style)
            })
        });
        chart
            .draw_series(points)
            .map_err(plot_error)?
            .label("found cell of one seed")
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, seed_style));
        let bars = columns
            .iter()
            .enumerate()
            .flat_map(|(i, c)| interval_bar(i as f64 + MEAN_OFFSET, &c.mean));
        chart
            .draw_series(bars.map(|path| PathElement::new(path, mean_color.stroke_width(3))))
            .map_err(plot_error)?;
        let means = columns.iter().enumerate().map(|(i, c)| {
            let x = i as f64 + MEAN_OFFSET;
            Circle::new((x, c.mean.estimate), 7, mean_color.filled())
        });
        chart
            .draw_series(means)
            .map_err(plot_error)?
            .label(format!("mean, {:.0}% bootstrap interval", 100.0 * LEVEL))
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, mean_color.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FAMILY, 14))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    })
}

/// A vertical bar over the interval with a cap at each end; nothing when there is none.
fn interval_bar(x: f64, mean: &BootstrapInterval) -> Vec<Vec<(f64, f64)>> {
    let (lower, upper) = (mean.lower, mean.upper);
    if !(lower.is_finite() && upper.is_finite()) {
        return Vec::new();
    }
    let cap = |y| vec![(x - 0.06, y), (x + 0.06, y)];
    vec![vec![(x, lower), (x, upper)], cap(lower), cap(upper)]
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

pub(super) fn draw_plots(
    out: &Path,
    reports: &[ConfigReport],
    studies: &[Study],
    table: Option<&Nb201Table>,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if let Some(table) = table {
        files.extend(found_cell_plots(out, reports, table)?);
    }
    for r in reports.iter().filter(|r| !r.noise_first_round.is_empty()) {
        let stem = out.join(format!("kappa_spread_{}", r.runs.config));
        files.extend(kappa_spread(&stem, &r.runs.label, &r.noise_first_round)?);
    }
    for (i, s) in studies.iter().enumerate() {
        files.extend(study_plots(out, i, s)?);
    }
    Ok(files)
}

/// One plot per dataset of the configurations with found cells.
fn found_cell_plots(
    out: &Path,
    reports: &[ConfigReport],
    table: &Nb201Table,
) -> Result<Vec<PathBuf>> {
    let searched: Vec<&ConfigReport> = reports
        .iter()
        .filter(|r| !r.runs.seeds.is_empty())
        .collect();
    let mut files = Vec::new();
    for (d, dataset) in DATASETS.iter().enumerate() {
        let columns: Vec<FoundColumn<'_>> = searched
            .iter()
            .map(|r| FoundColumn {
                label: &r.runs.label,
                values: r.runs.seeds.iter().map(dataset.accuracy).collect(),
                mean: r.outcomes[d].mean,
            })
            .collect();
        let stem = out.join(format!("accuracy_{}", dataset.key));
        files.extend(found_cells(
            &stem,
            dataset,
            &columns,
            table.best(dataset.dataset),
        )?);
    }
    Ok(files)
}

/// A study's plots: τ of every predictor with its interval beside the published τ, the
/// scatters of TE-NAS's κ and regions when it has them, and of its best other predictor.
fn study_plots(out: &Path, i: usize, s: &Study) -> Result<Vec<PathBuf>> {
    let mut files = tau_chart(&out.join(format!("tau_{i}")), s)?;
    let points = |values: &[f64], sign: f64| -> Vec<(f64, f64)> {
        values
            .iter()
            .map(|v| sign * v)
            .zip(s.cifar10.iter().copied())
            .filter(|(x, _)| x.is_finite())
            .collect()
    };
    let tau = |p: &str| s.tau(p, Dataset::Cifar10).map_or(f64::NAN, |t| t.estimate);
    if let Some(kappa) = s.values("-kappa") {
        let stem = out.join(format!("scatter_kappa_{i}"));
        let name = "κ (mean over repeats; τ of −κ)";
        files.extend(scatter(
            &stem,
            name,
            &points(kappa, -1.0),
            tau("-kappa"),
            true,
        )?);
    }
    if let Some(regions) = s.values("regions") {
        let stem = out.join(format!("scatter_regions_{i}"));
        let name = "linear regions (mean over repeats)";
        files.extend(scatter(
            &stem,
            name,
            &points(regions, 1.0),
            tau("regions"),
            false,
        )?);
    }
    if let Some((best, best_tau)) = s
        .best()
        .filter(|(b, _)| !matches!(*b, "-kappa" | "regions"))
    {
        let values = s.values(best).expect("the best predictor has values");
        let stem = out.join(format!("scatter_best_{i}"));
        let name = format!("{best} (the study's best predictor)");
        files.extend(scatter(
            &stem,
            &name,
            &points(values, 1.0),
            best_tau,
            false,
        )?);
    }
    Ok(files)
}

/// CIFAR-10 τ of each predictor of a study with its bootstrap interval, the published τ
/// marked beside it, and the best published ranking as a line.
fn tau_chart(stem: &Path, s: &Study) -> Result<Vec<PathBuf>> {
    let predictors = s.predictors();
    let n = predictors.len() as f64;
    let best = BEST_PUBLISHED.tau[0].unwrap_or(f64::NAN);
    let taus: Vec<Option<&BootstrapInterval>> = predictors
        .iter()
        .map(|p| s.tau(p, Dataset::Cifar10))
        .collect();
    let lo = taus
        .iter()
        .flatten()
        .map(|t| t.lower)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min)
        - 0.05;
    svg_and_png!(stem, WIDE, |root: &DrawingArea<_, Shift>| -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Kendall τ with CIFAR-10 accuracy, {} cells: {}",
                    s.cells,
                    short(&s.label, 50)
                ),
                (FAMILY, 20),
            )
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, lo..1.05)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(predictors.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                match (i >= 0.0 && (x - i).abs() < 1e-6).then(|| predictors.get(i as usize)) {
                    Some(Some(p)) => short(p, 13),
                    _ => String::new(),
                }
            })
            .y_desc(format!(
                "Kendall τ ({:.0}% bootstrap interval)",
                LEVEL * 100.0
            ))
            .label_style((FAMILY, 12))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, best), (n - 0.5, best)],
                RED.mix(0.6).stroke_width(2),
            )))
            .map_err(plot_error)?
            .label(format!(
                "{} (published, all cells) {best:.3}",
                BEST_PUBLISHED.predictor
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.6)));
        for (i, tau) in taus.iter().enumerate() {
            let Some(tau) = tau else { continue };
            let x = i as f64;
            for bar in interval_bar(x, tau) {
                chart
                    .draw_series(std::iter::once(PathElement::new(bar, BLUE.stroke_width(2))))
                    .map_err(plot_error)?;
            }
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x, tau.estimate),
                    5,
                    BLUE.filled(),
                )))
                .map_err(plot_error)?;
        }
        let published: Vec<(f64, f64)> = predictors
            .iter()
            .enumerate()
            .filter_map(|(i, p)| published_tau(p, 0).map(|v| (i as f64 + 0.2, v)))
            .collect();
        chart
            .draw_series(
                published
                    .iter()
                    .map(|&p| Cross::new(p, 6, BLACK.stroke_width(2))),
            )
            .map_err(plot_error)?
            .label("published τ of the proxy (all 15,625 cells)")
            .legend(|(x, y)| Cross::new((x + 10, y), 6, BLACK.stroke_width(2)));
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
