//! Inverted dropout with a counter-based mask (`cu/dropout.cu`). This file is the mask's one
//! definition: the kernel computes it per thread and the engine's CPU backend uses
//! [`group_draws`] and [`keep_threshold`] in its vectorised loop.
//!
//! Elements go in groups of four; group `g` draws 64 bits `splitmix64(seed ⊕ g·φ)` and element
//! `4g + j` is kept when bits `16j..16j+16`, as a fraction of 2¹⁶, are `≥ p`. A pure function
//! of `(seed, i)` needs no stored mask, reproduces on resume, and costs one hash per four
//! elements.

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::grid_stride;
use crate::ops::gemm::GemmOutput;
use cudarc::driver::{CudaViewMut, PushKernelArg};

/// Elements per 64-bit draw.
pub const GROUP: usize = 4;

/// The 64 random bits of element group `g` under `seed` (splitmix64's finaliser).
#[inline(always)]
pub fn group_bits(seed: u64, g: usize) -> u64 {
    let mut z = seed ^ (g as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The four 16-bit draws of element group `g`: element `4g + j` gets bits `16j..16j+16`.
#[inline(always)]
pub fn group_draws(seed: u64, g: usize) -> [u16; GROUP] {
    let bits = group_bits(seed, g);
    std::array::from_fn(|j| (bits >> (16 * j)) as u16)
}

/// The smallest 16-bit draw that survives dropout `p`: `draw / 2¹⁶ ≥ p` ⟺ `draw ≥ ⌈2¹⁶·p⌉`.
pub fn keep_threshold(p: f32) -> u32 {
    (p * 65536.0).ceil() as u32
}

/// Whether element `i` survives dropout `p` under `seed`.
pub fn dropout_keep(seed: u64, i: usize, p: f32) -> bool {
    u32::from(group_draws(seed, i / GROUP)[i % GROUP]) >= keep_threshold(p)
}

/// CPU reference: zeroes dropped elements, scales kept ones by `1/(1 − p)`.
pub fn dropout_forward_cpu(t: &mut [f32], p: f32, seed: u64) {
    let scale = 1.0 / (1.0 - p);
    for (i, x) in t.iter_mut().enumerate() {
        *x = if dropout_keep(seed, i, p) {
            *x * scale
        } else {
            0.0
        };
    }
}

/// Device dropout in place over `t`; `p` in `[0, 1)` (0 leaves `t` untouched).
pub fn dropout_forward<T: GemmOutput>(
    gpu: &Gpu,
    t: &mut CudaViewMut<'_, T>,
    p: f32,
    seed: u64,
) -> Result<()> {
    const OP: &str = "dropout_forward";
    if !(0.0..1.0).contains(&p) {
        return Err(bad_input!(OP, "probability {p} is outside [0, 1)"));
    }
    let n = t.len();
    if n == 0 || p == 0.0 {
        return Ok(());
    }
    let name = kernel_name("dropout", Dir::Forward, 1, T::DTYPE);
    let f = gpu.function(Family::Dropout, &name)?;
    let (n64, threshold, scale) = (n as i64, keep_threshold(p), 1.0 / (1.0 - p));
    let cfg = grid_stride(gpu, n.div_ceil(GROUP), 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch
        .arg(t)
        .arg(&n64)
        .arg(&seed)
        .arg(&threshold)
        .arg(&scale);
    // SAFETY: arguments match `(T* t, long long n, unsigned long long seed,
    // unsigned int threshold, float scale)`; t holds n elements.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use half::bf16;

    #[test]
    fn keeps_about_one_minus_p_and_scales_the_rest() {
        for p in [0.1f32, 0.5, 0.9] {
            let mut t = vec![1.0f32; 100_003];
            dropout_forward_cpu(&mut t, p, 7);
            let kept = t.iter().filter(|&&x| x != 0.0).count() as f64 / t.len() as f64;
            assert!(
                (kept - f64::from(1.0 - p)).abs() < 0.01,
                "p {p}: kept {kept}"
            );
            assert!(t.iter().all(|&x| x == 0.0 || x == 1.0 / (1.0 - p)));
        }
    }

    #[test]
    fn the_mask_depends_on_seed_and_position_only() {
        let a: Vec<bool> = (0..64).map(|i| dropout_keep(3, i, 0.5)).collect();
        let b: Vec<bool> = (0..64).map(|i| dropout_keep(3, i, 0.5)).collect();
        let c: Vec<bool> = (0..64).map(|i| dropout_keep(4, i, 0.5)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Known draws: group 0 of seed 0 is splitmix64's first output for state φ.
        assert_eq!(group_bits(0, 0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("dropout::gpu_matches_cpu") else {
            return;
        };
        for n in [1usize, 7, 1000, (1 << 20) + 3] {
            let x = bf16_round(&random(1, n, -2.0, 2.0));
            let mut want = x.clone();
            dropout_forward_cpu(&mut want, 0.1, 42);
            // fp32: the same selects and one multiply, so bit-identical.
            let mut d = upload(&gpu, &x);
            dropout_forward(&gpu, &mut d.as_view_mut(), 0.1, 42).unwrap();
            assert_eq!(download(&gpu, &d), want, "f32, n {n}");
            let mut h = upload_bf16(&gpu, &x);
            dropout_forward::<bf16>(&gpu, &mut h.as_view_mut(), 0.1, 42).unwrap();
            assert_close("bf16", &download_bf16(&gpu, &h), &want, BF16);
        }
    }
}
