//! Fused attention with the T5 relative-position bias and causal / key-padding masks
//! (`cu/attention.cu`), flash style: the (Tq, Tk) scores are never stored.
//!
//! Layouts: Q, O, dQ, dO are (B, Tq, NH, HS); K, V, dK, dV are (B, Tk, NH, HS), the natural
//! output of the projection GEMMs; lse and D are (B, NH, Tq) fp32; the bias table is the HF
//! `relative_attention_bias` weight (num_buckets, NH). T5 does not scale the scores
//! (`scale = 1`); the parameter is there for other models and for tests.

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{NULL, as_i32, expect_len};
use cudarc::driver::{CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg};
use half::bf16;

/// Warps per block and keys per tile, as `#define`d in attention.cu.
const ROWS: usize = 4;
const KT: usize = 32;
/// Largest head size the v1 kernels hold in registers.
pub const MAX_HEAD_DIM: usize = 128;

/// Sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    /// B.
    pub batch: usize,
    /// NH.
    pub heads: usize,
    /// Tq.
    pub q_len: usize,
    /// Tk.
    pub k_len: usize,
    /// HS.
    pub head_dim: usize,
}

impl AttentionShape {
    fn q_elems(&self) -> usize {
        self.batch * self.q_len * self.heads * self.head_dim
    }
    fn k_elems(&self) -> usize {
        self.batch * self.k_len * self.heads * self.head_dim
    }
    fn rows(&self) -> usize {
        self.batch * self.heads * self.q_len
    }
    fn q_index(&self, b: usize, t: usize, h: usize) -> usize {
        ((b * self.q_len + t) * self.heads + h) * self.head_dim
    }
    fn k_index(&self, b: usize, t: usize, h: usize) -> usize {
        ((b * self.k_len + t) * self.heads + h) * self.head_dim
    }
    /// FLOPs of the forward's two matmuls (Q·Kᵀ and P·V), counting every score.
    pub fn forward_flops(&self) -> f64 {
        4.0 * (self.batch * self.heads * self.q_len * self.k_len * self.head_dim) as f64
    }
}

/// The kernel's view of [`AttentionShape`] (`struct AttnShape` in attention.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct AttnShapeC {
    b: i32,
    nh: i32,
    tq: i32,
    tk: i32,
    hs: i32,
}

// SAFETY: plain `#[repr(C)]` struct of five i32, laid out like the CUDA struct.
unsafe impl DeviceRepr for AttnShapeC {}

impl AttentionShape {
    fn to_c(self, op: &'static str) -> Result<AttnShapeC> {
        Ok(AttnShapeC {
            b: as_i32(op, "batch", self.batch)?,
            nh: as_i32(op, "heads", self.heads)?,
            tq: as_i32(op, "q_len", self.q_len)?,
            tk: as_i32(op, "k_len", self.k_len)?,
            hs: as_i32(op, "head_dim", self.head_dim)?,
        })
    }
}

/// Which keys a query may see, besides padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// Every (unpadded) key: encoder self-attention, cross-attention.
    Bidirectional,
    /// Keys j ≤ i + (Tk − Tq): decoder self-attention. Without a KV cache Tq = Tk and this
    /// is j ≤ i; with one, the Tq queries are the last Tq positions.
    Causal,
}

/// Direction of T5's relative-position buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketDirection {
    /// Encoder: separate buckets for keys before and after the query.
    Bidirectional,
    /// Decoder: only keys at or before the query get distinct buckets.
    Unidirectional,
}

/// HF `T5Attention._relative_position_bucket` for one relative position `key − query`.
pub fn relative_position_bucket(
    relative_position: i64,
    direction: BucketDirection,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = match direction {
        BucketDirection::Bidirectional => {
            num_buckets /= 2;
            if relative_position > 0 {
                bucket += num_buckets;
            }
            relative_position.abs()
        }
        BucketDirection::Unidirectional => -relative_position.min(0),
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        return (bucket + distance) as usize;
    }
    // f32 like torch: log(d / max_exact) / log(max_distance / max_exact) · (nb − max_exact).
    let large = max_exact
        + ((distance as f32 / max_exact as f32).ln()
            / (max_distance as f32 / max_exact as f32).ln()
            * (num_buckets - max_exact) as f32) as i64;
    (bucket + large.min(num_buckets - 1)) as usize
}

