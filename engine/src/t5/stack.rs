//! `T5Stack` forward and backward: embedding, blocks of pre-norm residual sub-layers, final
//! norm (transformers `T5Stack`, `T5Block`, `T5LayerSelfAttention`, `T5LayerCrossAttention`,
//! `T5LayerFF`). Every sub-layer has the same shape:
//!
//! ```text
//! r ──► T5LayerNorm ──► n ──► sub-layer ──► dropout ──► (+) ──► r'
//! └──────────────────────────────────────────────────────┘
//! ```
//!
//! so the backward keeps one residual-stream gradient `dres` and every norm backward adds
//! into it. The relative-position bias is computed once per stack from block 0's table and
//! shared by all blocks (as in transformers); its gradient sums over blocks.

use crate::backend::{Backend, Masking};
use crate::error::Result;
use crate::t5::attention::{
    AttentionActs, AttentionDims, KvGrad, attention_backward, attention_forward,
};
use crate::t5::config::Config;
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::feed_forward::{FeedForwardActs, feed_forward_backward, feed_forward_forward};
use crate::t5::params::{T5Block, T5Stack};
use crate::t5::position_bias::bucket_ids;
use crate::tensor::Tensor;

/// The encoder output a decoder stack attends to.
pub struct CrossInput<'a> {
    /// (B·S, C)
    pub hidden: &'a Tensor,
    /// (B, S), 1 for real tokens, 0 for padding.
    pub mask: &'a Tensor,
    /// S
    pub len: usize,
}

/// What a stack's input looks like.
pub struct StackInput<'a> {
    /// (B·T) token ids.
    pub ids: &'a [u32],
    /// B
    pub b: usize,
    /// T
    pub t: usize,
    /// Bidirectional for the encoder, causal for the decoder.
    pub masking: Masking,
    /// (B, T) key padding mask for self-attention.
    pub key_mask: Option<&'a Tensor>,
    /// The encoder output, for a decoder.
    pub cross: Option<CrossInput<'a>>,
}

/// Saved values of one residual sub-layer.
#[derive(Debug)]
struct SubLayerActs {
    /// (N, C) residual input.
    r: Tensor,
    /// (N, C) normed input.
    n: Tensor,
    /// (N)
    rstd: Tensor,
    /// Dropout site seed of the sub-layer output.
    seed: u64,
}

/// Saved values of one block.
#[derive(Debug)]
struct BlockActs {
    self_sub: SubLayerActs,
    self_attn: AttentionActs,
    cross: Option<(SubLayerActs, AttentionActs)>,
    ff_sub: SubLayerActs,
    ff: FeedForwardActs,
}

/// Everything a stack's backward needs.
#[derive(Debug)]
pub struct StackActs {
    buckets: Vec<u32>,
    bias: Tensor,
    embed_seed: u64,
    blocks: Vec<BlockActs>,
    final_sub: SubLayerActs,
    /// (B·T, C) the stack output (after final norm and dropout).
    pub out: Tensor,
}

fn norm(be: &dyn Backend, r: Tensor, weight: &Tensor, eps: f32) -> Result<SubLayerActs> {
    let mut n = be.zeros(r.shape());
    let mut rstd = be.zeros(&[r.shape()[0]]);
    be.rmsnorm_forward(&mut n, &mut rstd, &r, weight, eps)?;
    Ok(SubLayerActs {
        r,
        n,
        rstd,
        seed: 0,
    })
}

/// The attention sizes for self-attention (`tk == tq`) or cross-attention.
pub fn dims(c: &Config, b: usize, tq: usize, tk: usize) -> AttentionDims {
    AttentionDims {
        b,
        tq,
        tk,
        nh: c.num_heads,
        hs: c.d_kv,
        kv_rows: tk,
    }
}

