//! `T5Attention` forward and backward (transformers `modeling_t5.py`), for self-attention
//! (encoder: bidirectional; decoder: causal) and cross-attention, plus the one-query step the
//! KV cache uses. Heads are strided views into `(B·T, NH·HS)` tensors, never copies:
//!
//! ```text
//! q = xq·Wqᵀ, k = xkv·Wkᵀ, v = xkv·Wvᵀ        (B·T, I), I = NH·HS
//! att[b,h] = q[b,:,h]·k[b,:,h]ᵀ              (B, NH, Tq, Tk)  (no 1/√HS in T5)
//! p = softmax(att + bias, masks); p' = dropout(p)
//! ctx[b,:,h] = p'[b,h]·v[b,:,h]              (B·Tq, I)
//! out = ctx·Woᵀ                              (B·Tq, C)
//! ```

use crate::backend::{Accumulate, Backend, GemmShape, Masking, MatView};
use crate::error::Result;
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::linear::{linear, linear_backward};
use crate::t5::params::T5Attention;
use crate::tensor::Tensor;

/// Sizes of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionDims {
    /// B
    pub b: usize,
    /// Query positions.
    pub tq: usize,
    /// Key positions.
    pub tk: usize,
    /// NH
    pub nh: usize,
    /// HS
    pub hs: usize,
    /// Rows between batch items of k and v: `tk` normally, the cache capacity with a KV cache.
    pub kv_rows: usize,
}

impl AttentionDims {
    fn inner(&self) -> usize {
        self.nh * self.hs
    }
    fn q_view(&self) -> MatView {
        MatView::rows(self.inner()).batched(self.tq * self.inner(), self.hs)
    }
    fn kv_view(&self) -> MatView {
        MatView::rows(self.inner()).batched(self.kv_rows * self.inner(), self.hs)
    }
    fn att_view(&self) -> MatView {
        MatView::rows(self.tk).batched(self.nh * self.tq * self.tk, self.tq * self.tk)
    }
    fn gemm(&self, m: usize, n: usize, k: usize) -> GemmShape {
        GemmShape {
            batch: [self.b, self.nh],
            m,
            n,
            k,
        }
    }
}

/// What the attention forward keeps for its backward.
#[derive(Debug)]
pub struct AttentionActs {
    /// (B·Tq, I)
    pub q: Tensor,
    /// (B·Tk, I)
    pub k: Tensor,
    /// (B·Tk, I)
    pub v: Tensor,
    /// (B, NH, Tq, Tk), softmax output before dropout.
    pub probs: Tensor,
    /// (B, NH, Tq, Tk) after dropout, when dropout is active.
    pub dropped: Option<Tensor>,
    /// (B·Tq, I)
    pub ctx: Tensor,
    /// Dropout site seed of the probabilities.
    pub seed: u64,
}

/// Scores, softmax, dropout and the weighted sum of values, given projected q, k, v.
/// Returns (probs, dropped probs, ctx, dropout seed).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    be: &dyn Backend,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    d: AttentionDims,
    bias: Option<&Tensor>,
    key_mask: Option<&Tensor>,
    masking: Masking,
    dropout: &DropoutPlan,
) -> Result<(Tensor, Option<Tensor>, Tensor, u64)> {
    let mut probs = be.zeros(&[d.b, d.nh, d.tq, d.tk]);
    be.matmul(
        &mut probs,
        d.att_view(),
        q,
        d.q_view(),
        k,
        d.kv_view().t(),
        d.gemm(d.tq, d.tk, d.hs),
        Accumulate::Overwrite,
    )?;
    be.attention_softmax_forward(&mut probs, bias, key_mask, masking)?;
    let mut dropped = dropout.active().then(|| probs.clone());
    let seed = match &mut dropped {
        Some(t) => dropout.apply(be, t)?,
        None => 0,
    };
    let mut ctx = be.zeros(&[d.b * d.tq, d.inner()]);
    let p = dropped.as_ref().unwrap_or(&probs);
    be.matmul(
        &mut ctx,
        d.q_view(),
        p,
        d.att_view(),
        v,
        d.kv_view(),
        d.gemm(d.tq, d.hs, d.tk),
        Accumulate::Overwrite,
    )?;
    Ok((probs, dropped, ctx, seed))
}