/// The bucket of every relative position in [−max_distance, max_distance], indexed by
/// `rel + max_distance`; positions further away share the end buckets.
pub fn bucket_table(
    direction: BucketDirection,
    num_buckets: usize,
    max_distance: usize,
) -> Vec<i32> {
    let d = max_distance as i64;
    (-d..=d)
        .map(|rel| relative_position_bucket(rel, direction, num_buckets, max_distance) as i32)
        .collect()
}

/// The position bias on the CPU.
#[derive(Debug, Clone, Copy)]
pub struct CpuBias<'a> {
    /// (num_buckets, NH).
    pub table: &'a [f32],
    /// From [`bucket_table`], (2·max_distance + 1,).
    pub buckets: &'a [i32],
    /// T5 `relative_attention_max_distance`.
    pub max_distance: usize,
    /// T5 `relative_attention_num_buckets`.
    pub num_buckets: usize,
}

impl CpuBias<'_> {
    fn bucket(&self, i: usize, j: usize) -> usize {
        let d = self.max_distance as i64;
        let rel = (j as i64 - i as i64).clamp(-d, d);
        self.buckets[(rel + d) as usize] as usize
    }
}

/// Everything but the tensors that varies between CPU calls.
#[derive(Debug, Clone, Copy)]
pub struct CpuAttention<'a> {
    /// Sizes.
    pub shape: AttentionShape,
    /// Position bias (self-attention) or none (cross-attention).
    pub bias: Option<CpuBias<'a>>,
    /// Valid keys per batch row (B,); keys past it are padding.
    pub key_len: Option<&'a [i32]>,
    /// Causal or not.
    pub masking: Masking,
    /// Score scale (T5: 1).
    pub scale: f32,
}

impl CpuAttention<'_> {
    fn visible(&self, b: usize, i: usize, j: usize) -> bool {
        let klen = self
            .key_len
            .map_or(self.shape.k_len as i64, |l| i64::from(l[b]));
        let offset = self.shape.k_len as i64 - self.shape.q_len as i64;
        (j as i64) < klen && !(self.masking == Masking::Causal && j as i64 > i as i64 + offset)
    }

    /// s_ij, or None when masked.
    fn score(&self, q: &[f32], k: &[f32], b: usize, h: usize, i: usize, j: usize) -> Option<f32> {
        if !self.visible(b, i, j) {
            return None;
        }
        let sh = &self.shape;
        let (qi, kj) = (sh.q_index(b, i, h), sh.k_index(b, j, h));
        let dot: f32 = (0..sh.head_dim).map(|d| q[qi + d] * k[kj + d]).sum();
        let bias = self
            .bias
            .map_or(0.0, |bias| bias.table[bias.bucket(i, j) * sh.heads + h]);
        Some(dot * self.scale + bias)
    }
}

/// CPU reference forward: (O, lse); fully masked rows get O = 0, lse = +inf.
pub fn attention_forward_cpu(
    a: &CpuAttention<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let sh = a.shape;
    let mut o = vec![0.0; sh.q_elems()];
    let mut lse = vec![f32::INFINITY; sh.rows()];
    for b in 0..sh.batch {
        for h in 0..sh.heads {
            for i in 0..sh.q_len {
                let s: Vec<Option<f32>> =
                    (0..sh.k_len).map(|j| a.score(q, k, b, h, i, j)).collect();
                let max = s
                    .iter()
                    .flatten()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max);
                if max == f32::NEG_INFINITY {
                    continue;
                }
                let p: Vec<f32> = s
                    .iter()
                    .map(|s| s.map_or(0.0, |s| (s - max).exp()))
                    .collect();
                let l: f32 = p.iter().sum();
                let qi = sh.q_index(b, i, h);
                for (j, &pj) in p.iter().enumerate() {
                    let vj = sh.k_index(b, j, h);
                    for d in 0..sh.head_dim {
                        o[qi + d] += pj / l * v[vj + d];
                    }
                }
                lse[(b * sh.heads + h) * sh.q_len + i] = max + l.ln();
            }
        }
    }
    (o, lse)
}

