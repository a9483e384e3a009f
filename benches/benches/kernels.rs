//! Kernel benchmarks on the GPU: each kernel's median time, achieved TFLOP/s or GB/s, and its
//! share of the H200 roofline (about 990 TFLOP/s dense bf16, about 4.8 TB/s HBM); the GEMM
//! against cuBLAS on T5 (flan-t5-base) shapes, every variant side by side.
//!
//! Run: `cargo bench -p negopt-benches --bench kernels` (NVRTC on the library path, see
//! `kernels/ci/fetch-nvrtc.sh`). Without a GPU it prints that it skipped and measures nothing.
//! With `NEGOPT_BENCH_FIGURES=FILE` one line per case is appended to FILE
//! (`benches/gpu-check.sh` collects them).
//!
//! Timing: CUDA events around each launch; L2 (50 MB on H200) is flushed with a 256 MB memset
//! before every timed launch, outside the events, so each run reads from HBM. Criterion gets
//! the event times through `iter_custom`; the figures line uses the median of 20 runs.
//! Groups are named `<device>_<dtype>_<op>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{CudaEvent, CudaSlice, sys::CUevent_flags};
use half::bf16;
use negopt_kernels::ops::adamw::{AdamwStep, adamw_forward};
use negopt_kernels::ops::attention::{
    AttentionShape, BucketDirection, GpuAttention, GpuAttentionGrads, GpuBias, Masking,
    attention_backward, attention_forward, bucket_table,
};
use negopt_kernels::ops::attention_softmax::{ScoreShape, attention_softmax_forward};
use negopt_kernels::ops::cast::cast_f32_to_bf16;
use negopt_kernels::ops::cross_entropy::cross_entropy_forward;
use negopt_kernels::ops::dropout::dropout_forward;
use negopt_kernels::ops::elementwise::scale_add;
use negopt_kernels::ops::embedding::{TokenIds, embedding_forward};
use negopt_kernels::ops::gated_gelu::{gated_gelu_backward, gated_gelu_forward};
use negopt_kernels::ops::gemm::{GemmShape, GemmVariant, Layout, gemm_forward_variant};
use negopt_kernels::ops::gemm_strided::{MatLayout, StridedShape, gemm_strided_forward};
use negopt_kernels::ops::global_norm::global_norm_sq;
use negopt_kernels::ops::rmsnorm::{rmsnorm_backward, rmsnorm_forward};
use negopt_kernels::{Error, Gpu};

/// H200 dense bf16 tensor-core peak, FLOP/s.
const PEAK_FLOPS: f64 = 990e12;
/// H200 HBM3e bandwidth, bytes/s.
const PEAK_BYTES: f64 = 4.8e12;
/// Bytes memset between timed launches to evict L2.
const FLUSH_BYTES: usize = 256 << 20;

/// What one launch does, for the roofline share.
#[derive(Clone, Copy)]
enum Work {
    /// Floating-point operations (tensor-core bound).
    Flops(f64),
    /// Bytes that must cross HBM at least once (memory bound).
    Bytes(f64),
}

/// Event-timed launches with an L2 flush before each.
struct Timer<'g> {
    gpu: &'g Gpu,
    start: CudaEvent,
    end: CudaEvent,
    flush: CudaSlice<u8>,
    figures: Option<std::fs::File>,
}

impl<'g> Timer<'g> {
    fn new(gpu: &'g Gpu) -> Timer<'g> {
        let ctx = gpu.context();
        let flags = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let figures = std::env::var_os("NEGOPT_BENCH_FIGURES").map(|path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open NEGOPT_BENCH_FIGURES")
        });
        Timer {
            gpu,
            start: ctx.new_event(flags).expect("event"),
            end: ctx.new_event(flags).expect("event"),
            flush: gpu
                .stream()
                .alloc_zeros::<u8>(FLUSH_BYTES)
                .expect("flush buffer"),
            figures,
        }
    }

    /// Seconds one call of `f` takes on the device.
    fn time_once(&mut self, f: &mut dyn FnMut()) -> f64 {
        let stream = self.gpu.stream();
        stream.memset_zeros(&mut self.flush).expect("flush L2");
        self.start.record(stream).expect("record");
        f();
        self.end.record(stream).expect("record");
        self.end.synchronize().expect("sync");
        f64::from(self.start.elapsed_ms(&self.end).expect("elapsed")) / 1e3
    }

