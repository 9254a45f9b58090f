//! The small dense linear algebra the proxies need, in f64 on the host: eigenvalues of a
//! symmetric matrix (cyclic Jacobi), the largest singular value, and log |det| (LU with
//! partial pivoting). The matrices are at most a few hundred on a side.

/// A square matrix stored row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Square {
    pub n: usize,
    pub values: Vec<f64>,
}

impl Square {
    pub fn new(n: usize, values: Vec<f64>) -> Square {
        assert_eq!(values.len(), n * n, "a square matrix of side {n}");
        Square { n, values }
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.n + j]
    }

    fn set(&mut self, i: usize, j: usize, v: f64) {
        self.values[i * self.n + j] = v;
    }

    /// The eigenvalues of the symmetric matrix, ascending. Non-finite entries give NaNs.
    pub fn symmetric_eigenvalues(&self) -> Vec<f64> {
        let n = self.n;
        if self.values.iter().any(|v| !v.is_finite()) {
            return vec![f64::NAN; n];
        }
        let mut a = self.clone();
        let scale = a.values.iter().map(|v| v * v).sum::<f64>();
        for _sweep in 0..100 {
            let off: f64 = (0..n)
                .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| a.at(i, j) * a.at(i, j))
                .sum();
            if off <= scale * 1e-30 || off == 0.0 {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    a.rotate(p, q);
                }
            }
        }
        let mut eig: Vec<f64> = (0..n).map(|i| a.at(i, i)).collect();
        eig.sort_by(f64::total_cmp);
        eig
    }

    /// One Jacobi rotation zeroing entry (p, q).
    fn rotate(&mut self, p: usize, q: usize) {
        let apq = self.at(p, q);
        if apq == 0.0 {
            return;
        }
        let (app, aqq) = (self.at(p, p), self.at(q, q));
        let theta = (aqq - app) / (2.0 * apq);
        let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
        let t = if theta == 0.0 { 1.0 } else { t };
        let c = 1.0 / (t * t + 1.0).sqrt();
        let s = t * c;
        for k in 0..self.n {
            let (akp, akq) = (self.at(k, p), self.at(k, q));
            self.set(k, p, c * akp - s * akq);
            self.set(k, q, s * akp + c * akq);
        }
        for k in 0..self.n {
            let (apk, aqk) = (self.at(p, k), self.at(q, k));
            self.set(p, k, c * apk - s * aqk);
            self.set(q, k, s * apk + c * aqk);
        }
    }

    /// ln |det|: −∞ for a singular matrix, NaN if an entry is not finite.
    pub fn log_abs_det(&self) -> f64 {
        if self.values.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        let n = self.n;
        let mut a = self.clone();
        let mut log_det = 0.0;
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a.at(i, col).abs().total_cmp(&a.at(j, col).abs()))
                .expect("a non-empty column");
            let value = a.at(pivot, col);
            if value == 0.0 {
                return f64::NEG_INFINITY;
            }
            if pivot != col {
                for k in 0..n {
                    a.values.swap(pivot * n + k, col * n + k);
                }
            }
            log_det += value.abs().ln();
            for row in col + 1..n {
                let factor = a.at(row, col) / value;
                if factor != 0.0 {
                    for k in col..n {
                        let v = a.at(row, k) - factor * a.at(col, k);
                        a.set(row, k, v);
                    }
                }
            }
        }
        log_det
    }
}

/// The largest singular value of the `rows`×`cols` row-major matrix `m`.
pub fn largest_singular_value(m: &[f64], rows: usize, cols: usize) -> f64 {
    // σ_max² is the largest eigenvalue of the smaller of MᵀM and MMᵀ.
    let (n, gram): (usize, Vec<f64>) = if cols <= rows {
        let g = (0..cols)
            .flat_map(|i| (0..cols).map(move |j| (i, j)))
            .map(|(i, j)| (0..rows).map(|r| m[r * cols + i] * m[r * cols + j]).sum())
            .collect();
        (cols, g)
    } else {
        let g = (0..rows)
            .flat_map(|i| (0..rows).map(move |j| (i, j)))
            .map(|(i, j)| (0..cols).map(|c| m[i * cols + c] * m[j * cols + c]).sum())
            .collect();
        (rows, g)
    };
    let top = Square::new(n, gram)
        .symmetric_eigenvalues()
        .last()
        .copied()
        .unwrap_or(0.0);
    top.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_a_known_symmetric_matrix() {
        // [[2,1,0],[1,2,0],[0,0,5]] has eigenvalues 1, 3, 5.
        let m = Square::new(3, vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0]);
        let e = m.symmetric_eigenvalues();
        for (got, want) in e.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-12, "{e:?}");
        }
    }

    #[test]
    fn eigenvalues_sum_to_the_trace_and_multiply_to_the_determinant() {
        let n = 12;
        let b: Vec<f64> = (0..n * n)
            .map(|i| ((i * 37 % 17) as f64 - 8.0) / 3.0)
            .collect();
        // A = BᵀB + I is symmetric positive definite.
        let a: Vec<f64> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| {
                (0..n).map(|k| b[k * n + i] * b[k * n + j]).sum::<f64>() + f64::from(i == j)
            })
            .collect();
        let m = Square::new(n, a.clone());
        let e = m.symmetric_eigenvalues();
        let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
        assert!((e.iter().sum::<f64>() - trace).abs() < 1e-9 * trace);
        let log_det: f64 = e.iter().map(|v| v.ln()).sum();
        assert!((m.log_abs_det() - log_det).abs() < 1e-9 * log_det.abs().max(1.0));
        assert!(e.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_singular_matrix_has_log_det_minus_infinity_and_nan_entries_give_nan() {
        let ones = Square::new(3, vec![4.0; 9]);
        assert_eq!(ones.log_abs_det(), f64::NEG_INFINITY);
        let nan = Square::new(2, vec![1.0, f64::NAN, 0.0, 1.0]);
        assert!(nan.log_abs_det().is_nan());
        assert!(nan.symmetric_eigenvalues().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn the_largest_singular_value_of_a_wide_and_a_tall_matrix() {
        // [[3,0,0],[0,-4,0]]: singular values 4 and 3, either way round.
        let m = [3.0, 0.0, 0.0, 0.0, -4.0, 0.0];
        assert!((largest_singular_value(&m, 2, 3) - 4.0).abs() < 1e-12);
        let t = [3.0, 0.0, 0.0, -4.0, 0.0, 0.0];
        assert!((largest_singular_value(&t, 3, 2) - 4.0).abs() < 1e-12);
        assert_eq!(largest_singular_value(&[0.0; 4], 2, 2), 0.0);
    }
}
