//! The few slice loops the CPU backward spends its time in, compiled for the widest vector
//! unit the CPU has (checked once at run time).
//!
//! Results do not depend on which version runs: element-wise loops compute every lane alike,
//! and reductions keep [`LANES`] fixed partial sums combined in a fixed order, so the
//! floating-point operations are the same at every vector width (there is no FMA
//! contraction).

/// One vector of partial sums.
const LANES: usize = 16;
/// Partial sums per block: enough independent chains to hide the add latency.
const BLOCK: usize = 4 * LANES;

/// A vector width the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    Avx512,
    Avx2,
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
}

impl Width {
    /// Every width, widest first.
    #[cfg(test)]
    const ALL: [Width; 3] = [Width::Avx512, Width::Avx2, Width::Baseline];

    /// Whether this CPU runs code compiled for `self`.
    fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Width::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Width::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Width::Avx512 | Width::Avx2 => false,
            Width::Baseline => true,
        }
    }

    /// The widest width this CPU runs.
    fn widest() -> Width {
        if Width::Avx512.supported() {
            Width::Avx512
        } else if Width::Avx2.supported() {
            Width::Avx2
        } else {
            Width::Baseline
        }
    }
}

/// `pub fn name(args)` runs `body` compiled for the widest vector unit the CPU has;
/// `name_at(width, args)` (named in the invocation) runs it compiled for `width`, or for the
/// baseline when the CPU lacks `width`.
macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident, $at:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            $at(Width::widest(), $($arg),*)
        }

        #[inline(always)]
        fn $at(width: Width, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                #[target_feature(enable = "avx2")]
                unsafe fn medium($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                if width == Width::Avx512 && width.supported() {
                    // SAFETY: the CPU supports the enabled features.
                    return unsafe { wide($($arg),*) };
                }
                if width == Width::Avx2 && width.supported() {
                    // SAFETY: as above.
                    return unsafe { medium($($arg),*) };
                }
            }
            let _ = width;
            $body($($arg),*)
        }
    };
}

dispatch! {
    /// `Σ a[i]·b[i]` over the common length.
    pub fn dot, dot_at(a: &[f32], b: &[f32]) -> f32 => dot_body
}
dispatch! {
    /// `(Σ g[i], Σ g[i]·x[i])`.
    pub fn sum_and_dot, sum_and_dot_at(g: &[f32], x: &[f32]) -> (f32, f32) => sum_and_dot_body
}
dispatch! {
    /// `acc[i] += w·src[i]`.
    pub fn axpy, axpy_at(acc: &mut [f32], w: f32, src: &[f32]) => axpy_body
}
dispatch! {
    /// `acc[i] += src[i]`.
    pub fn add, add_at(acc: &mut [f32], src: &[f32]) => add_body
}
dispatch! {
    /// `acc[i] *= m[i]`.
    pub fn mul, mul_at(acc: &mut [f32], m: &[f32]) => mul_body
}
dispatch! {
    /// Batch-norm input gradient in place: `g[i] ← s·(g[i] − mg − x̂[i]·mgx)`.
    pub fn bn_dx, bn_dx_at(g: &mut [f32], xhat: &[f32], s: f32, mg: f32, mgx: f32) => bn_dx_body
}
dispatch! {
    /// A convolution tap's two backward products over one run of the output cotangent `g`:
    /// `dx[i] += w·g[i]` and the returned `Σ g[i]·x[i]`.
    pub fn tap, tap_at(g: &[f32], x: &[f32], dx: &mut [f32], w: f32) -> f32 => tap_body
}

/// Walks `(x, y)` pairs of equal-length slices as the reductions group them: blocks of
/// [`BLOCK`] (one partial sum per lane), then chunks of [`LANES`] into the first lanes, then
/// the tail, element by element, into the first lanes. `body(acc, x, y)` runs on each part.
/// The grouping is the same at every vector width.
macro_rules! blocked {
    ($x:expr, $y:expr, |$acc:ident, $a:ident, $b:ident| $body:block) => {{
        let mut $acc = [0f32; BLOCK];
        let (xs, ys) = ($x.chunks_exact(BLOCK), $y.chunks_exact(BLOCK));
        let (xr, yr) = (xs.remainder(), ys.remainder());
        for (xc, yc) in xs.zip(ys) {
            let ($a, $b): (&[f32; BLOCK], &[f32; BLOCK]) =
                (xc.try_into().expect("block"), yc.try_into().expect("block"));
            $body
        }
        let (xs, ys) = (xr.chunks_exact(LANES), yr.chunks_exact(LANES));
        let (xr, yr) = (xs.remainder(), ys.remainder());
        for (xc, yc) in xs.zip(ys) {
            let ($a, $b): (&[f32; LANES], &[f32; LANES]) =
                (xc.try_into().expect("chunk"), yc.try_into().expect("chunk"));
            $body
        }
        let ($a, $b) = (xr, yr);
        $body
        $acc
    }};
}

