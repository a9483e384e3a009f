//! Batched GEMM on tensor cores (`cu/gemm.cu`): `C = alpha·op(A)·op(B) + beta·C`, bf16 inputs,
//! fp32 accumulation, bf16 or fp32 output. Row-major, dense batches (batch b of A starts at
//! b·M·K, and so on). [`Layout`] names which operand is transposed:
//!
//! | layout | A stored | B stored | C       | T5 use                                 |
//! |--------|----------|----------|---------|----------------------------------------|
//! | `Nt`   | (M, K)   | (N, K)   | A·Bᵀ    | linear forward `x·Wᵀ`, scores `Q·Kᵀ`    |
//! | `Nn`   | (M, K)   | (K, N)   | A·B     | input grad `dy·W`, `P·V`                |
//! | `Tn`   | (K, M)   | (K, N)   | Aᵀ·B    | weight grad `dyᵀ·x` (beta = 1 accumulates) |

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{as_i32, expect_len};
use cudarc::driver::{CudaView, CudaViewMut, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};
use half::bf16;

/// Which operands are stored transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// C = A·Bᵀ, A (M, K), B (N, K).
    Nt,
    /// C = A·B, A (M, K), B (K, N).
    Nn,
    /// C = Aᵀ·B, A (K, M), B (K, N).
    Tn,
}

impl Layout {
    fn op(self) -> &'static str {
        match self {
            Layout::Nt => "gemm_nt",
            Layout::Nn => "gemm_nn",
            Layout::Tn => "gemm_tn",
        }
    }
}

/// Problem size: `batch` independent (M, N, K) products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The reduced dimension.
    pub k: usize,
    /// Number of products.
    pub batch: usize,
}

impl GemmShape {
    /// Multiply-adds ×2: the FLOP count a benchmark divides by.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batch) as f64
    }
}

/// The kernel variants (see the header of `cu/gemm.cu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmVariant {
    /// Synchronous shared-memory staging; any layout, shape and alignment.
    V1,
    /// `cp.async` double buffering; `Nt` only, K % 8 == 0, 16-byte aligned operands.
    V2,
}

impl GemmVariant {
    /// Every variant, for benchmarks.
    pub const ALL: [GemmVariant; 2] = [GemmVariant::V1, GemmVariant::V2];

    fn number(self) -> u8 {
        match self {
            GemmVariant::V1 => 1,
            GemmVariant::V2 => 2,
        }
    }
}

/// Element types the GEMM writes (and the strided GEMM also reads).
pub trait GemmOutput: DeviceRepr + sealed::Sealed {
    /// The dtype part of the kernel name.
    const DTYPE: Dtype;
}
impl GemmOutput for bf16 {
    const DTYPE: Dtype = Dtype::Bf16;
}
impl GemmOutput for f32 {
    const DTYPE: Dtype = Dtype::F32;
}
mod sealed {
    pub trait Sealed {}
    impl Sealed for half::bf16 {}
    impl Sealed for f32 {}
}

/// CPU reference: plain loops, f32 accumulation.
pub fn gemm_forward_cpu(
    layout: Layout,
    shape: GemmShape,
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    alpha: f32,
    beta: f32,
) {
    let GemmShape { m, n, k, batch } = shape;
    for z in 0..batch {
        let (a, b) = (
            &a[z * m * k..(z + 1) * m * k],
            &b[z * n * k..(z + 1) * n * k],
        );
        let c = &mut c[z * m * n..(z + 1) * m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    let av = match layout {
                        Layout::Nt | Layout::Nn => a[i * k + p],
                        Layout::Tn => a[p * m + i],
                    };
                    let bv = match layout {
                        Layout::Nt => b[j * k + p],
                        Layout::Nn | Layout::Tn => b[p * n + j],
                    };
                    acc += av * bv;
                }
                let old = if beta != 0.0 {
                    beta * c[i * n + j]
                } else {
                    0.0
                };
                c[i * n + j] = alpha * acc + old;
            }
        }
    }
}

