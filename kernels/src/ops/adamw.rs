//! AdamW with fp32 master weights and moments, bf16 working parameters, and global-norm
//! clipping read from the device (`cu/adamw.cu`). Matches `torch.optim.AdamW` with
//! `torch.nn.utils.clip_grad_norm_` applied first.

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, expect_len, grid_stride};
use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};
use half::bf16;

/// Hyper-parameters of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamwStep {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// 1-based step number (for bias correction).
    pub t: u32,
    /// Clip the global gradient norm to this (applied only when a norm is given).
    pub max_norm: f32,
    /// Multiplies the gradient before clipping (1/accumulation steps; 1 otherwise), as the
    /// engine's `AdamWStep::grad_scale`. The norm, when given, is of the scaled gradient.
    pub grad_scale: f32,
}

impl AdamwStep {
    fn bias_corrections(&self) -> (f32, f32) {
        let t = self.t as i32;
        (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t))
    }
}

/// Optimizer state of one parameter tensor, all (n,).
#[derive(Debug)]
pub struct AdamwCpuState<'a> {
    /// bf16 working copy (written as f32 values rounded to bf16).
    pub param: &'a mut [bf16],
    /// fp32 master weights.
    pub master: &'a mut [f32],
    /// First moment.
    pub m: &'a mut [f32],
    /// Second moment.
    pub v: &'a mut [f32],
}

/// The clip factor torch applies: min(1, max_norm / (‖g‖ + 1e-6)).
pub fn clip_factor(norm_sq: f32, max_norm: f32) -> f32 {
    (max_norm / (norm_sq.sqrt() + 1e-6)).min(1.0)
}

/// CPU reference: one AdamW step over one tensor; `norm_sq` is the global squared gradient
/// norm (None: no clipping).
pub fn adamw_forward_cpu(
    s: AdamwCpuState<'_>,
    grad: &[f32],
    step: &AdamwStep,
    norm_sq: Option<f32>,
) {
    let clip = norm_sq.map_or(1.0, |sq| clip_factor(sq, step.max_norm));
    let (bc1, bc2) = step.bias_corrections();
    for (i, &g) in grad.iter().enumerate() {
        let g = g * step.grad_scale * clip;
        s.m[i] = step.beta1 * s.m[i] + (1.0 - step.beta1) * g;
        s.v[i] = step.beta2 * s.v[i] + (1.0 - step.beta2) * g * g;
        let mut w = s.master[i] * (1.0 - step.lr * step.weight_decay);
        w -= step.lr * (s.m[i] / bc1) / (s.v[i].sqrt() / bc2.sqrt() + step.eps);
        s.master[i] = w;
        s.param[i] = bf16::from_f32(w);
    }
}

