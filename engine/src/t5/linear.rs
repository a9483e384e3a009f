//! A bias-free linear layer, `y = x·Wᵀ` with the PyTorch weight layout (out, in), built from
//! the backend's one `matmul`: forward `y = x·Wᵀ`; backward `dx (+)= dy·W`, `dW += dyᵀ·x`.

use crate::backend::{Accumulate, Backend, GemmShape, MatView};
use crate::error::Result;
use crate::tensor::Tensor;

/// `out (N, OC) = inp (N, C) · weight (OC, C)ᵀ`.
pub fn linear_forward(
    be: &dyn Backend,
    out: &mut Tensor,
    inp: &Tensor,
    weight: &Tensor,
) -> Result<()> {
    let (oc, c) = (weight.shape()[0], weight.shape()[1]);
    let n = inp.len() / c;
    be.matmul(
        out,
        MatView::rows(oc),
        inp,
        MatView::rows(c),
        weight,
        MatView::rows(c).t(),
        GemmShape {
            batch: [1, 1],
            m: n,
            n: oc,
            k: c,
        },
        Accumulate::Overwrite,
    )
}

/// A fresh `(N, OC)` output of [`linear_forward`].
pub fn linear(be: &dyn Backend, inp: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (oc, c) = (weight.shape()[0], weight.shape()[1]);
    let mut out = be.zeros(&[inp.len() / c, oc]);
    linear_forward(be, &mut out, inp, weight)?;
    Ok(out)
}

/// `dinp (acc)= dout·W` and `dweight += doutᵀ·inp`.
pub fn linear_backward(
    be: &dyn Backend,
    dinp: &mut Tensor,
    dinp_acc: Accumulate,
    dweight: &mut Tensor,
    dout: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
) -> Result<()> {
    let (oc, c) = (weight.shape()[0], weight.shape()[1]);
    let n = inp.len() / c;
    be.matmul(
        dinp,
        MatView::rows(c),
        dout,
        MatView::rows(oc),
        weight,
        MatView::rows(c),
        GemmShape {
            batch: [1, 1],
            m: n,
            n: c,
            k: oc,
        },
        dinp_acc,
    )?;
    be.matmul(
        dweight,
        MatView::rows(c),
        dout,
        MatView::rows(oc).t(),
        inp,
        MatView::rows(c),
        GemmShape {
            batch: [1, 1],
            m: oc,
            n: c,
            k: n,
        },
        Accumulate::Add,
    )
}
