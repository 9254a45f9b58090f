//! Helpers shared by tests.
use std::path::PathBuf;

/// The real data root: `TENAS_DATA`, else `../shared/data` beside the checkout (the core crate sits two folders below the root).
pub fn test_data_root() -> PathBuf {
    std::env::var_os("TENAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use candle_core::{DType, IndexOp, Tensor};
use flate2::{write::GzEncoder, Compression};
use md5::{Digest, Md5};

use crate::data::cifar::IMAGE_BYTES;
use crate::data::download::ArchiveSource;
use crate::hashing::hex;

use crate::error::Result;
use crate::net::params::{ParamId, Params};
use crate::net::tape::Tape;
use crate::space::SpaceNet;

/// A `.tar.gz` holding `entries` (path, bytes).
pub fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// A local HTTP server answering every GET with one body; counts the requests.
pub struct Server {
    pub url: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves `body` as `/cifar-10-binary.tar.gz` on a fresh local port.
pub fn serve(body: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(header.as_bytes())
                .and_then(|_| stream.write_all(&body));
        }
    });
    Server {
        url: format!("http://{address}/cifar-10-binary.tar.gz"),
        requests,
    }
}

/// A served CIFAR-10 archive with one batch of `records` generated images, and its source.
pub fn served_cifar10(records: usize) -> (Server, ArchiveSource) {
    let archive = tar_gz(&[
        (
            "cifar-10-batches-bin/data_batch_1.bin",
            cifar10_records(records, 5),
        ),
        (
            "cifar-10-batches-bin/batches.meta.txt",
            b"airplane\n".to_vec(),
        ),
    ]);
    let md5 = md5_hex(&archive);
    let server = serve(archive);
    let source = ArchiveSource {
        url: server.url.clone(),
        md5,
    };
    (server, source)
}

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

/// `count` CIFAR-10 records whose label is `(seed + i) % 10` and pixels a simple pattern.
pub fn cifar10_records(count: usize, seed: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..count {
        bytes.push((seed as usize + i) as u8 % 10);
        bytes.extend((0..IMAGE_BYTES).map(|p| (p as u8).wrapping_mul(seed).wrapping_add(i as u8)));
    }
    bytes
}
