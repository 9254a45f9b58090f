//! A reader for the part of Python's pickle format that numpy-array dicts use (protocol 2, as
//! Python 2's cPickle and `pickle.dump(..., protocol=2)` write them), and the numpy arrays in
//! them.
//!
//! serde-pickle was the first choice, but its value model drops what is needed here: `BUILD`
//! replaces an object by its state, so a numpy dtype loses its name (`'u1'`) and cannot be
//! checked, and each use of a memoised value clones it (the pixel string of a batch is
//! memoised). This reader keeps every value once, in an arena: the memo and containers hold
//! indices, so `BINGET` shares as Python does, and strings borrow the file's bytes.
use std::borrow::Cow;
use std::path::Path;

use crate::error::{Error, Result};

/// A value's index in its [`Pickle`].
pub type Id = usize;

/// One unpickled value. Python 2 `str` (and bytes) is [`Node::Bytes`], its text read as
/// latin-1 as Python 3 does with `encoding='latin1'`; unicode strings are [`Node::Text`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Cow<'a, [u8]>),
    Text(&'a str),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// `module.name`, as `GLOBAL` names it.
    Global {
        module: &'a str,
        name: &'a str,
    },
    /// `callable(*args)` from `REDUCE`, with the state a later `BUILD` gave it.
    Object {
        callable: Id,
        args: Id,
        state: Option<Id>,
    },
}

/// A parsed pickle: its values and the one `STOP` left on the stack.
#[derive(Debug)]
pub struct Pickle<'a> {
    nodes: Vec<Node<'a>>,
    root: Id,
}

/// Parses `bytes` (the whole content of `path`, which errors name).
pub fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<Pickle<'a>> {
    Parser {
        bytes,
        at: 0,
        op_at: 0,
        path,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    }
    .run()
}

impl<'a> Pickle<'a> {
    pub fn root(&self) -> Id {
        self.root
    }

    pub fn node(&self, id: Id) -> &Node<'a> {
        &self.nodes[id]
    }

    /// The text of a string value (Python 2 `str` read as latin-1).
    pub fn text(&self, id: Id) -> Option<Cow<'_, str>> {
        match self.node(id) {
            Node::Text(s) => Some(Cow::Borrowed(s)),
            Node::Bytes(b) => Some(Cow::Owned(b.iter().map(|&c| char::from(c)).collect())),
            _ => None,
        }
    }

    /// The value of `key` in the dict `dict` (string keys, as pickled dicts of arrays have).
    pub fn dict_get(&self, dict: Id, key: &str) -> Option<Id> {
        match self.node(dict) {
            Node::Dict(items) => items
                .iter()
                .find(|(k, _)| self.text(*k).as_deref() == Some(key))
                .map(|&(_, v)| v),
            _ => None,
        }
    }

    pub fn int(&self, id: Id) -> Option<i64> {
        match self.node(id) {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match self.node(id) {
            Node::Tuple(items) | Node::List(items) => Some(items),
            _ => None,
        }
    }

    fn is_global(&self, id: Id, modules: &[&str], wanted: &str) -> bool {
        matches!(self.node(id), Node::Global { module, name } if modules.contains(module) && *name == wanted)
    }

    /// A short description of a value for error messages.
    pub fn describe(&self, id: Id) -> String {
        match self.node(id) {
            Node::None => "None".into(),
            Node::Bool(b) => format!("{b}"),
            Node::Int(v) => format!("{v}"),
            Node::Float(v) => format!("{v}"),
            Node::Bytes(b) => format!("a string of {} bytes", b.len()),
            Node::Text(s) => format!("{s:?}"),
            Node::Tuple(items) => format!("a tuple of {}", items.len()),
            Node::List(items) => format!("a list of {}", items.len()),
            Node::Dict(items) => format!("a dict of {}", items.len()),
            Node::Global { module, name } => format!("{module}.{name}"),
            Node::Object { callable, .. } => {
                format!("an object made by {}", self.describe(*callable))
            }
        }
    }

    /// The numpy array `id`, as `ndarray.__reduce__` pickles it: `_reconstruct(ndarray, (0,),
    /// 'b')` then `BUILD` with `(version, shape, dtype, is_fortran, raw bytes)`.
    pub fn ndarray(&self, id: Id) -> std::result::Result<NdArray<'_>, String> {
        const MULTIARRAY: [&str; 2] = ["numpy.core.multiarray", "numpy._core.multiarray"];
        let not_array = || format!("expected a numpy array, found {}", self.describe(id));
        let Node::Object {
            callable,
            state: Some(state),
            ..
        } = self.node(id)
        else {
            return Err(not_array());
        };
        if !self.is_global(*callable, &MULTIARRAY, "_reconstruct") {
            return Err(not_array());
        }
        let fields = self.items(*state).filter(|f| f.len() == 5).ok_or_else(|| {
            format!(
                "numpy array state is {}, expected 5 fields",
                self.describe(*state)
            )
        })?;
        let shape = self
            .items(fields[1])
            .and_then(|dims| {
                dims.iter()
                    .map(|&d| self.int(d).and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| format!("numpy array shape is {}", self.describe(fields[1])))?;
        let dtype = self.dtype_name(fields[2])?;
        let fortran_order = self.int(fields[3]).is_some_and(|v| v != 0);
        let data = match self.node(fields[4]) {
            Node::Bytes(b) => b.as_ref(),
            _ => return Err(format!("numpy array data is {}", self.describe(fields[4]))),
        };
        Ok(NdArray {
            shape,
            dtype,
            fortran_order,
            data,
        })
    }

    /// The type string of a pickled `numpy.dtype('u1', False, True)`.
    fn dtype_name(&self, id: Id) -> std::result::Result<String, String> {
        let bad = || format!("expected a numpy dtype, found {}", self.describe(id));
        let Node::Object { callable, args, .. } = self.node(id) else {
            return Err(bad());
        };
        if !self.is_global(*callable, &["numpy"], "dtype") {
            return Err(bad());
        }
        self.items(*args)
            .and_then(|a| a.first())
            .and_then(|&name| self.text(name))
            .map(Cow::into_owned)
            .ok_or_else(bad)
    }
}

/// A numpy array as pickled: C-order raw bytes unless `fortran_order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdArray<'p> {
    pub shape: Vec<usize>,
    /// numpy's type string (`u1` for uint8, `f8` for float64, ...).
    pub dtype: String,
    pub fortran_order: bool,
    pub data: &'p [u8],
}

