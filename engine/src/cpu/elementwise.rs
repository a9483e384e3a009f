//! Element-wise helpers of the op interface: residual adds, scaling, and the deterministic
//! sum of squares used for global-norm gradient clipping.

use multiversion::multiversion;
use rayon::prelude::*;

/// Elements per parallel task: large enough to amortise the hand-off.
const CHUNK: usize = 1 << 15;

/// `a += b`.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn add_assign_cpu(a: &mut [f32], b: &[f32]) {
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x += y));
}

/// `t *= s`.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn scale_cpu(t: &mut [f32], s: f32) {
    t.par_chunks_mut(CHUNK)
        .for_each(|t| t.iter_mut().for_each(|x| *x *= s));
}

/// `Σ t²` in f64: fixed-size chunks summed in order, so the thread count never changes the
/// rounding (bit-identical resume depends on this).
pub(super) fn sum_squares_cpu(t: &[f32]) -> f64 {
    let partials: Vec<f64> = t
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum())
        .collect();
    partials.iter().sum()
}
