//! How well the benchmark network's size alone ranks all 15,625 NAS-Bench-201 cells: Kendall's
//! τ and Spearman's ρ of #params and FLOPs against the shipped table's accuracies, the
//! baseline every training-free proxy has to beat. `cargo run --release --example
//! size_correlation`.
use tenas_core::bench::shipped;
use tenas_core::data::dataset::Dataset;
use tenas_core::space::nb201_arch::Arch;
use tenas_core::space::nb201_benchmark::BenchmarkNet;
use tenas_core::stats::{kendall_tau_b, spearman_rho};

fn main() -> tenas_core::Result<()> {
    let table = shipped::load()?;
    let net = BenchmarkNet::default();
    let mut sizes = (Vec::new(), Vec::new());
    let mut entries = Vec::new();
    for arch in Arch::all() {
        let size = net.size(&arch);
        sizes.0.push(size.params as f64);
        sizes.1.push(size.flops as f64);
        entries.push(table.lookup(&arch.to_string())?);
    }
    println!(
        "{} cells; Kendall τ / Spearman ρ against test accuracy",
        entries.len()
    );
    for dataset in Dataset::NB201 {
        let accuracy: Vec<f64> = entries.iter().map(|e| e.accuracy(dataset)).collect();
        for (name, values) in [("params", &sizes.0), ("flops", &sizes.1)] {
            println!(
                "{:<15} {name:<6}  τ {:.3}  ρ {:.3}",
                dataset.name(),
                kendall_tau_b(values, &accuracy)?,
                spearman_rho(values, &accuracy)?
            );
        }
    }
    Ok(())
}