/// Gradients from the CPU reference backward.
#[derive(Debug, Clone)]
pub struct AttentionGrads {
    /// (B, Tq, NH, HS).
    pub dq: Vec<f32>,
    /// (B, Tk, NH, HS).
    pub dk: Vec<f32>,
    /// (B, Tk, NH, HS).
    pub dv: Vec<f32>,
    /// (num_buckets, NH); empty without a bias.
    pub dbias: Vec<f32>,
}

/// CPU reference backward (FlashAttention-2's equations, see attention.cu).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_cpu(
    a: &CpuAttention<'_>,
    dout: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    o: &[f32],
    lse: &[f32],
) -> AttentionGrads {
    let sh = a.shape;
    let hs = sh.head_dim;
    let mut g = AttentionGrads {
        dq: vec![0.0; sh.q_elems()],
        dk: vec![0.0; sh.k_elems()],
        dv: vec![0.0; sh.k_elems()],
        dbias: vec![0.0; a.bias.map_or(0, |b| b.num_buckets * sh.heads)],
    };
    for b in 0..sh.batch {
        for h in 0..sh.heads {
            for i in 0..sh.q_len {
                let row_lse = lse[(b * sh.heads + h) * sh.q_len + i];
                if row_lse == f32::INFINITY {
                    continue;
                }
                let qi = sh.q_index(b, i, h);
                let delta: f32 = (0..hs).map(|d| dout[qi + d] * o[qi + d]).sum();
                for j in 0..sh.k_len {
                    let Some(s) = a.score(q, k, b, h, i, j) else {
                        continue;
                    };
                    let kj = sh.k_index(b, j, h);
                    let p = (s - row_lse).exp();
                    let dp: f32 = (0..hs).map(|d| dout[qi + d] * v[kj + d]).sum();
                    let ds = p * (dp - delta);
                    for d in 0..hs {
                        g.dv[kj + d] += p * dout[qi + d];
                        g.dq[qi + d] += a.scale * ds * k[kj + d];
                        g.dk[kj + d] += a.scale * ds * q[qi + d];
                    }
                    if let Some(bias) = a.bias {
                        g.dbias[bias.bucket(i, j) * sh.heads + h] += ds;
                    }
                }
            }
        }
    }
    g
}

/// The position bias on the device.
#[derive(Debug, Clone, Copy)]
pub struct GpuBias<'a> {
    /// (num_buckets, NH) bf16.
    pub table: &'a CudaView<'a, bf16>,
    /// From [`bucket_table`], (2·max_distance + 1,).
    pub buckets: &'a CudaView<'a, i32>,
    /// T5 `relative_attention_max_distance`.
    pub max_distance: usize,
    /// T5 `relative_attention_num_buckets`.
    pub num_buckets: usize,
}

/// Inputs shared by the device forward and backward.
#[derive(Debug, Clone, Copy)]
pub struct GpuAttention<'a> {
    /// Sizes.
    pub shape: AttentionShape,
    /// (B, Tq, NH, HS).
    pub q: &'a CudaView<'a, bf16>,
    /// (B, Tk, NH, HS).
    pub k: &'a CudaView<'a, bf16>,
    /// (B, Tk, NH, HS).
    pub v: &'a CudaView<'a, bf16>,
    /// Position bias or none.
    pub bias: Option<GpuBias<'a>>,
    /// Valid keys per batch row (B,), or none.
    pub key_len: Option<&'a CudaView<'a, i32>>,
    /// Causal or not.
    pub masking: Masking,
    /// Score scale.
    pub scale: f32,
}

