//! The CPU backend: f32 on the host, `gemm` for products, rayon threads over rows, batch items
//! and heads. It is the reference every other backend is checked against, so each op file
//! holds plain, readable loops with `_cpu` names (STYLE §2), parallel only over independent
//! outputs so results do not depend on the thread count.
//!
//! The build targets baseline x86-64, whose SSE2 leaves element-wise loops at most 4 lanes
//! wide; the element-wise ops are therefore compiled twice (`multiversion`) and run their
//! AVX2 + FMA copy where the CPU has it. Results do not depend on the copy: the loops use no
//! fused multiply-adds and reduce in a fixed order.

mod adamw;
mod attention_softmax;
mod cross_entropy;
mod dropout;
mod elementwise;
mod embedding;
mod exp;
mod gated_gelu;
mod matmul;
mod rmsnorm;

use crate::backend::{Accumulate, AdamWStep, Backend, GemmShape, Masking, MatView};
use crate::error::{EngineError, Result};
use crate::tensor::{Storage, Tensor};

/// The CPU backend. Threads come from rayon's global pool (`RAYON_NUM_THREADS`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl CpuBackend {
    /// A CPU backend.
    pub fn new() -> CpuBackend {
        CpuBackend
    }
}

/// The host slice of a tensor.
fn host(t: &Tensor) -> &[f32] {
    match t.storage() {
        Storage::Cpu(v) => v,
    }
}

/// The host slice of a tensor, mutably.
fn host_mut(t: &mut Tensor) -> &mut [f32] {
    match t.storage_mut() {
        Storage::Cpu(v) => v,
    }
}

/// Fails with an internal error unless `ok`: callers own shapes, so a mismatch is a bug.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(EngineError::Internal(what()))
    }
}

