//! How long reading one full-size ImageNet16 batch takes (128,116 records of 768 bytes, the
//! size of `train_data_batch_1`), at each pickle protocol. Write the file, then time its read
//! in a fresh process (so the peak memory is the reader's):
//!
//! ```text
//! cargo run -p tenas-stages --example imagenet16_read_timing -- write /tmp/batch 0
//! /usr/bin/time -v cargo run -p tenas-stages --example imagenet16_read_timing -- read /tmp/batch
//! ```
//!
//! Pixels are pseudo-random bytes (every value, as in real images, so every escape of protocol
//! 0 occurs); labels cycle through 1..=1000.
use std::path::Path;
use std::time::Instant;

use tenas_core::data::imagenet16::{read_batch, IMAGE_BYTES};
use tenas_core::data::imagenet16_writer::{write_batch, Protocol};

const RECORDS: usize = 128_116;

fn main() -> tenas_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", path, protocol] => write(Path::new(path), protocol),
        ["read", path] => read(Path::new(path)),
        _ => {
            eprintln!("usage: imagenet16_read_timing write <path> <0|1|2> | read <path>");
            std::process::exit(2);
        }
    }
}

fn write(path: &Path, protocol: &str) -> tenas_core::Result<()> {
    let protocol = match protocol {
        "0" => Protocol::Text0,
        "1" => Protocol::Binary1,
        "2" => Protocol::Binary2,
        other => {
            return Err(tenas_core::Error::Invalid(format!(
                "protocol {other}: expected 0, 1 or 2"
            )))
        }
    };
    // xorshift64: cheap, deterministic bytes spread over all 256 values.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let images: Vec<u8> = (0..RECORDS * IMAGE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let labels: Vec<u16> = (0..RECORDS).map(|i| (i % 1000) as u16 + 1).collect();
    write_batch(path, &images, &labels, protocol)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {RECORDS} records at {protocol:?} to {} ({:.1} MB)",
        path.display(),
        size as f64 / 1e6
    );
    Ok(())
}

fn read(path: &Path) -> tenas_core::Result<()> {
    let start = Instant::now();
    let batch = read_batch(path, None, 120)?;
    println!(
        "read {} in {:.3} s: kept {} records of classes 1..=120",
        path.display(),
        start.elapsed().as_secs_f64(),
        batch.labels.len()
    );
    Ok(())
}
