//! A reader for the part of Python's pickle format that numpy-array dicts use, and the numpy
//! arrays in them: protocols 0 (text opcodes, `pickle.dump(d, f)` in Python 2), 1 and 2, as
//! Python 2's cPickle and pickle and Python 3's pickle write them.
//!
//! serde-pickle was the first choice, but its value model drops what is needed here: `BUILD`
//! replaces an object by its state, so a numpy dtype loses its name (`'u1'`) and cannot be
//! checked, and each use of a memoised value clones it (the pixel string of a batch is
//! memoised). This reader keeps every value once, in an arena: the memo and containers hold
//! indices, so `BINGET` shares as Python does, and strings borrow the file's bytes.
use std::borrow::Cow;
use std::path::Path;

use crate::error::{Error, Result};

pub mod escape;

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
    Text(Cow<'a, str>),
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
            Node::Text(s) => Some(Cow::Borrowed(s.as_ref())),
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

/// The latin-1 bytes of `text`, or `None` if it has a character above U+00FF. In UTF-8 those
/// characters are ASCII bytes and two-byte sequences led by 0xC2 or 0xC3; the step takes one
/// or the other without branching on which (pixel text mixes them at random).
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    let utf8 = text.as_bytes();
    let mut out = Vec::with_capacity(utf8.len());
    let mut i = 0;
    while let Some(&lead) = utf8.get(i) {
        let two_bytes = lead >= 0x80;
        if two_bytes && lead & 0xfe != 0xc2 {
            return None;
        }
        let next = utf8.get(i + 1).copied().unwrap_or(0);
        out.push(if two_bytes {
            (lead & 0x03) << 6 | (next & 0x3f)
        } else {
            lead
        });
        i += 1 + usize::from(two_bytes);
    }
    Some(out)
}

