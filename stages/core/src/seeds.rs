//! Seeds derived from the experiment seed and a path of labels, so every random draw of a
//! search (round, repeat, candidate, purpose) has its own reproducible stream.
use sha2::{Digest, Sha256};

/// A 64-bit seed for `(seed, parts...)`.
pub fn derive(seed: u64, parts: &[&dyn std::fmt::Display]) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for p in parts {
        h.update(b"/");
        h.update(p.to_string().as_bytes());
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_every_part_and_are_stable() {
        let a = derive(0, &[&"ntk", &1, &2]);
        assert_eq!(a, derive(0, &[&"ntk", &1, &2]));
        assert_ne!(a, derive(1, &[&"ntk", &1, &2]));
        assert_ne!(a, derive(0, &[&"ntk", &2, &1]));
        assert_ne!(a, derive(0, &[&"lr", &1, &2]));
        assert_ne!(derive(0, &[&"ab", &"c"]), derive(0, &[&"a", &"bc"]));
    }
}
