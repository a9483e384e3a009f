//! The unfused attention's middle step (`cu/attention_softmax.cu`): in place over the
//! (B, NH, Tq, Tk) scores, add the T5 bias (Tq·Tk, NH) laid out (q, k, h), mask padded keys
//! (key_mask (B, Tk), 0 = padding) and, when causal, keys k > q + Tk − Tq; then softmax. Rows
//! with no visible key become zeros. The fused [`crate::ops::attention`] is measured against
//! this path (GEMM → softmax → GEMM), and it is the engine's `attention_softmax` op.

use crate::error::{DriverContext, Result};
use crate::family::{Dir, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, as_i32, expect_len};
use crate::ops::attention::Masking;
use crate::ops::gemm::GemmOutput;
use cudarc::driver::{CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg};

/// Rows (warps) per block, as in attention_softmax.cu.
const ROWS: usize = 4;

/// The score tensor's (B, NH, Tq, Tk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreShape {
    /// B.
    pub batch: usize,
    /// NH.
    pub heads: usize,
    /// Tq.
    pub q_len: usize,
    /// Tk.
    pub k_len: usize,
}

impl ScoreShape {
    fn elems(&self) -> usize {
        self.batch * self.heads * self.q_len * self.k_len
    }
    fn rows(&self) -> usize {
        self.batch * self.heads * self.q_len
    }
    /// Keys `0..last` are not hidden by the causal mask for query `q`.
    fn last(&self, q: usize, masking: Masking) -> usize {
        match masking {
            Masking::Bidirectional => self.k_len,
            Masking::Causal => (q + 1 + self.k_len)
                .saturating_sub(self.q_len)
                .min(self.k_len),
        }
    }
}

/// `struct SoftmaxShape` in attention_softmax.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SoftmaxShapeC {
    b: i32,
    nh: i32,
    tq: i32,
    tk: i32,
}

// SAFETY: `#[repr(C)]` struct of four i32, laid out like the CUDA struct.
unsafe impl DeviceRepr for SoftmaxShapeC {}

impl ScoreShape {
    fn to_c(self, op: &'static str) -> Result<SoftmaxShapeC> {
        Ok(SoftmaxShapeC {
            b: as_i32(op, "batch", self.batch)?,
            nh: as_i32(op, "heads", self.heads)?,
            tq: as_i32(op, "q_len", self.q_len)?,
            tk: as_i32(op, "k_len", self.k_len)?,
        })
    }
}

/// CPU reference forward, in place over `att` (B, NH, Tq, Tk).
pub fn attention_softmax_forward_cpu(
    att: &mut [f32],
    shape: ScoreShape,
    bias: Option<&[f32]>,
    key_mask: Option<&[f32]>,
    masking: Masking,
) {
    let ScoreShape {
        heads,
        q_len,
        k_len,
        ..
    } = shape;
    for (row, s) in att.chunks_mut(k_len).enumerate() {
        let (q, h, b) = (row % q_len, (row / q_len) % heads, row / (q_len * heads));
        let last = shape.last(q, masking);
        let visible = |k: usize| k < last && key_mask.is_none_or(|m| m[b * k_len + k] != 0.0);
        if let Some(bias) = bias {
            for (k, x) in s.iter_mut().enumerate() {
                *x += bias[(q * k_len + k) * heads + h];
            }
        }
        let max = (0..k_len)
            .filter(|&k| visible(k))
            .map(|k| s[k])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = (0..k_len)
            .filter(|&k| visible(k))
            .map(|k| (s[k] - max).exp())
            .sum();
        for (k, x) in s.iter_mut().enumerate() {
            *x = if visible(k) {
                (*x - max).exp() / sum
            } else {
                0.0
            };
        }
    }
}

/// CPU reference backward, in place over `datt`: `ds = p·(dp − Σ p·dp)`; `dbias` (Tq·Tk, NH)
/// += the batch sum of `ds`.
pub fn attention_softmax_backward_cpu(
    datt: &mut [f32],
    probs: &[f32],
    shape: ScoreShape,
    dbias: Option<&mut [f32]>,
) {
    let ScoreShape {
        heads,
        q_len,
        k_len,
        ..
    } = shape;
    for (dp, p) in datt.chunks_mut(k_len).zip(probs.chunks(k_len)) {
        let dot: f32 = dp.iter().zip(p).map(|(a, b)| a * b).sum();
        dp.iter_mut().zip(p).for_each(|(g, p)| *g = p * (*g - dot));
    }
    if let Some(dbias) = dbias {
        for (row, ds) in datt.chunks(k_len).enumerate() {
            let (q, h) = (row % q_len, (row / q_len) % heads);
            for (k, g) in ds.iter().enumerate() {
                dbias[(q * k_len + k) * heads + h] += g;
            }
        }
    }
}

