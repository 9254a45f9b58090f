//! Writes ImageNet16 batch files the way the official ones may have been written: Python 2's
//! `pickle` (which the dataset's script calls, with no protocol: protocol 0) of `{'data': uint8
//! array (N, 768), 'labels': [ints], 'mean': float64 array}`, at protocol 0, 1 or 2. numpy
//! arrays are `_reconstruct` + `BUILD` with their raw bytes in a Python 2 `str`: `S'<repr>'`
//! at protocol 0, a `BINSTRING` above. For test fixtures and for re-packing subsets of the data
//! (read them with `verify = false`).
use std::path::Path;

use super::imagenet16::IMAGE_BYTES;
use super::pickle::escape::python2_repr;
use crate::error::{Error, Result};

/// A pickle protocol, written as Python 2's `pickle` module writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Text opcodes: `pickle.dump(d, f)` in Python 2.
    Text0,
    /// Binary opcodes, no `PROTO`; bools still as text (`I01`).
    Binary1,
    /// `PROTO 2`: adds `TUPLE1..3` and `NEWTRUE`/`NEWFALSE`.
    Binary2,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Text0, Protocol::Binary1, Protocol::Binary2];
}

/// Writes a well-formed batch: `images` of [`IMAGE_BYTES`] each, `labels` in 1..=1000.
pub fn write_batch(path: &Path, images: &[u8], labels: &[u16], protocol: Protocol) -> Result<()> {
    let n = images.len() / IMAGE_BYTES;
    let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let bytes = batch_pickle(&[n, IMAGE_BYTES], images, &labels, protocol);
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// The pickle of a batch with whatever shape, data and labels it is given (malformed ones
/// included, for tests of the reader). `mean` is the per-column mean of `data` as rows of
/// the shape's last dimension.
pub fn batch_pickle(shape: &[usize], data: &[u8], labels: &[i64], protocol: Protocol) -> Vec<u8> {
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

    let mut w = Writer {
        protocol,
        out: Vec::with_capacity(data.len() * if protocol == Protocol::Text0 { 4 } else { 1 }),
        memo: 0,
        shared: Vec::new(),
    };
    if protocol == Protocol::Binary2 {
        w.out.extend(b"\x80\x02");
    }
    // In the order Python 2 iterates this dict.
    w.dict(&[
        (b"labels", &|w| w.int_list(labels)),
        (b"data", &|w| w.ndarray(shape, b"u1", b"|", data)),
        (b"mean", &|w| {
            w.ndarray(&[columns], b"f8", b"<", &mean_bytes)
        }),
    ]);
    w.out.push(b'.');
    w.out
}

/// A dict entry: its key and what writes its value.
type Entry<'e> = (&'e [u8], &'e dyn Fn(&mut Writer));

/// Emits opcodes with the habits of Python 2's `pickle`: every new string, tuple, list, dict,
/// global and reduced object is memoised (`PUT`); one seen before is fetched (`GET`), which
/// happens to globals and to one-character strings (Python 2 keeps one object for each).
struct Writer {
    protocol: Protocol,
    out: Vec<u8>,
    memo: usize,
    /// The globals and one-character strings memoised so far (opcode and argument), with keys.
    shared: Vec<(Vec<u8>, usize)>,
}

impl Writer {
    fn binary(&self) -> bool {
        self.protocol != Protocol::Text0
    }

    fn put(&mut self) {
        self.memo_opcode(self.memo, [b'p', b'q', b'r']);
        self.memo += 1;
    }

    /// `PUT`/`GET` of `key`: as decimal text, or in one byte, or in four.
    fn memo_opcode(&mut self, key: usize, [text, short, long]: [u8; 3]) {
        if !self.binary() {
            self.out.push(text);
            self.out.extend(format!("{key}\n").as_bytes());
            return;
        }
        match u8::try_from(key) {
            Ok(key) => self.out.extend([short, key]),
            Err(_) => {
                self.out.push(long);
                self.out.extend((key as u32).to_le_bytes());
            }
        }
    }

    /// Fetches `value` (an opcode and its argument) if it was memoised, else notes that the
    /// next `PUT` memoises it and returns false.
    fn get_shared(&mut self, value: &[u8]) -> bool {
        if let Some(&(_, key)) = self.shared.iter().find(|(v, _)| v == value) {
            self.memo_opcode(key, [b'g', b'h', b'j']);
            return true;
        }
        self.shared.push((value.to_vec(), self.memo));
        false
    }

    fn global(&mut self, line: &'static str) {
        if self.get_shared(&[b"c", line.as_bytes()].concat()) {
            return;
        }
        self.out.push(b'c');
        self.out.extend(line.as_bytes());
        self.put();
    }

    /// A Python 2 `str`.
    fn string(&mut self, s: &[u8]) {
        if let [c] = s {
            if self.get_shared(&[b'S', *c]) {
                return;
            }
        }
        match (self.binary(), u8::try_from(s.len())) {
            (false, _) => {
                self.out.push(b'S');
                python2_repr(s, &mut self.out);
                self.out.push(b'\n');
            }
            (true, Ok(len)) => {
                self.out.extend([b'U', len]);
                self.out.extend(s);
            }
            (true, Err(_)) => {
                self.out.push(b'T');
                self.out.extend((s.len() as u32).to_le_bytes());
                self.out.extend(s);
            }
        }
        self.put();
    }

    /// A Python 2 `int` (64 bits): binary when it fits 32 bits, else as text.
    fn int(&mut self, v: i64) {
        if self.binary() {
            match (u8::try_from(v), u16::try_from(v), i32::try_from(v)) {
                (Ok(b), _, _) => return self.out.extend([b'K', b]),
                (_, Ok(h), _) => {
                    self.out.push(b'M');
                    return self.out.extend(h.to_le_bytes());
                }
                (_, _, Ok(i)) => {
                    self.out.push(b'J');
                    return self.out.extend(i.to_le_bytes());
                }
                _ => {}
            }
        }
        self.out.extend(format!("I{v}\n").as_bytes());
    }

    fn bool(&mut self, v: bool) {
        let opcode: &[u8] = match (self.protocol, v) {
            (Protocol::Binary2, true) => b"\x88",
            (Protocol::Binary2, false) => b"\x89",
            (_, true) => b"I01\n",
            (_, false) => b"I00\n",
        };
        self.out.extend(opcode);
    }

    /// A tuple of `len` items, which `items` writes. Empty tuples are not memoised.
    fn tuple(&mut self, len: usize, items: impl FnOnce(&mut Self)) {
        if len == 0 {
            self.out.extend(if self.binary() {
                b")".as_slice()
            } else {
                b"(t"
            });
            return;
        }
        let short = self.protocol == Protocol::Binary2 && len <= 3;
        if !short {
            self.out.push(b'(');
        }
        items(self);
        self.out.push(if short { 0x84 + len as u8 } else { b't' });
        self.put();
    }

    /// A list of ints: appended one by one as text, in batches of 1000 (`APPENDS`) in binary.
    fn int_list(&mut self, items: &[i64]) {
        if !self.binary() {
            self.out.extend(b"(l");
            self.put();
            for &item in items {
                self.int(item);
                self.out.push(b'a');
            }
            return;
        }
        self.out.push(b']');
        self.put();
        for batch in items.chunks(1000) {
            if let [item] = batch {
                self.int(*item);
                self.out.push(b'a');
                continue;
            }
            self.out.push(b'(');
            batch.iter().for_each(|&item| self.int(item));
            self.out.push(b'e');
        }
    }

    /// A dict of more than one entry: set item by item as text, in one `SETITEMS` in binary.
    fn dict(&mut self, entries: &[Entry]) {
        let binary = self.binary();
        self.out
            .extend(if binary { b"}".as_slice() } else { b"(d" });
        self.put();
        if binary {
            self.out.push(b'(');
        }
        for (key, value) in entries {
            self.string(key);
            value(self);
            if !binary {
                self.out.push(b's');
            }
        }
        if binary {
            self.out.push(b'u');
        }
    }

    /// `_reconstruct(ndarray, (0,), 'b')`, then `BUILD` with `(1, shape, dtype, False, raw)`.
    fn ndarray(&mut self, shape: &[usize], dtype: &[u8; 2], order: &[u8], raw: &[u8]) {
        self.global("numpy.core.multiarray\n_reconstruct\n");
        self.tuple(3, |w| {
            w.global("numpy\nndarray\n");
            w.tuple(1, |w| w.int(0));
            w.string(b"b");
        });
        self.out.push(b'R');
        self.put();
        self.tuple(5, |w| {
            w.int(1);
            w.tuple(shape.len(), |w| shape.iter().for_each(|&d| w.int(d as i64)));
            // numpy.dtype('u1', 0, 1) with state (3, '|', None, None, None, -1, -1, 0).
            w.global("numpy\ndtype\n");
            w.tuple(3, |w| {
                w.string(dtype);
                w.int(0);
                w.int(1);
            });
            w.out.push(b'R');
            w.put();
            w.tuple(8, |w| {
                w.int(3);
                w.string(order);
                w.out.extend(b"NNN");
                w.int(-1);
                w.int(-1);
                w.int(0);
            });
            w.out.push(b'b');
            w.bool(false);
            w.string(raw);
        });
        self.out.push(b'b');
    }
}
