//! The two text escapes of pickle protocol 0, decoded as Python decodes them: `STRING`
//! (`S'...'`) holds a Python 2 `repr` of a byte string, read back with `codecs.escape_decode`;
//! `UNICODE` (`V...`) holds `raw-unicode-escape` text. And `repr`, which writes the first.
//!
//! A batch's pixels are one such string of ~100 MB (~300 MB escaped), so each is one pass
//! that writes every output byte once.
use std::borrow::Cow;

/// A decoding error: what is wrong, and where in the escaped text it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapeError {
    pub at: usize,
    pub message: &'static str,
}

fn error(at: usize, message: &'static str) -> EscapeError {
    EscapeError { at, message }
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `codecs.escape_decode`: `\\`, `\'`, `\"`, `\a \b \f \n \r \t \v`, `\xhh` and octal
/// `\ooo` are decoded; an unknown escape such as `\q` stays as written, as Python keeps it.
/// A `\x` without two hex digits and a trailing `\` are errors, as in Python.
pub fn decode_string_escape(text: &[u8]) -> Result<Cow<'_, [u8]>, EscapeError> {
    let Some(first) = text.iter().position(|&c| c == b'\\') else {
        return Ok(Cow::Borrowed(text));
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&text[..first]);
    let mut i = first;
    // Random pixels are ~60% `\xhh`, so a branch on "escape or not" is mispredicted half the
    // time: here plain bytes, named escapes and `\xhh` are one table-driven step; octal,
    // unknown and malformed escapes (never in a `repr`) and the last bytes go the slow way.
    while let Some(&[c, kind, hi, lo]) = text.get(i..i + 4) {
        let (value, width) = match (c == b'\\', kind == b'x') {
            (false, _) => (u16::from(c), 1),
            (true, true) => (HEX[usize::from(hi)] << 4 | HEX[usize::from(lo)], 4),
            (true, false) => (NAMED[usize::from(kind)], 2),
        };
        if value > 0xff {
            i = decode_escape(text, i, &mut out)?;
            continue;
        }
        out.push(value as u8);
        i += width;
    }
    while let Some(&c) = text.get(i) {
        if c == b'\\' {
            i = decode_escape(text, i, &mut out)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

/// Not a byte: marks a hex digit or named escape that is not one in the tables below.
const NONE: u16 = 0x100;

/// Hex digits' values.
const HEX: [u16; 256] = {
    let mut table = [NONE; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = hex_digit(c as u8) {
            table[c] = v as u16;
        }
        c += 1;
    }
    table
};

/// The bytes of the one-letter escapes (`\n` ...), by letter.
const NAMED: [u16; 256] = {
    let mut table = [NONE; 256];
    let named: [(u8, u8); 10] = [
        (b'\\', b'\\'),
        (b'\'', b'\''),
        (b'"', b'"'),
        (b'a', 0x07),
        (b'b', 0x08),
        (b't', b'\t'),
        (b'n', b'\n'),
        (b'v', 0x0b),
        (b'f', 0x0c),
        (b'r', b'\r'),
    ];
    let mut k = 0;
    while k < named.len() {
        table[named[k].0 as usize] = named[k].1 as u16;
        k += 1;
    }
    table
};

/// Decodes the escape at `text[at]` (a `\`) onto `out`; returns where the text goes on.
fn decode_escape(text: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, EscapeError> {
    let Some(&kind) = text.get(at + 1) else {
        return Err(error(at, "a trailing \\ with nothing to escape"));
    };
    let mut i = at + 2;
    let byte = match kind {
        b'x' => {
            let digits = text.get(i..i + 2).and_then(|d| {
                hex_digit(d[0]).and_then(|hi| hex_digit(d[1]).map(|lo| hi << 4 | lo))
            });
            i += 2;
            digits.ok_or_else(|| error(at, "a \\x escape without two hex digits"))?
        }
        b'0'..=b'7' => {
            // Up to three octal digits; Python keeps the low byte of values over 0o377.
            let mut value = u32::from(kind - b'0');
            while let (Some(&d @ b'0'..=b'7'), true) = (text.get(i), i < at + 4) {
                value = value * 8 + u32::from(d - b'0');
                i += 1;
            }
            value as u8
        }
        _ => match u8::try_from(NAMED[usize::from(kind)]) {
            Ok(byte) => byte,
            Err(_) => {
                // Unknown: the backslash stays, and what follows is read as text.
                out.push(b'\\');
                return Ok(at + 1);
            }
        },
    };
    out.push(byte);
    Ok(i)
}

/// `raw-unicode-escape`: `\uXXXX` and `\UXXXXXXXX` are code points, every other byte is the
/// latin-1 character of that value (a backslash not before `u`/`U` stays, with what follows).
pub fn decode_raw_unicode_escape(text: &[u8]) -> Result<Cow<'_, str>, EscapeError> {
    if text.is_ascii() && !text.contains(&b'\\') {
        return Ok(Cow::Borrowed(
            std::str::from_utf8(text).expect("ASCII is UTF-8"),
        ));
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        i += 1;
        let digits = match (c, text.get(i)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            (b'\\', Some(&next)) => {
                out.push('\\');
                out.push(char::from(next));
                i += 1;
                continue;
            }
            _ => {
                out.push(char::from(c));
                continue;
            }
        };
        let escape_at = i - 1;
        let code = text
            .get(i + 1..i + 1 + digits)
            .and_then(|hex| {
                hex.iter()
                    .try_fold(0u32, |v, &d| hex_digit(d).map(|d| v << 4 | u32::from(d)))
            })
            .ok_or_else(|| error(escape_at, "a \\u or \\U escape without its hex digits"))?;
        let ch = char::from_u32(code).ok_or_else(|| {
            error(
                escape_at,
                "a \\u or \\U escape that is not a character (a surrogate or above U+10FFFF)",
            )
        })?;
        out.push(ch);
        i += 1 + digits;
    }
    Ok(Cow::Owned(out))
}

/// Appends Python 2's `repr` of the byte string `bytes`: in single quotes unless it holds a
/// `'` and no `"`; the quote and `\` escaped, `\t \n \r` by name, other bytes outside
/// printable ASCII as `\xhh`.
pub fn python2_repr(bytes: &[u8], out: &mut Vec<u8>) {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 4 + 2);
    out.push(quote);
    for &c in bytes {
        match c {
            b'\\' => out.extend(b"\\\\"),
            b'\t' => out.extend(b"\\t"),
            b'\n' => out.extend(b"\\n"),
            b'\r' => out.extend(b"\\r"),
            c if c == quote => out.extend([b'\\', c]),
            b' '..=b'~' => out.push(c),
            _ => out.extend([
                b'\\',
                b'x',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repr(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        python2_repr(bytes, &mut out);
        out
    }

    #[test]
    fn repr_matches_python_2() {
        // Python 2.7: repr('\x00\n\'\\\xff\x80"\t\r~ ') and repr("it's").
        assert_eq!(
            repr(b"\x00\n'\\\xff\x80\"\t\r~ "),
            br#"'\x00\n\'\\\xff\x80"\t\r~ '"#
        );
        assert_eq!(repr(b"it's"), br#""it's""#);
        assert_eq!(repr(b""), b"''");
    }

    #[test]
    fn escape_decode_matches_python() {
        // codecs.escape_decode(rb'a\x41\101\0\7777\q\'\"\\\a\b\f\v') in Python 3.
        let decoded = decode_string_escape(br#"a\x41\101\0\7777\q\'\"\\\a\b\f\v"#).unwrap();
        assert_eq!(
            decoded.as_ref(),
            b"aAA\x00\xff7\\q'\"\\\x07\x08\x0c\x0b".as_slice()
        );
        assert!(matches!(
            decode_string_escape(b"plain"),
            Ok(Cow::Borrowed(b"plain"))
        ));
        assert_eq!(
            decode_string_escape(br"ab\x4g"),
            Err(error(2, "a \\x escape without two hex digits"))
        );
        assert_eq!(
            decode_string_escape(br"ab\x4"),
            Err(error(2, "a \\x escape without two hex digits"))
        );
        assert_eq!(
            decode_string_escape(br"abc\"),
            Err(error(3, "a trailing \\ with nothing to escape"))
        );
    }

    #[test]
    fn raw_unicode_escape_matches_python() {
        // b'...'.decode('raw_unicode_escape') in Python 3.
        let decoded =
            decode_raw_unicode_escape(b"\\u0000\\u005c\\U0001F600\xe9\\x\\\\u0041\\").unwrap();
        assert_eq!(decoded, "\u{0}\\\u{1F600}\u{e9}\\x\\\\u0041\\");
        assert!(matches!(
            decode_raw_unicode_escape(b"data"),
            Ok(Cow::Borrowed("data"))
        ));
        let bad = |text: &[u8]| decode_raw_unicode_escape(text).unwrap_err();
        assert_eq!(bad(b"ab\\u00e").at, 2);
        assert_eq!(bad(b"ab\\u00eg").at, 2);
        assert!(bad(b"\\ud800").message.contains("surrogate"));
        assert!(bad(b"\\U00110000").message.contains("U+10FFFF"));
    }

    /// The decoder without its table-driven fast path: escape by escape.
    fn decode_escape_by_escape(text: &[u8]) -> Result<Vec<u8>, EscapeError> {
        let (mut out, mut i) = (Vec::new(), 0);
        while let Some(&c) = text.get(i) {
            if c == b'\\' {
                i = decode_escape(text, i, &mut out)?;
            } else {
                out.push(c);
                i += 1;
            }
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn the_fast_path_decodes_as_escape_by_escape(
            text in proptest::collection::vec(proptest::sample::select(b"\\\\x0a7fgq'n\xff".to_vec()), 0..40)
        ) {
            let fast = decode_string_escape(&text).map(Cow::into_owned);
            prop_assert_eq!(fast, decode_escape_by_escape(&text));
        }


        #[test]
        fn repr_then_escape_decode_is_the_identity(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let written = repr(&bytes);
            let (quote, inner) = (written[0], &written[1..written.len() - 1]);
            prop_assert_eq!(written.last(), Some(&quote));
            prop_assert!(inner.iter().all(|c| (b' '..=b'~').contains(c)));
            let decoded = decode_string_escape(inner).unwrap();
            prop_assert_eq!(decoded.as_ref(), bytes.as_slice());
        }
    }
}
