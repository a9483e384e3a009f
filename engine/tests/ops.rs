//! Every op of the backend interface: forward against a plain reference or a known value,
//! backward against central finite differences. Written once over `&dyn Backend`; the
//! `on_every_device!` macro runs each body on the CPU (and will add CUDA when it is wired).

use negopt_engine::backend::{Accumulate, AdamWStep, Backend, GemmShape, Masking, MatView};
use negopt_engine::device::Device;

use crate::support::{Rng, check_grad, check_op_grad, weighted_sum};

macro_rules! on_every_device {
    ($($name:ident),* $(,)?) => {
        mod cpu {
            $(#[test]
            fn $name() {
                super::$name(&*negopt_engine::device::Device::Cpu.backend().unwrap());
            })*
        }
    };
}

on_every_device!(
    matmul_matches_naive_loops_for_strided_batched_views,
    embedding_backward_matches_finite_differences,
    rmsnorm_backward_matches_finite_differences,
    attention_softmax_masks_and_backward,
    attention_softmax_causal_cache_rows_equal_full_rows,
    gated_gelu_values_and_backward,
    dropout_is_a_reproducible_inverted_mask,
    cross_entropy_values_and_backward,
    adamw_matches_a_hand_computed_step,
    sum_squares_and_elementwise,
);

#[test]
fn device_names_resolve() {
    assert_eq!(Device::Cpu.backend().unwrap().name(), "cpu");
}

fn matmul_matches_naive_loops_for_strided_batched_views(be: &dyn Backend) {
    let mut rng = Rng::new(1);
    // Attention-shaped: Q (B, T, NH, HS) times Kᵀ per (b, h) into (B, NH, T, T), with A read
    // through row stride NH·HS and B transposed by swapping strides.
    let (b, t, nh, hs) = (2, 5, 3, 4);
    let q = rng.vec(b * t * nh * hs);
    let k = rng.vec(b * t * nh * hs);
    let qt = be.upload(&[b * t, nh * hs], &q).unwrap();
    let kt = be.upload(&[b * t, nh * hs], &k).unwrap();
    let mut att = be
        .upload(&[b, nh, t, t], &vec![0.5; b * nh * t * t])
        .unwrap();
    let qv = MatView::rows(nh * hs).batched(t * nh * hs, hs);
    be.matmul(
        &mut att,
        MatView::rows(t).batched(nh * t * t, t * t),
        &qt,
        qv,
        &kt,
        qv.t(),
        GemmShape {
            batch: [b, nh],
            m: t,
            n: t,
            k: hs,
        },
        Accumulate::Add,
    )
    .unwrap();
    let got = be.download(&att).unwrap();
    for bi in 0..b {
        for h in 0..nh {
            for i in 0..t {
                for j in 0..t {
                    let dot: f32 = (0..hs)
                        .map(|d| {
                            q[((bi * t + i) * nh + h) * hs + d]
                                * k[((bi * t + j) * nh + h) * hs + d]
                        })
                        .sum();
                    let g = got[((bi * nh + h) * t + i) * t + j];
                    assert!(
                        (g - (0.5 + dot)).abs() < 1e-5,
                        "({bi},{h},{i},{j}): {g} vs {}",
                        0.5 + dot
                    );
                }
            }
        }
    }
    // A large single product goes through gemm's threaded path: compare with loops too.
    let (m, n, kk) = (70, 65, 80);
    let a = rng.vec(m * kk);
    let w = rng.vec(n * kk);
    let at = be.upload(&[m, kk], &a).unwrap();
    let wt = be.upload(&[n, kk], &w).unwrap();
    let mut c = be.zeros(&[m, n]);
    be.matmul(
        &mut c,
        MatView::rows(n),
        &at,
        MatView::rows(kk),
        &wt,
        MatView::rows(kk).t(),
        GemmShape {
            batch: [1, 1],
            m,
            n,
            k: kk,
        },
        Accumulate::Overwrite,
    )
    .unwrap();
    let got = be.download(&c).unwrap();
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..kk).map(|d| a[i * kk + d] * w[j * kk + d]).sum();
            assert!((got[i * n + j] - dot).abs() < 1e-4);
        }
    }
    // A view past the end is an error, not a read out of bounds.
    let err = be
        .matmul(
            &mut c,
            MatView::rows(n),
            &at,
            MatView::rows(kk).at(1),
            &wt,
            MatView::rows(kk).t(),
            GemmShape {
                batch: [1, 1],
                m,
                n,
                k: kk,
            },
            Accumulate::Overwrite,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeds"), "{err}");
}