    fn median(&mut self, f: &mut dyn FnMut(), runs: usize) -> f64 {
        let mut times: Vec<f64> = (0..runs).map(|_| self.time_once(f)).collect();
        times.sort_by(f64::total_cmp);
        times[runs / 2]
    }

    /// Registers `f` with criterion under `group/case`, then prints (and appends to the
    /// figures file) its median, throughput and roofline share. Returns the median seconds.
    fn case(
        &mut self,
        c: &mut Criterion,
        group: &str,
        case: &str,
        work: Work,
        f: &mut dyn FnMut(),
    ) -> f64 {
        f(); // compile, load and warm up outside any timing
        self.gpu.synchronize().expect("sync");
        {
            let mut g = c.benchmark_group(group);
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_secs(1));
            g.bench_function(case, |b| {
                b.iter_custom(|iters| {
                    let total: f64 = (0..iters).map(|_| self.time_once(f)).sum();
                    Duration::from_secs_f64(total)
                })
            });
            g.finish();
        }
        let secs = self.median(f, 20);
        let rate = match work {
            Work::Flops(flops) => {
                let tflops = flops / secs / 1e12;
                format!(
                    "{tflops:.1} TFLOP/s, {:.1}% of bf16 peak",
                    100.0 * flops / secs / PEAK_FLOPS
                )
            }
            Work::Bytes(bytes) => {
                let gbs = bytes / secs / 1e9;
                format!(
                    "{gbs:.0} GB/s, {:.1}% of HBM",
                    100.0 * bytes / secs / PEAK_BYTES
                )
            }
        };
        self.figure(&format!(
            "{group}/{case}: median {:.3} ms, {rate}",
            secs * 1e3
        ));
        secs
    }

    fn figure(&mut self, line: &str) {
        println!("figure: {line}");
        if let Some(file) = &mut self.figures {
            writeln!(file, "{line}").expect("write figures");
        }
    }
}

fn bf16_buffer(gpu: &Gpu, n: usize, seed: u32) -> CudaSlice<bf16> {
    // A cheap deterministic pattern in [-1, 1): values do not change the kernels' speed.
    let host: Vec<bf16> = (0..n)
        .map(|i| {
            bf16::from_f32(
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                    / 8_388_608.0
                    - 1.0,
            )
        })
        .collect();
    gpu.stream().clone_htod(&host).expect("upload")
}

fn f32_buffer(gpu: &Gpu, n: usize, value: f32) -> CudaSlice<f32> {
    gpu.stream().clone_htod(&vec![value; n]).expect("upload")
}

/// cuBLAS (column-major) computing the same row-major product as `gemm_forward` with `layout`.
fn cublas_gemm(
    blas: &CudaBlas,
    layout: Layout,
    s: GemmShape,
    c: &mut CudaSlice<bf16>,
    a: &CudaSlice<bf16>,
    b: &CudaSlice<bf16>,
) {
    use cublasOperation_t::{CUBLAS_OP_N as N, CUBLAS_OP_T as T};
    let (m, n, k) = (s.m as i32, s.n as i32, s.k as i32);
    // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: pass B first.
    let (transa, lda, transb, ldb) = match layout {
        Layout::Nt => (T, k, N, k),
        Layout::Nn => (N, n, N, k),
        Layout::Tn => (N, n, T, m),
    };
    let cfg = GemmConfig {
        transa,
        transb,
        m: n,
        n: m,
        k,
        alpha: bf16::ONE,
        lda,
        ldb,
        beta: bf16::ZERO,
        ldc: n,
    };
    // SAFETY: buffers hold the sizes the shape implies; leading dimensions match the layouts.
    unsafe { blas.gemm(cfg, b, a, c) }.expect("cuBLAS gemm");
}