impl GpuAttention<'_> {
    fn validate(&self, op: &'static str) -> Result<AttnShapeC> {
        let sh = self.shape;
        if sh.head_dim == 0 || sh.head_dim > MAX_HEAD_DIM {
            return Err(bad_input!(
                op,
                "head_dim = {} must be in 1..={MAX_HEAD_DIM}",
                sh.head_dim
            ));
        }
        if sh.heads > 65_535 || sh.batch > 65_535 {
            return Err(bad_input!(
                op,
                "heads and batch must be ≤ 65535 (grid limits)"
            ));
        }
        expect_len(op, "q", self.q.len(), sh.q_elems())?;
        expect_len(op, "k", self.k.len(), sh.k_elems())?;
        expect_len(op, "v", self.v.len(), sh.k_elems())?;
        if let Some(bias) = &self.bias {
            expect_len(
                op,
                "bias table",
                bias.table.len(),
                bias.num_buckets * sh.heads,
            )?;
            expect_len(
                op,
                "bucket table",
                bias.buckets.len(),
                2 * bias.max_distance + 1,
            )?;
        }
        if let Some(kl) = self.key_len {
            expect_len(op, "key_len", kl.len(), sh.batch)?;
        }
        sh.to_c(op)
    }

    fn causal(&self) -> i32 {
        i32::from(self.masking == Masking::Causal)
    }

    fn config(&self, rows: usize, shared_floats: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (
                rows.div_ceil(ROWS).max(1) as u32,
                self.shape.heads as u32,
                self.shape.batch as u32,
            ),
            block_dim: ((ROWS * 32) as u32, 1, 1),
            shared_mem_bytes: (shared_floats * 4) as u32,
        }
    }
}

/// Pushes the bias arguments `(table, bucket_lut, max_distance)` or NULLs.
macro_rules! push_bias {
    ($launch:expr, $bias:expr, $max_distance:expr) => {
        match $bias {
            Some(bias) => $launch.arg(bias.table).arg(bias.buckets).arg($max_distance),
            None => $launch.arg(&NULL).arg(&NULL).arg($max_distance),
        }
    };
}

