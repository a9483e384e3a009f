//! Attention softmax with T5's additive relative-position bias and masks.
//!
//! T5 does not scale scores by `1/sqrt(d)` (the scale is folded into the initialisation), so
//! `probs = softmax(q·kᵀ + bias + mask)` (transformers `T5Attention.forward`). Masked keys get
//! probability exactly 0 rather than `exp(finfo.min)`, the same result in f32.

use multiversion::multiversion;
use rayon::prelude::*;

use super::ensure;
use super::exp::exp_f32;
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

/// `bias` (Tq, Tk, NH) as (NH, Tq, Tk), so each score row adds a contiguous bias row.
fn heads_first(bias: &[f32], d: Dims) -> Vec<f32> {
    let Dims { nh, tq, tk, .. } = d;
    let mut out = vec![0.0; bias.len()];
    for (qk, heads) in bias.chunks_exact(nh).enumerate() {
        for (h, &v) in heads.iter().enumerate() {
            out[h * tq * tk + qk] = v;
        }
    }
    out
}

/// Softmax over each row of `att` in place.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn attention_softmax_forward_cpu(
    att: &mut [f32],
    d: Dims,
    bias: Option<&[f32]>,
    key_mask: Option<&[f32]>,
    masking: Masking,
) {
    let Dims { nh, tq, tk, .. } = d;
    let bias = bias.map(|b| heads_first(b, d));
    let bias = bias.as_deref();
    att.par_chunks_mut(tk)
        .enumerate()
        .for_each(move |(row, s)| {
            let q = row % tq;
            let h = (row / tq) % nh;
            let b = row / (tq * nh);
            if let Some(bias) = bias {
                let bias = &bias[(h * tq + q) * tk..][..tk];
                s.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
            }
            // Keys past the causal limit or padded get −∞, whose exponential is exactly 0.
            let last = match masking {
                Masking::Bidirectional => tk,
                Masking::Causal => (q + 1 + tk).saturating_sub(tq).min(tk),
            };
            s[last..].fill(f32::NEG_INFINITY);
            if let Some(mask) = key_mask {
                let mask = &mask[b * tk..][..tk];
                s.iter_mut()
                    .zip(mask)
                    .for_each(|(x, &m)| *x = if m != 0.0 { *x } else { f32::NEG_INFINITY });
            }
            let max = s.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            if max == f32::NEG_INFINITY {
                s.fill(0.0);
                return;
            }
            s.iter_mut().for_each(|x| *x = exp_f32(*x - max));
            let inv = 1.0 / s.iter().sum::<f32>();
            s.iter_mut().for_each(|x| *x *= inv);
        });
}

/// `ds_k = p_k·(dp_k − Σ_j p_j·dp_j)` in place; the batch sum of `ds` goes into `dbias`.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
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
