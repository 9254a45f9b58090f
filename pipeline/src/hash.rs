//! Content hashing: a canonical JSON encoding hashed with SHA-256.
//!
//! Canonical form: object keys sorted (by bytes), no whitespace, strings escaped as
//! serde_json does, numbers as serde_json prints them. Integers and floats stay
//! distinct (`1` vs `1.0`) because TOML keeps them distinct and a stage may treat
//! them differently; this is stable because serde_json always prints floats with a
//! fraction or exponent.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

use crate::error::{IoContext, Result};

pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push_str(&value.to_string())
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted explicitly: serde_json's map order depends on a cargo feature.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// The key of a JSON value: sha256 of its canonical encoding.
pub fn key_of(value: &Value) -> String {
    sha256_hex(canonical_json(value).as_bytes())
}

/// Size and sha256 of a file, streamed.
pub fn file_digest(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, to_hex(&hasher.finalize())))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_and_keeps_number_kinds() {
        let a = json!({"b": 1, "a": [1.0, "x", {"d": null, "c": true}]});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":[1.0,"x",{"c":true,"d":null}],"b":1}"#
        );
        assert_ne!(key_of(&json!({"x": 1})), key_of(&json!({"x": 1.0})));
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
