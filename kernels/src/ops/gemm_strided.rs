//! GEMM over arbitrary strided views (`gemm_strided_*` in `cu/gemm.cu`): the engine's
//! `matmul(C, A, B)` with `MatView`s, where a transpose is a view with swapped strides and a
//! two-level batch walks heads inside sequences. Same tensor-core tiling as
//! [`crate::ops::gemm`]'s v1; fp32 inputs are rounded to bf16 while staged.

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::as_i32;
use crate::ops::gemm::GemmOutput;
use cudarc::driver::{CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg};

/// A matrix view: element `(b0, b1, r, c)` is at
/// `offset + b0·batch_stride[0] + b1·batch_stride[1] + r·row_stride + c·col_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatLayout {
    /// First element.
    pub offset: usize,
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
    /// Steps between batch items, outer then inner.
    pub batch_stride: [usize; 2],
}

impl MatLayout {
    /// A dense row-major (rows, cols) matrix, unbatched.
    pub fn rows(cols: usize) -> MatLayout {
        MatLayout {
            offset: 0,
            row_stride: cols,
            col_stride: 1,
            batch_stride: [0, 0],
        }
    }

    /// The transpose.
    pub fn t(self) -> MatLayout {
        MatLayout {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    fn index(&self, b: [usize; 2], r: usize, c: usize) -> usize {
        self.offset
            + b[0] * self.batch_stride[0]
            + b[1] * self.batch_stride[1]
            + r * self.row_stride
            + c * self.col_stride
    }

    /// One past the largest index touched by a `batch` × (rows, cols) walk (0 when empty).
    fn extent(&self, batch: [usize; 2], rows: usize, cols: usize) -> usize {
        if batch.contains(&0) || rows == 0 || cols == 0 {
            return 0;
        }
        self.index([batch[0] - 1, batch[1] - 1], rows - 1, cols - 1) + 1
    }

    fn to_c(self) -> MatStridesC {
        MatStridesC {
            offset: self.offset as i64,
            row: self.row_stride as i64,
            col: self.col_stride as i64,
            batch0: self.batch_stride[0] as i64,
            batch1: self.batch_stride[1] as i64,
        }
    }
}

/// `struct MatStrides` in gemm.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct MatStridesC {
    offset: i64,
    row: i64,
    col: i64,
    batch0: i64,
    batch1: i64,
}

// SAFETY: `#[repr(C)]` struct of five i64, laid out like the CUDA struct.
unsafe impl DeviceRepr for MatStridesC {}

/// Sizes of `C (m×n) = A (m×k)·B (k×n)` for each of `batch[0]·batch[1]` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StridedShape {
    /// Batch counts, outer then inner.
    pub batch: [usize; 2],
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

impl StridedShape {
    /// 2·m·n·k per batch item.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch[0] * self.batch[1] * self.m * self.n * self.k) as f64
    }
}

/// CPU reference: `C = alpha·A·B + beta·C` over the views, plain loops in f32.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided_forward_cpu(
    c: &mut [f32],
    cv: MatLayout,
    a: &[f32],
    av: MatLayout,
    b: &[f32],
    bv: MatLayout,
    shape: StridedShape,
    alpha: f32,
    beta: f32,
) {
    for b0 in 0..shape.batch[0] {
        for b1 in 0..shape.batch[1] {
            let z = [b0, b1];
            for i in 0..shape.m {
                for j in 0..shape.n {
                    let acc: f32 = (0..shape.k)
                        .map(|p| a[av.index(z, i, p)] * b[bv.index(z, p, j)])
                        .sum();
                    let ci = cv.index(z, i, j);
                    let old = if beta != 0.0 { beta * c[ci] } else { 0.0 };
                    c[ci] = alpha * acc + old;
                }
            }
        }
    }
}

