//! AdamW, as `torch.optim.AdamW` (decoupled weight decay, bias-corrected moments):
//! `p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;`
//! `p ← p − lr·m̂/(√v̂ + eps)` with `m̂ = m/(1−β1ᵗ)`, `v̂ = v/(1−β2ᵗ)`.

use multiversion::multiversion;
use rayon::prelude::*;

use crate::backend::AdamWStep;

const CHUNK: usize = 1 << 14;

/// One update of every element.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn adamw_step_cpu(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &AdamWStep,
) {
    let bc1 = 1.0 - s.beta1.powi(s.t as i32);
    let bc2 = 1.0 - s.beta2.powi(s.t as i32);
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            for i in 0..p.len() {
                let g = g[i] * s.grad_scale;
                p[i] *= 1.0 - s.lr * s.weight_decay;
                m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * g;
                v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
                let mhat = m[i] / bc1;
                let vhat = v[i] / bc2;
                p[i] -= s.lr * mhat / (vhat.sqrt() + s.eps);
            }
        });
}
