//! fp32 ⇄ bf16 conversion (`cu/cast.cu`). bf16 rounding is round-to-nearest-even on both sides
//! (`__float2bfloat16` and `half::bf16::from_f32`), so the GPU must match the CPU bit for bit.

use crate::error::{DriverContext, Result};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{expect_len, grid_stride};
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};
use half::bf16;

/// CPU reference: fp32 → bf16, round to nearest even.
pub fn cast_f32_to_bf16_cpu(inp: &[f32]) -> Vec<bf16> {
    inp.iter().map(|&x| bf16::from_f32(x)).collect()
}

/// CPU reference: bf16 → fp32 (exact).
pub fn cast_bf16_to_f32_cpu(inp: &[bf16]) -> Vec<f32> {
    inp.iter().map(|x| x.to_f32()).collect()
}

/// out (n,) = bf16(inp (n,)).
pub fn cast_f32_to_bf16(
    gpu: &Gpu,
    out: &mut CudaViewMut<'_, bf16>,
    inp: &CudaView<'_, f32>,
) -> Result<()> {
    const OP: &str = "cast_f32_to_bf16";
    expect_len(OP, "out", out.len(), inp.len())?;
    let name = kernel_name("cast_f32", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Cast, &name)?;
    let n = inp.len() as i64;
    let cfg = grid_stride(gpu, inp.len(), 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(out).arg(inp).arg(&n);
    // SAFETY: arguments match `(bf16* out, const float* inp, long long n)`; both buffers hold n.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// out (n,) = f32(inp (n,)).
pub fn cast_bf16_to_f32(
    gpu: &Gpu,
    out: &mut CudaViewMut<'_, f32>,
    inp: &CudaView<'_, bf16>,
) -> Result<()> {
    const OP: &str = "cast_bf16_to_f32";
    expect_len(OP, "out", out.len(), inp.len())?;
    let name = kernel_name("cast_bf16", Dir::Forward, 1, Dtype::F32);
    let f = gpu.function(Family::Cast, &name)?;
    let n = inp.len() as i64;
    let cfg = grid_stride(gpu, inp.len(), 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(out).arg(inp).arg(&n);
    // SAFETY: arguments match `(float* out, const bf16* inp, long long n)`; both buffers hold n.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn cpu_round_trip_is_exact_for_bf16_values() {
        let x = bf16_round(&random(1, 1000, -100.0, 100.0));
        let back = cast_bf16_to_f32_cpu(&cast_f32_to_bf16_cpu(&x));
        assert_eq!(back, x);
        // Round to nearest even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7, and goes to 1.
        assert_eq!(cast_f32_to_bf16_cpu(&[1.0 + 1.0 / 256.0])[0].to_f32(), 1.0);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("cast::gpu_matches_cpu") else {
            return;
        };
        for n in [1, 255, 4097, 1 << 20] {
            let x = random(n as u64, n, -1e3, 1e3);
            let dx = upload(&gpu, &x);
            let mut dout = gpu.stream().alloc_zeros::<bf16>(n).unwrap();
            cast_f32_to_bf16(&gpu, &mut dout.as_view_mut(), &dx.as_view()).unwrap();
            let got = download(&gpu, &dout);
            assert_eq!(got, cast_f32_to_bf16_cpu(&x), "f32 → bf16, n = {n}");
            let mut dback = gpu.stream().alloc_zeros::<f32>(n).unwrap();
            cast_bf16_to_f32(&gpu, &mut dback.as_view_mut(), &dout.as_view()).unwrap();
            assert_eq!(
                download(&gpu, &dback),
                cast_bf16_to_f32_cpu(&got),
                "bf16 → f32"
            );
        }
    }
}
