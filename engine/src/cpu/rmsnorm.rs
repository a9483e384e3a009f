//! T5LayerNorm (RMSNorm, no mean, no bias), in f32 as Hugging Face computes it:
//! `variance = hidden.pow(2).mean(-1); hidden * rsqrt(variance + eps) * weight`
//! (transformers `modeling_t5.py`, `T5LayerNorm.forward`).

use multiversion::multiversion;
use rayon::prelude::*;

/// out (N, C), rstd (N), inp (N, C), weight (C).
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn rmsnorm_forward_cpu(
    out: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    eps: f32,
) {
    let c = weight.len();
    out.par_chunks_mut(c)
        .zip(rstd.par_iter_mut())
        .zip(inp.par_chunks(c))
        .for_each(|((o, r), x)| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / c as f32;
            *r = 1.0 / (ms + eps).sqrt();
            for ((o, x), w) in o.iter_mut().zip(x).zip(weight) {
                *o = x * *r * w;
            }
        });
}

/// With `y = x·r·w`, `r = (mean(x²)+eps)^-½`:
/// `dx_i = r·w_i·dy_i − x_i·r³/C · Σ_j dy_j·w_j·x_j`, `dw_i = Σ_rows dy_i·x_i·r`.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn rmsnorm_backward_cpu(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    rstd: &[f32],
) {
    let c = weight.len();
    dinp.par_chunks_mut(c)
        .zip(dout.par_chunks(c))
        .zip(inp.par_chunks(c))
        .zip(rstd.par_iter())
        .for_each(|(((dx, dy), x), &r)| {
            let dot: f32 = dy
                .iter()
                .zip(weight)
                .zip(x)
                .map(|((d, w), x)| d * w * x)
                .sum();
            let k = dot * r * r * r / c as f32;
            for i in 0..c {
                dx[i] += r * weight[i] * dy[i] - x[i] * k;
            }
        });
    // Rows summed in order: deterministic whatever the thread count.
    for ((dy, x), &r) in dout.chunks(c).zip(inp.chunks(c)).zip(rstd) {
        for i in 0..c {
            dweight[i] += dy[i] * x[i] * r;
        }
    }
}