/// The stack forward.
pub fn stack_forward(
    be: &dyn Backend,
    w: &T5Stack,
    shared: &Tensor,
    c: &Config,
    input: &StackInput<'_>,
    dropout: &DropoutPlan,
) -> Result<StackActs> {
    let (b, t, d) = (input.b, input.t, c.d_model);
    let eps = c.layer_norm_epsilon;
    let mut x = be.zeros(&[b * t, d]);
    be.embedding_forward(&mut x, shared, input.ids)?;
    let embed_seed = dropout.apply(be, &mut x)?;

    let buckets = bucket_ids(
        t,
        t,
        0,
        input.masking,
        c.relative_attention_num_buckets,
        c.relative_attention_max_distance,
    );
    let table = w.block[0]
        .self_attention
        .relative_attention_bias
        .as_ref()
        .ok_or_else(|| crate::internal_err!("block 0 lacks its relative_attention_bias"))?;
    let mut bias = be.zeros(&[t * t, c.num_heads]);
    be.embedding_forward(&mut bias, table, &buckets)?;

    let mut blocks = Vec::with_capacity(w.block.len());
    for blk in &w.block {
        let mut self_sub = norm(be, x, &blk.self_attention_norm, eps)?;
        let (mut y, self_attn) = attention_forward(
            be,
            &blk.self_attention,
            &self_sub.n,
            &self_sub.n,
            dims(c, b, t, t),
            Some(&bias),
            input.key_mask,
            input.masking,
            dropout,
        )?;
        self_sub.seed = dropout.apply(be, &mut y)?;
        be.add_assign(&mut y, &self_sub.r)?;
        x = y;
        let cross = match (&blk.cross_attention, &input.cross) {
            (Some((att, att_norm)), Some(enc)) => {
                let mut sub = norm(be, x, att_norm, eps)?;
                let (mut y, acts) = attention_forward(
                    be,
                    att,
                    &sub.n,
                    enc.hidden,
                    dims(c, b, t, enc.len),
                    None,
                    Some(enc.mask),
                    Masking::Bidirectional,
                    dropout,
                )?;
                sub.seed = dropout.apply(be, &mut y)?;
                be.add_assign(&mut y, &sub.r)?;
                x = y;
                Some((sub, acts))
            }
            (None, None) => None,
            _ => {
                return Err(crate::internal_err!(
                    "cross-attention weights and encoder input must come together"
                ));
            }
        };
        let mut ff_sub = norm(be, x, &blk.ff_norm, eps)?;
        let (mut y, ff) = feed_forward_forward(be, &blk.ff, &ff_sub.n, dropout)?;
        ff_sub.seed = dropout.apply(be, &mut y)?;
        be.add_assign(&mut y, &ff_sub.r)?;
        x = y;
        blocks.push(BlockActs {
            self_sub,
            self_attn,
            cross,
            ff_sub,
            ff,
        });
    }
    let mut final_sub = norm(be, x, &w.final_layer_norm, eps)?;
    let mut out = final_sub.n.clone();
    final_sub.seed = dropout.apply(be, &mut out)?;
    Ok(StackActs {
        buckets,
        bias,
        embed_seed,
        blocks,
        final_sub,
        out,
    })
}

/// Adds a norm's backward into the residual gradient `dres` and its weight gradient.
fn norm_backward(
    be: &dyn Backend,
    dres: &mut Tensor,
    dweight: &mut Tensor,
    dn: &Tensor,
    sub: &SubLayerActs,
    weight: &Tensor,
) -> Result<()> {
    be.rmsnorm_backward(dres, dweight, dn, &sub.r, weight, &sub.rstd)
}

