//! The op interface: every primitive the models need, as a forward/backward pair, implemented
//! once per device. The CPU backend ([`crate::cpu::CpuBackend`]) is the reference; the CUDA
//! backend (kernels crate) implements the same trait.
//!
//! Conventions, stated once (after llm.c):
//! - Shapes use B (batch), T (sequence), C (channels), NH (heads), V (vocab).
//! - Parameter gradients accumulate (`+=`), so micro-batches sum into one buffer; activation
//!   gradients returned by a `_backward` accumulate too where the residual stream needs it and
//!   the doc says so, otherwise they overwrite.
//! - Token ids and targets are host slices: they are tiny and the CUDA backend uploads them.
//! - Ops validate shapes and return [`EngineError::Internal`](crate::error::EngineError::Internal) on a mismatch (callers own shapes).
//!
//! The primitive set is small on purpose (STYLE §8): one strided batched `matmul` serves
//! linear layers, attention scores and attention-weighted values, forward and backward.

use crate::error::Result;
use crate::tensor::Tensor;

/// How an op writes its output: replacing it, or adding into it (gradient accumulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulate {
    /// `out = result`.
    Overwrite,
    /// `out += result`.
    Add,
}

/// Which keys a query may attend to, besides the key padding mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// Every key (encoder self-attention, cross-attention).
    Bidirectional,
    /// Keys at or before the query; with `Tq < Tk` (a KV cache) the queries are the last `Tq`
    /// positions, so query `q` sees keys `0..=q + Tk - Tq`.
    Causal,
}

/// A matrix (or a two-level batch of matrices) inside a tensor: element `(b0, b1, r, c)` is at
/// `offset + b0·batch_stride[0] + b1·batch_stride[1] + r·row_stride + c·col_stride`.
///
/// A transpose is a view with the strides swapped, so no op ever copies to transpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatView {
    /// First element.
    pub offset: usize,
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
    /// Steps between batch items, outer then inner.
    pub batch_stride: [usize; 2],
}

impl MatView {
    /// A dense row-major matrix with `cols` columns, unbatched.
    pub fn rows(cols: usize) -> MatView {
        MatView {
            offset: 0,
            row_stride: cols,
            col_stride: 1,
            batch_stride: [0, 0],
        }
    }

    /// The transpose of this view.
    pub fn t(self) -> MatView {
        MatView {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// This view starting at `offset`.
    pub fn at(self, offset: usize) -> MatView {
        MatView { offset, ..self }
    }

    /// This view with batch strides.
    pub fn batched(self, outer: usize, inner: usize) -> MatView {
        MatView {
            batch_stride: [outer, inner],
            ..self
        }
    }

    /// One past the largest element index touched for `batch` × (`rows`, `cols`).
    pub fn extent(&self, batch: [usize; 2], rows: usize, cols: usize) -> usize {
        if batch.contains(&0) || rows == 0 || cols == 0 {
            return 0;
        }
        self.offset
            + (batch[0] - 1) * self.batch_stride[0]
            + (batch[1] - 1) * self.batch_stride[1]
            + (rows - 1) * self.row_stride
            + (cols - 1) * self.col_stride
            + 1
    }
}

/// The sizes of a batched matrix product `C (m×n) = A (m×k) · B (k×n)`, for every batch item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    /// Batch counts, outer then inner (e.g. `[B, NH]`); `[1, 1]` for one product.
    pub batch: [usize; 2],
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

/// One AdamW update's hyper-parameters (PyTorch `torch.optim.AdamW` semantics, decoupled decay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate for this step.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Decoupled weight decay (0 for norms and biases).
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub t: u64,
    /// Multiplies the gradient before the update (global-norm clipping, 1/accumulation).
    pub grad_scale: f32,
}

/// The op interface a device implements.
pub trait Backend: Send + Sync {
    /// Short device name (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// A tensor of zeros on this device.
    fn zeros(&self, shape: &[usize]) -> Tensor;
    /// Copies host data to this device.
    fn upload(&self, shape: &[usize], data: &[f32]) -> Result<Tensor>;
    /// Copies a tensor to host memory.
    fn download(&self, t: &Tensor) -> Result<Vec<f32>>;

    /// `t = 0`.
    fn fill_zero(&self, t: &mut Tensor) -> Result<()>;
    /// `a += b` (same shape).
    fn add_assign(&self, a: &mut Tensor, b: &Tensor) -> Result<()>;
    /// `t *= s`.
    fn scale(&self, t: &mut Tensor, s: f32) -> Result<()>;
    /// `Σ t²`, accumulated in f64 in a fixed order (deterministic for a fixed thread count).
    fn sum_squares(&self, t: &Tensor) -> Result<f64>;

