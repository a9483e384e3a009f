//! Sum of squares of gradient buffers for global-norm clipping (`cu/global_norm.cu`). The
//! result stays on the device for [`crate::ops::adamw`] to read.

use crate::error::{DriverContext, Result};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{expect_len, grid_stride};
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};

/// CPU reference: Σ over every buffer of Σ g², accumulated in f64 (the spec, no rounding).
pub fn global_norm_sq_cpu(grads: &[&[f32]]) -> f64 {
    grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&g| f64::from(g) * f64::from(g))
        .sum()
}

/// Sets `out_sq` (1,) to Σ g² over every buffer in `grads`.
pub fn global_norm_sq(
    gpu: &Gpu,
    out_sq: &mut CudaViewMut<'_, f32>,
    grads: &[CudaView<'_, f32>],
) -> Result<()> {
    const OP: &str = "global_norm_sq";
    expect_len(OP, "out_sq", out_sq.len(), 1)?;
    gpu.stream()
        .memset_zeros(out_sq)
        .while_(|| "zeroing the global-norm accumulator".into())?;
    let name = kernel_name("global_norm", Dir::Forward, 1, Dtype::F32);
    let f = gpu.function(Family::GlobalNorm, &name)?;
    for grad in grads {
        if grad.is_empty() {
            continue;
        }
        let n = grad.len() as i64;
        let cfg = grid_stride(gpu, grad.len(), 256)?;
        let mut launch = gpu.stream().launch_builder(&f);
        launch.arg(&mut *out_sq).arg(grad).arg(&n);
        // SAFETY: arguments match `(float* out_sq, const float* grad, long long n)`; block size
        // 256 is a multiple of 32 as block_sum requires.
        unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn cpu_known_value() {
        assert_eq!(global_norm_sq_cpu(&[&[3.0], &[4.0, 0.0]]), 25.0);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("global_norm::gpu_matches_cpu") else {
            return;
        };
        let sizes = [1usize, 333, 70_000, 3 << 20];
        let host: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| random(i as u64, n, -1.0, 1.0))
            .collect();
        let dev: Vec<_> = host.iter().map(|h| upload(&gpu, h)).collect();
        let views: Vec<_> = dev.iter().map(|d| d.as_view()).collect();
        let mut out = gpu.stream().alloc_zeros::<f32>(1).unwrap();
        global_norm_sq(&gpu, &mut out.as_view_mut(), &views).unwrap();
        let got = download(&gpu, &out)[0];
        let refs: Vec<&[f32]> = host.iter().map(|h| h.as_slice()).collect();
        let want = global_norm_sq_cpu(&refs) as f32;
        // fp32 partial sums over ~3M terms in a different order: relative 1e-5.
        assert_close("norm_sq", &[got], &[want], F32);
    }
}