fn bench_gemm(c: &mut Criterion, t: &mut Timer<'_>) {
    let gpu = t.gpu;
    let blas = CudaBlas::new(gpu.stream().clone()).expect("cuBLAS");
    let tokens = 4096; // 32 sequences × 128 tokens
    let cases = [
        ("attn_proj_nt", Layout::Nt, tokens, 768, 768),
        ("ff_wi_nt", Layout::Nt, tokens, 2048, 768),
        ("ff_wo_nt", Layout::Nt, tokens, 768, 2048),
        ("lm_head_nt", Layout::Nt, tokens, 32128, 768),
        ("ff_wo_dx_nn", Layout::Nn, tokens, 2048, 768),
        ("ff_wo_dw_tn", Layout::Tn, 768, 2048, tokens),
    ];
    for (name, layout, m, n, k) in cases {
        let shape = GemmShape { m, n, k, batch: 1 };
        let a = bf16_buffer(gpu, m * k, 1);
        let b = bf16_buffer(gpu, n * k, 2);
        let mut out = gpu.stream().alloc_zeros::<bf16>(m * n).expect("alloc");
        let work = Work::Flops(shape.flops());
        let case = format!("{name}_{m}x{n}x{k}");
        let reference = t.case(
            c,
            "cuda_bf16_gemm",
            &format!("{case}/cublas"),
            work,
            &mut || cublas_gemm(&blas, layout, shape, &mut out, &a, &b),
        );
        for variant in GemmVariant::ALL {
            if variant == GemmVariant::V2 && layout != Layout::Nt {
                continue;
            }
            let ours = t.case(
                c,
                "cuda_bf16_gemm",
                &format!("{case}/{variant:?}"),
                work,
                &mut || {
                    gemm_forward_variant(
                        gpu,
                        variant,
                        layout,
                        shape,
                        &mut out.as_view_mut(),
                        &a.as_view(),
                        &b.as_view(),
                        1.0,
                        0.0,
                    )
                    .expect("gemm")
                },
            );
            t.figure(&format!(
                "cuda_bf16_gemm/{case}/{variant:?}: {:.0}% of cuBLAS (target 70%)",
                100.0 * reference / ours
            ));
        }
    }
}

