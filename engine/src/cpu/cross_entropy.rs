//! Softmax cross-entropy with label smoothing and an ignore index, PyTorch semantics
//! (`F.cross_entropy(logits, y, ignore_index=-100, label_smoothing=ε)` before the mean):
//! target distribution `q = (1−ε)·onehot(y) + ε/V`, row loss `−Σ_j q_j·log p_j`
//! `= lse − (1−ε)·x_y − (ε/V)·Σ_j x_j`.

use rayon::prelude::*;

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

/// Log-sum-exp of a row, in f64 for accuracy.
fn logsumexp(x: &[f32]) -> f64 {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let sum: f64 = x.iter().map(|&v| f64::from(v - max).exp()).sum();
    f64::from(max) + sum.ln()
}

/// Row losses; ignored rows give 0.
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
            let lse = logsumexp(x);
            let mean: f64 = x.iter().map(|&a| f64::from(a)).sum::<f64>() / v as f64;
            let eps = f64::from(eps);
            (lse - (1.0 - eps) * f64::from(x[y as usize]) - eps * mean) as f32
        })
        .collect()
}

/// `dlogits = scale·(softmax(x) − q)`; ignored rows get 0.
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
            let smooth = eps / v as f32;
            for (j, (d, &a)) in d.iter_mut().zip(x).enumerate() {
                let p = (f64::from(a) - lse).exp() as f32;
                let q = if j == y as usize {
                    1.0 - eps + smooth
                } else {
                    smooth
                };
                *d = scale * (p - q);
            }
        });
}