struct Parser<'a, 'p> {
    bytes: &'a [u8],
    at: usize,
    /// Where the opcode being run starts (errors name it).
    op_at: usize,
    path: &'p Path,
    nodes: Vec<Node<'a>>,
    stack: Vec<Id>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    memo: Vec<Option<Id>>,
}

/// The largest protocol whose opcodes this reader knows.
const MAX_PROTOCOL: u8 = 2;

impl<'a> Parser<'a, '_> {
    fn run(mut self) -> Result<Pickle<'a>> {
        loop {
            self.op_at = self.at;
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let protocol = self.take(1)?[0];
                    if protocol > MAX_PROTOCOL {
                        return Err(self.error(format!(
                            "pickle protocol {protocol}; this reader handles protocols up to \
                             {MAX_PROTOCOL}, as the official files are written (re-pack with \
                             pickle.dump(..., protocol=2))"
                        )));
                    }
                }
                b'.' => return self.stop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'K' => {
                    let v = self.take(1)?[0];
                    self.push(Node::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Node::Int(i64::from(v)));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Node::Int(i64::from(v)));
                }
                0x8a => {
                    let len = usize::from(self.take(1)?[0]);
                    let v = self.long(len)?;
                    self.push(Node::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(v));
                }
                b'U' => {
                    let len = usize::from(self.take(1)?[0]);
                    let s = self.take(len)?;
                    self.push(Node::Bytes(Cow::Borrowed(s)));
                }
                b'T' => {
                    let len = i32::from_le_bytes(self.array()?);
                    let len = usize::try_from(len)
                        .map_err(|_| self.error(format!("negative string length {len}")))?;
                    let s = self.take(len)?;
                    self.push(Node::Bytes(Cow::Borrowed(s)));
                }
                b'X' => {
                    let len = u32::from_le_bytes(self.array()?) as usize;
                    let raw = self.take(len)?;
                    let s = std::str::from_utf8(raw)
                        .map_err(|_| self.error("unicode string is not UTF-8"))?;
                    self.push(Node::Text(s));
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let items = self.pop_n(n)?;
                    self.push(Node::Tuple(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                b']' => self.push(Node::List(Vec::new())),
                b'}' => self.push(Node::Dict(Vec::new())),
                b'a' => {
                    let item = self.pop()?;
                    self.list_mut()?.push(item);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.list_mut()?.extend(items);
                }
                b's' => {
                    let pair = self.pop_n(2)?;
                    self.dict_mut()?.push((pair[0], pair[1]));
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.error("SETITEMS with an odd number of items"));
                    }
                    let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
                    self.dict_mut()?.extend(pairs);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Node::Global { module, name });
                }
                b'R' => {
                    let pair = self.pop_n(2)?;
                    self.reduce(pair[0], pair[1])?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = *self.stack.last().ok_or_else(|| self.underflow())?;
                    match &mut self.nodes[target] {
                        Node::Object { state: slot, .. } => *slot = Some(state),
                        _ => return Err(self.error("BUILD on a value that is not an object")),
                    }
                }
                b'q' => {
                    let key = usize::from(self.take(1)?[0]);
                    self.put(key)?;
                }
                b'r' => {
                    let key = u32::from_le_bytes(self.array()?) as usize;
                    self.put(key)?;
                }
                b'h' => {
                    let key = usize::from(self.take(1)?[0]);
                    self.get(key)?;
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.array()?) as usize;
                    self.get(key)?;
                }
                other => {
                    return Err(self.error(format!(
                        "opcode 0x{other:02x} ({:?}) is not one this reader handles (pickle \
                         protocol 2 dicts of numpy arrays, lists and strings)",
                        char::from(other)
                    )))
                }
            }
        }
    }

    fn stop(self) -> Result<Pickle<'a>> {
        match self.stack.as_slice() {
            [root] if self.marks.is_empty() => Ok(Pickle {
                nodes: self.nodes,
                root: *root,
            }),
            _ => Err(self.error(format!(
                "STOP with {} values and {} open marks on the stack, expected one value",
                self.stack.len(),
                self.marks.len()
            ))),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::data(
            self.path,
            format!(
                "malformed pickle at byte {}: {}",
                self.op_at,
                message.into()
            ),
        )
    }

    fn underflow(&self) -> Error {
        self.error("stack underflow")
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::data(
                self.path,
                format!(
                    "truncated pickle: the opcode at byte {} needs {len} more bytes after byte {}, \
                     the file ends at {}",
                    self.op_at,
                    self.at,
                    self.bytes.len()
                ),
            ));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    /// A newline-terminated ASCII line (`GLOBAL`'s module and name).
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.bytes[self.at..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Error::data(
                self.path,
                format!(
                    "truncated pickle: the GLOBAL at byte {} has no end of line",
                    self.op_at
                ),
            ));
        };
        let line = self.take(len + 1)?;
        std::str::from_utf8(&line[..len]).map_err(|_| self.error("GLOBAL name is not ASCII"))
    }

    /// `LONG1`: a little-endian two's-complement integer of `len` bytes.
    fn long(&mut self, len: usize) -> Result<i64> {
        let bytes = self.take(len)?;
        if len > 8 {
            return Err(self.error(format!("integer of {len} bytes does not fit 64 bits")));
        }
        let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
            [0xff; 8]
        } else {
            [0; 8]
        };
        buf[..len].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    fn push(&mut self, node: Node<'a>) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }

    fn pop(&mut self) -> Result<Id> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.error("pop across a MARK"));
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Id>> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err(self.underflow());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.error("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top_mut(&mut self) -> Result<&mut Node<'a>> {
        let top = *self.stack.last().ok_or_else(|| self.underflow())?;
        Ok(&mut self.nodes[top])
    }

    fn list_mut(&mut self) -> Result<&mut Vec<Id>> {
        let error = self.error("APPEND to a value that is not a list");
        match self.top_mut()? {
            Node::List(items) => Ok(items),
            _ => Err(error),
        }
    }

    fn dict_mut(&mut self) -> Result<&mut Vec<(Id, Id)>> {
        let error = self.error("SETITEM on a value that is not a dict");
        match self.top_mut()? {
            Node::Dict(items) => Ok(items),
            _ => Err(error),
        }
    }

    fn put(&mut self, key: usize) -> Result<()> {
        let top = *self.stack.last().ok_or_else(|| self.underflow())?;
        // A pickle memoises each value at most once: keys never outnumber the values.
        if key > self.nodes.len() {
            return Err(self.error(format!(
                "memo key {key} with only {} values read",
                self.nodes.len()
            )));
        }
        if self.memo.len() <= key {
            self.memo.resize(key + 1, None);
        }
        self.memo[key] = Some(top);
        Ok(())
    }

    fn get(&mut self, key: usize) -> Result<()> {
        let id = self
            .memo
            .get(key)
            .copied()
            .flatten()
            .ok_or_else(|| self.error(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    /// `REDUCE`: Python 3 writes bytes at protocol 2 as `_codecs.encode(text, 'latin1')`,
    /// which is evaluated here; every other call stays an [`Node::Object`].
    fn reduce(&mut self, callable: Id, args: Id) -> Result<()> {
        let encode = matches!(
            self.nodes[callable],
            Node::Global {
                module: "_codecs",
                name: "encode"
            }
        );
        if !encode {
            self.push(Node::Object {
                callable,
                args,
                state: None,
            });
            return Ok(());
        }
        let bad = || self.error("_codecs.encode takes (text, 'latin1') here");
        let (text, encoding) = match &self.nodes[args] {
            Node::Tuple(a) if a.len() == 2 => (a[0], a[1]),
            _ => return Err(bad()),
        };
        match (&self.nodes[text], &self.nodes[encoding]) {
            (Node::Text(text), Node::Text("latin1" | "latin-1")) => {
                let bytes = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)))
                    .collect::<std::result::Result<Vec<u8>, _>>()
                    .map_err(|_| self.error("latin-1 text with a character above U+00FF"))?;
                self.push(Node::Bytes(Cow::Owned(bytes)));
                Ok(())
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(bytes: &[u8]) -> Pickle<'_> {
        parse(bytes, Path::new("x.pkl")).unwrap()
    }

    fn parse_err(bytes: &[u8]) -> String {
        parse(bytes, Path::new("x.pkl")).unwrap_err().to_string()
    }

    #[test]
    fn dict_of_py2_strings_ints_and_a_shared_list() {
        // {'a': [1, 300, -2, 2**40], 'b': <memo 1>} with Python 2 str keys (SHORT_BINSTRING).
        let mut p = b"\x80\x02}q\x00(U\x01aq\x01]q\x02(K\x01M\x2c\x01J\xfe\xff\xff\xff".to_vec();
        p.extend(b"\x8a\x06\x00\x00\x00\x00\x00\x01eU\x01bh\x02u.");
        let pickle = parse_ok(&p);
        let a = pickle.dict_get(pickle.root(), "a").unwrap();
        let b = pickle.dict_get(pickle.root(), "b").unwrap();
        assert_eq!(a, b, "BINGET shares the list, as Python does");
        let values: Vec<i64> = pickle
            .items(a)
            .unwrap()
            .iter()
            .map(|&i| pickle.int(i).unwrap())
            .collect();
        assert_eq!(values, [1, 300, -2, 1 << 40]);
        assert_eq!(pickle.dict_get(pickle.root(), "c"), None);
    }

    #[test]
    fn latin1_text_of_py2_strings_and_codecs_encode() {
        let pickle = parse_ok(b"\x80\x02U\x02\xe9\xffq\x00.");
        assert_eq!(pickle.text(pickle.root()).unwrap(), "\u{e9}\u{ff}");
        // Python 3's protocol-2 bytes: _codecs.encode('\u00e9A', 'latin1').
        let p =
            b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xc3\xa9AX\x06\x00\x00\x00latin1\x86R.";
        let pickle = parse_ok(p);
        assert_eq!(
            pickle.node(pickle.root()),
            &Node::Bytes(Cow::Owned(vec![0xe9, b'A']))
        );
    }

    #[test]
    fn errors_name_the_file_and_the_offset() {
        let err = parse_err(b"\x80\x02T\x10\x00\x00\x00abc");
        assert!(
            err.contains("x.pkl") && err.contains("truncated pickle") && err.contains("byte 2"),
            "{err}"
        );
        let err = parse_err(b"\x80\x02N");
        assert!(err.contains("truncated pickle"), "{err}");
        let err = parse_err(b"\x80\x04N.");
        assert!(err.contains("protocol 4"), "{err}");
        let err = parse_err(b"\x80\x02NS'a'\n.");
        assert!(err.contains("byte 3") && err.contains("0x53"), "{err}");
        let err = parse_err(b"\x80\x02h\x05.");
        assert!(err.contains("memo key 5"), "{err}");
        let err = parse_err(b"\x80\x02NN.");
        assert!(err.contains("STOP with 2 values"), "{err}");
        let err = parse_err(b"\x80\x02(e.");
        assert!(err.contains("stack underflow"), "{err}");
    }

    #[test]
    fn non_arrays_are_described() {
        let pickle = parse_ok(b"\x80\x02]q\x00.");
        let err = pickle.ndarray(pickle.root()).unwrap_err();
        assert_eq!(err, "expected a numpy array, found a list of 0");
    }
}