fn bench_attention(c: &mut Criterion, t: &mut Timer<'_>) {
    let gpu = t.gpu;
    let shape = AttentionShape {
        batch: 4,
        heads: 12,
        q_len: 1024,
        k_len: 1024,
        head_dim: 64,
    };
    let n = shape.batch * shape.q_len * shape.heads * shape.head_dim;
    let rows = shape.batch * shape.heads * shape.q_len;
    let (q, k, v, dout) = (
        bf16_buffer(gpu, n, 1),
        bf16_buffer(gpu, n, 2),
        bf16_buffer(gpu, n, 3),
        bf16_buffer(gpu, n, 4),
    );
    let (num_buckets, max_distance) = (32, 128);
    let table = bf16_buffer(gpu, num_buckets * shape.heads, 5);
    // Buffers of the unfused peer: the (B, NH, T, T) scores and a pre-gathered (T·T, NH) bias.
    let mut att = gpu
        .stream()
        .alloc_zeros::<bf16>(shape.batch * shape.heads * shape.q_len * shape.k_len)
        .expect("alloc");
    let gathered_bias = bf16_buffer(gpu, shape.q_len * shape.k_len * shape.heads, 6);
    for (masking, direction) in [
        (Masking::Bidirectional, BucketDirection::Bidirectional),
        (Masking::Causal, BucketDirection::Unidirectional),
    ] {
        let buckets = gpu
            .stream()
            .clone_htod(&bucket_table(direction, num_buckets, max_distance))
            .expect("upload");
        let (qv, kv, vv, tv, bv) = (
            q.as_view(),
            k.as_view(),
            v.as_view(),
            table.as_view(),
            buckets.as_view(),
        );
        let a = GpuAttention {
            shape,
            q: &qv,
            k: &kv,
            v: &vv,
            bias: Some(GpuBias {
                table: &tv,
                buckets: &bv,
                max_distance,
                num_buckets,
            }),
            key_len: None,
            masking,
            scale: 1.0,
        };
        let mut o = gpu.stream().alloc_zeros::<bf16>(n).expect("alloc");
        let mut lse = gpu.stream().alloc_zeros::<f32>(rows).expect("alloc");
        // Causal attention skips about half the scores; count only those computed.
        let visible = if masking == Masking::Causal { 0.5 } else { 1.0 };
        let case = format!("b4_h12_t1024_d64_{masking:?}_t5bias").to_lowercase();
        let fwd = Work::Flops(shape.forward_flops() * visible);
        let fused = t.case(
            c,
            "cuda_bf16_attention_forward",
            &format!("{case}/v1"),
            fwd,
            &mut || {
                attention_forward(gpu, &a, &mut o.as_view_mut(), &mut lse.as_view_mut())
                    .expect("attention forward")
            },
        );
        // The peer: the same attention unfused, as the engine's CPU path does it: scores by a
        // strided GEMM into a (B, NH, T, T) bf16 buffer, bias + mask + softmax in place, then
        // P·V by a second GEMM. The bias here is already gathered to (T·T, NH).
        let secs_unfused = t.case(
            c,
            "cuda_bf16_attention_forward",
            &format!("{case}/unfused"),
            fwd,
            &mut || {
                let heads = MatLayout {
                    offset: 0,
                    row_stride: shape.heads * shape.head_dim,
                    col_stride: 1,
                    batch_stride: [shape.q_len * shape.heads * shape.head_dim, shape.head_dim],
                };
                let t_len = shape.q_len;
                let scores = MatLayout {
                    offset: 0,
                    row_stride: t_len,
                    col_stride: 1,
                    batch_stride: [shape.heads * t_len * t_len, t_len * t_len],
                };
                let qk = StridedShape {
                    batch: [shape.batch, shape.heads],
                    m: t_len,
                    n: t_len,
                    k: shape.head_dim,
                };
                gemm_strided_forward(
                    gpu,
                    &mut att.as_view_mut(),
                    scores,
                    &q.as_view(),
                    heads,
                    &k.as_view(),
                    heads.t(),
                    qk,
                    1.0,
                    0.0,
                )
                .expect("scores");
                let sshape = ScoreShape {
                    batch: shape.batch,
                    heads: shape.heads,
                    q_len: t_len,
                    k_len: t_len,
                };
                attention_softmax_forward(
                    gpu,
                    &mut att.as_view_mut(),
                    sshape,
                    Some(&gathered_bias.as_view()),
                    None,
                    masking,
                )
                .expect("softmax");
                let pv = StridedShape {
                    batch: [shape.batch, shape.heads],
                    m: t_len,
                    n: shape.head_dim,
                    k: t_len,
                };
                gemm_strided_forward(
                    gpu,
                    &mut o.as_view_mut(),
                    heads,
                    &att.as_view(),
                    scores,
                    &v.as_view(),
                    heads,
                    pv,
                    1.0,
                    0.0,
                )
                .expect("P·V");
            },
        );
        t.figure(&format!(
            "cuda_bf16_attention_forward/{case}: fused v1 is {:.2}× the unfused path's speed",
            secs_unfused / fused
        ));
        let (mut dq, mut dk, mut dv) = (
            gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
            gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
            gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
        );
        let mut dbias = gpu
            .stream()
            .alloc_zeros::<f32>(num_buckets * shape.heads)
            .expect("alloc");
        let mut delta = gpu.stream().alloc_zeros::<f32>(rows).expect("alloc");
        // FlashAttention-2 convention: the backward does 2.5× the forward's matmul FLOPs.
        let bwd = Work::Flops(2.5 * shape.forward_flops() * visible);
        t.case(
            c,
            "cuda_bf16_attention_backward",
            &format!("{case}/v1"),
            bwd,
            &mut || {
                let (mut a1, mut a2, mut a3, mut a4, mut a5) = (
                    dq.as_view_mut(),
                    dk.as_view_mut(),
                    dv.as_view_mut(),
                    dbias.as_view_mut(),
                    delta.as_view_mut(),
                );
                let grads = GpuAttentionGrads {
                    dq: &mut a1,
                    dk: &mut a2,
                    dv: &mut a3,
                    dbias: Some(&mut a4),
                    delta: &mut a5,
                };
                attention_backward(
                    gpu,
                    &a,
                    grads,
                    &dout.as_view(),
                    &o.as_view(),
                    &lse.as_view(),
                )
                .expect("attention backward")
            },
        );
    }
}

