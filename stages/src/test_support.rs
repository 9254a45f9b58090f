//! Helpers shared by tests.
use std::path::PathBuf;

/// The real data root: `TENAS_DATA`, else `../shared/data` beside the checkout.
pub fn test_data_root() -> PathBuf {
    std::env::var_os("TENAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

use candle_core::{DType, IndexOp, Tensor};

use crate::error::Result;
use crate::net::params::{ParamId, Params};
use crate::net::tape::Tape;
use crate::space::SpaceNet;

fn summed_logits<N: SpaceNet>(
    net: &N,
    params: &Params,
    x: &Tensor,
    mask: &N::Mask,
) -> Result<Vec<f64>> {
    let mut tape = Tape::new(params);
    let logits = net.forward(&mut tape, x.clone(), mask)?;
    Ok(tape.value(logits).sum(1)?.to_vec1::<f64>()?)
}

/// Checks the tape's per-sample gradients of the summed logits (f64 `params` and `x`)
/// against central differences on the first, middle and last element of each named
/// parameter; returns every gradient for further checks.
pub fn assert_jacobian_matches_fd<N: SpaceNet>(
    net: &N,
    params: &Params,
    x: &Tensor,
    mask: &N::Mask,
    names: &[&str],
) -> Result<Vec<(ParamId, Tensor)>> {
    let mut tape = Tape::new(params);
    let logits = net.forward(&mut tape, x.clone(), mask)?;
    let (b, classes) = tape.value(logits).dims2()?;
    let cot = Tensor::eye(b, DType::F64, x.device())?
        .unsqueeze(2)?
        .broadcast_as((b, b, classes))?
        .contiguous()?;
    let grads = tape.backward(logits, &cot)?;
    for &name in names {
        let (id, g) = grads
            .iter()
            .find(|(id, _)| params.spec(*id).name == name)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let flat = params.tensor(*id).flatten_all()?.to_vec1::<f64>()?;
        let shape = params.tensor(*id).shape().clone();
        for elem in [0, flat.len() / 2, flat.len() - 1] {
            let bump = |delta: f64| -> Result<Vec<f64>> {
                let mut v = flat.clone();
                v[elem] += delta;
                let p = params.with_tensor(*id, Tensor::from_vec(v, shape.clone(), x.device())?);
                summed_logits(net, &p, x, mask)
            };
            let (up, down) = (bump(1e-6)?, bump(-1e-6)?);
            for i in 0..b {
                let fd = (up[i] - down[i]) / 2e-6;
                let an = g.i((i, elem))?.to_scalar::<f64>()?;
                assert!(
                    (fd - an).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{name}[{elem}] sample {i}: fd {fd} vs {an}"
                );
            }
        }
    }
    Ok(grads)
}
