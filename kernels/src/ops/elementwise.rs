//! The op interface's element-wise helpers (`cu/elementwise.cu`): `a = alpha·a + b`, which is
//! the residual add (`alpha = 1`) and gradient scaling (`b` absent) in one kernel.

use crate::error::{DriverContext, Result};
use crate::family::{Dir, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, expect_len, grid_stride};
use crate::ops::gemm::GemmOutput;
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};

/// CPU reference: `a = alpha·a + b` (`b` absent: `a = alpha·a`), rounded once per operation.
pub fn scale_add_cpu(a: &mut [f32], b: Option<&[f32]>, alpha: f32) {
    match b {
        Some(b) => a.iter_mut().zip(b).for_each(|(a, b)| *a = alpha * *a + b),
        None => a.iter_mut().for_each(|a| *a *= alpha),
    }
}

/// Device `a = alpha·a + b` in place; `b`, when given, holds as many elements as `a`.
pub fn scale_add<T: GemmOutput>(
    gpu: &Gpu,
    a: &mut CudaViewMut<'_, T>,
    b: Option<&CudaView<'_, T>>,
    alpha: f32,
) -> Result<()> {
    const OP: &str = "scale_add";
    let n = a.len();
    if let Some(b) = b {
        expect_len(OP, "b", b.len(), n)?;
    }
    if n == 0 {
        return Ok(());
    }
    let name = kernel_name("scale_add", Dir::Forward, 1, T::DTYPE);
    let f = gpu.function(Family::Elementwise, &name)?;
    let (n64, cfg) = (n as i64, grid_stride(gpu, n, 256)?);
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(a);
    match b {
        Some(b) => launch.arg(b),
        None => launch.arg(&NULL),
    };
    launch.arg(&alpha).arg(&n64);
    // SAFETY: arguments match `(T* a, const T* b, float alpha, long long n)`; a holds n
    // elements and b is NULL or holds n.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use half::bf16;

    #[test]
    fn adds_and_scales() {
        let mut a = vec![1.0, -2.0, 3.0];
        scale_add_cpu(&mut a, Some(&[0.5, 0.5, 0.5]), 1.0);
        assert_eq!(a, [1.5, -1.5, 3.5]);
        scale_add_cpu(&mut a, None, -2.0);
        assert_eq!(a, [-3.0, 3.0, -7.0]);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("elementwise::gpu_matches_cpu") else {
            return;
        };
        for n in [1usize, 1000, (1 << 20) + 5] {
            let a = bf16_round(&random(1, n, -2.0, 2.0));
            let b = bf16_round(&random(2, n, -2.0, 2.0));
            for (alpha, with_b) in [(1.0f32, true), (0.3, true), (0.7, false)] {
                let mut want = a.clone();
                scale_add_cpu(&mut want, with_b.then_some(&b[..]), alpha);
                // fp32: no FMA contraction in the kernel, so bit-identical.
                let (mut da, db) = (upload(&gpu, &a), upload(&gpu, &b));
                let bv = db.as_view();
                scale_add(&gpu, &mut da.as_view_mut(), with_b.then_some(&bv), alpha).unwrap();
                assert_eq!(download(&gpu, &da), want, "f32 n {n} alpha {alpha}");
                let (mut ha, hb) = (upload_bf16(&gpu, &a), upload_bf16(&gpu, &b));
                let hbv = hb.as_view();
                scale_add::<bf16>(&gpu, &mut ha.as_view_mut(), with_b.then_some(&hbv), alpha)
                    .unwrap();
                assert_close("bf16", &download_bf16(&gpu, &ha), &want, BF16);
            }
        }
    }
}