fn bench_memory_bound(c: &mut Criterion, t: &mut Timer<'_>) {
    let gpu = t.gpu;
    // RMSNorm + residual: (16384 tokens, 768). Bytes: x, resid read; h, y written (bf16).
    let (rows, ch) = (16384, 768);
    let nc = rows * ch;
    let (x, r, w) = (
        bf16_buffer(gpu, nc, 1),
        bf16_buffer(gpu, nc, 2),
        bf16_buffer(gpu, ch, 3),
    );
    let (mut y, mut h) = (
        gpu.stream().alloc_zeros::<bf16>(nc).expect("alloc"),
        gpu.stream().alloc_zeros::<bf16>(nc).expect("alloc"),
    );
    let mut rstd = gpu.stream().alloc_zeros::<f32>(rows).expect("alloc");
    t.case(
        c,
        "cuda_bf16_rmsnorm",
        "forward_16384x768/v1",
        Work::Bytes((4 * nc * 2) as f64),
        &mut || {
            rmsnorm_forward(
                gpu,
                &mut y.as_view_mut(),
                &mut rstd.as_view_mut(),
                &x.as_view(),
                Some((&r.as_view(), &mut h.as_view_mut())),
                &w.as_view(),
                ch,
                1e-6,
            )
            .expect("rmsnorm forward")
        },
    );
    // Backward bytes: dy, dresid, h read; dx written (bf16); w, rstd, dw are small.
    let mut dx = gpu.stream().alloc_zeros::<bf16>(nc).expect("alloc");
    let mut dw = gpu.stream().alloc_zeros::<f32>(ch).expect("alloc");
    t.case(
        c,
        "cuda_bf16_rmsnorm",
        "backward_16384x768/v1",
        Work::Bytes((4 * nc * 2) as f64),
        &mut || {
            rmsnorm_backward(
                gpu,
                &mut dx.as_view_mut(),
                &mut dw.as_view_mut(),
                &x.as_view(),
                Some(&r.as_view()),
                &h.as_view(),
                &w.as_view(),
                &rstd.as_view(),
                ch,
            )
            .expect("rmsnorm backward")
        },
    );

    // Gated-GELU: (4096 tokens, 2048·4). Forward reads a, b and writes out; backward reads
    // dout, a, b and writes da, db.
    let n = 4096 * 8192;
    let (ga, gb) = (bf16_buffer(gpu, n, 4), bf16_buffer(gpu, n, 5));
    let (mut gout, mut gda, mut gdb) = (
        gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
        gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
        gpu.stream().alloc_zeros::<bf16>(n).expect("alloc"),
    );
    t.case(
        c,
        "cuda_bf16_gated_gelu",
        "forward_33554432/v1",
        Work::Bytes((3 * n * 2) as f64),
        &mut || {
            gated_gelu_forward(gpu, &mut gout.as_view_mut(), &ga.as_view(), &gb.as_view())
                .expect("gelu forward")
        },
    );
    t.case(
        c,
        "cuda_bf16_gated_gelu",
        "backward_33554432/v1",
        Work::Bytes((5 * n * 2) as f64),
        &mut || {
            gated_gelu_backward(
                gpu,
                &mut gda.as_view_mut(),
                &mut gdb.as_view_mut(),
                &ga.as_view(),
                &ga.as_view(),
                &gb.as_view(),
            )
            .expect("gelu backward")
        },
    );

    // Embedding: 16384 tokens of a (32128, 768) table. Bytes: rows read + written, ids.
    let vocab = 32128;
    let table = bf16_buffer(gpu, vocab * ch, 6);
    let ids: Vec<u32> = (0..rows as u32)
        .map(|i| i.wrapping_mul(7919) % vocab as u32)
        .collect();
    let ids = TokenIds::upload(gpu, &ids, vocab).expect("ids");
    let mut emb = gpu.stream().alloc_zeros::<bf16>(nc).expect("alloc");
    t.case(
        c,
        "cuda_bf16_embedding",
        "forward_16384x768/v1",
        Work::Bytes((2 * nc * 2 + rows * 4) as f64),
        &mut || {
            embedding_forward(gpu, &mut emb.as_view_mut(), &ids, &table.as_view(), ch)
                .expect("embedding")
        },
    );

    // Cross-entropy: (4096 tokens, 32128). Bytes: logits read once, dlogits written once (the
    // kernel reads the row twice; the second read mostly hits L2 for one row).
    let tokens = 4096;
    let logits = bf16_buffer(gpu, tokens * vocab, 7);
    let targets: Vec<i32> = (0..tokens as i32).map(|i| i * 31 % vocab as i32).collect();
    let targets = TokenIds::upload_targets(gpu, &targets, vocab, -100).expect("targets");
    let mut loss = gpu.stream().alloc_zeros::<f32>(tokens).expect("alloc");
    let mut dlogits = gpu
        .stream()
        .alloc_zeros::<bf16>(tokens * vocab)
        .expect("alloc");
    t.case(
        c,
        "cuda_bf16_cross_entropy",
        "fused_fwd_bwd_4096x32128/v1",
        Work::Bytes((2 * tokens * vocab * 2) as f64),
        &mut || {
            cross_entropy_forward(
                gpu,
                &mut loss.as_view_mut(),
                Some((&mut dlogits.as_view_mut(), 1.0 / tokens as f32)),
                &logits.as_view(),
                &targets,
                0.1,
            )
            .expect("cross entropy")
        },
    );

    // Optimizer over 64M parameters: AdamW reads grad, master, m, v (16 B) and writes param,
    // master, m, v (14 B); global norm reads the grads (4 B); the cast reads 4 and writes 2 B.
    let p = 64 << 20;
    let grad = f32_buffer(gpu, p, 1e-3);
    let (mut master, mut m, mut v) = (
        f32_buffer(gpu, p, 0.5),
        f32_buffer(gpu, p, 0.0),
        f32_buffer(gpu, p, 0.0),
    );
    let mut param = gpu.stream().alloc_zeros::<bf16>(p).expect("alloc");
    let mut norm_sq = gpu.stream().alloc_zeros::<f32>(1).expect("alloc");
    t.case(
        c,
        "cuda_f32_global_norm",
        "sum_sq_67108864/v1",
        Work::Bytes((4 * p) as f64),
        &mut || {
            global_norm_sq(gpu, &mut norm_sq.as_view_mut(), &[grad.as_view()]).expect("global norm")
        },
    );
    let step = AdamwStep {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        t: 10,
        max_norm: 1.0,
        grad_scale: 1.0,
    };
    t.case(
        c,
        "cuda_bf16_adamw",
        "step_67108864/v1",
        Work::Bytes((30 * p) as f64),
        &mut || {
            adamw_forward(
                gpu,
                &mut param.as_view_mut(),
                &mut master.as_view_mut(),
                &mut m.as_view_mut(),
                &mut v.as_view_mut(),
                &grad.as_view(),
                &step,
                Some(&norm_sq.as_view()),
            )
            .expect("adamw")
        },
    );
    t.case(
        c,
        "cuda_bf16_cast",
        "f32_to_bf16_67108864/v1",
        Work::Bytes((6 * p) as f64),
        &mut || cast_f32_to_bf16(gpu, &mut param.as_view_mut(), &master.as_view()).expect("cast"),
    );
    // Dropout in place over the same 64M bf16 values: reads and writes 2 B each.
    t.case(
        c,
        "cuda_bf16_dropout",
        "p0.1_67108864/v1",
        Work::Bytes((4 * p) as f64),
        &mut || dropout_forward(gpu, &mut param.as_view_mut(), 0.1, 7).expect("dropout"),
    );
    // The residual add, a = a + b over 64M fp32 values: reads 8 B and writes 4 B each.
    t.case(
        c,
        "cuda_f32_scale_add",
        "residual_add_67108864/v1",
        Work::Bytes((12 * p) as f64),
        &mut || {
            scale_add(gpu, &mut master.as_view_mut(), Some(&grad.as_view()), 1.0)
                .expect("scale_add")
        },
    );
}

fn kernels(c: &mut Criterion) {
    let gpu = match Gpu::new(0) {
        Ok(gpu) => gpu,
        Err(e @ (Error::CudaUnavailable { .. } | Error::NvrtcUnavailable { .. })) => {
            // benches/gpu-check.sh sets this on a GPU machine: there, skipping is a failure.
            let required = std::env::var("NEGOPT_REQUIRE_GPU").as_deref() == Ok("1");
            assert!(
                !required,
                "kernels bench: a GPU is required (NEGOPT_REQUIRE_GPU=1): {e}"
            );
            println!("kernels bench: skipped (no GPU): {e}");
            return;
        }
        Err(e) => panic!("kernels bench: {e}"),
    };
    let mut timer = Timer::new(&gpu);
    timer.figure(&format!(
        "device: {} ({} SMs), NVRTC target {}",
        gpu.name(),
        gpu.sm_count().unwrap_or(0),
        gpu.arch()
    ));
    bench_gemm(c, &mut timer);
    bench_attention(c, &mut timer);
    bench_memory_bound(c, &mut timer);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
