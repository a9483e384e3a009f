//! Fused softmax + cross-entropy over the vocabulary (`cu/cross_entropy.cu`): per-row loss,
//! and optionally dlogits in the same pass, never storing the probabilities. Shapes: logits
//! and dlogits (N, V), targets (N,), loss (N,).

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, as_i32, expect_len, per_row};
use crate::ops::embedding::TokenIds;
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};
use half::bf16;

/// HF's `CrossEntropyLoss` ignore index for padded label positions.
pub const IGNORE_INDEX: i32 = -100;

/// CPU reference: per-row loss `lse − (1−ε)·x_t − (ε/V)·Σx` (0 for ignored rows) and, with
/// `dloss`, dlogits = (softmax − q)·dloss with `q = (1−ε)·onehot + ε/V` (0 rows for ignored
/// targets); ε is `label_smoothing`, as in PyTorch's `F.cross_entropy`.
pub fn cross_entropy_forward_cpu(
    logits: &[f32],
    targets: &[i32],
    v: usize,
    label_smoothing: f32,
    dloss: Option<f32>,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let eps = label_smoothing;
    let smooth = eps / v as f32;
    let mut loss = Vec::with_capacity(targets.len());
    let mut dlogits = dloss.map(|_| vec![0.0; logits.len()]);
    for (n, (&t, row)) in targets.iter().zip(logits.chunks(v)).enumerate() {
        if t == IGNORE_INDEX {
            loss.push(0.0);
            continue;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
        let sum: f32 = row.iter().sum();
        loss.push(lse - (1.0 - eps) * row[t as usize] - smooth * sum);
        if let (Some(d), Some(scale)) = (dlogits.as_mut(), dloss) {
            for (j, (dj, &x)) in d[n * v..(n + 1) * v].iter_mut().zip(row).enumerate() {
                let q = if j == t as usize { 1.0 - eps } else { 0.0 } + smooth;
                *dj = ((x - lse).exp() - q) * scale;
            }
        }
    }
    (loss, dlogits)
}

/// Device loss (N,) and, when `dlogits_and_scale` is given, dlogits (N, V) = (softmax −
/// q)·dloss, with label smoothing as [`cross_entropy_forward_cpu`] (the kernel also supports
/// writing over the logits, which these borrow rules leave to a future in-place launcher).
pub fn cross_entropy_forward(
    gpu: &Gpu,
    loss: &mut CudaViewMut<'_, f32>,
    dlogits_and_scale: Option<(&mut CudaViewMut<'_, bf16>, f32)>,
    logits: &CudaView<'_, bf16>,
    targets: &TokenIds,
    label_smoothing: f32,
) -> Result<()> {
    const OP: &str = "cross_entropy_forward";
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(bad_input!(
            OP,
            "label smoothing {label_smoothing} is outside [0, 1]"
        ));
    }
    let (n, v) = (targets.len(), targets.vocab());
    expect_len(OP, "logits", logits.len(), n * v)?;
    expect_len(OP, "loss", loss.len(), n)?;
    if n == 0 {
        return Ok(());
    }
    if v == 0 {
        return Err(bad_input!(OP, "the vocabulary is empty"));
    }
    let name = kernel_name("cross_entropy", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::CrossEntropy, &name)?;
    let (n32, v32) = (as_i32(OP, "N", n)?, as_i32(OP, "V", v)?);
    let ids = targets.view();
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(loss);
    let scale = match dlogits_and_scale {
        Some((d, scale)) => {
            expect_len(OP, "dlogits", d.len(), n * v)?;
            launch.arg(d);
            scale
        }
        None => {
            launch.arg(&NULL);
            0.0
        }
    };
    launch
        .arg(logits)
        .arg(&ids)
        .arg(&n32)
        .arg(&v32)
        .arg(&IGNORE_INDEX)
        .arg(&label_smoothing)
        .arg(&scale);
    // SAFETY: arguments match `(float* loss, bf16* dlogits, const bf16* logits,
    // const int* targets, int N, int V, int ignore_index, float label_smoothing,
    // float dloss)`; lengths checked.
    unsafe { launch.launch(per_row(n, 512, 0)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn uniform_logits_give_log_v() {
        let (loss, _) = cross_entropy_forward_cpu(&[0.0; 8], &[3, IGNORE_INDEX], 4, 0.0, None);
        assert!((loss[0] - 4f32.ln()).abs() < 1e-6);
        assert_eq!(loss[1], 0.0);
    }

    #[test]
    fn label_smoothing_known_value() {
        // logits [1, 0], target 0, ε 0.2: ln(e + 1) − 0.8·1 − 0.1·(1 + 0) (PyTorch gives 0.4132617).
        let (loss, _) = cross_entropy_forward_cpu(&[1.0, 0.0], &[0], 2, 0.2, None);
        assert!((loss[0] - 0.413_261_7).abs() < 1e-6, "{}", loss[0]);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (n, v) = (3, 6);
        let logits = random(1, n * v, -3.0, 3.0);
        let targets = [2, IGNORE_INDEX, 5];
        for eps in [0.0, 0.1] {
            let (_, d) = cross_entropy_forward_cpu(&logits, &targets, v, eps, Some(0.5));
            let fd = finite_difference(
                |x| {
                    let (l, _) = cross_entropy_forward_cpu(x, &targets, v, eps, None);
                    l.iter().map(|&x| f64::from(x) * 0.5).sum()
                },
                &logits,
                1e-3,
            );
            assert_close_f64(
                "dlogits",
                &d.unwrap(),
                &fd,
                Tolerance {
                    atol: 1e-3,
                    rtol: 1e-2,
                },
            );
        }
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("cross_entropy::gpu_matches_cpu") else {
            return;
        };
        for (n, v, eps) in [(1usize, 1usize, 0.0), (5, 1000, 0.1), (512, 32128, 0.1)] {
            let logits = bf16_round(&random(1, n * v, -8.0, 8.0));
            let mut targets = random_ids(2, n, v as i32);
            if n > 1 {
                targets[1] = IGNORE_INDEX;
            }
            let d_targets = TokenIds::upload_targets(&gpu, &targets, v, IGNORE_INDEX).unwrap();
            let d_logits = upload_bf16(&gpu, &logits);
            let mut d_loss = gpu.stream().alloc_zeros::<f32>(n).unwrap();
            let mut d_dlogits = gpu.stream().alloc_zeros::<bf16>(n * v).unwrap();
            let scale = 1.0 / n as f32;
            cross_entropy_forward(
                &gpu,
                &mut d_loss.as_view_mut(),
                Some((&mut d_dlogits.as_view_mut(), scale)),
                &d_logits.as_view(),
                &d_targets,
                eps,
            )
            .unwrap();
            let (loss, dlogits) = cross_entropy_forward_cpu(&logits, &targets, v, eps, Some(scale));
            // The loss is fp32 (lse over V terms): relative 1e-4 covers __expf's 2 ulp.
            assert_close(
                "loss",
                &download(&gpu, &d_loss),
                &loss,
                Tolerance {
                    atol: 1e-4,
                    rtol: 1e-4,
                },
            );
            // dlogits are bf16 and scaled by 1/n: absolute tolerance scales with them.
            let tol = Tolerance {
                atol: 2e-2 * scale,
                rtol: 2e-2,
            };
            assert_close(
                "dlogits",
                &download_bf16(&gpu, &d_dlogits),
                &dlogits.unwrap(),
                tol,
            );
        }
    }
}