/// Device `C = alpha·A·B + beta·C` over strided views (`beta = 1` accumulates). Batch items of
/// C must not overlap.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided_forward<T: GemmOutput>(
    gpu: &Gpu,
    c: &mut CudaViewMut<'_, T>,
    cv: MatLayout,
    a: &CudaView<'_, T>,
    av: MatLayout,
    b: &CudaView<'_, T>,
    bv: MatLayout,
    shape: StridedShape,
    alpha: f32,
    beta: f32,
) -> Result<()> {
    const OP: &str = "gemm_strided_forward";
    let StridedShape { batch, m, n, k } = shape;
    for (arg, len, extent) in [
        ("a", a.len(), av.extent(batch, m, k)),
        ("b", b.len(), bv.extent(batch, k, n)),
        ("c", c.len(), cv.extent(batch, m, n)),
    ] {
        if extent > len {
            return Err(bad_input!(
                OP,
                "the view of `{arg}` reaches element {extent} but the buffer holds {len}"
            ));
        }
    }
    let items = batch[0] * batch[1];
    if items == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    if items > 65_535 {
        return Err(bad_input!(
            OP,
            "{items} batch items exceed the grid's z limit 65535"
        ));
    }
    let op = match T::DTYPE {
        Dtype::Bf16 => "gemm_strided_bf16",
        Dtype::F32 => "gemm_strided_f32",
    };
    let name = kernel_name(op, Dir::Forward, 1, T::DTYPE);
    let f = gpu.function(Family::Gemm, &name)?;
    let (m32, n32, k32) = (
        as_i32(OP, "M", m)?,
        as_i32(OP, "N", n)?,
        as_i32(OP, "K", k)?,
    );
    let batch1 = as_i32(OP, "batch[1]", batch[1])?;
    let (cs, as_, bs) = (cv.to_c(), av.to_c(), bv.to_c());
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(128) as u32, m.div_ceil(128) as u32, items as u32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(c).arg(&cs).arg(a).arg(&as_).arg(b).arg(&bs);
    launch
        .arg(&m32)
        .arg(&n32)
        .arg(&k32)
        .arg(&batch1)
        .arg(&alpha)
        .arg(&beta);
    // SAFETY: arguments match `(T* C, MatStrides cv, const T* A, MatStrides av, const T* B,
    // MatStrides bv, int M, int N, int K, int batch1, float alpha, float beta)`; every view's
    // extent was checked against its buffer.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gemm::{GemmShape, Layout, gemm_forward_cpu};
    use crate::testing::*;
    use half::bf16;

    /// Dense views reproduce the three fixed layouts of the plain GEMM.
    #[test]
    fn cpu_views_agree_with_the_dense_layouts() {
        let (m, n, k) = (3, 4, 5);
        let a = random(1, m * k, -1.0, 1.0);
        let b = random(2, n * k, -1.0, 1.0);
        let shape = StridedShape {
            batch: [1, 1],
            m,
            n,
            k,
        };
        let dense = GemmShape { m, n, k, batch: 1 };
        for (layout, av, bv) in [
            (Layout::Nt, MatLayout::rows(k), MatLayout::rows(k).t()),
            (Layout::Nn, MatLayout::rows(k), MatLayout::rows(n)),
            (Layout::Tn, MatLayout::rows(m).t(), MatLayout::rows(n)),
        ] {
            let mut want = vec![0.0; m * n];
            gemm_forward_cpu(layout, dense, &mut want, &a, &b, 1.0, 0.0);
            let mut got = vec![0.0; m * n];
            gemm_strided_forward_cpu(
                &mut got,
                MatLayout::rows(n),
                &a,
                av,
                &b,
                bv,
                shape,
                1.0,
                0.0,
            );
            assert_eq!(got, want, "{layout:?}");
        }
    }

    /// Attention's score product over (B, T, NH, HS) tensors: S[b, h] = Q[b, :, h]·K[b, :, h]ᵀ.
    fn head_views(t: usize, nh: usize, hs: usize) -> (MatLayout, MatLayout, MatLayout) {
        let q = MatLayout {
            offset: 0,
            row_stride: nh * hs,
            col_stride: 1,
            batch_stride: [t * nh * hs, hs],
        };
        let s = MatLayout {
            offset: 0,
            row_stride: t,
            col_stride: 1,
            batch_stride: [nh * t * t, t * t],
        };
        (q, q.t(), s)
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("gemm_strided::gpu_matches_cpu") else {
            return;
        };
        let (bsz, t, nh, hs) = (2, 37, 3, 40);
        let (qv, kv_t, sv) = head_views(t, nh, hs);
        let shape = StridedShape {
            batch: [bsz, nh],
            m: t,
            n: t,
            k: hs,
        };
        let q = bf16_round(&random(1, bsz * t * nh * hs, -1.0, 1.0));
        let k = bf16_round(&random(2, bsz * t * nh * hs, -1.0, 1.0));
        let s0 = bf16_round(&random(3, bsz * nh * t * t, -1.0, 1.0));
        let mut want = s0.clone();
        gemm_strided_forward_cpu(&mut want, sv, &q, qv, &k, kv_t, shape, 1.0, 1.0);

        // fp32 storage: inputs are bf16-exact, products exact in fp32; only the order differs.
        let (dq, dk) = (upload(&gpu, &q), upload(&gpu, &k));
        let mut ds = upload(&gpu, &s0);
        gemm_strided_forward(
            &gpu,
            &mut ds.as_view_mut(),
            sv,
            &dq.as_view(),
            qv,
            &dk.as_view(),
            kv_t,
            shape,
            1.0,
            1.0,
        )
        .unwrap();
        let tol = Tolerance {
            atol: 1e-5 * hs as f32,
            rtol: 1e-5,
        };
        assert_close("scores f32", &download(&gpu, &ds), &want, tol);

        let (dq, dk) = (upload_bf16(&gpu, &q), upload_bf16(&gpu, &k));
        let mut ds = upload_bf16(&gpu, &s0);
        gemm_strided_forward::<bf16>(
            &gpu,
            &mut ds.as_view_mut(),
            sv,
            &dq.as_view(),
            qv,
            &dk.as_view(),
            kv_t,
            shape,
            1.0,
            1.0,
        )
        .unwrap();
        assert_close("scores bf16", &download_bf16(&gpu, &ds), &want, BF16);
    }
}
