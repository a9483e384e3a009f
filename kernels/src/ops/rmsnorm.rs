//! T5LayerNorm (RMSNorm) fused with the residual add before it (`cu/rmsnorm.cu`).
//!
//! Forward: `h = x + resid` (the new residual stream), `y = h·rstd·w`,
//! `rstd = rsqrt(mean(h²) + eps)`. Backward: `dx = dh (+ dresid)`, which is the gradient of
//! both `x` and `resid`; `dw += Σ_rows dy·h·rstd`. Shapes: x, resid, h, y (N, C); w (C,);
//! rstd (N,).

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, as_i32, expect_len, per_row};
use cudarc::driver::{CudaView, CudaViewMut, LaunchConfig, PushKernelArg};
use half::bf16;

/// Threads per block; a multiple of 32 (block_sum).
const BLOCK: u32 = 256;

/// CPU reference forward. Returns (y, h, rstd); `h` is `x + resid` (or `x`).
pub fn rmsnorm_forward_cpu(
    x: &[f32],
    resid: Option<&[f32]>,
    w: &[f32],
    c: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h: Vec<f32> = match resid {
        Some(r) => x.iter().zip(r).map(|(a, b)| a + b).collect(),
        None => x.to_vec(),
    };
    let mut y = vec![0.0; h.len()];
    let mut rstd = Vec::with_capacity(h.len() / c.max(1));
    for (row, out) in h.chunks(c).zip(y.chunks_mut(c)) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / c as f32;
        let r = 1.0 / (ms + eps).sqrt();
        for ((o, &hv), &wv) in out.iter_mut().zip(row).zip(w) {
            *o = hv * r * wv;
        }
        rstd.push(r);
    }
    (y, h, rstd)
}

/// CPU reference backward: returns dx (= dh + dresid); adds into `dw`.
pub fn rmsnorm_backward_cpu(
    dw: &mut [f32],
    dy: &[f32],
    dresid: Option<&[f32]>,
    h: &[f32],
    w: &[f32],
    rstd: &[f32],
    c: usize,
) -> Vec<f32> {
    let mut dx = vec![0.0; h.len()];
    for (row, &r) in rstd.iter().enumerate() {
        let span = row * c..(row + 1) * c;
        let (hr, gr) = (&h[span.clone()], &dy[span.clone()]);
        let dot: f32 = (0..c).map(|j| w[j] * gr[j] * hr[j]).sum();
        let k = dot * r * r * r / c as f32;
        for j in 0..c {
            let mut d = r * w[j] * gr[j] - hr[j] * k;
            if let Some(dr) = dresid {
                d += dr[row * c + j];
            }
            dx[row * c + j] = d;
            dw[j] += gr[j] * hr[j] * r;
        }
    }
    dx
}

