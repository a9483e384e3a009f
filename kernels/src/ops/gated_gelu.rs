//! T5 v1.1 gated-GELU (`cu/gated_gelu.cu`): `out = gelu_new(a) · b` with `a = x·wi_0ᵀ`,
//! `b = x·wi_1ᵀ` (HF `T5DenseGatedActDense`). All tensors are (n,) = (N·F,) flattened.

use crate::error::{DriverContext, Result};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{expect_len, grid_stride};
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};
use half::bf16;

const K0: f32 = 0.797_884_6; // sqrt(2/pi)
const K1: f32 = 0.044_715;

/// HF `gelu_new`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
pub fn gelu_new(x: f32) -> f32 {
    0.5 * x * (1.0 + (K0 * (x + K1 * x * x * x)).tanh())
}

/// d gelu_new / dx.
pub fn gelu_new_grad(x: f32) -> f32 {
    let t = (K0 * (x + K1 * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K0 * (1.0 + 3.0 * K1 * x * x)
}

/// CPU reference forward: out = gelu_new(a)·b.
pub fn gated_gelu_forward_cpu(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(&a, &b)| gelu_new(a) * b).collect()
}

/// CPU reference backward: (da, db) from dout.
pub fn gated_gelu_backward_cpu(dout: &[f32], a: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let da = dout
        .iter()
        .zip(a.iter().zip(b))
        .map(|(&g, (&a, &b))| g * b * gelu_new_grad(a))
        .collect();
    let db = dout.iter().zip(a).map(|(&g, &a)| g * gelu_new(a)).collect();
    (da, db)
}

/// out (n,) = gelu_new(a (n,)) · b (n,).
pub fn gated_gelu_forward(
    gpu: &Gpu,
    out: &mut CudaViewMut<'_, bf16>,
    a: &CudaView<'_, bf16>,
    b: &CudaView<'_, bf16>,
) -> Result<()> {
    const OP: &str = "gated_gelu_forward";
    let n = a.len();
    expect_len(OP, "b", b.len(), n)?;
    expect_len(OP, "out", out.len(), n)?;
    let name = kernel_name("gated_gelu", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::GatedGelu, &name)?;
    let n64 = n as i64;
    let cfg = grid_stride(gpu, n, 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(out).arg(a).arg(b).arg(&n64);
    // SAFETY: arguments match `(bf16* out, const bf16* a, const bf16* b, long long n)`.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// da, db (n,) (written with =) from dout, a, b (n,).
pub fn gated_gelu_backward(
    gpu: &Gpu,
    da: &mut CudaViewMut<'_, bf16>,
    db: &mut CudaViewMut<'_, bf16>,
    dout: &CudaView<'_, bf16>,
    a: &CudaView<'_, bf16>,
    b: &CudaView<'_, bf16>,
) -> Result<()> {
    const OP: &str = "gated_gelu_backward";
    let n = a.len();
    for (arg, len) in [
        ("b", b.len()),
        ("dout", dout.len()),
        ("da", da.len()),
        ("db", db.len()),
    ] {
        expect_len(OP, arg, len, n)?;
    }
    let name = kernel_name("gated_gelu", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::GatedGelu, &name)?;
    let n64 = n as i64;
    let cfg = grid_stride(gpu, n, 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(da).arg(db).arg(dout).arg(a).arg(b).arg(&n64);
    // SAFETY: arguments match `(bf16* da, bf16* db, const bf16* dout, const bf16* a,
    // const bf16* b, long long n)`; all hold n elements.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn gelu_new_known_values() {
        assert_eq!(gelu_new(0.0), 0.0);
        // torch: F.gelu(torch.tensor(1.0), approximate="tanh") = 0.8411920070648193
        assert!((gelu_new(1.0) - 0.841_192).abs() < 1e-6);
        assert!((gelu_new(-3.0) - -0.003_637_4).abs() < 1e-6);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let n = 16;
        let a = random(1, n, -3.0, 3.0);
        let b = random(2, n, -2.0, 2.0);
        let dout = random(3, n, -1.0, 1.0);
        let loss = |a: &[f32], b: &[f32]| -> f64 {
            gated_gelu_forward_cpu(a, b)
                .iter()
                .zip(&dout)
                .map(|(&o, &g)| f64::from(o) * f64::from(g))
                .sum()
        };
        let (da, db) = gated_gelu_backward_cpu(&dout, &a, &b);
        let tol = Tolerance {
            atol: 1e-3,
            rtol: 1e-2,
        };
        assert_close_f64(
            "da",
            &da,
            &finite_difference(|x| loss(x, &b), &a, 1e-3),
            tol,
        );
        assert_close_f64(
            "db",
            &db,
            &finite_difference(|x| loss(&a, x), &b, 1e-3),
            tol,
        );
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("gated_gelu::gpu_matches_cpu") else {
            return;
        };
        for n in [1, 1000, 1 << 20] {
            let a = bf16_round(&random(1, n, -4.0, 4.0));
            let b = bf16_round(&random(2, n, -2.0, 2.0));
            let dout = bf16_round(&random(3, n, -1.0, 1.0));
            let (da_, db_, dout_) = (
                upload_bf16(&gpu, &a),
                upload_bf16(&gpu, &b),
                upload_bf16(&gpu, &dout),
            );
            let mut out = gpu.stream().alloc_zeros::<bf16>(n).unwrap();
            gated_gelu_forward(&gpu, &mut out.as_view_mut(), &da_.as_view(), &db_.as_view())
                .unwrap();
            assert_close(
                "out",
                &download_bf16(&gpu, &out),
                &gated_gelu_forward_cpu(&a, &b),
                BF16,
            );
            let mut ga = gpu.stream().alloc_zeros::<bf16>(n).unwrap();
            let mut gb = gpu.stream().alloc_zeros::<bf16>(n).unwrap();
            gated_gelu_backward(
                &gpu,
                &mut ga.as_view_mut(),
                &mut gb.as_view_mut(),
                &dout_.as_view(),
                &da_.as_view(),
                &db_.as_view(),
            )
            .unwrap();
            let (want_a, want_b) = gated_gelu_backward_cpu(&dout, &a, &b);
            assert_close("da", &download_bf16(&gpu, &ga), &want_a, BF16);
            assert_close("db", &download_bf16(&gpu, &gb), &want_b, BF16);
        }
    }
}
