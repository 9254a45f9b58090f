//! Runs every cell proxy on the cells of a reference CSV written by `bench/proxies/reference.py`
//! (the published code under torch), on NAS-Bench-201's network at C=16, N=5, batch 64, and
//! reports per component the Spearman correlation with the published values over the cells,
//! the median scale ratio ours / theirs, agreement on which cells are −∞, and the seconds.
//!
//! The real batches are records 0..63 and 64..127 of CIFAR-10's `data_batch_1.bin`, as the
//! harness uses. Random draws (weights, noise) cannot match torch's, so the values agree in
//! ranking and scale, not in bits.
//!
//!     TENAS_DATA=../shared/data cargo run --release -p tenas-core --example proxy_agreement -- \
//!         bench/proxies/reference-cifar10-seed0.csv target/proxy-agreement.csv [proxy,...]
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use candle_core::Device;
use tenas_core::data::cifar::load_cifar10;
use tenas_core::proxy::{all_proxies, evaluate, CellInput, LabelledBatch};
use tenas_core::space::benchmark_net::BenchmarkNetwork;
use tenas_core::space::nb201_arch::Arch;
use tenas_core::space::nb201_benchmark::BenchmarkNet;
use tenas_core::stats::spearman_rho;

const BATCH: usize = 64;

// The allocator and its setting as in the `tenas` binary (`src/main.rs`): glibc's malloc
// would time its page faults, not the proxies.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The reference's component name for ours (it writes the size proxies in millions).
fn reference_component(ours: &str) -> &str {
    match ours {
        "params" => "params_M",
        "flops" => "flops_M",
        other => other,
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text.trim() {
        "" => None,
        "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        "inf" | "Infinity" => Some(f64::INFINITY),
        t => t.parse().ok(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: setting an option is always sound.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reference = args
        .first()
        .cloned()
        .unwrap_or_else(|| "bench/proxies/reference-cifar10-seed0.csv".into());
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/proxy-agreement.csv".into());
    let only: Option<Vec<String>> = args
        .get(2)
        .map(|s| s.split(',').map(String::from).collect());
    let root = std::env::var("TENAS_DATA").unwrap_or_else(|_| "../shared/data".into());

    // (arch, proxy, component) → value, and the cells in file order.
    let mut theirs: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut their_calls: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut cells: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(&reference)?.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 || !f[0].starts_with('|') {
            continue;
        }
        if !cells.contains(&f[0].to_string()) {
            cells.push(f[0].to_string());
        }
        if let Some(v) = parse_value(f[3]) {
            theirs.insert((f[0].into(), f[1].into(), f[2].into()), v);
        }
        if !f[2].starts_with('_') {
            // Components computed together repeat the call's seconds: count each once.
            if let Some(s) = parse_value(f[4]) {
                let calls = their_calls.entry((f[0].into(), f[1].into())).or_default();
                if !calls.contains(&s) {
                    calls.push(s);
                }
            }
        }
    }

    let their_seconds: BTreeMap<(String, String), f64> = their_calls
        .into_iter()
        .map(|(k, v)| (k, v.iter().sum()))
        .collect();
    let device = Device::Cpu;
    let mut pool = load_cifar10(std::path::Path::new(&root))?;
    pool.truncate(2 * BATCH);
    let data = vec![
        LabelledBatch::from_pool(&pool, 0, BATCH, &device)?,
        LabelledBatch::from_pool(&pool, BATCH, BATCH, &device)?,
    ];
    let proxies: Vec<_> = all_proxies()
        .into_iter()
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|n| n == p.name()))
        })
        .collect();

    let mut csv = String::from("arch,proxy,component,value,seconds\n");
    let mut ours: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let mut our_seconds: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (i, cell) in cells.iter().enumerate() {
        let network = BenchmarkNetwork::new(BenchmarkNet::default(), Arch::parse(cell)?)?;
        let input = CellInput {
            network: &network,
            seed: 0,
            batch: BATCH,
            device: &device,
            data: &data,
        };
        for proxy in &proxies {
            let start = Instant::now();
            let values = evaluate(proxy.as_ref(), &input)?;
            let seconds = start.elapsed().as_secs_f64();
            our_seconds.insert((cell.clone(), proxy.name().into()), seconds);
            for (component, v) in proxy.components().iter().zip(values) {
                writeln!(csv, "{cell},{},{component},{v},{seconds:.3}", proxy.name())?;
                ours.insert(
                    (cell.clone(), proxy.name().into(), component.to_string()),
                    v,
                );
            }
        }
        eprintln!("cell {}/{} done", i + 1, cells.len());
        std::fs::write(&out, &csv)?;
    }

    println!("| proxy | component | cells | Spearman ρ | median scale ours/theirs | −∞ ours / theirs / both | s/cell ours | s/cell theirs |");
    println!("|---|---|---|---|---|---|---|---|");
    for proxy in &proxies {
        let secs = |m: &BTreeMap<(String, String), f64>| {
            let v: Vec<f64> = cells
                .iter()
                .filter_map(|c| m.get(&(c.clone(), proxy.name().to_string())).copied())
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        for component in proxy.components() {
            let key =
                |c: &String, name: &str| (c.clone(), proxy.name().to_string(), name.to_string());
            let pairs: Vec<(f64, f64)> = cells
                .iter()
                .filter_map(|c| {
                    let a = ours.get(&key(c, component))?;
                    let b = theirs.get(&key(c, reference_component(component)))?;
                    Some((*a, *b))
                })
                .collect();
            let finite: Vec<(f64, f64)> = pairs
                .iter()
                .copied()
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            let (x, y): (Vec<f64>, Vec<f64>) = finite.iter().copied().unzip();
            let rho = spearman_rho(&x, &y).unwrap_or(f64::NAN);
            let mut ratios: Vec<f64> = finite
                .iter()
                .filter(|(_, b)| *b != 0.0)
                .map(|(a, b)| a / b)
                .collect();
            ratios.sort_by(f64::total_cmp);
            let ratio = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
            let ninf = |v: f64| v == f64::NEG_INFINITY;
            let (a, b, both) = pairs.iter().fold((0, 0, 0), |(a, b, both), &(x, y)| {
                (
                    a + usize::from(ninf(x)),
                    b + usize::from(ninf(y)),
                    both + usize::from(ninf(x) && ninf(y)),
                )
            });
            println!(
                "| {} | {component} | {} | {rho:.3} | {ratio:.3} | {a} / {b} / {both} | {:.2} | {:.2} |",
                proxy.name(),
                finite.len(),
                secs(&our_seconds),
                secs(&their_seconds),
            );
        }
    }
    Ok(())
}