    /// Batched strided product `C (+)= A·B` (see [`MatView`], [`GemmShape`]).
    /// Batch items of C must not overlap.
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        c: &mut Tensor,
        cv: MatView,
        a: &Tensor,
        av: MatView,
        b: &Tensor,
        bv: MatView,
        shape: GemmShape,
        acc: Accumulate,
    ) -> Result<()>;

    /// `out[i, :] = table[ids[i], :]`; out (N, C), table (V, C). Also gathers cache rows.
    fn embedding_forward(&self, out: &mut Tensor, table: &Tensor, ids: &[u32]) -> Result<()>;
    /// `dtable[ids[i], :] += dout[i, :]`.
    fn embedding_backward(&self, dtable: &mut Tensor, dout: &Tensor, ids: &[u32]) -> Result<()>;

    /// T5 RMSNorm: `out = inp · rsqrt(mean(inp²) + eps) · weight`; inp, out (N, C), weight (C),
    /// rstd (N) saved for the backward.
    fn rmsnorm_forward(
        &self,
        out: &mut Tensor,
        rstd: &mut Tensor,
        inp: &Tensor,
        weight: &Tensor,
        eps: f32,
    ) -> Result<()>;
    /// Accumulates `dinp += ∂/∂inp` (the residual stream) and `dweight += ∂/∂weight`.
    fn rmsnorm_backward(
        &self,
        dinp: &mut Tensor,
        dweight: &mut Tensor,
        dout: &Tensor,
        inp: &Tensor,
        weight: &Tensor,
        rstd: &Tensor,
    ) -> Result<()>;

    /// In place over `att` (B, NH, Tq, Tk): scores → probabilities, after adding `bias`
    /// (Tq·Tk, NH), laid out `(q, k, h)` as a relative-position embedding gather produces it,
    /// and masking keys where `key_mask` (B, Tk) is 0 and by `masking`. A row with no visible
    /// key becomes all zeros.
    fn attention_softmax_forward(
        &self,
        att: &mut Tensor,
        bias: Option<&Tensor>,
        key_mask: Option<&Tensor>,
        masking: Masking,
    ) -> Result<()>;
    /// In place over `datt`: ∂/∂probs → ∂/∂scores, given the forward's `probs`; adds the
    /// batch-summed score gradient into `dbias` (Tq·Tk, NH) when given.
    fn attention_softmax_backward(
        &self,
        datt: &mut Tensor,
        probs: &Tensor,
        dbias: Option<&mut Tensor>,
    ) -> Result<()>;

    /// Gated GELU: `out = gelu_new(gate) · lin` (all (N, F)), gelu_new the tanh approximation.
    fn gated_gelu_forward(&self, out: &mut Tensor, gate: &Tensor, lin: &Tensor) -> Result<()>;
    /// Overwrites `dgate`, `dlin` from `dout`.
    fn gated_gelu_backward(
        &self,
        dgate: &mut Tensor,
        dlin: &mut Tensor,
        dout: &Tensor,
        gate: &Tensor,
        lin: &Tensor,
    ) -> Result<()>;

    /// Inverted dropout in place: zeroes element `i` when `hash(seed, i) < p`, scales the rest
    /// by `1/(1-p)`. The mask is a pure function of `(seed, i)`, so the backward is the same
    /// call with the same seed on the gradient.
    fn dropout(&self, t: &mut Tensor, p: f32, seed: u64) -> Result<()>;

    /// Softmax cross-entropy per row of `logits` (N, V) with `label_smoothing`; rows whose
    /// target is negative (ignore index) give 0. Returns the N row losses on the host.
    fn cross_entropy_forward(
        &self,
        logits: &Tensor,
        targets: &[i32],
        label_smoothing: f32,
    ) -> Result<Vec<f32>>;
    /// Overwrites `dlogits` with `scale · ∂(Σ row losses)/∂logits`.
    fn cross_entropy_backward(
        &self,
        dlogits: &mut Tensor,
        logits: &Tensor,
        targets: &[i32],
        label_smoothing: f32,
        scale: f32,
    ) -> Result<()>;

    /// One AdamW update of `param` from `grad`, with moments `m`, `v`.
    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        step: &AdamWStep,
    ) -> Result<()>;
}