/// Device forward. `resid_and_h`: the residual input and where to write `h = x + resid`;
/// with `None`, `h` is `x` itself (keep `x` for the backward).
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_forward(
    gpu: &Gpu,
    y: &mut CudaViewMut<'_, bf16>,
    rstd: &mut CudaViewMut<'_, f32>,
    x: &CudaView<'_, bf16>,
    resid_and_h: Option<(&CudaView<'_, bf16>, &mut CudaViewMut<'_, bf16>)>,
    w: &CudaView<'_, bf16>,
    c: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "rmsnorm_forward";
    expect_len(OP, "w", w.len(), c)?;
    let n = x.len() / c.max(1);
    expect_len(OP, "x", x.len(), n * c)?;
    expect_len(OP, "y", y.len(), n * c)?;
    expect_len(OP, "rstd", rstd.len(), n)?;
    if n == 0 {
        return Ok(());
    }
    let name = kernel_name("rmsnorm", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Rmsnorm, &name)?;
    let (n32, c32) = (as_i32(OP, "N", n)?, as_i32(OP, "C", c)?);
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(y);
    match resid_and_h {
        Some((resid, h)) => {
            expect_len(OP, "resid", resid.len(), n * c)?;
            expect_len(OP, "h", h.len(), n * c)?;
            launch.arg(h).arg(rstd).arg(x).arg(resid);
        }
        None => {
            launch.arg(&NULL).arg(rstd).arg(x).arg(&NULL);
        }
    }
    launch.arg(w).arg(&n32).arg(&c32).arg(&eps);
    // SAFETY: arguments match `(bf16* y, bf16* h_out, float* rstd, const bf16* x,
    // const bf16* resid, const bf16* w, int N, int C, float eps)`; lengths checked above.
    unsafe { launch.launch(per_row(n, BLOCK, 0)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// Device backward: dx (N, C) = dh + dresid (written with =), dw (C,) fp32 +=.
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_backward(
    gpu: &Gpu,
    dx: &mut CudaViewMut<'_, bf16>,
    dw: &mut CudaViewMut<'_, f32>,
    dy: &CudaView<'_, bf16>,
    dresid: Option<&CudaView<'_, bf16>>,
    h: &CudaView<'_, bf16>,
    w: &CudaView<'_, bf16>,
    rstd: &CudaView<'_, f32>,
    c: usize,
) -> Result<()> {
    const OP: &str = "rmsnorm_backward";
    expect_len(OP, "w", w.len(), c)?;
    expect_len(OP, "dw", dw.len(), c)?;
    let n = rstd.len();
    for (arg, len) in [("dx", dx.len()), ("dy", dy.len()), ("h", h.len())] {
        expect_len(OP, arg, len, n * c)?;
    }
    if let Some(dr) = dresid {
        expect_len(OP, "dresid", dr.len(), n * c)?;
    }
    if n == 0 {
        return Ok(());
    }
    let name = kernel_name("rmsnorm", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Rmsnorm, &name)?;
    let (n32, c32) = (as_i32(OP, "N", n)?, as_i32(OP, "C", c)?);
    // The dw partials live in static-limit dynamic shared memory (48 KiB without opt-in).
    if c * 4 > 48 * 1024 {
        return Err(bad_input!(
            OP,
            "C = {c} needs more than 48 KiB of shared memory for dw"
        ));
    }
    let shared = (c * 4) as u32;
    let blocks = (n as u32).min(gpu.sm_count()? * 2);
    let cfg = LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: shared,
    };
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(dx).arg(dw).arg(dy);
    match dresid {
        Some(dr) => launch.arg(dr),
        None => launch.arg(&NULL),
    };
    launch.arg(h).arg(w).arg(rstd).arg(&n32).arg(&c32);
    // SAFETY: arguments match `(bf16* dx, float* dw, const bf16* dy, const bf16* dresid,
    // const bf16* h, const bf16* w, const float* rstd, int N, int C)`; C floats of dynamic
    // shared memory are requested.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn forward_known_value() {
        // Row [3, 4]: mean square 12.5, rstd = 1/sqrt(12.5).
        let (y, h, rstd) = rmsnorm_forward_cpu(&[3.0, 4.0], Some(&[0.0, 0.0]), &[1.0, 2.0], 2, 0.0);
        let r = 1.0 / 12.5f32.sqrt();
        assert_eq!(h, vec![3.0, 4.0]);
        assert!((rstd[0] - r).abs() < 1e-7);
        assert!((y[0] - 3.0 * r).abs() < 1e-6 && (y[1] - 8.0 * r).abs() < 1e-6);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (n, c, eps) = (3, 5, 1e-6);
        let x = random(1, n * c, -1.0, 1.0);
        let r = random(2, n * c, -1.0, 1.0);
        let w = random(3, c, 0.5, 1.5);
        let dy = random(4, n * c, -1.0, 1.0);
        let dresid = random(5, n * c, -1.0, 1.0);
        // loss = <y, dy> + <h, dresid>: the residual stream carries dresid onwards.
        let loss = |x: &[f32], w: &[f32]| -> f64 {
            let (y, h, _) = rmsnorm_forward_cpu(x, Some(&r), w, c, eps);
            let a: f64 = y.iter().zip(&dy).map(|(&a, &b)| f64::from(a * b)).sum();
            let b: f64 = h.iter().zip(&dresid).map(|(&a, &b)| f64::from(a * b)).sum();
            a + b
        };
        let (_, h, rstd) = rmsnorm_forward_cpu(&x, Some(&r), &w, c, eps);
        let mut dw = vec![0.0; c];
        let dx = rmsnorm_backward_cpu(&mut dw, &dy, Some(&dresid), &h, &w, &rstd, c);
        let tol = Tolerance {
            atol: 2e-3,
            rtol: 1e-2,
        };
        assert_close_f64(
            "dx",
            &dx,
            &finite_difference(|v| loss(v, &w), &x, 1e-3),
            tol,
        );
        assert_close_f64(
            "dw",
            &dw,
            &finite_difference(|v| loss(&x, v), &w, 1e-3),
            tol,
        );
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("rmsnorm::gpu_matches_cpu") else {
            return;
        };
        let eps = 1e-6;
        for (n, c) in [(1usize, 1usize), (7, 100), (333, 512), (4096, 768)] {
            let x = bf16_round(&random(1, n * c, -2.0, 2.0));
            let r = bf16_round(&random(2, n * c, -2.0, 2.0));
            let w = bf16_round(&random(3, c, 0.5, 1.5));
            let dy = bf16_round(&random(4, n * c, -1.0, 1.0));
            let dr = bf16_round(&random(5, n * c, -1.0, 1.0));
            let (dx_, dr_, dw_, dy_, ddr) = (
                upload_bf16(&gpu, &x),
                upload_bf16(&gpu, &r),
                upload_bf16(&gpu, &w),
                upload_bf16(&gpu, &dy),
                upload_bf16(&gpu, &dr),
            );
            let mut y = gpu.stream().alloc_zeros::<bf16>(n * c).unwrap();
            let mut h = gpu.stream().alloc_zeros::<bf16>(n * c).unwrap();
            let mut rstd = gpu.stream().alloc_zeros::<f32>(n).unwrap();
            rmsnorm_forward(
                &gpu,
                &mut y.as_view_mut(),
                &mut rstd.as_view_mut(),
                &dx_.as_view(),
                Some((&dr_.as_view(), &mut h.as_view_mut())),
                &dw_.as_view(),
                c,
                eps,
            )
            .unwrap();
            let (want_y, want_h, want_rstd) = rmsnorm_forward_cpu(&x, Some(&r), &w, c, eps);
            assert_close("y", &download_bf16(&gpu, &y), &want_y, BF16);
            assert_close("h", &download_bf16(&gpu, &h), &want_h, BF16);
            assert_close(
                "rstd",
                &download(&gpu, &rstd),
                &want_rstd,
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
            );
            // The backward reads h as the GPU stored it (bf16), so the reference does too.
            let h_dev = download_bf16(&gpu, &h);
            let rstd_dev = download(&gpu, &rstd);
            let mut dx = gpu.stream().alloc_zeros::<bf16>(n * c).unwrap();
            let mut dw = gpu.stream().alloc_zeros::<f32>(c).unwrap();
            rmsnorm_backward(
                &gpu,
                &mut dx.as_view_mut(),
                &mut dw.as_view_mut(),
                &dy_.as_view(),
                Some(&ddr.as_view()),
                &h.as_view(),
                &dw_.as_view(),
                &rstd.as_view(),
                c,
            )
            .unwrap();
            let mut want_dw = vec![0.0; c];
            let want_dx =
                rmsnorm_backward_cpu(&mut want_dw, &dy, Some(&dr), &h_dev, &w, &rstd_dev, c);
            assert_close("dx", &download_bf16(&gpu, &dx), &want_dx, BF16);
            // dw sums n terms in fp32, in atomic order: scale atol with the row count.
            let tol = Tolerance {
                atol: 1e-4 * n as f32,
                rtol: 1e-4,
            };
            assert_close("dw", &download(&gpu, &dw), &want_dw, tol);
        }
    }
}