/// The start of a text opcode's argument, for error messages (an argument can be 100 MB).
fn snippet(text: &[u8]) -> String {
    const SHOWN: usize = 40;
    let shown = String::from_utf8_lossy(&text[..text.len().min(SHOWN)]);
    if text.len() > SHOWN {
        format!("{shown:?}... ({} bytes)", text.len())
    } else {
        format!("{shown:?}")
    }
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

/// The largest protocol whose opcodes this reader knows (0 and 1 have no `PROTO` opcode).
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
                            "pickle protocol {protocol}; this reader handles protocols 0 to \
                             {MAX_PROTOCOL}, as Python 2 writes them (re-pack with \
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
                b'I' => {
                    let line = self.line("INT")?;
                    let node = match line {
                        b"00" => Node::Bool(false),
                        b"01" => Node::Bool(true),
                        _ => Node::Int(self.decimal(line, "INT")?),
                    };
                    self.push(node);
                }
                b'L' => {
                    let line = self.line("LONG")?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let v = self.decimal(digits, "LONG")?;
                    self.push(Node::Int(v));
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
                b'F' => {
                    let line = self.line("FLOAT")?;
                    let v = std::str::from_utf8(line)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| {
                            self.error(format!("FLOAT argument {} is not a number", snippet(line)))
                        })?;
                    self.push(Node::Float(v));
                }
                b'S' => {
                    let line = self.line("STRING")?;
                    let [quote @ (b'\'' | b'"'), inner @ .., last] = line else {
                        return Err(self.error(format!(
                            "STRING argument {} is not in quotes",
                            snippet(line)
                        )));
                    };
                    if last != quote {
                        return Err(self.error(format!(
                            "STRING argument {} does not end with its opening quote",
                            snippet(line)
                        )));
                    }
                    let bytes = escape::decode_string_escape(inner)
                        .map_err(|e| self.escape_error("STRING", self.op_at + 2, e))?;
                    self.push(Node::Bytes(bytes));
                }
                b'V' => {
                    let line = self.line("UNICODE")?;
                    let text = escape::decode_raw_unicode_escape(line)
                        .map_err(|e| self.escape_error("UNICODE", self.op_at + 1, e))?;
                    self.push(Node::Text(text));
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
                    self.push(Node::Text(Cow::Borrowed(s)));
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
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(&items, "DICT")?;
                    self.push(Node::Dict(pairs));
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
                    let pairs = self.pairs(&items, "SETITEMS")?;
                    self.dict_mut()?.extend(pairs);
                }
                b'c' => {
                    let module = self.ascii_line("GLOBAL")?;
                    let name = self.ascii_line("GLOBAL")?;
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
                b'p' => {
                    let key = self.memo_key("PUT")?;
                    self.put(key)?;
                }
                b'g' => {
                    let key = self.memo_key("GET")?;
                    self.get(key)?;
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
                         protocols 0 to 2: dicts of numpy arrays, lists and strings)",
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

    /// The argument of a text opcode: the bytes up to the next newline, which it ends.
    fn line(&mut self, opcode: &str) -> Result<&'a [u8]> {
        let rest = &self.bytes[self.at..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Error::data(
                self.path,
                format!(
                    "truncated pickle: the {opcode} at byte {} has no end of line",
                    self.op_at
                ),
            ));
        };
        let line = self.take(len + 1)?;
        Ok(&line[..len])
    }

    /// A line of ASCII (`GLOBAL`'s module and name).
    fn ascii_line(&mut self, opcode: &str) -> Result<&'a str> {
        let line = self.line(opcode)?;
        std::str::from_utf8(line)
            .ok()
            .filter(|_| line.is_ascii())
            .ok_or_else(|| self.error(format!("{opcode} name {} is not ASCII", snippet(line))))
    }

    /// A decimal integer as protocol 0 writes one (`INT`, `LONG`, `PUT`, `GET`): an optional
    /// `-`, then digits without a leading zero (which Python 2 would read as octal, Python 3
    /// not at all).
    fn decimal(&self, text: &[u8], opcode: &str) -> Result<i64> {
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let is_decimal =
            matches!(digits, [b'0'] | [b'1'..=b'9', ..]) && digits.iter().all(u8::is_ascii_digit);
        if !is_decimal {
            return Err(self.error(format!(
                "{opcode} argument {} is not a decimal integer",
                snippet(text)
            )));
        }
        std::str::from_utf8(text)
            .expect("ASCII digits")
            .parse()
            .map_err(|_| {
                self.error(format!(
                    "{opcode} argument {} does not fit 64 bits",
                    snippet(text)
                ))
            })
    }

    /// `PUT` and `GET`'s key: a decimal line.
    fn memo_key(&mut self, opcode: &str) -> Result<usize> {
        let line = self.line(opcode)?;
        let key = self.decimal(line, opcode)?;
        usize::try_from(key).map_err(|_| self.error(format!("{opcode} with negative key {key}")))
    }

    fn escape_error(&self, opcode: &str, text_at: usize, e: escape::EscapeError) -> Error {
        self.error(format!(
            "{opcode}: {} at byte {}",
            e.message,
            text_at + e.at
        ))
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

    /// Key-value pairs of the items between a `MARK` and `DICT` or `SETITEMS`.
    fn pairs(&self, items: &[Id], opcode: &str) -> Result<Vec<(Id, Id)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.error(format!("{opcode} with an odd number of items")));
        }
        Ok(items.chunks_exact(2).map(|p| (p[0], p[1])).collect())
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

    /// `REDUCE`: Python 3 writes bytes below protocol 3 as `_codecs.encode(text, 'latin1')`,
    /// or `bytes()` when empty; those calls are evaluated here, every other one stays an
    /// [`Node::Object`].
    fn reduce(&mut self, callable: Id, args: Id) -> Result<()> {
        let node = match self.nodes[callable] {
            Node::Global {
                module: "_codecs",
                name: "encode",
            } => Node::Bytes(Cow::Owned(self.latin1_encode(args)?)),
            Node::Global {
                module: "__builtin__" | "builtins",
                name: "bytes",
            } => match &self.nodes[args] {
                Node::Tuple(a) if a.is_empty() => Node::Bytes(Cow::Borrowed(&[])),
                _ => return Err(self.error("bytes(...) takes no arguments here")),
            },
            _ => Node::Object {
                callable,
                args,
                state: None,
            },
        };
        self.push(node);
        Ok(())
    }

    /// `_codecs.encode(text, 'latin1')`: the bytes of a text's characters, each below U+0100.
    fn latin1_encode(&self, args: Id) -> Result<Vec<u8>> {
        let bad = || self.error("_codecs.encode takes (text, 'latin1') here");
        let (text, encoding) = match &self.nodes[args] {
            Node::Tuple(a) if a.len() == 2 => (a[0], a[1]),
            _ => return Err(bad()),
        };
        match (&self.nodes[text], &self.nodes[encoding]) {
            (Node::Text(text), Node::Text(encoding))
                if matches!(encoding.as_ref(), "latin1" | "latin-1") =>
            {
                latin1_bytes(text)
                    .ok_or_else(|| self.error("latin-1 text with a character above U+00FF"))
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
    fn dict_of_py2_strings_ints_and_a_shared_list_at_protocol_2() {
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
        let err = parse_err(b"\x80\x02NB\x01\x00\x00\x00a.");
        assert!(err.contains("byte 3") && err.contains("0x42"), "{err}");
        let err = parse_err(b"\x80\x02h\x05.");
        assert!(err.contains("memo key 5"), "{err}");
        let err = parse_err(b"\x80\x02NN.");
        assert!(err.contains("STOP with 2 values"), "{err}");
        let err = parse_err(b"\x80\x02(e.");
        assert!(err.contains("stack underflow"), "{err}");
    }

    /// `{'a': [1, -300, 2**40, True, 0.5], "it's": <the same list>, u't\xe9\\\xe9':
    /// '\x00\n\'\\'}` at protocol 0, as Python 2's pickle writes it (checked with Python 3's
    /// `pickle.loads(..., encoding='bytes')`).
    const PROTOCOL_0: &[u8] =
        b"(dp0\nS'a'\np1\n(lp2\nI1\naI-300\naL1099511627776L\naI01\naF0.5\nas\
        S\"it's\"\np3\ng2\nsVt\\u00e9\\u005c\xe9\np4\nS'\\x00\\n\\'\\\\'\np5\ns.";

    #[test]
    fn protocol_0_text_opcodes() {
        let pickle = parse_ok(PROTOCOL_0);
        let root = pickle.root();
        let a = pickle.dict_get(root, "a").unwrap();
        assert_eq!(
            pickle.dict_get(root, "it's"),
            Some(a),
            "GET shares the list"
        );
        let items: Vec<&Node> = pickle
            .items(a)
            .unwrap()
            .iter()
            .map(|&i| pickle.node(i))
            .collect();
        assert_eq!(
            items,
            [
                &Node::Int(1),
                &Node::Int(-300),
                &Node::Int(1 << 40),
                &Node::Bool(true),
                &Node::Float(0.5)
            ]
        );
        let text = pickle.dict_get(root, "t\u{e9}\\\u{e9}").unwrap();
        assert_eq!(
            pickle.node(text),
            &Node::Bytes(Cow::Owned(b"\x00\n'\\".to_vec()))
        );
    }

    #[test]
    fn every_cut_of_a_protocol_0_pickle_is_truncated() {
        for cut in 0..PROTOCOL_0.len() {
            let err = parse_err(&PROTOCOL_0[..cut]);
            assert!(
                err.contains("x.pkl") && err.contains("truncated pickle"),
                "cut at {cut}: {err}"
            );
        }
        let err = parse_err(&PROTOCOL_0[..PROTOCOL_0.len() - 12]);
        assert!(
            err.contains("the STRING at byte 92 has no end of line"),
            "{err}"
        );
    }

    #[test]
    fn malformed_text_arguments_are_errors_with_their_offset() {
        let cases: [(&[u8], &str); 11] = [
            (
                b"(dp0\nS'ab\\x4g'\n",
                "byte 5: STRING: a \\x escape without two hex digits at byte 9",
            ),
            (
                b"NS'abc\\'\n",
                "byte 1: STRING: a trailing \\ with nothing to escape at byte 6",
            ),
            (b"Sabc\n", "STRING argument \"abc\" is not in quotes"),
            (b"S'\n", "STRING argument \"'\" is not in quotes"),
            (
                b"S'abc\"\n",
                "STRING argument \"'abc\\\"\" does not end with its opening quote",
            ),
            (
                b"NVa\\u00zz\n",
                "byte 1: UNICODE: a \\u or \\U escape without its hex digits at byte 3",
            ),
            (b"I12a\n", "INT argument \"12a\" is not a decimal integer"),
            (b"I007\n", "INT argument \"007\" is not a decimal integer"),
            (
                b"L99999999999999999999L\n",
                "LONG argument \"99999999999999999999\" does not fit 64 bits",
            ),
            (b"Fx\n", "FLOAT argument \"x\" is not a number"),
            (b"Np-1\n", "PUT with negative key -1"),
        ];
        for (pickle, expected) in cases {
            let err = parse_err(pickle);
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
            assert!(err.contains("x.pkl"), "{err}");
        }
        let long = [b"S'".as_slice(), &[b'z'; 100], b"\n"].concat();
        let err = parse_err(&long);
        assert!(
            err.contains("\"'zzz") && err.contains("... (101 bytes)"),
            "{err}"
        );
        let err = parse_err(b"(Nd.");
        assert!(err.contains("DICT with an odd number of items"), "{err}");
        let err = parse_err(b"Ng3\n.");
        assert!(err.contains("memo key 3 was never stored"), "{err}");
    }

    #[test]
    fn python_3_bytes_below_protocol_3() {
        // pickle.dumps(b'\xe9\x00', protocol=0) and pickle.dumps(b'', protocol=0) in Python 3.
        let p = b"c_codecs\nencode\np0\n(V\xe9\\u0000\np1\nVlatin1\np2\ntp3\nRp4\n.";
        let pickle = parse_ok(p);
        assert_eq!(
            pickle.node(pickle.root()),
            &Node::Bytes(Cow::Owned(vec![0xe9, 0]))
        );
        let pickle = parse_ok(b"c__builtin__\nbytes\np0\n(tp1\nRp2\n.");
        assert_eq!(pickle.node(pickle.root()), &Node::Bytes(Cow::Borrowed(&[])));
        let err = parse_err(b"c__builtin__\nbytes\n(I1\ntR.");
        assert!(err.contains("bytes(...) takes no arguments"), "{err}");
        for above in [b"\\u0100".as_slice(), b"\\u20ac", b"\\U0001F600"] {
            let p = [
                b"c_codecs\nencode\n(V\xff".as_slice(),
                above,
                b"\nVlatin1\ntR.",
            ]
            .concat();
            let err = parse_err(&p);
            assert!(err.contains("character above U+00FF"), "{err}");
        }
    }

    #[test]
    fn non_arrays_are_described() {
        let pickle = parse_ok(b"\x80\x02]q\x00.");
        let err = pickle.ndarray(pickle.root()).unwrap_err();
        assert_eq!(err, "expected a numpy array, found a list of 0");
    }
}
