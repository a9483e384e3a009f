//! Attention softmax with T5's additive relative-position bias and masks.
//!
//! T5 does not scale scores by `1/sqrt(d)` (the scale is folded into the initialisation), so
//! `probs = softmax(q·kᵀ + bias + mask)` (transformers `T5Attention.forward`). Masked keys get
//! probability exactly 0 rather than `exp(finfo.min)`, the same result in f32.

use rayon::prelude::*;

use super::ensure;
use crate::backend::Masking;
use crate::error::Result;
use crate::tensor::Tensor;

/// The attention tensor's dimensions: (B, NH, Tq, Tk).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub b: usize,
    pub nh: usize,
    pub tq: usize,
    pub tk: usize,
}

impl Dims {
    /// Reads (B, NH, Tq, Tk) from a 4-D tensor.
    pub fn of(t: &Tensor) -> Result<Dims> {
        let s = t.shape();
        ensure(s.len() == 4, || {
            format!("attention tensor must be (B, NH, Tq, Tk), got {s:?}")
        })?;
        Ok(Dims {
            b: s[0],
            nh: s[1],
            tq: s[2],
            tk: s[3],
        })
    }
}

/// Softmax over each row of `att` in place.
pub(super) fn attention_softmax_forward_cpu(
    att: &mut [f32],
    d: Dims,
    bias: Option<&[f32]>,
    key_mask: Option<&[f32]>,
    masking: Masking,
) {
    let Dims { nh, tq, tk, .. } = d;
    att.par_chunks_mut(tk).enumerate().for_each(|(row, s)| {
        let q = row % tq;
        let h = (row / tq) % nh;
        let b = row / (tq * nh);
        let last = match masking {
            Masking::Bidirectional => tk,
            Masking::Causal => (q + 1 + tk).saturating_sub(tq).min(tk),
        };
        let visible = |k: usize| k < last && key_mask.is_none_or(|m| m[b * tk + k] != 0.0);
        let mut max = f32::NEG_INFINITY;
        for k in 0..tk {
            if let Some(bias) = bias {
                s[k] += bias[(q * tk + k) * nh + h];
            }
            if visible(k) {
                max = max.max(s[k]);
            }
        }
        let mut sum = 0.0f32;
        for (k, x) in s.iter_mut().enumerate() {
            *x = if visible(k) { (*x - max).exp() } else { 0.0 };
            sum += *x;
        }
        let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
        s.iter_mut().for_each(|x| *x *= inv);
    });
}

/// `ds_k = p_k·(dp_k − Σ_j p_j·dp_j)` in place; the batch sum of `ds` goes into `dbias`.
pub(super) fn attention_softmax_backward_cpu(
    datt: &mut [f32],
    probs: &[f32],
    d: Dims,
    dbias: Option<&mut [f32]>,
) {
    let Dims { nh, tq, tk, .. } = d;
    datt.par_chunks_mut(tk)
        .zip(probs.par_chunks(tk))
        .for_each(|(dp, p)| {
            let dot: f32 = dp.iter().zip(p).map(|(a, b)| a * b).sum();
            dp.iter_mut().zip(p).for_each(|(g, p)| *g = p * (*g - dot));
        });
    if let Some(dbias) = dbias {
        // Batch rows summed in order: deterministic.
        for (row, ds) in datt.chunks(tk).enumerate() {
            let q = row % tq;
            let h = (row / tq) % nh;
            for (k, g) in ds.iter().enumerate() {
                dbias[(q * tk + k) * nh + h] += g;
            }
        }
    }
}