#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    combine(blocked!(a[..n], b[..n], |acc, x, y| {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }))
}

#[inline(always)]
fn sum_and_dot_body(g: &[f32], x: &[f32]) -> (f32, f32) {
    let n = g.len().min(x.len());
    let mut dot = [0f32; BLOCK];
    let sum = blocked!(g[..n], x[..n], |acc, a, b| {
        for (((s, d), p), q) in acc.iter_mut().zip(dot.iter_mut()).zip(a).zip(b) {
            *s += p;
            *d += p * q;
        }
    });
    (combine(sum), combine(dot))
}

/// Pairwise sum of the lanes, in a fixed order.
#[inline(always)]
fn combine(mut acc: [f32; BLOCK]) -> f32 {
    let mut width = BLOCK / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

#[inline(always)]
fn axpy_body(acc: &mut [f32], w: f32, src: &[f32]) {
    for (a, s) in acc.iter_mut().zip(src) {
        *a += w * s;
    }
}

#[inline(always)]
fn add_body(acc: &mut [f32], src: &[f32]) {
    for (a, s) in acc.iter_mut().zip(src) {
        *a += s;
    }
}

#[inline(always)]
fn mul_body(acc: &mut [f32], m: &[f32]) {
    for (a, s) in acc.iter_mut().zip(m) {
        *a *= s;
    }
}

#[inline(always)]
fn bn_dx_body(g: &mut [f32], xhat: &[f32], s: f32, mg: f32, mgx: f32) {
    for (gv, xv) in g.iter_mut().zip(xhat) {
        *gv = s * (*gv - mg - xv * mgx);
    }
}

#[inline(always)]
fn tap_body(g: &[f32], x: &[f32], dx: &mut [f32], w: f32) -> f32 {
    let n = g.len().min(x.len()).min(dx.len());
    let (g, x, dx) = (&g[..n], &x[..n], &mut dx[..n]);
    let mut acc = [0f32; BLOCK];
    // Blocks, then LANES chunks, then the tail: the grouping of `blocked!`.
    let mut at = tap_chunks::<BLOCK>(g, x, dx, w, &mut acc);
    at += tap_chunks::<LANES>(&g[at..], &x[at..], &mut dx[at..], w, &mut acc);
    for l in 0..n - at {
        acc[l] += g[at + l] * x[at + l];
        dx[at + l] += w * g[at + l];
    }
    combine(acc)
}

/// The fused tap over the whole chunks of width `W`; returns how many elements it covered.
#[inline(always)]
fn tap_chunks<const W: usize>(
    g: &[f32],
    x: &[f32],
    dx: &mut [f32],
    w: f32,
    acc: &mut [f32; BLOCK],
) -> usize {
    let (gs, xs, ds) = (g.chunks_exact(W), x.chunks_exact(W), dx.chunks_exact_mut(W));
    let done = gs.len() * W;
    for ((gc, xc), dc) in gs.zip(xs).zip(ds) {
        let gc: &[f32; W] = gc.try_into().expect("chunk");
        let xc: &[f32; W] = xc.try_into().expect("chunk");
        let dc: &mut [f32; W] = dc.try_into().expect("chunk");
        for l in 0..W {
            acc[l] += gc[l] * xc[l];
            dc[l] += w * gc[l];
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Lengths that end in every part of the grouping: empty, tails only, whole chunks of
    /// [`LANES`], whole blocks, and each followed by a remainder.
    const LENGTHS: [usize; 20] = [
        0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 79, 80, 81, 127, 128, 129, 1000,
    ];

    /// Floats of both signs over a few binades, so that a changed summation order changes bits.
    fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.random::<f32>() - 0.5) * 2f32.powi(rng.random_range(-2..2)))
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The widths this CPU runs, each checked against the scalar body.
    fn widths() -> Vec<Width> {
        let widths: Vec<Width> = Width::ALL.into_iter().filter(|w| w.supported()).collect();
        eprintln!("SIMD widths checked against the scalar bodies: {widths:?}");
        widths
    }

    /// The module's claim: every kernel gives the same bits at every vector width (and the
    /// dispatched kernel, the widest, the same as its scalar body), on random floats.
    #[test]
    fn every_width_matches_the_scalar_body_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(2021);
        let widths = widths();
        for n in LENGTHS {
            // `m` is longer: the reductions and `tap` use the common length.
            let (a, b, m) = (
                random(&mut rng, n),
                random(&mut rng, n),
                random(&mut rng, n + 3),
            );
            let (w, s, mg, mgx) = (
                rng.random::<f32>(),
                rng.random(),
                rng.random(),
                rng.random(),
            );

            let dot_ref = dot_body(&a, &m).to_bits();
            let (sum_ref, sd_ref) = sum_and_dot_body(&a, &b);
            let mut axpy_ref = a.clone();
            axpy_body(&mut axpy_ref, w, &b);
            let mut add_ref = a.clone();
            add_body(&mut add_ref, &b);
            let mut mul_ref = a.clone();
            mul_body(&mut mul_ref, &b);
            let mut bn_ref = a.clone();
            bn_dx_body(&mut bn_ref, &b, s, mg, mgx);
            let mut tap_dx_ref = m.clone();
            let tap_ref = tap_body(&a, &b, &mut tap_dx_ref, w).to_bits();

            if n == 1000 {
                // The data make the order of additions visible.
                let in_order = a.iter().zip(&m).fold(0f32, |s, (p, q)| s + p * q);
                assert_ne!(in_order.to_bits(), dot_ref, "n = {n}");
            }
            let dispatched = dot(&a, &m).to_bits();
            assert_eq!(dispatched, dot_ref, "dispatched dot, n = {n}");
            for &width in &widths {
                let at = |what: &str| format!("{what} at {width:?}, n = {n}");
                assert_eq!(dot_at(width, &a, &m).to_bits(), dot_ref, "{}", at("dot"));
                let (sum, sd) = sum_and_dot_at(width, &a, &b);
                assert_eq!(
                    (sum.to_bits(), sd.to_bits()),
                    (sum_ref.to_bits(), sd_ref.to_bits()),
                    "{}",
                    at("sum_and_dot")
                );
                let mut v = a.clone();
                axpy_at(width, &mut v, w, &b);
                assert_eq!(bits(&v), bits(&axpy_ref), "{}", at("axpy"));
                let mut v = a.clone();
                add_at(width, &mut v, &b);
                assert_eq!(bits(&v), bits(&add_ref), "{}", at("add"));
                let mut v = a.clone();
                mul_at(width, &mut v, &b);
                assert_eq!(bits(&v), bits(&mul_ref), "{}", at("mul"));
                let mut v = a.clone();
                bn_dx_at(width, &mut v, &b, s, mg, mgx);
                assert_eq!(bits(&v), bits(&bn_ref), "{}", at("bn_dx"));
                let mut dx = m.clone();
                let t = tap_at(width, &a, &b, &mut dx, w).to_bits();
                assert_eq!(t, tap_ref, "{}", at("tap sum"));
                assert_eq!(bits(&dx), bits(&tap_dx_ref), "{}", at("tap dx"));
            }
        }
    }

    /// `tap`'s sum is `dot`'s: the same grouping, so the same bits.
    #[test]
    fn tap_sums_as_dot_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in LENGTHS {
            let (g, x) = (random(&mut rng, n), random(&mut rng, n));
            let mut dx = vec![0f32; n];
            assert_eq!(
                tap(&g, &x, &mut dx, 0.5).to_bits(),
                dot(&g, &x).to_bits(),
                "n = {n}"
            );
        }
    }

    #[test]
    fn reductions_match_f64_sums() {
        let a: Vec<f32> = (0..1001).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..1001).map(|i| ((i * 13) % 7) as f32 * 0.5).collect();
        let exact_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let exact_sum: f64 = a.iter().map(|x| *x as f64).sum();
        // Small integers and halves: every partial sum is exact in f32.
        assert_eq!(dot(&a, &b) as f64, exact_dot);
        assert_eq!(sum_and_dot(&a, &b), (exact_sum as f32, exact_dot as f32));
    }

    #[test]
    fn elementwise_loops() {
        let mut acc = vec![1f32, 2.0, 3.0];
        axpy(&mut acc, 2.0, &[1.0, 1.0, 1.0]);
        assert_eq!(acc, [3.0, 4.0, 5.0]);
        add(&mut acc, &[1.0, 0.0, -1.0]);
        assert_eq!(acc, [4.0, 4.0, 4.0]);
        mul(&mut acc, &[0.0, 1.0, 0.5]);
        assert_eq!(acc, [0.0, 4.0, 2.0]);
        let mut g = vec![3f32, 5.0];
        bn_dx(&mut g, &[1.0, -1.0], 2.0, 1.0, 0.5);
        assert_eq!(g, [2.0 * (3.0 - 1.0 - 0.5), 2.0 * (5.0 - 1.0 + 0.5)]);
        let g: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let mut dx = vec![1f32; 37];
        let d = tap(&g, &[2.0; 37], &mut dx, 0.5);
        assert_eq!(d, 2.0 * (0..37).sum::<i32>() as f32);
        assert!(dx
            .iter()
            .enumerate()
            .all(|(i, v)| *v == 1.0 + 0.5 * i as f32));
    }
}