/// Device forward: O (B, Tq, NH, HS) and lse (B, NH, Tq).
pub fn attention_forward(
    gpu: &Gpu,
    a: &GpuAttention<'_>,
    o: &mut CudaViewMut<'_, bf16>,
    lse: &mut CudaViewMut<'_, f32>,
) -> Result<()> {
    const OP: &str = "attention_forward";
    let shc = a.validate(OP)?;
    let sh = a.shape;
    expect_len(OP, "o", o.len(), sh.q_elems())?;
    expect_len(OP, "lse", lse.len(), sh.rows())?;
    if sh.rows() == 0 {
        return Ok(());
    }
    let name = kernel_name("attention", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Attention, &name)?;
    let hs = sh.head_dim;
    let cfg = a.config(sh.q_len, KT * (hs + 1) + KT * hs + ROWS * hs);
    let max_distance = as_i32(OP, "max_distance", a.bias.map_or(0, |b| b.max_distance))?;
    let causal = a.causal();
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(o).arg(lse).arg(a.q).arg(a.k).arg(a.v);
    push_bias!(launch, a.bias, &max_distance);
    match a.key_len {
        Some(kl) => launch.arg(kl),
        None => launch.arg(&NULL),
    };
    launch.arg(&causal).arg(&shc).arg(&a.scale);
    // SAFETY: arguments match attention_forward_v1_bf16's signature; lengths, head_dim ≤ 128
    // and the dynamic shared memory (K, V tiles and the query rows) follow attention.cu.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// Device gradient buffers for [`attention_backward`].
#[derive(Debug)]
pub struct GpuAttentionGrads<'a, 'b> {
    /// (B, Tq, NH, HS), written with =.
    pub dq: &'a mut CudaViewMut<'b, bf16>,
    /// (B, Tk, NH, HS), written with =.
    pub dk: &'a mut CudaViewMut<'b, bf16>,
    /// (B, Tk, NH, HS), written with =.
    pub dv: &'a mut CudaViewMut<'b, bf16>,
    /// (num_buckets, NH) fp32, += (required when the inputs have a bias).
    pub dbias: Option<&'a mut CudaViewMut<'b, f32>>,
    /// Scratch (B, NH, Tq) fp32 for D = rowsum(dO ∘ O).
    pub delta: &'a mut CudaViewMut<'b, f32>,
}

/// Device backward from dO, O and lse of the forward.
pub fn attention_backward(
    gpu: &Gpu,
    a: &GpuAttention<'_>,
    g: GpuAttentionGrads<'_, '_>,
    dout: &CudaView<'_, bf16>,
    o: &CudaView<'_, bf16>,
    lse: &CudaView<'_, f32>,
) -> Result<()> {
    const OP: &str = "attention_backward";
    let shc = a.validate(OP)?;
    let sh = a.shape;
    for (arg, len, want) in [
        ("dq", g.dq.len(), sh.q_elems()),
        ("dk", g.dk.len(), sh.k_elems()),
        ("dv", g.dv.len(), sh.k_elems()),
        ("dout", dout.len(), sh.q_elems()),
        ("o", o.len(), sh.q_elems()),
        ("lse", lse.len(), sh.rows()),
        ("delta", g.delta.len(), sh.rows()),
    ] {
        expect_len(OP, arg, len, want)?;
    }
    match (&a.bias, &g.dbias) {
        (Some(bias), Some(db)) => expect_len(OP, "dbias", db.len(), bias.num_buckets * sh.heads)?,
        (None, None) => {}
        (Some(_), None) => return Err(bad_input!(OP, "a bias was given but no dbias buffer")),
        (None, Some(_)) => return Err(bad_input!(OP, "a dbias buffer was given but no bias")),
    }
    if sh.batch * sh.heads == 0 {
        return Ok(());
    }
    let hs = sh.head_dim;
    let max_distance = as_i32(OP, "max_distance", a.bias.map_or(0, |b| b.max_distance))?;
    let num_buckets = as_i32(OP, "num_buckets", a.bias.map_or(0, |b| b.num_buckets))?;
    let causal = a.causal();

    let name = kernel_name("attention_delta", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Attention, &name)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(&mut *g.delta).arg(dout).arg(o).arg(&shc);
    // SAFETY: arguments match `(float* D, const bf16* dO, const bf16* O, AttnShape sh)`.
    unsafe { launch.launch(a.config(sh.q_len, 0)) }.while_(|| format!("launching {name}"))?;

    let name = kernel_name("attention_dkv", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Attention, &name)?;
    let delta = g.delta.as_view();
    let mut launch = gpu.stream().launch_builder(&f);
    launch
        .arg(g.dk)
        .arg(g.dv)
        .arg(dout)
        .arg(a.q)
        .arg(a.k)
        .arg(a.v)
        .arg(lse)
        .arg(&delta);
    push_bias!(launch, a.bias, &max_distance);
    match a.key_len {
        Some(kl) => launch.arg(kl),
        None => launch.arg(&NULL),
    };
    launch.arg(&causal).arg(&shc).arg(&a.scale);
    let cfg = a.config(sh.k_len, 2 * KT * (hs + 1) + 2 * ROWS * hs);
    // SAFETY: arguments match attention_dkv_backward_v1_bf16's signature; shared memory holds
    // the Q and dO tiles and each warp's key and value rows.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;

    let name = kernel_name("attention_dq", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Attention, &name)?;
    let mut launch = gpu.stream().launch_builder(&f);
    launch.arg(g.dq);
    match g.dbias {
        Some(db) => launch.arg(db),
        None => launch.arg(&NULL),
    };
    launch
        .arg(dout)
        .arg(a.q)
        .arg(a.k)
        .arg(a.v)
        .arg(lse)
        .arg(&delta);
    push_bias!(launch, a.bias, &max_distance);
    launch.arg(&num_buckets);
    match a.key_len {
        Some(kl) => launch.arg(kl),
        None => launch.arg(&NULL),
    };
    launch.arg(&causal).arg(&shc).arg(&a.scale);
    let cfg = a.config(
        sh.q_len,
        2 * KT * (hs + 1) + 2 * ROWS * hs + num_buckets as usize,
    );
    // SAFETY: arguments match attention_dq_backward_v1_bf16's signature; shared memory holds
    // the K and V tiles, each warp's query and dO rows, and the per-block dbias sums.
    unsafe { launch.launch(cfg) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    /// Values worked by hand from HF `T5Attention._relative_position_bucket` with 32 buckets
    /// and max_distance 128 (e.g. +127 → 16 + 8 + ⌊ln(127/8)/ln(16)·8⌋ = 31).
    #[test]
    fn buckets_match_hf() {
        let bi = |r| relative_position_bucket(r, BucketDirection::Bidirectional, 32, 128);
        let uni = |r| relative_position_bucket(r, BucketDirection::Unidirectional, 32, 128);
        assert_eq!([bi(0), bi(1), bi(-1), bi(7), bi(-7)], [0, 17, 1, 23, 7]);
        assert_eq!([bi(8), bi(-8), bi(127), bi(-1000)], [24, 8, 31, 15]);
        assert_eq!(
            [uni(0), uni(1), uni(-1), uni(-15), uni(-16), uni(-1000)],
            [0, 0, 1, 15, 16, 31]
        );
        let table = bucket_table(BucketDirection::Bidirectional, 32, 128);
        assert_eq!(table.len(), 257);
        assert_eq!(table[128 + 1], 17);
    }

    /// A tiny problem with a bias (8 buckets, max distance 6) and batch 1 padded to 3 keys.
    struct TinyCase {
        shape: AttentionShape,
        q: Vec<f32>,
        k: Vec<f32>,
        v: Vec<f32>,
        table: Vec<f32>,
        buckets: Vec<i32>,
        key_len: Vec<i32>,
    }

    fn tiny_case(masking: Masking) -> TinyCase {
        let shape = AttentionShape {
            batch: 2,
            heads: 2,
            q_len: 5,
            k_len: 5,
            head_dim: 3,
        };
        let q = random(1, shape.q_elems(), -1.0, 1.0);
        let k = random(2, shape.k_elems(), -1.0, 1.0);
        let v = random(3, shape.k_elems(), -1.0, 1.0);
        let table = random(4, 8 * shape.heads, -1.0, 1.0);
        let direction = match masking {
            Masking::Causal => BucketDirection::Unidirectional,
            Masking::Bidirectional => BucketDirection::Bidirectional,
        };
        TinyCase {
            shape,
            q,
            k,
            v,
            table,
            buckets: bucket_table(direction, 8, 6),
            key_len: vec![5, 3],
        }
    }

    #[test]
    fn masked_keys_get_no_weight() {
        let TinyCase {
            shape,
            q,
            k,
            mut v,
            table,
            buckets,
            key_len,
        } = tiny_case(Masking::Causal);
        let bias = CpuBias {
            table: &table,
            buckets: &buckets,
            max_distance: 6,
            num_buckets: 8,
        };
        let a = CpuAttention {
            shape,
            bias: Some(bias),
            key_len: Some(&key_len),
            masking: Masking::Causal,
            scale: 0.7,
        };
        let (o, _) = attention_forward_cpu(&a, &q, &k, &v);
        // Changing a padded key's value (batch 1, key 4) or a future key (batch 0, key 4 for
        // query 0) must not change those outputs.
        for h in 0..shape.heads {
            let j = shape.k_index(1, 4, h);
            v[j] += 10.0;
            let j = shape.k_index(0, 4, h);
            v[j] += 10.0;
        }
        let (o2, _) = attention_forward_cpu(&a, &q, &k, &v);
        for h in 0..shape.heads {
            for t in 0..shape.q_len {
                let i = shape.q_index(1, t, h);
                assert_eq!(o[i..i + 3], o2[i..i + 3], "padded key leaked (t = {t})");
            }
            let i = shape.q_index(0, 0, h);
            assert_eq!(o[i..i + 3], o2[i..i + 3], "future key leaked");
        }
    }

    /// With a KV cache, the last query sees every key, like an unmasked row.
    #[test]
    fn causal_with_a_kv_cache_sees_the_past() {
        let shape = AttentionShape {
            batch: 1,
            heads: 2,
            q_len: 2,
            k_len: 6,
            head_dim: 3,
        };
        let q = random(1, shape.q_elems(), -1.0, 1.0);
        let k = random(2, shape.k_elems(), -1.0, 1.0);
        let v = random(3, shape.k_elems(), -1.0, 1.0);
        let run = |masking| {
            let a = CpuAttention {
                shape,
                bias: None,
                key_len: None,
                masking,
                scale: 1.0,
            };
            attention_forward_cpu(&a, &q, &k, &v).0
        };
        let (causal, full) = (run(Masking::Causal), run(Masking::Bidirectional));
        for h in 0..shape.heads {
            let last = shape.q_index(0, 1, h);
            assert_eq!(causal[last..last + 3], full[last..last + 3]);
            let first = shape.q_index(0, 0, h);
            assert_ne!(causal[first..first + 3], full[first..first + 3]);
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for masking in [Masking::Causal, Masking::Bidirectional] {
            let TinyCase {
                shape,
                q,
                k,
                v,
                table,
                buckets,
                key_len,
            } = tiny_case(masking);
            let dout = random(9, shape.q_elems(), -1.0, 1.0);
            let bias = CpuBias {
                table: &table,
                buckets: &buckets,
                max_distance: 6,
                num_buckets: 8,
            };
            let a = CpuAttention {
                shape,
                bias: Some(bias),
                key_len: Some(&key_len),
                masking,
                scale: 0.7,
            };
            let loss = |q: &[f32], k: &[f32], v: &[f32], table: &[f32]| -> f64 {
                let bias = CpuBias { table, ..bias };
                let a = CpuAttention {
                    bias: Some(bias),
                    ..a
                };
                let (o, _) = attention_forward_cpu(&a, q, k, v);
                o.iter()
                    .zip(&dout)
                    .map(|(&o, &g)| f64::from(o) * f64::from(g))
                    .sum()
            };
            let (o, lse) = attention_forward_cpu(&a, &q, &k, &v);
            let g = attention_backward_cpu(&a, &dout, &q, &k, &v, &o, &lse);
            let tol = Tolerance {
                atol: 2e-3,
                rtol: 1e-2,
            };
            let eps = 1e-3;
            assert_close_f64(
                "dq",
                &g.dq,
                &finite_difference(|x| loss(x, &k, &v, &table), &q, eps),
                tol,
            );
            assert_close_f64(
                "dk",
                &g.dk,
                &finite_difference(|x| loss(&q, x, &v, &table), &k, eps),
                tol,
            );
            assert_close_f64(
                "dv",
                &g.dv,
                &finite_difference(|x| loss(&q, &k, x, &table), &v, eps),
                tol,
            );
            assert_close_f64(
                "dbias",
                &g.dbias,
                &finite_difference(|x| loss(&q, &k, &v, x), &table, eps),
                tol,
            );
        }
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("attention::gpu_matches_cpu") else {
            return;
        };
        let cases = [
            (
                AttentionShape {
                    batch: 1,
                    heads: 1,
                    q_len: 1,
                    k_len: 1,
                    head_dim: 1,
                },
                Masking::Bidirectional,
                true,
            ),
            (
                AttentionShape {
                    batch: 2,
                    heads: 3,
                    q_len: 37,
                    k_len: 37,
                    head_dim: 64,
                },
                Masking::Causal,
                true,
            ),
            (
                AttentionShape {
                    batch: 2,
                    heads: 4,
                    q_len: 70,
                    k_len: 33,
                    head_dim: 48,
                },
                Masking::Bidirectional,
                false,
            ),
            (
                AttentionShape {
                    batch: 1,
                    heads: 2,
                    q_len: 129,
                    k_len: 129,
                    head_dim: 128,
                },
                Masking::Bidirectional,
                true,
            ),
            // Decoding with a KV cache: 3 new queries over 40 cached keys.
            (
                AttentionShape {
                    batch: 2,
                    heads: 2,
                    q_len: 3,
                    k_len: 40,
                    head_dim: 32,
                },
                Masking::Causal,
                true,
            ),
        ];
        let (num_buckets, max_distance) = (32, 128);
        for (shape, masking, with_bias) in cases {
            let what = format!("{shape:?} {masking:?} bias={with_bias}");
            let q = bf16_round(&random(1, shape.q_elems(), -1.0, 1.0));
            let k = bf16_round(&random(2, shape.k_elems(), -1.0, 1.0));
            let v = bf16_round(&random(3, shape.k_elems(), -1.0, 1.0));
            let dout = bf16_round(&random(4, shape.q_elems(), -1.0, 1.0));
            let table = bf16_round(&random(5, num_buckets * shape.heads, -1.0, 1.0));
            let direction = match masking {
                Masking::Causal => BucketDirection::Unidirectional,
                Masking::Bidirectional => BucketDirection::Bidirectional,
            };
            let buckets = bucket_table(direction, num_buckets, max_distance);
            let key_len: Vec<i32> = (0..shape.batch)
                .map(|b| (shape.k_len - b * shape.k_len / 3) as i32)
                .collect();
            let cpu_bias = CpuBias {
                table: &table,
                buckets: &buckets,
                max_distance,
                num_buckets,
            };
            let cpu = CpuAttention {
                shape,
                bias: with_bias.then_some(cpu_bias),
                key_len: Some(&key_len),
                masking,
                scale: 0.125,
            };
            let (want_o, want_lse) = attention_forward_cpu(&cpu, &q, &k, &v);

            let (dq_, dk_, dv_) = (
                upload_bf16(&gpu, &q),
                upload_bf16(&gpu, &k),
                upload_bf16(&gpu, &v),
            );
            let (dtable, dbuckets, dkey_len) = (
                upload_bf16(&gpu, &table),
                upload(&gpu, &buckets),
                upload(&gpu, &key_len),
            );
            let (qv, kv, vv) = (dq_.as_view(), dk_.as_view(), dv_.as_view());
            let (tv, bv, klv) = (dtable.as_view(), dbuckets.as_view(), dkey_len.as_view());
            let gpu_bias = GpuBias {
                table: &tv,
                buckets: &bv,
                max_distance,
                num_buckets,
            };
            let a = GpuAttention {
                shape,
                q: &qv,
                k: &kv,
                v: &vv,
                bias: with_bias.then_some(gpu_bias),
                key_len: Some(&klv),
                masking,
                scale: 0.125,
            };
            let mut o = gpu.stream().alloc_zeros::<bf16>(shape.q_elems()).unwrap();
            let mut lse = gpu.stream().alloc_zeros::<f32>(shape.rows()).unwrap();
            attention_forward(&gpu, &a, &mut o.as_view_mut(), &mut lse.as_view_mut()).unwrap();
            assert_close(
                &format!("o {what}"),
                &download_bf16(&gpu, &o),
                &want_o,
                BF16,
            );
            assert_close(
                &format!("lse {what}"),
                &download(&gpu, &lse),
                &want_lse,
                Tolerance {
                    atol: 1e-4,
                    rtol: 1e-4,
                },
            );

            // The backward reads O as stored (bf16), so the reference does too.
            let o_dev = download_bf16(&gpu, &o);
            let lse_dev = download(&gpu, &lse);
            let want = attention_backward_cpu(&cpu, &dout, &q, &k, &v, &o_dev, &lse_dev);
            let d_dout = upload_bf16(&gpu, &dout);
            let mut gq = gpu.stream().alloc_zeros::<bf16>(shape.q_elems()).unwrap();
            let mut gk = gpu.stream().alloc_zeros::<bf16>(shape.k_elems()).unwrap();
            let mut gv = gpu.stream().alloc_zeros::<bf16>(shape.k_elems()).unwrap();
            let mut gb = gpu
                .stream()
                .alloc_zeros::<f32>(num_buckets * shape.heads)
                .unwrap();
            let mut delta = gpu.stream().alloc_zeros::<f32>(shape.rows()).unwrap();
            let (mut gqv, mut gkv, mut gvv, mut gbv, mut dv_delta) = (
                gq.as_view_mut(),
                gk.as_view_mut(),
                gv.as_view_mut(),
                gb.as_view_mut(),
                delta.as_view_mut(),
            );
            let grads = GpuAttentionGrads {
                dq: &mut gqv,
                dk: &mut gkv,
                dv: &mut gvv,
                dbias: with_bias.then_some(&mut gbv),
                delta: &mut dv_delta,
            };
            attention_backward(
                &gpu,
                &a,
                grads,
                &d_dout.as_view(),
                &o.as_view(),
                &lse.as_view(),
            )
            .unwrap();
            assert_close(
                &format!("dq {what}"),
                &download_bf16(&gpu, &gq),
                &want.dq,
                BF16,
            );
            assert_close(
                &format!("dk {what}"),
                &download_bf16(&gpu, &gk),
                &want.dk,
                BF16,
            );
            assert_close(
                &format!("dv {what}"),
                &download_bf16(&gpu, &gv),
                &want.dv,
                BF16,
            );
            if with_bias {
                // dbias sums up to Tq·Tk fp32 terms per bucket in atomic order.
                let tol = Tolerance {
                    atol: 1e-3,
                    rtol: 1e-3,
                };
                assert_close(
                    &format!("dbias {what}"),
                    &download(&gpu, &gb),
                    &want.dbias,
                    tol,
                );
            }
        }
    }
}
