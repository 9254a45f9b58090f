//! The reference's rounding and averaging, reproduced bit for bit.
//!
//! κ comes out of `np.nan_to_num` as `np.float64`, so `round(x, p)` on it is numpy's
//! scale-`rint`-divide; the region count is a Python float, so its `round` is Python's
//! correctly rounded one. The significant-figure key always sees a numpy mean, so it uses
//! numpy's rounding too; means are numpy's pairwise sums.

/// Python's `round(x, places)` on a float: correctly rounded, ties to even on the exact binary
/// value (Rust's fixed-precision formatting does the same).
pub fn round_decimal_python(x: f64, places: u32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.prec$}", prec = places as usize)
        .parse()
        .expect("formatted float parses")
}

/// numpy's `round(x, places)`: `rint(x * 10^places) / 10^places`, inexact by design.
pub fn round_decimal_numpy(x: f64, places: u32) -> f64 {
    let scale = numpy_power_of_ten(places);
    (x * scale).round_ties_even() / scale
}

/// The reference's `round_to(x, figures)`: `figures` significant figures, computed on
/// `|x| + 1e-8` (so tiny values round up to about 1e-8) with numpy rounding.
/// Non-finite values pass through (the reference raises on them).
pub fn round_significant(x: f64, figures: u32) -> f64 {
    const EPS: f64 = 1e-8;
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = x.abs() + EPS;
    // math.log(v, 10) is log(v)/log(10), not log10: keep it for identical powers.
    let power = (magnitude.ln() / 10f64.ln()).floor() as i32 + 1;
    x.signum()
        * round_decimal_numpy(magnitude * python_power_of_ten(-power), figures)
        * python_power_of_ten(power)
}

/// Python's `10**k` used as a float: an exact integer for k >= 0, C `pow` for k < 0.
fn python_power_of_ten(k: i32) -> f64 {
    if k >= 0 {
        format!("1e{k}").parse().expect("power of ten parses")
    } else {
        10f64.powf(k as f64)
    }
}

/// numpy's table-then-multiply power of ten used by `np.round`.
fn numpy_power_of_ten(places: u32) -> f64 {
    if places < 9 {
        10f64.powi(places as i32)
    } else {
        (9..places).fold(1e9, |acc, _| acc * 10.0)
    }
}

/// `np.mean` of a 1-D float64 list: numpy's pairwise summation, then division by n.
pub fn numpy_mean(values: &[f64]) -> f64 {
    numpy_pairwise_sum(values) / values.len() as f64
}

fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        // numpy starts from -0.0 so that a sum of negative zeros stays -0.0.
        return a.iter().fold(-0.0, |acc, &v| acc + v);
    }
    if n <= BLOCK {
        let mut r: [f64; 8] = a[..8].try_into().expect("8 values");
        let full = n - n % 8;
        for chunk in a[8..full].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    numpy_pairwise_sum(&a[..half]) + numpy_pairwise_sum(&a[half..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_rounding_matches_python_and_numpy() {
        // Python: round(2.675, 2) == 2.67 (2.675 is 2.67499.. in binary); numpy: 267.49999.. *
        // 100 rounds to 267.5 in float, rint -> 268 -> 2.68.
        assert_eq!(round_decimal_python(2.675, 2), 2.67);
        assert_eq!(round_decimal_numpy(2.675, 2), 2.68);
        // Exact binary ties go to even in both.
        assert_eq!(round_decimal_python(0.125, 2), 0.12);
        assert_eq!(round_decimal_numpy(0.125, 2), 0.12);
        assert_eq!(round_decimal_python(0.375, 2), 0.38);
        // 0.0025 is slightly above the tie in binary.
        assert_eq!(round_decimal_python(0.0025, 3), 0.003);
        assert_eq!(round_decimal_python(-0.0625, 3), -0.062);
        assert_eq!(round_decimal_python(1e-9, 3), 0.0);
        assert!(round_decimal_python(f64::NAN, 3).is_nan());
        assert_eq!(round_decimal_numpy(f64::INFINITY, 3), f64::INFINITY);
    }

    #[test]
    fn significant_rounding_matches_the_reference_round_to() {
        // Values printed by the reference's round_to(v, 3) in CPython.
        let cases = [
            (0.012345, 0.0123),
            (-0.012345, -0.0123),
            (123.456, 123.0),
            (1000.0, 1000.0),
            (0.0015, 0.0015),
            (0.3333333333333333, 0.333),
            (0.00016666666666666666, 0.00016700000000000002),
            (100000.0, 100000.0),
            (0.9995, 1.0),
            (1e-9, 1.1e-8), // the 1e-8 epsilon dominates tiny values
            (0.0, 0.0),
        ];
        for (value, expected) in cases {
            assert_eq!(
                round_significant(value, 3),
                expected,
                "round_to({value}, 3)"
            );
        }
        // Decimal places vs significant figures on the same value.
        assert_eq!(round_decimal_python(0.012345, 3), 0.012);
        assert_eq!(round_significant(0.012345, 3), 0.0123);
        assert!(round_significant(f64::NAN, 3).is_nan());
    }

    #[test]
    fn numpy_mean_matches_sequential_sum_for_few_values_and_pairwise_for_many() {
        assert_eq!(numpy_mean(&[0.1, 0.2, 0.3]), (0.1 + 0.2 + 0.3) / 3.0);
        let many: Vec<f64> = (0..300).map(|i| 0.1 * i as f64).collect();
        let expected = many.iter().sum::<f64>() / 300.0;
        assert!((numpy_mean(&many) - expected).abs() < 1e-9);
    }
}