/// One AdamW step on the device. `norm_sq` (1,) is the global squared norm from
/// [`crate::ops::global_norm::global_norm_sq`]; `None` skips clipping.
#[allow(clippy::too_many_arguments)]
pub fn adamw_forward(
    gpu: &Gpu,
    param: &mut CudaViewMut<'_, bf16>,
    master: &mut CudaViewMut<'_, f32>,
    m: &mut CudaViewMut<'_, f32>,
    v: &mut CudaViewMut<'_, f32>,
    grad: &CudaView<'_, f32>,
    step: &AdamwStep,
    norm_sq: Option<&CudaView<'_, f32>>,
) -> Result<()> {
    const OP: &str = "adamw_forward";
    let n = grad.len();
    for (arg, len) in [
        ("param", param.len()),
        ("master", master.len()),
        ("m", m.len()),
        ("v", v.len()),
    ] {
        expect_len(OP, arg, len, n)?;
    }
    if step.t == 0 {
        return Err(bad_input!(OP, "step.t is 1-based; got 0"));
    }
    if let Some(sq) = norm_sq {
        expect_len(OP, "norm_sq", sq.len(), 1)?;
    }
    let name = kernel_name("adamw", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Adamw, &name)?;
    let (bc1, bc2) = step.bias_corrections();
    let n64 = n as i64;
    let cfg = grid_stride(gpu, n, 256)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch
        .arg(param)
        .arg(master)
        .arg(m)
        .arg(v)
        .arg(grad)
        .arg(&n64);
    launch
        .arg(&step.lr)
        .arg(&step.beta1)
        .arg(&step.beta2)
        .arg(&step.eps)
        .arg(&step.weight_decay)
        .arg(&bc1)
        .arg(&bc2)
        .arg(&step.grad_scale);
    match norm_sq {
        Some(sq) => launch.arg(sq),
        None => launch.arg(&NULL),
    };
    launch.arg(&step.max_norm);
    // SAFETY: arguments match the kernel's signature in adamw.cu; every buffer holds n
    // elements and norm_sq is NULL or one float.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const STEP: AdamwStep = AdamwStep {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        t: 3,
        max_norm: 1.0,
        grad_scale: 0.5,
    };

    /// The first step of Adam moves each weight by about lr·sign(g) (m̂/√v̂ = g/|g|), plus decay.
    #[test]
    fn first_step_moves_by_lr() {
        let mut param = vec![bf16::ZERO; 2];
        let (mut master, mut m, mut v) = (vec![1.0, -1.0], vec![0.0; 2], vec![0.0; 2]);
        let step = AdamwStep {
            t: 1,
            weight_decay: 0.0,
            ..STEP
        };
        let state = AdamwCpuState {
            param: &mut param,
            master: &mut master,
            m: &mut m,
            v: &mut v,
        };
        adamw_forward_cpu(state, &[0.5, -2.0], &step, None);
        assert!((master[0] - (1.0 - 1e-2)).abs() < 1e-6);
        assert!((master[1] - (-1.0 + 1e-2)).abs() < 1e-6);
        assert_eq!(param[0], bf16::from_f32(master[0]));
    }

    /// `grad_scale` multiplies the gradient: scale ½ on g equals scale 1 on g/2 (exact halves).
    #[test]
    fn grad_scale_scales_the_gradient() {
        let run = |grad: &[f32], grad_scale: f32| {
            let mut param = vec![bf16::ZERO; 2];
            let (mut master, mut m, mut v) = (vec![1.0, -1.0], vec![0.3, 0.1], vec![0.2, 0.4]);
            let state = AdamwCpuState {
                param: &mut param,
                master: &mut master,
                m: &mut m,
                v: &mut v,
            };
            let step = AdamwStep { grad_scale, ..STEP };
            adamw_forward_cpu(state, grad, &step, None);
            (master, m, v)
        };
        assert_eq!(run(&[0.5, -2.0], 0.5), run(&[0.25, -1.0], 1.0));
        assert_ne!(run(&[0.5, -2.0], 0.5), run(&[0.5, -2.0], 1.0));
    }

    #[test]
    fn clip_factor_matches_torch() {
        assert_eq!(clip_factor(0.25, 1.0), 1.0);
        assert!((clip_factor(16.0, 1.0) - 1.0 / (4.0 + 1e-6)).abs() < 1e-9);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("adamw::gpu_matches_cpu") else {
            return;
        };
        for (n, clip) in [(1usize, None), (1000, Some(9.0f32)), (1 << 20, Some(0.01))] {
            let master = random(1, n, -1.0, 1.0);
            let m = random(2, n, -0.1, 0.1);
            let v = random(3, n, 0.0, 0.01);
            let grad = random(4, n, -1.0, 1.0);
            let mut d_param = gpu.stream().alloc_zeros::<bf16>(n).unwrap();
            let (mut d_master, mut d_m, mut d_v) =
                (upload(&gpu, &master), upload(&gpu, &m), upload(&gpu, &v));
            let d_grad = upload(&gpu, &grad);
            let d_sq = clip.map(|c| upload(&gpu, &[c]));
            let sq_view = d_sq.as_ref().map(|s| s.as_view());
            adamw_forward(
                &gpu,
                &mut d_param.as_view_mut(),
                &mut d_master.as_view_mut(),
                &mut d_m.as_view_mut(),
                &mut d_v.as_view_mut(),
                &d_grad.as_view(),
                &STEP,
                sq_view.as_ref(),
            )
            .unwrap();
            let (mut w_param, mut w_master, mut w_m, mut w_v) = (vec![bf16::ZERO; n], master, m, v);
            let state = AdamwCpuState {
                param: &mut w_param,
                master: &mut w_master,
                m: &mut w_m,
                v: &mut w_v,
            };
            adamw_forward_cpu(state, &grad, &STEP, clip);
            // Same fp32 operations in the same order; sqrt/div are correctly rounded on both.
            let tol = Tolerance {
                atol: 1e-6,
                rtol: 1e-5,
            };
            assert_close("master", &download(&gpu, &d_master), &w_master, tol);
            assert_close("m", &download(&gpu, &d_m), &w_m, tol);
            assert_close("v", &download(&gpu, &d_v), &w_v, tol);
            let got_param: Vec<f32> = download(&gpu, &d_param)
                .iter()
                .map(|x| x.to_f32())
                .collect();
            let want_param: Vec<f32> = w_param.iter().map(|x| x.to_f32()).collect();
            assert_close("param", &got_param, &want_param, BF16);
        }
    }
}