fn embedding_backward_matches_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(2);
    let (v, c) = (7, 5);
    let ids = [3u32, 0, 3, 6];
    let table = rng.vec(v * c);
    let w = rng.vec(ids.len() * c);
    let forward = |tab: &[f32]| {
        let t = be.upload(&[v, c], tab).unwrap();
        let mut out = be.zeros(&[ids.len(), c]);
        be.embedding_forward(&mut out, &t, &ids).unwrap();
        weighted_sum(&be.download(&out).unwrap(), &w)
    };
    let mut dtable = be.zeros(&[v, c]);
    be.embedding_backward(&mut dtable, &be.upload(&[ids.len(), c], &w).unwrap(), &ids)
        .unwrap();
    check_grad(
        "embedding dtable",
        &table,
        &be.download(&dtable).unwrap(),
        forward,
        1e-2,
        1e-4,
        1e-3,
        usize::MAX,
    );
    let mut out = be.zeros(&[1, c]);
    let err = be
        .embedding_forward(&mut out, &be.upload(&[v, c], &table).unwrap(), &[9])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token id 9") && err.contains("7 rows"),
        "{err}"
    );
}

fn rmsnorm_backward_matches_finite_differences(be: &dyn Backend) {
    let mut rng = Rng::new(3);
    let (n, c) = (4, 6);
    let x = rng.vec(n * c);
    let wt = rng.vec(c);
    let w = rng.vec(n * c);
    let run = |x: &[f32], wt: &[f32]| {
        let mut out = be.zeros(&[n, c]);
        let mut rstd = be.zeros(&[n]);
        be.rmsnorm_forward(
            &mut out,
            &mut rstd,
            &be.upload(&[n, c], x).unwrap(),
            &be.upload(&[c], wt).unwrap(),
            1e-6,
        )
        .unwrap();
        (out, rstd)
    };
    // Reference value: row 0 by hand.
    let (out, rstd) = run(&x, &wt);
    let out_h = be.download(&out).unwrap();
    let ms: f32 = x[..c].iter().map(|v| v * v).sum::<f32>() / c as f32;
    for i in 0..c {
        assert!((out_h[i] - x[i] / (ms + 1e-6).sqrt() * wt[i]).abs() < 1e-6);
    }
    let mut dinp = be.upload(&[n, c], &vec![0.25; n * c]).unwrap(); // accumulates onto 0.25
    let mut dweight = be.zeros(&[c]);
    let (xt, wtt) = (
        be.upload(&[n, c], &x).unwrap(),
        be.upload(&[c], &wt).unwrap(),
    );
    be.rmsnorm_backward(
        &mut dinp,
        &mut dweight,
        &be.upload(&[n, c], &w).unwrap(),
        &xt,
        &wtt,
        &rstd,
    )
    .unwrap();
    let dinp: Vec<f32> = be
        .download(&dinp)
        .unwrap()
        .iter()
        .map(|g| g - 0.25)
        .collect();
    check_grad(
        "rmsnorm dinp",
        &x,
        &dinp,
        |x| weighted_sum(&be.download(&run(x, &wt).0).unwrap(), &w),
        1e-2,
        2e-3,
        1e-2,
        usize::MAX,
    );
    check_grad(
        "rmsnorm dweight",
        &wt,
        &be.download(&dweight).unwrap(),
        |wt| weighted_sum(&be.download(&run(&x, wt).0).unwrap(), &w),
        1e-2,
        2e-3,
        1e-2,
        usize::MAX,
    );
}

