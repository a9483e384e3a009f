//! T5 v1.1's gated-GELU feed-forward core: `gelu_new(wi_0·x) * (wi_1·x)`
//! (transformers `T5DenseGatedActDense`; `gelu_new` is the tanh approximation,
//! `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`).

use multiversion::multiversion;
use rayon::prelude::*;

use super::exp::exp_f32;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const CUBIC: f32 = 0.044_715;
const CHUNK: usize = 1 << 14;

/// `gelu_new(x)` and its derivative, through `½(1 + tanh u) = σ(2u)`: one vectorisable
/// exponential instead of libm's `tanhf`.
#[inline(always)]
fn gelu_and_grad(x: f32) -> (f32, f32) {
    let u = SQRT_2_OVER_PI * (x + CUBIC * x * x * x);
    let s = 1.0 / (1.0 + exp_f32(-2.0 * u));
    let g = x * s;
    let dg = s + 2.0 * x * s * (1.0 - s) * SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x * x);
    (g, dg)
}

/// out = gelu_new(gate) · lin.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn gated_gelu_forward_cpu(out: &mut [f32], gate: &[f32], lin: &[f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(gate.par_chunks(CHUNK))
        .zip(lin.par_chunks(CHUNK))
        .for_each(|((o, g), l)| {
            for i in 0..o.len() {
                o[i] = gelu_and_grad(g[i]).0 * l[i];
            }
        });
}

/// dgate = dout·lin·gelu'(gate), dlin = dout·gelu(gate).
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn gated_gelu_backward_cpu(
    dgate: &mut [f32],
    dlin: &mut [f32],
    dout: &[f32],
    gate: &[f32],
    lin: &[f32],
) {
    dgate
        .par_chunks_mut(CHUNK)
        .zip(dlin.par_chunks_mut(CHUNK))
        .zip(dout.par_chunks(CHUNK))
        .zip(gate.par_chunks(CHUNK).zip(lin.par_chunks(CHUNK)))
        .for_each(|(((dg, dl), dy), (g, l))| {
            for i in 0..dg.len() {
                let (act, dact) = gelu_and_grad(g[i]);
                dg[i] = dy[i] * l[i] * dact;
                dl[i] = dy[i] * act;
            }
        });
}