/// The stack backward from `dout` (B·T, C), the gradient of [`StackActs::out`]. Accumulates
/// parameter gradients into `dw` and `dshared`, and the encoder output's gradient into
/// `dcross` for a decoder.
#[allow(clippy::too_many_arguments)]
pub fn stack_backward(
    be: &dyn Backend,
    w: &T5Stack,
    dw: &mut T5Stack,
    dshared: &mut Tensor,
    c: &Config,
    input: &StackInput<'_>,
    acts: &StackActs,
    mut dout: Tensor,
    mut dcross: Option<&mut Tensor>,
    dropout: &DropoutPlan,
) -> Result<()> {
    let (b, t) = (input.b, input.t);
    dropout.backward(be, &mut dout, acts.final_sub.seed)?;
    let mut dres = be.zeros(dout.shape());
    norm_backward(
        be,
        &mut dres,
        &mut dw.final_layer_norm,
        &dout,
        &acts.final_sub,
        &w.final_layer_norm,
    )?;
    let mut dbias = be.zeros(acts.bias.shape());

    for ((blk, dblk), a) in w
        .block
        .iter()
        .zip(dw.block.iter_mut())
        .zip(&acts.blocks)
        .rev()
    {
        let T5Block {
            self_attention: d_self,
            self_attention_norm: d_self_norm,
            cross_attention: d_cross,
            ff: d_ff,
            ff_norm: d_ff_norm,
        } = dblk;
        sub_backward(
            be,
            &mut dres,
            &a.ff_sub,
            &blk.ff_norm,
            d_ff_norm,
            dropout,
            |dy, dn| feed_forward_backward(be, &blk.ff, d_ff, dy, &a.ff, &a.ff_sub.n, dn, dropout),
        )?;
        if let (
            Some((sub, att_acts)),
            Some((att, att_norm)),
            Some((d_att, d_att_norm)),
            Some(enc),
        ) = (
            &a.cross,
            &blk.cross_attention,
            d_cross.as_mut(),
            &input.cross,
        ) {
            let dcross = dcross.as_deref_mut().ok_or_else(|| {
                crate::internal_err!("decoder backward needs the encoder gradient")
            })?;
            sub_backward(
                be,
                &mut dres,
                sub,
                att_norm,
                d_att_norm,
                dropout,
                |dy, dn| {
                    attention_backward(
                        be,
                        att,
                        d_att,
                        dy,
                        att_acts,
                        &sub.n,
                        enc.hidden,
                        dims(c, b, t, enc.len),
                        dn,
                        KvGrad::Into(dcross),
                        None,
                        dropout,
                    )
                },
            )?;
        }
        sub_backward(
            be,
            &mut dres,
            &a.self_sub,
            &blk.self_attention_norm,
            d_self_norm,
            dropout,
            |dy, dn| {
                attention_backward(
                    be,
                    &blk.self_attention,
                    d_self,
                    dy,
                    &a.self_attn,
                    &a.self_sub.n,
                    &a.self_sub.n,
                    dims(c, b, t, t),
                    dn,
                    KvGrad::SameAsQuery,
                    Some(&mut dbias),
                    dropout,
                )
            },
        )?;
    }
    let dtable = dw.block[0]
        .self_attention
        .relative_attention_bias
        .as_mut()
        .ok_or_else(|| {
            crate::internal_err!("block 0 lacks its relative_attention_bias gradient")
        })?;
    be.embedding_backward(dtable, &dbias, &acts.buckets)?;
    dropout.backward(be, &mut dres, acts.embed_seed)?;
    be.embedding_backward(dshared, &dres, input.ids)
}

/// One residual sub-layer's backward: `dy = dropout'(dres)`, the sub-layer's backward gives
/// `dn`, the norm's backward adds into `dres`.
fn sub_backward(
    be: &dyn Backend,
    dres: &mut Tensor,
    sub: &SubLayerActs,
    weight: &Tensor,
    dweight: &mut Tensor,
    dropout: &DropoutPlan,
    inner: impl FnOnce(&Tensor, &mut Tensor) -> Result<()>,
) -> Result<()> {
    let mut dy = dres.clone();
    dropout.backward(be, &mut dy, sub.seed)?;
    let mut dn = be.zeros(sub.n.shape());
    inner(&dy, &mut dn)?;
    norm_backward(be, dres, dweight, &dn, sub, weight)
}