fn attention_softmax_masks_and_backward(be: &dyn Backend) {
    let mut rng = Rng::new(4);
    let (b, nh, t) = (2, 2, 4);
    let scores = rng.vec(b * nh * t * t);
    let bias = rng.vec(t * t * nh);
    let mask = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let w = rng.vec(b * nh * t * t);
    for masking in [Masking::Bidirectional, Masking::Causal] {
        let run = |s: &[f32], bias: &[f32]| {
            let mut att = be.upload(&[b, nh, t, t], s).unwrap();
            be.attention_softmax_forward(
                &mut att,
                Some(&be.upload(&[t * t, nh], bias).unwrap()),
                Some(&be.upload(&[b, t], &mask).unwrap()),
                masking,
            )
            .unwrap();
            att
        };
        let probs = run(&scores, &bias);
        let p = be.download(&probs).unwrap();
        for (row, r) in p.chunks(t).enumerate() {
            let (q, bi) = (row % t, row / (t * nh));
            let sum: f32 = r.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "row {row} sums to {sum}");
            for (k, &pk) in r.iter().enumerate() {
                let hidden = mask[bi * t + k] == 0.0 || (masking == Masking::Causal && k > q);
                if hidden {
                    assert_eq!(pk, 0.0, "masked key {k} of row {row}");
                }
            }
        }
        let mut datt = be.upload(&[b, nh, t, t], &w).unwrap();
        let mut dbias = be.zeros(&[t * t, nh]);
        be.attention_softmax_backward(&mut datt, &probs, Some(&mut dbias))
            .unwrap();
        let loss = |s: &[f32], bias: &[f32]| weighted_sum(&be.download(&run(s, bias)).unwrap(), &w);
        check_op_grad(
            "softmax dscores",
            &scores,
            &be.download(&datt).unwrap(),
            |s| loss(s, &bias),
        );
        check_op_grad(
            "softmax dbias",
            &bias,
            &be.download(&dbias).unwrap(),
            |bias| loss(&scores, bias),
        );
    }
}

fn attention_softmax_causal_cache_rows_equal_full_rows(be: &dyn Backend) {
    // With a KV cache the last query row of a causal softmax sees every key: the same numbers
    // as the last row of the full (T, T) softmax.
    let mut rng = Rng::new(5);
    let t = 5;
    let s = rng.vec(t * t);
    let mut full = be.upload(&[1, 1, t, t], &s).unwrap();
    be.attention_softmax_forward(&mut full, None, None, Masking::Causal)
        .unwrap();
    let mut last = be.upload(&[1, 1, 1, t], &s[(t - 1) * t..]).unwrap();
    be.attention_softmax_forward(&mut last, None, None, Masking::Causal)
        .unwrap();
    assert_eq!(
        be.download(&last).unwrap(),
        be.download(&full).unwrap()[(t - 1) * t..]
    );
}

fn gated_gelu_values_and_backward(be: &dyn Backend) {
    let one = be.upload(&[1], &[1.0]).unwrap();
    let mut out = be.zeros(&[1]);
    be.gated_gelu_forward(&mut out, &one, &one).unwrap();
    // gelu_new(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.841192 (PyTorch `gelu(approximate="tanh")`).
    assert!((be.download(&out).unwrap()[0] - 0.841_192).abs() < 1e-5);
    let mut rng = Rng::new(6);
    let n = 40;
    let g: Vec<f32> = rng.vec(n).iter().map(|x| 3.0 * x).collect();
    let l = rng.vec(n);
    let w = rng.vec(n);
    let run = |g: &[f32], l: &[f32]| {
        let mut out = be.zeros(&[n]);
        be.gated_gelu_forward(
            &mut out,
            &be.upload(&[n], g).unwrap(),
            &be.upload(&[n], l).unwrap(),
        )
        .unwrap();
        weighted_sum(&be.download(&out).unwrap(), &w)
    };
    let (mut dg, mut dl) = (be.zeros(&[n]), be.zeros(&[n]));
    be.gated_gelu_backward(
        &mut dg,
        &mut dl,
        &be.upload(&[n], &w).unwrap(),
        &be.upload(&[n], &g).unwrap(),
        &be.upload(&[n], &l).unwrap(),
    )
    .unwrap();
    check_op_grad("gelu dgate", &g, &be.download(&dg).unwrap(), |g| run(g, &l));
    check_op_grad("gelu dlin", &l, &be.download(&dl).unwrap(), |l| run(&g, l));
}

fn dropout_is_a_reproducible_inverted_mask(be: &dyn Backend) {
    let n = 20_000;
    let mut t = be.upload(&[n], &vec![1.0; n]).unwrap();
    be.dropout(&mut t, 0.25, 42).unwrap();
    let a = be.download(&t).unwrap();
    let kept = a.iter().filter(|&&x| x != 0.0).count() as f64 / n as f64;
    assert!((kept - 0.75).abs() < 0.02, "kept fraction {kept}");
    assert!(a.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.75).abs() < 1e-6));
    // Backward = the same call on the gradient: same mask.
    let mut g = be.upload(&[n], &vec![2.0; n]).unwrap();
    be.dropout(&mut g, 0.25, 42).unwrap();
    let b = be.download(&g).unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| (y - 2.0 * x).abs() < 1e-6));
    let mut other = be.upload(&[n], &vec![1.0; n]).unwrap();
    be.dropout(&mut other, 0.25, 43).unwrap();
    assert_ne!(
        be.download(&other).unwrap(),
        a,
        "another seed gives another mask"
    );
    assert!(be.dropout(&mut other, 1.0, 1).is_err());
}

