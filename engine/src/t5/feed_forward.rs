//! `T5LayerFF` with `T5DenseGatedActDense` (transformers `modeling_t5.py`):
//! `h = dropout(gelu_new(x·wi_0ᵀ) * (x·wi_1ᵀ)); out = h·woᵀ`; x (N, C), h (N, F).

use crate::backend::{Accumulate, Backend};
use crate::error::Result;
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::linear::{linear, linear_backward};
use crate::t5::params::T5LayerFF;
use crate::tensor::Tensor;

/// What the forward keeps: gate and linear pre-activations and the (dropped) product.
#[derive(Debug)]
pub struct FeedForwardActs {
    /// (N, F) x·wi_0ᵀ
    pub gate: Tensor,
    /// (N, F) x·wi_1ᵀ
    pub lin: Tensor,
    /// (N, F) after dropout
    pub h: Tensor,
    /// Dropout site seed.
    pub seed: u64,
}

/// Forward; returns the output (N, C).
pub fn feed_forward_forward(
    be: &dyn Backend,
    w: &T5LayerFF,
    x: &Tensor,
    dropout: &DropoutPlan,
) -> Result<(Tensor, FeedForwardActs)> {
    let gate = linear(be, x, &w.wi_0)?;
    let lin = linear(be, x, &w.wi_1)?;
    let mut h = be.zeros(gate.shape());
    be.gated_gelu_forward(&mut h, &gate, &lin)?;
    let seed = dropout.apply(be, &mut h)?;
    let out = linear(be, &h, &w.wo)?;
    Ok((out, FeedForwardActs { gate, lin, h, seed }))
}

/// Backward: accumulates `dx` (N, C) and `dw`.
#[allow(clippy::too_many_arguments)]
pub fn feed_forward_backward(
    be: &dyn Backend,
    w: &T5LayerFF,
    dw: &mut T5LayerFF,
    dout: &Tensor,
    acts: &FeedForwardActs,
    x: &Tensor,
    dx: &mut Tensor,
    dropout: &DropoutPlan,
) -> Result<()> {
    let mut dh = be.zeros(acts.h.shape());
    linear_backward(
        be,
        &mut dh,
        Accumulate::Overwrite,
        &mut dw.wo,
        dout,
        &acts.h,
        &w.wo,
    )?;
    dropout.backward(be, &mut dh, acts.seed)?;
    let (mut dgate, mut dlin) = (be.zeros(dh.shape()), be.zeros(dh.shape()));
    be.gated_gelu_backward(&mut dgate, &mut dlin, &dh, &acts.gate, &acts.lin)?;
    linear_backward(be, dx, Accumulate::Add, &mut dw.wi_0, &dgate, x, &w.wi_0)?;
    linear_backward(be, dx, Accumulate::Add, &mut dw.wi_1, &dlin, x, &w.wi_1)
}
