//! Where the time of one candidate evaluation goes: forward, NTK backward, eigen-solve and
//! linear regions, on the paper's NB201 settings. `cargo run --release --example score_timing`.
use std::time::Instant;

use candle_core::Device;
use tenas_core::data::dataset::Dataset;
use tenas_core::data::load::load_dataset;
use tenas_core::net::params::InitScheme;
use tenas_core::net::tape::Tape;
use tenas_core::proxy::ntk::{condition_number, gram, jacobian, NtkMode};
use tenas_core::space::nb201_arch::initial_mask;
use tenas_core::space::nb201_net::{Nb201Net, NetConfig};

fn main() -> tenas_core::Result<()> {
    let root = std::env::var("TENAS_DATA").unwrap_or_else(|_| "../shared/data".into());
    let batch: usize = std::env::var("BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(72);
    let chunk: usize = std::env::var("CHUNK")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(batch);
    let pool = load_dataset(root.as_ref(), Dataset::Cifar10)?;
    let device = Device::Cpu;
    let net = Nb201Net::new(NetConfig::supernet(10));
    let mask = initial_mask();
    for rep in 0..3 {
        let t = Instant::now();
        let params = net.specs().init(InitScheme::TorchDefault, rep, &device)?;
        let images = pool.view().image_batch(batch, rep, &device)?;
        let t_init = t.elapsed();
        let t = Instant::now();
        let mut tape = Tape::new(&params);
        let logits = net.forward(&mut tape, images, &mask)?;
        let t_fwd = t.elapsed();
        let t = Instant::now();
        let j = jacobian(&tape, logits, NtkMode::Summed, chunk)?;
        let t_bwd = t.elapsed();
        let t = Instant::now();
        let k = condition_number(&gram(&j)?)?;
        let t_eig = t.elapsed();
        let thin = Nb201Net::new(NetConfig::thin(10));
        let t = Instant::now();
        let tp = thin.specs().init(InitScheme::TorchDefault, rep, &device)?;
        let mut set = tenas_core::proxy::regions::PatternSet::default();
        for b in 0..3 {
            let crops = pool.view().crops(1000, 3, rep * 10 + b, &device)?;
            let mut tape = Tape::new(&tp);
            thin.forward(&mut tape, crops, &mask)?;
            set.add_batch(&tape)?;
        }
        let t_lr = t.elapsed();
        println!(
            "rep {rep}: kappa {k:.1} (J {:?})  init+data {:?}  forward {:?}  backward {:?}  eigen {:?}  regions {} in {:?}",
            j.dims(), t_init, t_fwd, t_bwd, t_eig, set.count().regions, t_lr
        );
    }
    Ok(())
}