/// Forward: `xq` (B·Tq, C) attends to `xkv` (B·Tk, C). Returns the output (B·Tq, C).
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    be: &dyn Backend,
    w: &T5Attention,
    xq: &Tensor,
    xkv: &Tensor,
    d: AttentionDims,
    bias: Option<&Tensor>,
    key_mask: Option<&Tensor>,
    masking: Masking,
    dropout: &DropoutPlan,
) -> Result<(Tensor, AttentionActs)> {
    let q = linear(be, xq, &w.q)?;
    let k = linear(be, xkv, &w.k)?;
    let v = linear(be, xkv, &w.v)?;
    let (probs, dropped, ctx, seed) = attend(be, &q, &k, &v, d, bias, key_mask, masking, dropout)?;
    let out = linear(be, &ctx, &w.o)?;
    Ok((
        out,
        AttentionActs {
            q,
            k,
            v,
            probs,
            dropped,
            ctx,
            seed,
        },
    ))
}

/// Where the gradient of the key/value input goes.
pub enum KvGrad<'a> {
    /// Self-attention: keys and values come from the query input; add into its gradient.
    SameAsQuery,
    /// Cross-attention: add into this (B·Tk, C) tensor (the encoder output's gradient).
    Into(&'a mut Tensor),
}

/// Backward: accumulates `dxq` (B·Tq, C), the key/value input gradient, `dw`, and the
/// batch-summed score gradient into `dbias` (Tq·Tk, NH) when given.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    be: &dyn Backend,
    w: &T5Attention,
    dw: &mut T5Attention,
    dout: &Tensor,
    acts: &AttentionActs,
    xq: &Tensor,
    xkv: &Tensor,
    d: AttentionDims,
    dxq: &mut Tensor,
    dxkv: KvGrad<'_>,
    dbias: Option<&mut Tensor>,
    dropout: &DropoutPlan,
) -> Result<()> {
    let mut dctx = be.zeros(acts.ctx.shape());
    linear_backward(
        be,
        &mut dctx,
        Accumulate::Overwrite,
        &mut dw.o,
        dout,
        &acts.ctx,
        &w.o,
    )?;
    // dP' = dctx·vᵀ ; dv = P'ᵀ·dctx
    let mut datt = be.zeros(acts.probs.shape());
    be.matmul(
        &mut datt,
        d.att_view(),
        &dctx,
        d.q_view(),
        &acts.v,
        d.kv_view().t(),
        d.gemm(d.tq, d.tk, d.hs),
        Accumulate::Overwrite,
    )?;
    let mut dv = be.zeros(acts.v.shape());
    let p = acts.dropped.as_ref().unwrap_or(&acts.probs);
    be.matmul(
        &mut dv,
        d.kv_view(),
        p,
        d.att_view().t(),
        &dctx,
        d.q_view(),
        d.gemm(d.tk, d.hs, d.tq),
        Accumulate::Overwrite,
    )?;
    dropout.backward(be, &mut datt, acts.seed)?;
    be.attention_softmax_backward(&mut datt, &acts.probs, dbias)?;
    // dq = dS·k ; dk = dSᵀ·q
    let mut dq = be.zeros(acts.q.shape());
    be.matmul(
        &mut dq,
        d.q_view(),
        &datt,
        d.att_view(),
        &acts.k,
        d.kv_view(),
        d.gemm(d.tq, d.hs, d.tk),
        Accumulate::Overwrite,
    )?;
    let mut dk = be.zeros(acts.k.shape());
    be.matmul(
        &mut dk,
        d.kv_view(),
        &datt,
        d.att_view().t(),
        &acts.q,
        d.q_view(),
        d.gemm(d.tk, d.hs, d.tq),
        Accumulate::Overwrite,
    )?;
    linear_backward(be, dxq, Accumulate::Add, &mut dw.q, &dq, xq, &w.q)?;
    let dxkv = match dxkv {
        KvGrad::SameAsQuery => dxq,
        KvGrad::Into(t) => t,
    };
    linear_backward(be, dxkv, Accumulate::Add, &mut dw.k, &dk, xkv, &w.k)?;
    linear_backward(be, dxkv, Accumulate::Add, &mut dw.v, &dv, xkv, &w.v)
}
