//! Softmax cross-entropy with label smoothing and an ignore index, PyTorch semantics
//! (`F.cross_entropy(logits, y, ignore_index=-100, label_smoothing=ε)` before the mean):
//! target distribution `q = (1−ε)·onehot(y) + ε/V`, row loss `−Σ_j q_j·log p_j`
//! `= lse − (1−ε)·x_y − (ε/V)·Σ_j x_j`.

use multiversion::multiversion;
use rayon::prelude::*;

use super::exp::exp_f32;
use crate::error::{EngineError, Result};

/// Checks that targets fit the logits: one per row, each negative (ignored) or `< V`.
pub(super) fn check_targets(len: usize, v: usize, targets: &[i32]) -> Result<()> {
    if v == 0 || len != targets.len() * v {
        return Err(EngineError::Internal(format!(
            "cross-entropy: {len} logits for {} targets of vocab {v}",
            targets.len()
        )));
    }
    match targets.iter().find(|&&t| t >= v as i32) {
        Some(t) => Err(EngineError::input(
            format!("target token id {t}"),
            format!("outside the model's vocabulary of {v}"),
        )),
        None => Ok(()),
    }
}

/// Accumulators per reduction: independent lanes the compiler can keep in one vector register,
/// summed in a fixed order (results never depend on the thread count).
const LANES: usize = 8;

/// `Σ f(xᵢ)` over lanes of [`LANES`] partial sums.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Log-sum-exp of a row, shifted by its maximum.
#[inline(always)]
fn logsumexp(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = lanes.iter().fold(tail, |a, &b| a.max(b));
    max + lane_sum(x, |v| exp_f32(v - max)).ln()
}

/// Row losses; ignored rows give 0.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn cross_entropy_forward_cpu(
    logits: &[f32],
    v: usize,
    targets: &[i32],
    eps: f32,
) -> Vec<f32> {
    logits
        .par_chunks(v)
        .zip(targets.par_iter())
        .map(|(x, &y)| {
            if y < 0 {
                return 0.0;
            }
            let mean = lane_sum(x, |a| a) / v as f32;
            logsumexp(x) - (1.0 - eps) * x[y as usize] - eps * mean
        })
        .collect()
}

/// `dlogits = scale·(softmax(x) − q)`; ignored rows get 0.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn cross_entropy_backward_cpu(
    dlogits: &mut [f32],
    logits: &[f32],
    v: usize,
    targets: &[i32],
    eps: f32,
    scale: f32,
) {
    dlogits
        .par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .zip(targets.par_iter())
        .for_each(|((d, x), &y)| {
            if y < 0 {
                d.fill(0.0);
                return;
            }
            let lse = logsumexp(x);
            let smooth = scale * eps / v as f32;
            for (d, &a) in d.iter_mut().zip(x) {
                *d = scale * exp_f32(a - lse) - smooth;
            }
            d[y as usize] -= scale * (1.0 - eps);
        });
}