fn cross_entropy_values_and_backward(be: &dyn Backend) {
    let two = be.upload(&[1, 2], &[0.0, 0.0]).unwrap();
    let l = be.cross_entropy_forward(&two, &[0], 0.0).unwrap();
    assert!((l[0] - std::f32::consts::LN_2).abs() < 1e-6);
    // PyTorch: F.cross_entropy(tensor([[2., 0., -1.]]), tensor([0]), label_smoothing=0.3)
    // = 0.3·mean(-log p) + 0.7·(-log p_0) = 0.665_334.
    let x = be.upload(&[1, 3], &[2.0, 0.0, -1.0]).unwrap();
    let l = be.cross_entropy_forward(&x, &[0], 0.3).unwrap();
    let lse = (2f64.exp() + 1.0 + (-1f64).exp()).ln();
    let expected = 0.7 * (lse - 2.0) + 0.3 * (3.0 * lse - 1.0) / 3.0;
    assert!(
        (f64::from(l[0]) - expected).abs() < 1e-6,
        "{} vs {expected}",
        l[0]
    );

    let mut rng = Rng::new(7);
    let (n, v) = (5, 7);
    let logits = rng.vec(n * v);
    let targets = [3, -100, 0, 6, 2];
    for eps in [0.0, 0.1] {
        let total = |x: &[f32]| {
            let l = be
                .cross_entropy_forward(&be.upload(&[n, v], x).unwrap(), &targets, eps)
                .unwrap();
            l.iter().map(|&v| f64::from(v)).sum::<f64>() * 0.5
        };
        let mut d = be.zeros(&[n, v]);
        be.cross_entropy_backward(
            &mut d,
            &be.upload(&[n, v], &logits).unwrap(),
            &targets,
            eps,
            0.5,
        )
        .unwrap();
        let d = be.download(&d).unwrap();
        assert!(
            d[v..2 * v].iter().all(|&g| g == 0.0),
            "ignored row has no gradient"
        );
        check_grad(
            "cross-entropy dlogits",
            &logits,
            &d,
            total,
            1e-2,
            1e-4,
            1e-2,
            usize::MAX,
        );
    }
    let err = be
        .cross_entropy_forward(&x, &[5], 0.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target token id 5") && err.contains("vocabulary of 3"),
        "{err}"
    );
}

fn adamw_matches_a_hand_computed_step(be: &dyn Backend) {
    let mut p = be.upload(&[2], &[1.0, -2.0]).unwrap();
    let g = be.upload(&[2], &[0.5, 0.0]).unwrap();
    let (mut m, mut v) = (be.zeros(&[2]), be.zeros(&[2]));
    let step = AdamWStep {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        t: 1,
        grad_scale: 2.0,
    };
    be.adamw_step(&mut p, &g, &mut m, &mut v, &step).unwrap();
    let p = be.download(&p).unwrap();
    // Step 1: m̂ = g, v̂ = g², so the update is lr·sign(g) after decay: 1·(1−0.001) − 0.1.
    assert!((p[0] - (0.999 - 0.1)).abs() < 1e-6, "{}", p[0]);
    assert!((p[1] - (-2.0 * 0.999)).abs() < 1e-6, "{}", p[1]);
    let m = be.download(&m).unwrap();
    assert!((m[0] - 0.1).abs() < 1e-7 && m[1] == 0.0, "{m:?}");
}

fn sum_squares_and_elementwise(be: &dyn Backend) {
    let mut a = be.upload(&[3], &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(be.sum_squares(&a).unwrap(), 14.0);
    be.add_assign(&mut a, &be.upload(&[3], &[1.0, 1.0, 1.0]).unwrap())
        .unwrap();
    be.scale(&mut a, 0.5).unwrap();
    assert_eq!(be.download(&a).unwrap(), vec![1.0, 1.5, 2.0]);
    assert!(be.add_assign(&mut a, &be.zeros(&[2])).is_err());
    be.fill_zero(&mut a).unwrap();
    assert_eq!(be.sum_squares(&a).unwrap(), 0.0);
}
