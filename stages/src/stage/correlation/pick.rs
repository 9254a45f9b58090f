//! Sample and pick, AZ-NAS's NAS-Bench-201 search: a study's sample is the seed's draw of N
//! cells, and the seed's found cell is the one a predictor ranks first.

/// The cell `values` ranks first: the largest value, the earliest in sample order among
/// equals; `None` for an empty sample. NaN and −∞ (degenerate cells) rank last, so a
/// sample of degenerate cells still picks its first.
pub fn best_cell(values: &[f64]) -> Option<usize> {
    let finite_or_last = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        let v = finite_or_last(v);
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_value_wins_and_the_earliest_breaks_ties() {
        assert_eq!(best_cell(&[0.5, 2.0, -1.0, 2.0]), Some(1));
        assert_eq!(best_cell(&[3.0]), Some(0));
        assert_eq!(best_cell(&[]), None);
    }

    #[test]
    fn degenerate_cells_rank_last() {
        let inf = f64::NEG_INFINITY;
        assert_eq!(best_cell(&[inf, f64::NAN, -1e300, inf]), Some(2));
        assert_eq!(best_cell(&[f64::NAN, inf]), Some(0));
    }
}
