//! Writes ImageNet16 batch files the way the official ones were written: Python 2's cPickle at
//! protocol 2 of `{'data': uint8 array (N, 768), 'labels': [ints], 'mean': float64 array}`,
//! numpy arrays as `_reconstruct` + `BUILD` with their raw bytes in a `BINSTRING`. For test
//! fixtures and for re-packing subsets of the data (read them with `verify = false`).
use std::path::Path;

use super::imagenet16::IMAGE_BYTES;
use crate::error::{Error, Result};

/// Writes a well-formed batch: `images` of [`IMAGE_BYTES`] each, `labels` in 1..=1000.
pub fn write_batch(path: &Path, images: &[u8], labels: &[u16]) -> Result<()> {
    let n = images.len() / IMAGE_BYTES;
    let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let bytes = batch_pickle(&[n, IMAGE_BYTES], images, &labels);
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// The pickle of a batch with whatever shape, data and labels it is given (malformed ones
/// included, for tests of the reader). `mean` is the per-column mean of `data` as rows of
/// the shape's last dimension.
pub fn batch_pickle(shape: &[usize], data: &[u8], labels: &[i64]) -> Vec<u8> {
    let columns = shape.last().copied().unwrap_or(1).max(1);
    let rows = (data.len() / columns).max(1);
    let mut mean = vec![0f64; columns];
    for row in data.chunks_exact(columns) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    let mean_bytes: Vec<u8> = mean
        .iter()
        .flat_map(|m| (m / rows as f64).to_le_bytes())
        .collect();

    let mut w = Writer::default();
    w.out.extend(b"\x80\x02}");
    w.put();
    w.out.push(b'(');
    w.short_string(b"data");
    w.ndarray(shape, b"u1", "|", data);
    w.short_string(b"labels");
    w.out.push(b']');
    w.put();
    for chunk in labels.chunks(1000) {
        w.out.push(b'(');
        chunk.iter().for_each(|&l| w.int(l));
        w.out.push(b'e');
    }
    w.short_string(b"mean");
    w.ndarray(&[columns], b"f8", "<", &mean_bytes);
    w.out.extend(b"u.");
    w.out
}

/// Emits opcodes with cPickle's memo habits: a `BINPUT` after each new object, a `BINGET`
/// for a global seen before.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
    memo: usize,
    globals: Vec<(&'static str, usize)>,
}

impl Writer {
    fn put(&mut self) {
        match u8::try_from(self.memo) {
            Ok(key) => self.out.extend([b'q', key]),
            Err(_) => {
                self.out.push(b'r');
                self.out.extend((self.memo as u32).to_le_bytes());
            }
        }
        self.memo += 1;
    }

    fn global(&mut self, line: &'static str) {
        if let Some(&(_, key)) = self.globals.iter().find(|(l, _)| *l == line) {
            match u8::try_from(key) {
                Ok(key) => self.out.extend([b'h', key]),
                Err(_) => {
                    self.out.push(b'j');
                    self.out.extend((key as u32).to_le_bytes());
                }
            }
            return;
        }
        self.out.push(b'c');
        self.out.extend(line.as_bytes());
        self.globals.push((line, self.memo));
        self.put();
    }

    fn short_string(&mut self, s: &[u8]) {
        self.out.push(b'U');
        self.out.push(s.len() as u8);
        self.out.extend(s);
        self.put();
    }

    fn int(&mut self, v: i64) {
        match (u8::try_from(v), u16::try_from(v), i32::try_from(v)) {
            (Ok(b), _, _) => self.out.extend([b'K', b]),
            (_, Ok(h), _) => {
                self.out.push(b'M');
                self.out.extend(h.to_le_bytes());
            }
            (_, _, Ok(i)) => {
                self.out.push(b'J');
                self.out.extend(i.to_le_bytes());
            }
            _ => {
                self.out.extend([0x8a, 8]);
                self.out.extend(v.to_le_bytes());
            }
        }
    }

    /// `_reconstruct(ndarray, (0,), 'b')`, then `BUILD` with `(1, shape, dtype, False, raw)`.
    fn ndarray(&mut self, shape: &[usize], dtype: &[u8; 2], order: &str, raw: &[u8]) {
        self.global("numpy.core.multiarray\n_reconstruct\n");
        self.global("numpy\nndarray\n");
        self.out.extend([b'K', 0, 0x85]);
        self.put();
        self.short_string(b"b");
        self.out.push(0x87);
        self.put();
        self.out.push(b'R');
        self.put();
        self.out.extend([b'(', b'K', 1, b'(']);
        shape.iter().for_each(|&d| self.int(d as i64));
        self.out.push(b't');
        self.put();
        // numpy.dtype('u1', 0, 1) with state (3, '|', None, None, None, -1, -1, 0).
        self.global("numpy\ndtype\n");
        self.short_string(dtype);
        self.out.extend([b'K', 0, b'K', 1, 0x87]);
        self.put();
        self.out.push(b'R');
        self.put();
        self.out.extend([b'(', b'K', 3]);
        self.short_string(order.as_bytes());
        self.out.extend(b"NNN");
        self.int(-1);
        self.int(-1);
        self.out.extend([b'K', 0, b't']);
        self.put();
        self.out.extend([b'b', 0x89, b'T']);
        self.out.extend((raw.len() as u32).to_le_bytes());
        self.out.extend(raw);
        self.put();
        self.out.push(b't');
        self.put();
        self.out.push(b'b');
    }
}