fn config(shape: ScoreShape) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (shape.rows().div_ceil(ROWS).max(1) as u32, 1, 1),
        block_dim: ((ROWS * 32) as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Device forward, in place over `att` (B, NH, Tq, Tk).
pub fn attention_softmax_forward<T: GemmOutput>(
    gpu: &Gpu,
    att: &mut CudaViewMut<'_, T>,
    shape: ScoreShape,
    bias: Option<&CudaView<'_, T>>,
    key_mask: Option<&CudaView<'_, T>>,
    masking: Masking,
) -> Result<()> {
    const OP: &str = "attention_softmax_forward";
    expect_len(OP, "att", att.len(), shape.elems())?;
    if let Some(b) = bias {
        expect_len(OP, "bias", b.len(), shape.q_len * shape.k_len * shape.heads)?;
    }
    if let Some(m) = key_mask {
        expect_len(OP, "key_mask", m.len(), shape.batch * shape.k_len)?;
    }
    if shape.elems() == 0 {
        return Ok(());
    }
    let name = kernel_name("attention_softmax", Dir::Forward, 1, T::DTYPE);
    let f = gpu.function(Family::AttentionSoftmax, &name)?;
    let shc = shape.to_c(OP)?;
    let causal = i32::from(masking == Masking::Causal);
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(att);
    match bias {
        Some(b) => launch.arg(b),
        None => launch.arg(&NULL),
    };
    match key_mask {
        Some(m) => launch.arg(m),
        None => launch.arg(&NULL),
    };
    launch.arg(&shc).arg(&causal);
    // SAFETY: arguments match `(T* att, const T* bias, const T* key_mask, SoftmaxShape sh,
    // int causal)`; lengths checked above.
    unsafe { launch.launch(config(shape)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// Device backward, in place over `datt`; `dbias` (Tq·Tk, NH) fp32 +=.
pub fn attention_softmax_backward<T: GemmOutput>(
    gpu: &Gpu,
    datt: &mut CudaViewMut<'_, T>,
    probs: &CudaView<'_, T>,
    shape: ScoreShape,
    dbias: Option<&mut CudaViewMut<'_, f32>>,
) -> Result<()> {
    const OP: &str = "attention_softmax_backward";
    expect_len(OP, "datt", datt.len(), shape.elems())?;
    expect_len(OP, "probs", probs.len(), shape.elems())?;
    if shape.elems() == 0 {
        return Ok(());
    }
    let name = kernel_name("attention_softmax", Dir::Backward, 1, T::DTYPE);
    let f = gpu.function(Family::AttentionSoftmax, &name)?;
    let shc = shape.to_c(OP)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(datt);
    match dbias {
        Some(d) => {
            expect_len(
                OP,
                "dbias",
                d.len(),
                shape.q_len * shape.k_len * shape.heads,
            )?;
            launch.arg(d)
        }
        None => launch.arg(&NULL),
    };
    launch.arg(probs).arg(&shc);
    // SAFETY: arguments match `(T* datt, float* dbias, const T* probs, SoftmaxShape sh)`.
    unsafe { launch.launch(config(shape)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::attention::{AttentionShape, CpuAttention, attention_forward_cpu};
    use crate::ops::gemm_strided::{MatLayout, StridedShape, gemm_strided_forward_cpu};
    use crate::testing::*;

    /// GEMM → bias + mask + softmax → GEMM gives the fused attention's output (no bias here,
    /// since the fused kernel gathers its bias by bucket): the two paths share one spec.
    #[test]
    fn unfused_path_matches_fused_reference() {
        let (b, t, nh, hs) = (2, 6, 2, 4);
        let q = random(1, b * t * nh * hs, -1.0, 1.0);
        let k = random(2, b * t * nh * hs, -1.0, 1.0);
        let v = random(3, b * t * nh * hs, -1.0, 1.0);
        let key_len = [6, 4];
        let key_mask: Vec<f32> = (0..b * t)
            .map(|i| f32::from(u8::from((i % t) < key_len[i / t] as usize)))
            .collect();
        let heads = MatLayout {
            offset: 0,
            row_stride: nh * hs,
            col_stride: 1,
            batch_stride: [t * nh * hs, hs],
        };
        let scores = MatLayout {
            offset: 0,
            row_stride: t,
            col_stride: 1,
            batch_stride: [nh * t * t, t * t],
        };
        let mut s = vec![0.0; b * nh * t * t];
        let qk = StridedShape {
            batch: [b, nh],
            m: t,
            n: t,
            k: hs,
        };
        gemm_strided_forward_cpu(&mut s, scores, &q, heads, &k, heads.t(), qk, 1.0, 0.0);
        let shape = ScoreShape {
            batch: b,
            heads: nh,
            q_len: t,
            k_len: t,
        };
        attention_softmax_forward_cpu(&mut s, shape, None, Some(&key_mask), Masking::Causal);
        let mut o = vec![0.0; b * t * nh * hs];
        let pv = StridedShape {
            batch: [b, nh],
            m: t,
            n: hs,
            k: t,
        };
        gemm_strided_forward_cpu(&mut o, heads, &s, scores, &v, heads, pv, 1.0, 0.0);
        let fused = CpuAttention {
            shape: AttentionShape {
                batch: b,
                heads: nh,
                q_len: t,
                k_len: t,
                head_dim: hs,
            },
            bias: None,
            key_len: Some(&key_len),
            masking: Masking::Causal,
            scale: 1.0,
        };
        let (want, _) = attention_forward_cpu(&fused, &q, &k, &v);
        assert_close(
            "unfused vs fused",
            &o,
            &want,
            Tolerance {
                atol: 1e-5,
                rtol: 1e-4,
            },
        );
    }

    #[test]
    fn backward_matches_finite_differences() {
        let shape = ScoreShape {
            batch: 2,
            heads: 2,
            q_len: 3,
            k_len: 4,
        };
        let s = random(1, shape.elems(), -2.0, 2.0);
        let bias = random(2, shape.q_len * shape.k_len * shape.heads, -1.0, 1.0);
        let mask = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let dp = random(3, shape.elems(), -1.0, 1.0);
        let loss = |s: &[f32], bias: &[f32]| -> f64 {
            let mut p = s.to_vec();
            attention_softmax_forward_cpu(&mut p, shape, Some(bias), Some(&mask), Masking::Causal);
            p.iter().zip(&dp).map(|(&a, &b)| f64::from(a * b)).sum()
        };
        let mut probs = s.clone();
        attention_softmax_forward_cpu(&mut probs, shape, Some(&bias), Some(&mask), Masking::Causal);
        let mut ds = dp.clone();
        let mut dbias = vec![0.0; bias.len()];
        attention_softmax_backward_cpu(&mut ds, &probs, shape, Some(&mut dbias));
        let tol = Tolerance {
            atol: 1e-3,
            rtol: 1e-2,
        };
        assert_close_f64(
            "ds",
            &ds,
            &finite_difference(|x| loss(x, &bias), &s, 1e-3),
            tol,
        );
        assert_close_f64(
            "dbias",
            &dbias,
            &finite_difference(|x| loss(&s, x), &bias, 1e-3),
            tol,
        );
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("attention_softmax::gpu_matches_cpu") else {
            return;
        };
        for (shape, masking) in [
            (
                ScoreShape {
                    batch: 1,
                    heads: 1,
                    q_len: 1,
                    k_len: 1,
                },
                Masking::Bidirectional,
            ),
            (
                ScoreShape {
                    batch: 2,
                    heads: 3,
                    q_len: 37,
                    k_len: 37,
                },
                Masking::Causal,
            ),
            (
                ScoreShape {
                    batch: 2,
                    heads: 2,
                    q_len: 3,
                    k_len: 70,
                },
                Masking::Causal,
            ),
            (
                ScoreShape {
                    batch: 1,
                    heads: 4,
                    q_len: 65,
                    k_len: 129,
                },
                Masking::Bidirectional,
            ),
        ] {
            let s = bf16_round(&random(1, shape.elems(), -4.0, 4.0));
            let bias = bf16_round(&random(
                2,
                shape.q_len * shape.k_len * shape.heads,
                -1.0,
                1.0,
            ));
            let mask: Vec<f32> = (0..shape.batch * shape.k_len)
                .map(|i| if i % 7 == 3 { 0.0 } else { 1.0 })
                .collect();
            let dp = bf16_round(&random(3, shape.elems(), -1.0, 1.0));
            let mut probs = s.clone();
            attention_softmax_forward_cpu(&mut probs, shape, Some(&bias), Some(&mask), masking);
            let mut want_ds = dp.clone();
            let mut want_db = vec![0.0; bias.len()];
            attention_softmax_backward_cpu(&mut want_ds, &probs, shape, Some(&mut want_db));

            // fp32 storage.
            let mut d_att = upload(&gpu, &s);
            let (d_bias, d_mask) = (upload(&gpu, &bias), upload(&gpu, &mask));
            attention_softmax_forward(
                &gpu,
                &mut d_att.as_view_mut(),
                shape,
                Some(&d_bias.as_view()),
                Some(&d_mask.as_view()),
                masking,
            )
            .unwrap();
            // __expf vs exp: a few ulp.
            let tol = Tolerance {
                atol: 1e-6,
                rtol: 1e-5,
            };
            assert_close("probs f32", &download(&gpu, &d_att), &probs, tol);
            let mut d_ds = upload(&gpu, &dp);
            let mut d_db = gpu.stream().alloc_zeros::<f32>(bias.len()).unwrap();
            attention_softmax_backward(
                &gpu,
                &mut d_ds.as_view_mut(),
                &d_att.as_view(),
                shape,
                Some(&mut d_db.as_view_mut()),
            )
            .unwrap();
            assert_close(
                "ds f32",
                &download(&gpu, &d_ds),
                &want_ds,
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
            );
            assert_close(
                "dbias f32",
                &download(&gpu, &d_db),
                &want_db,
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
            );

            // bf16 storage.
            let mut d_att = upload_bf16(&gpu, &s);
            let (d_bias, d_mask) = (upload_bf16(&gpu, &bias), upload_bf16(&gpu, &mask));
            attention_softmax_forward(
                &gpu,
                &mut d_att.as_view_mut(),
                shape,
                Some(&d_bias.as_view()),
                Some(&d_mask.as_view()),
                masking,
            )
            .unwrap();
            assert_close("probs bf16", &download_bf16(&gpu, &d_att), &probs, BF16);
        }
    }
}