/// Device GEMM with the fastest variant that accepts the operands.
#[allow(clippy::too_many_arguments)]
pub fn gemm_forward<O: GemmOutput>(
    gpu: &Gpu,
    layout: Layout,
    shape: GemmShape,
    c: &mut CudaViewMut<'_, O>,
    a: &CudaView<'_, bf16>,
    b: &CudaView<'_, bf16>,
    alpha: f32,
    beta: f32,
) -> Result<()> {
    let variant = if v2_accepts(gpu, layout, shape, a, b) {
        GemmVariant::V2
    } else {
        GemmVariant::V1
    };
    gemm_forward_variant(gpu, variant, layout, shape, c, a, b, alpha, beta)
}

fn v2_accepts(
    gpu: &Gpu,
    layout: Layout,
    shape: GemmShape,
    a: &CudaView<'_, bf16>,
    b: &CudaView<'_, bf16>,
) -> bool {
    let (pa, _ga) = a.device_ptr(gpu.stream());
    let (pb, _gb) = b.device_ptr(gpu.stream());
    layout == Layout::Nt
        && shape.k.is_multiple_of(8)
        && pa.is_multiple_of(16)
        && pb.is_multiple_of(16)
}

/// Device GEMM with an explicit variant (tests and benchmarks).
#[allow(clippy::too_many_arguments)]
pub fn gemm_forward_variant<O: GemmOutput>(
    gpu: &Gpu,
    variant: GemmVariant,
    layout: Layout,
    shape: GemmShape,
    c: &mut CudaViewMut<'_, O>,
    a: &CudaView<'_, bf16>,
    b: &CudaView<'_, bf16>,
    alpha: f32,
    beta: f32,
) -> Result<()> {
    const OP: &str = "gemm_forward";
    let GemmShape { m, n, k, batch } = shape;
    expect_len(OP, "a", a.len(), batch * m * k)?;
    expect_len(OP, "b", b.len(), batch * n * k)?;
    expect_len(OP, "c", c.len(), batch * m * n)?;
    if variant == GemmVariant::V2 && !v2_accepts(gpu, layout, shape, a, b) {
        return Err(bad_input!(
            OP,
            "variant v2 needs layout Nt, K % 8 == 0 and 16-byte aligned A and B \
             (got {layout:?}, K = {k})"
        ));
    }
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    let name = kernel_name(layout.op(), Dir::Forward, variant.number(), O::DTYPE);
    let f = gpu.function(Family::Gemm, &name)?;
    let (m32, n32, k32) = (
        as_i32(OP, "M", m)?,
        as_i32(OP, "N", n)?,
        as_i32(OP, "K", k)?,
    );
    let batch32 = as_i32(OP, "batch", batch)? as u32;
    if batch32 > 65_535 {
        return Err(bad_input!(
            OP,
            "batch = {batch} exceeds the grid's z limit 65535"
        ));
    }
    let strides = [(m * k) as i64, (n * k) as i64, (m * n) as i64];
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(128) as u32, m.div_ceil(128) as u32, batch32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(c).arg(a).arg(b).arg(&m32).arg(&n32).arg(&k32);
    launch
        .arg(&strides[0])
        .arg(&strides[1])
        .arg(&strides[2])
        .arg(&alpha)
        .arg(&beta);
    // SAFETY: arguments match `(OutT* C, const bf16* A, const bf16* B, int M, int N, int K,
    // long long stride_a, long long stride_b, long long stride_c, float alpha, float beta)`;
    // lengths checked; block 256 is what the kernel's warp grid assumes.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn cpu_layouts_agree_on_a_known_product() {
        // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]]: A·B = [[19, 22], [43, 50]].
        let shape = GemmShape {
            m: 2,
            n: 2,
            k: 2,
            batch: 1,
        };
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
        let (at, bt) = ([1.0, 3.0, 2.0, 4.0], [5.0, 7.0, 6.0, 8.0]);
        let want = [19.0, 22.0, 43.0, 50.0];
        for (layout, a, b) in [(Layout::Nn, a, b), (Layout::Nt, a, bt), (Layout::Tn, at, b)] {
            let mut c = [1.0; 4];
            gemm_forward_cpu(layout, shape, &mut c, &a, &b, 1.0, 0.0);
            assert_eq!(c, want, "{layout:?}");
        }
        let mut c = [1.0; 4];
        gemm_forward_cpu(Layout::Nn, shape, &mut c, &a, &b, 2.0, 1.0);
        assert_eq!(c, [39.0, 45.0, 87.0, 101.0]);
    }

    fn check<O: GemmOutput + Clone + Default>(
        gpu: &Gpu,
        variant: GemmVariant,
        layout: Layout,
        shape: GemmShape,
        to_f32: fn(&O) -> f32,
        from_f32: fn(f32) -> O,
        tol: Tolerance,
    ) {
        let GemmShape { m, n, k, batch } = shape;
        let a = bf16_round(&random(1, batch * m * k, -1.0, 1.0));
        let b = bf16_round(&random(2, batch * n * k, -1.0, 1.0));
        let c0: Vec<f32> = random(3, batch * m * n, -1.0, 1.0)
            .into_iter()
            .map(|v| to_f32(&from_f32(v)))
            .collect();
        let (da, db) = (upload_bf16(gpu, &a), upload_bf16(gpu, &b));
        let c0_dev: Vec<O> = c0.iter().map(|&v| from_f32(v)).collect();
        let mut dc = upload(gpu, &c0_dev);
        let (alpha, beta) = (0.5, 1.0);
        gemm_forward_variant(
            gpu,
            variant,
            layout,
            shape,
            &mut dc.as_view_mut(),
            &da.as_view(),
            &db.as_view(),
            alpha,
            beta,
        )
        .unwrap();
        let got: Vec<f32> = download(gpu, &dc).iter().map(to_f32).collect();
        let mut want = c0;
        gemm_forward_cpu(layout, shape, &mut want, &a, &b, alpha, beta);
        assert_close(
            &format!("{variant:?} {layout:?} {shape:?}"),
            &got,
            &want,
            tol,
        );
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("gemm::gpu_matches_cpu") else {
            return;
        };
        let shapes = [
            GemmShape {
                m: 1,
                n: 1,
                k: 1,
                batch: 1,
            },
            GemmShape {
                m: 17,
                n: 33,
                k: 65,
                batch: 2,
            },
            GemmShape {
                m: 128,
                n: 128,
                k: 32,
                batch: 1,
            },
            GemmShape {
                m: 300,
                n: 200,
                k: 136,
                batch: 3,
            },
            GemmShape {
                m: 512,
                n: 384,
                k: 512,
                batch: 1,
            },
        ];
        for shape in shapes {
            for layout in [Layout::Nt, Layout::Nn, Layout::Tn] {
                // fp32 output: bf16 products are exact in fp32; only the summation order
                // differs, so the error grows with K.
                let f32_tol = Tolerance {
                    atol: 1e-5 * shape.k as f32,
                    rtol: 1e-5,
                };
                check::<f32>(&gpu, GemmVariant::V1, layout, shape, |v| *v, |v| v, f32_tol);
                check::<bf16>(
                    &gpu,
                    GemmVariant::V1,
                    layout,
                    shape,
                    |v| v.to_f32(),
                    bf16::from_f32,
                    BF16,
                );
            }
            if shape.k.is_multiple_of(8) {
                let f32_tol = Tolerance {
                    atol: 1e-5 * shape.k as f32,
                    rtol: 1e-5,
                };
                check::<f32>(
                    &gpu,
                    GemmVariant::V2,
                    Layout::Nt,
                    shape,
                    |v| *v,
                    |v| v,
                    f32_tol,
                );
                check::<bf16>(
                    &gpu,
                    GemmVariant::V2,
                    Layout::Nt,
                    shape,
                    |v| v.to_f32(),
                    bf16::from_f32,
                    BF16,
                );
            }
        }
    }
}
