//! Test helpers: seeded random data, bf16 rounding, device round trips, finite differences,
//! and the comparison every checker uses (after llm.c's `validate_result`): tolerance
//! `atol + |ref|·rtol`, print the first 5 pairs, stop after 10 mismatches, then fail.

use crate::error::Error;
use crate::gpu::Gpu;
use cudarc::driver::CudaSlice;
use half::bf16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A comparison tolerance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

/// bf16 outputs: 8 mantissa bits (relative step 2^-8 ≈ 4e-3) plus fp32 accumulation-order
/// differences: relative 2e-2.
pub(crate) const BF16: Tolerance = Tolerance {
    atol: 2e-2,
    rtol: 2e-2,
};

/// fp32 paths with the same operation order on both sides.
pub(crate) const F32: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-5,
};

/// Opens GPU 0, or prints why the test is skipped. With `NEGOPT_REQUIRE_GPU=1` (set by
/// `benches/gpu-check.sh` on a GPU machine) a missing GPU or NVRTC fails the test instead, so
/// a GPU check cannot pass by skipping.
pub(crate) fn gpu_or_skip(test: &str) -> Option<Gpu> {
    match Gpu::new(0) {
        Ok(gpu) => Some(gpu),
        Err(e @ (Error::CudaUnavailable { .. } | Error::NvrtcUnavailable { .. })) => {
            let required = std::env::var("NEGOPT_REQUIRE_GPU").as_deref() == Ok("1");
            assert!(
                !required,
                "{test}: a GPU is required here (NEGOPT_REQUIRE_GPU=1): {e}"
            );
            println!("{test}: skipped (no GPU): {e}");
            None
        }
        Err(e) => panic!("{test}: opening the GPU failed: {e}"),
    }
}

/// `n` uniform values in [lo, hi), reproducible from `seed`.
pub(crate) fn random(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// `n` integers in [0, hi), reproducible from `seed`.
pub(crate) fn random_ids(seed: u64, n: usize, hi: i32) -> Vec<i32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..hi)).collect()
}

/// Rounds through bf16, so the CPU reference sees exactly the GPU's inputs.
pub(crate) fn bf16_round(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| bf16::from_f32(v).to_f32()).collect()
}

pub(crate) fn upload_bf16(gpu: &Gpu, x: &[f32]) -> CudaSlice<bf16> {
    let h: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    gpu.stream().clone_htod(&h).expect("upload")
}

pub(crate) fn upload<T: cudarc::driver::DeviceRepr>(gpu: &Gpu, x: &[T]) -> CudaSlice<T> {
    gpu.stream().clone_htod(x).expect("upload")
}

pub(crate) fn download_bf16(gpu: &Gpu, x: &CudaSlice<bf16>) -> Vec<f32> {
    let h = gpu.stream().clone_dtoh(x).expect("download");
    h.iter().map(|v| v.to_f32()).collect()
}

pub(crate) fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
    gpu: &Gpu,
    x: &CudaSlice<T>,
) -> Vec<T> {
    gpu.stream().clone_dtoh(x).expect("download")
}

/// Central finite differences of a scalar function, in f64 around f32 inputs.
pub(crate) fn finite_difference(f: impl Fn(&[f32]) -> f64, x: &[f32], eps: f32) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + eps;
            let up = f(&x);
            x[i] = orig - eps;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * f64::from(eps))
        })
        .collect()
}

/// Fails the test when any `got[i]` is outside `want[i] ± (atol + |want[i]|·rtol)`.
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut mismatches = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if i < 5 {
            println!("{what}[{i}]: got {g}, want {w}");
        }
        let ok = (g - w).abs() <= tol.atol + w.abs() * tol.rtol || (g.is_nan() && w.is_nan());
        if !ok || g.is_nan() != w.is_nan() {
            mismatches += 1;
            println!("{what}[{i}]: MISMATCH got {g}, want {w}");
            if mismatches >= 10 {
                break;
            }
        }
    }
    assert_eq!(
        mismatches, 0,
        "{what}: {mismatches}+ elements out of tolerance {tol:?}"
    );
}

/// Same as [`assert_close`] for f64 references (finite differences).
pub(crate) fn assert_close_f64(what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_close(what, got, &want, tol);
}