/// The size of the last dimension (rows are everything before it).
fn last_dim(t: &Tensor) -> usize {
    t.shape().last().copied().unwrap_or(1)
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn zeros(&self, shape: &[usize]) -> Tensor {
        Tensor::zeros(shape)
    }

    fn upload(&self, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        ensure(shape.iter().product::<usize>() == data.len(), || {
            format!("upload of {} values into shape {shape:?}", data.len())
        })?;
        Ok(Tensor::from_vec(shape, data.to_vec()))
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        Ok(host(t).to_vec())
    }

    fn fill_zero(&self, t: &mut Tensor) -> Result<()> {
        host_mut(t).fill(0.0);
        Ok(())
    }

    fn add_assign(&self, a: &mut Tensor, b: &Tensor) -> Result<()> {
        ensure(a.shape() == b.shape(), || {
            format!("add_assign {:?} += {:?}", a.shape(), b.shape())
        })?;
        elementwise::add_assign_cpu(host_mut(a), host(b));
        Ok(())
    }

    fn scale(&self, t: &mut Tensor, s: f32) -> Result<()> {
        elementwise::scale_cpu(host_mut(t), s);
        Ok(())
    }

    fn sum_squares(&self, t: &Tensor) -> Result<f64> {
        Ok(elementwise::sum_squares_cpu(host(t)))
    }

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
    ) -> Result<()> {
        let GemmShape { batch, m, n, k } = shape;
        for (name, len, view, rows, cols) in [
            ("C", c.len(), cv, m, n),
            ("A", a.len(), av, m, k),
            ("B", b.len(), bv, k, n),
        ] {
            ensure(view.extent(batch, rows, cols) <= len, || {
                format!(
                    "matmul operand {name} view {view:?} of {shape:?} exceeds its {len} elements"
                )
            })?;
        }
        matmul::matmul_cpu(host_mut(c), cv, host(a), av, host(b), bv, shape, acc);
        Ok(())
    }

    fn embedding_forward(&self, out: &mut Tensor, table: &Tensor, ids: &[u32]) -> Result<()> {
        let c = last_dim(table);
        let rows = table.len() / c.max(1);
        ensure(out.len() == ids.len() * c && last_dim(out) == c, || {
            format!(
                "embedding out {:?} for {} ids of width {c}",
                out.shape(),
                ids.len()
            )
        })?;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= rows) {
            return Err(EngineError::input(
                format!("token id {bad}"),
                format!("outside the embedding table of {rows} rows"),
            ));
        }
        embedding::embedding_forward_cpu(host_mut(out), host(table), ids, c);
        Ok(())
    }

    fn embedding_backward(&self, dtable: &mut Tensor, dout: &Tensor, ids: &[u32]) -> Result<()> {
        let c = last_dim(dtable);
        ensure(dout.len() == ids.len() * c, || {
            format!(
                "embedding dout {:?} for {} ids of width {c}",
                dout.shape(),
                ids.len()
            )
        })?;
        embedding::embedding_backward_cpu(host_mut(dtable), host(dout), ids, c);
        Ok(())
    }

    fn rmsnorm_forward(
        &self,
        out: &mut Tensor,
        rstd: &mut Tensor,
        inp: &Tensor,
        weight: &Tensor,
        eps: f32,
    ) -> Result<()> {
        let c = weight.len();
        ensure(
            out.len() == inp.len() && last_dim(inp) == c && rstd.len() * c == inp.len(),
            || {
                format!(
                    "rmsnorm {:?} weight {:?} rstd {:?}",
                    inp.shape(),
                    weight.shape(),
                    rstd.shape()
                )
            },
        )?;
        rmsnorm::rmsnorm_forward_cpu(host_mut(out), host_mut(rstd), host(inp), host(weight), eps);
        Ok(())
    }

    fn rmsnorm_backward(
        &self,
        dinp: &mut Tensor,
        dweight: &mut Tensor,
        dout: &Tensor,
        inp: &Tensor,
        weight: &Tensor,
        rstd: &Tensor,
    ) -> Result<()> {
        ensure(
            dinp.len() == inp.len() && dout.len() == inp.len() && dweight.len() == weight.len(),
            || format!("rmsnorm backward {:?} {:?}", dinp.shape(), inp.shape()),
        )?;
        rmsnorm::rmsnorm_backward_cpu(
            host_mut(dinp),
            host_mut(dweight),
            host(dout),
            host(inp),
            host(weight),
            host(rstd),
        );
        Ok(())
    }

    fn attention_softmax_forward(
        &self,
        att: &mut Tensor,
        bias: Option<&Tensor>,
        key_mask: Option<&Tensor>,
        masking: Masking,
    ) -> Result<()> {
        let dims = attention_softmax::Dims::of(att)?;
        if let Some(bias) = bias {
            ensure(bias.len() == dims.tq * dims.tk * dims.nh, || {
                format!("attention bias {:?} for {dims:?}", bias.shape())
            })?;
        }
        if let Some(mask) = key_mask {
            ensure(mask.len() == dims.b * dims.tk, || {
                format!("key mask {:?} for {dims:?}", mask.shape())
            })?;
        }
        attention_softmax::attention_softmax_forward_cpu(
            host_mut(att),
            dims,
            bias.map(host),
            key_mask.map(host),
            masking,
        );
        Ok(())
    }

    fn attention_softmax_backward(
        &self,
        datt: &mut Tensor,
        probs: &Tensor,
        dbias: Option<&mut Tensor>,
    ) -> Result<()> {
        let dims = attention_softmax::Dims::of(probs)?;
        ensure(datt.shape() == probs.shape(), || {
            format!("datt {:?} vs probs {:?}", datt.shape(), probs.shape())
        })?;
        if let Some(dbias) = &dbias {
            ensure(dbias.len() == dims.tq * dims.tk * dims.nh, || {
                format!("dbias {:?} for {dims:?}", dbias.shape())
            })?;
        }
        attention_softmax::attention_softmax_backward_cpu(
            host_mut(datt),
            host(probs),
            dims,
            dbias.map(host_mut),
        );
        Ok(())
    }

    fn gated_gelu_forward(&self, out: &mut Tensor, gate: &Tensor, lin: &Tensor) -> Result<()> {
        ensure(out.len() == gate.len() && gate.len() == lin.len(), || {
            format!(
                "gated_gelu {:?} {:?} {:?}",
                out.shape(),
                gate.shape(),
                lin.shape()
            )
        })?;
        gated_gelu::gated_gelu_forward_cpu(host_mut(out), host(gate), host(lin));
        Ok(())
    }

    fn gated_gelu_backward(
        &self,
        dgate: &mut Tensor,
        dlin: &mut Tensor,
        dout: &Tensor,
        gate: &Tensor,
        lin: &Tensor,
    ) -> Result<()> {
        ensure(
            [dgate.len(), dlin.len(), dout.len(), lin.len()]
                .iter()
                .all(|&l| l == gate.len()),
            || format!("gated_gelu backward {:?}", gate.shape()),
        )?;
        gated_gelu::gated_gelu_backward_cpu(
            host_mut(dgate),
            host_mut(dlin),
            host(dout),
            host(gate),
            host(lin),
        );
        Ok(())
    }

    fn dropout(&self, t: &mut Tensor, p: f32, seed: u64) -> Result<()> {
        ensure((0.0..1.0).contains(&p), || {
            format!("dropout probability {p}")
        })?;
        dropout::dropout_cpu(host_mut(t), p, seed);
        Ok(())
    }

    fn cross_entropy_forward(
        &self,
        logits: &Tensor,
        targets: &[i32],
        label_smoothing: f32,
    ) -> Result<Vec<f32>> {
        let v = last_dim(logits);
        cross_entropy::check_targets(logits.len(), v, targets)?;
        Ok(cross_entropy::cross_entropy_forward_cpu(
            host(logits),
            v,
            targets,
            label_smoothing,
        ))
    }

    fn cross_entropy_backward(
        &self,
        dlogits: &mut Tensor,
        logits: &Tensor,
        targets: &[i32],
        label_smoothing: f32,
        scale: f32,
    ) -> Result<()> {
        let v = last_dim(logits);
        cross_entropy::check_targets(logits.len(), v, targets)?;
        ensure(dlogits.len() == logits.len(), || {
            format!(
                "dlogits {:?} vs logits {:?}",
                dlogits.shape(),
                logits.shape()
            )
        })?;
        cross_entropy::cross_entropy_backward_cpu(
            host_mut(dlogits),
            host(logits),
            v,
            targets,
            label_smoothing,
            scale,
        );
        Ok(())
    }

    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        step: &AdamWStep,
    ) -> Result<()> {
        ensure(
            [grad.len(), m.len(), v.len()]
                .iter()
                .all(|&l| l == param.len()),
            || format!("adamw param {:?}", param.shape()),
        )?;
        adamw::adamw_step_cpu(host_mut(param), host(grad), host_mut(m), host_mut(v), step);
        Ok(())
    }
}
