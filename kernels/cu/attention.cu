// attention.cu — fused scaled-dot-product attention, flash style (online softmax, the (T, T)
// score matrix is never stored), with the T5 relative-position bias added in-kernel and
// causal / key-padding masks.
//
//   s_ij = scale · q_i·k_j + bias[bucket(j − i), h]      (T5: scale = 1, bias only in self-attention)
//   masked when j ≥ key_len[b], or when causal and j > i + (Tk − Tq) (with a KV cache the Tq
//   queries are the last Tq positions; without one Tq = Tk and this is j > i)
//   o_i  = Σ_j softmax_j(s_i)·v_j,   lse_i = log Σ_j exp(s_ij)   (saved for the backward)
// Backward (Dao et al., FlashAttention-2, Alg. 2), with D_i = dO_i·O_i:
//   p_ij = exp(s_ij − lse_i), dp_ij = dO_i·v_j, ds_ij = p_ij·(dp_ij − D_i)
//   dV_j = Σ_i p_ij·dO_i,  dK_j = scale·Σ_i ds_ij·q_i,  dQ_i = scale·Σ_j ds_ij·k_j,
//   dbias[bucket(j − i), h] += Σ ds_ij
//
// Layouts: Q, O, dQ, dO are (B, Tq, NH, HS); K, V, dK, dV are (B, Tk, NH, HS) — the natural
// output of the projection GEMM, so no permute kernels are needed. lse and D are (B, NH, Tq)
// fp32. bias_table is the HF `relative_attention_bias` weight (num_buckets, NH); bucket_lut
// maps clamp(j − i, −max_distance, max_distance) + max_distance to a bucket. The buckets come
// from a table built on the host (`relative_position_bucket`, the HF formula) rather than
// logf in the kernel, so GPU and CPU agree exactly at the float-rounding edges of the log
// buckets; distances past max_distance all share the last bucket, so the table is small.
// Rows whose keys are all masked get O = 0 and lse = +inf (so the backward sees p = 0).
//
// Variants:
//   v1: fp32 CUDA-core math. Forward: one warp per query row (ROWS rows per block); the block
//       stages 32-key tiles of K and V in shared memory as fp32 (K padded to HS+1 so each lane
//       reading its own key row hits its own bank); each lane scores one key, then the warp
//       does the online-softmax update and accumulates O with lane-owned head dims.
//       Backward: three kernels: attention_delta (D_i), attention_dkv (one warp per key, lanes
//       own queries, dK/dV in registers) and attention_dq (one warp per query, lanes own keys;
//       dbias summed per block in shared memory, then one atomicAdd per bucket per block).
//       Limits: HS ≤ 128, num_buckets ≤ 128 when a bias is given; block = ROWS·32 = 128
//       threads; dynamic shared memory as computed by the launcher.
// Entry points: attention_forward_v1_bf16, attention_delta_backward_v1_bf16,
//               attention_dkv_backward_v1_bf16, attention_dq_backward_v1_bf16.
#include "common.cuh"

#define ROWS 4    // warps per block: query rows (forward, dq) or key rows (dkv)
#define KT 32     // keys (or queries) per shared-memory tile: one per lane
#define MAX_HS 128
#define MAX_R (MAX_HS / 32)

struct AttnShape {
    int B, NH, Tq, Tk, HS;
};

// Offset of row t of head h in batch b for a (B, T, NH, HS) tensor.
__device__ __forceinline__ long long row_offset(int b, int t, int h, int T, int NH, int HS) {
    return (((long long)b * T + t) * NH + h) * HS;
}

__device__ __forceinline__ int bucket_of(const int* bucket_lut, int max_distance, int i, int j) {
    const int rel = max(-max_distance, min(max_distance, j - i));
    return bucket_lut[rel + max_distance];
}

__device__ __forceinline__ bool visible(int i, int j, int key_len, int causal, int offset) {
    return j < key_len && !(causal && j > i + offset);
}

extern "C" __global__ void __launch_bounds__(ROWS * 32)
    attention_forward_v1_bf16(bf16* O, float* lse, const bf16* Q, const bf16* K, const bf16* V,
                              const bf16* bias_table, const int* bucket_lut, int max_distance,
                              const int* key_len, int causal, AttnShape sh, float scale) {
    extern __shared__ float smem[];
    const int HS = sh.HS;
    float* Ks = smem;                  // (KT, HS + 1)
    float* Vs = Ks + KT * (HS + 1);    // (KT, HS)
    float* qs = Vs + KT * HS;          // (ROWS, HS), pre-scaled
    const int b = blockIdx.z, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int i = blockIdx.x * ROWS + warp;
    const bool row_ok = i < sh.Tq;
    const int klen = key_len ? min(key_len[b], sh.Tk) : sh.Tk;
    const int offset = sh.Tk - sh.Tq;  // causal: query i sees keys j ≤ i + offset
    const int kend = causal ? min(klen, (int)(blockIdx.x + 1) * ROWS + offset) : klen;
    const long long q_off = row_offset(b, row_ok ? i : 0, h, sh.Tq, sh.NH, HS);
    for (int d = lane; d < HS; d += 32) qs[warp * HS + d] = row_ok ? to_float(Q[q_off + d]) * scale : 0.0f;

    float o[MAX_R];
#pragma unroll
    for (int r = 0; r < MAX_R; ++r) o[r] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int k0 = 0; k0 < kend; k0 += KT) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < KT * HS; idx += blockDim.x) {
            const int jj = idx / HS, d = idx % HS, j = k0 + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j < kend) {
                const long long off = row_offset(b, j, h, sh.Tk, sh.NH, HS) + d;
                kv = to_float(K[off]);
                vv = to_float(V[off]);
            }
            Ks[jj * (HS + 1) + d] = kv;
            Vs[jj * HS + d] = vv;
        }
        __syncthreads();
        const int j = k0 + lane;
        float s = -INFINITY;
        if (row_ok && visible(i, j, kend, causal, offset)) {
            float acc = 0.0f;
            for (int d = 0; d < HS; ++d) acc += qs[warp * HS + d] * Ks[lane * (HS + 1) + d];
            if (bias_table) acc += to_float(bias_table[bucket_of(bucket_lut, max_distance, i, j) * sh.NH + h]);
            s = acc;
        }
        const float m_new = fmaxf(m, warp_max(s));
        if (m_new == -INFINITY) continue;  // warp-uniform: nothing visible yet
        const float p = (s == -INFINITY) ? 0.0f : __expf(s - m_new);
        const float corr = __expf(m - m_new);
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int r = 0; r < MAX_R; ++r) o[r] *= corr;
        for (int jj = 0; jj < KT; ++jj) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int r = 0; r < MAX_R; ++r) {
                const int d = lane + 32 * r;
                if (d < HS) o[r] += pj * Vs[jj * HS + d];
            }
        }
        m = m_new;
    }
    if (!row_ok) return;
#pragma unroll
    for (int r = 0; r < MAX_R; ++r) {
        const int d = lane + 32 * r;
        if (d < HS) O[q_off + d] = __float2bfloat16(l > 0.0f ? o[r] / l : 0.0f);
    }
    if (lane == 0) lse[((long long)b * sh.NH + h) * sh.Tq + i] = l > 0.0f ? m + logf(l) : INFINITY;
}

// D: (B, NH, Tq) fp32 = rowsum(dO ∘ O). One warp per query row, ROWS rows per block.
extern "C" __global__ void __launch_bounds__(ROWS * 32)
    attention_delta_backward_v1_bf16(float* D, const bf16* dO, const bf16* O, AttnShape sh) {
    const int b = blockIdx.z, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int i = blockIdx.x * ROWS + warp;
    if (i >= sh.Tq) return;
    const long long off = row_offset(b, i, h, sh.Tq, sh.NH, sh.HS);
    float acc = 0.0f;
    for (int d = lane; d < sh.HS; d += 32) acc += to_float(dO[off + d]) * to_float(O[off + d]);
    acc = warp_sum(acc);
    if (lane == 0) D[((long long)b * sh.NH + h) * sh.Tq + i] = acc;
}

// dK, dV: (B, Tk, NH, HS), written with =. One warp per key row; lanes own the queries of a
// 32-query tile staged in shared memory.
extern "C" __global__ void __launch_bounds__(ROWS * 32)
    attention_dkv_backward_v1_bf16(bf16* dK, bf16* dV, const bf16* dO, const bf16* Q, const bf16* K,
                                   const bf16* V, const float* lse, const float* D, const bf16* bias_table,
                                   const int* bucket_lut, int max_distance, const int* key_len, int causal,
                                   AttnShape sh, float scale) {
    extern __shared__ float smem[];
    const int HS = sh.HS;
    float* Qs = smem;                   // (KT, HS + 1)
    float* dOs = Qs + KT * (HS + 1);    // (KT, HS + 1)
    float* ks = dOs + KT * (HS + 1);    // (ROWS, HS), pre-scaled
    float* vs = ks + ROWS * HS;         // (ROWS, HS)
    const int b = blockIdx.z, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int j = blockIdx.x * ROWS + warp;
    const bool col_ok = j < sh.Tk;
    const int klen = key_len ? min(key_len[b], sh.Tk) : sh.Tk;
    const long long k_off = row_offset(b, col_ok ? j : 0, h, sh.Tk, sh.NH, HS);
    for (int d = lane; d < HS; d += 32) {
        ks[warp * HS + d] = col_ok ? to_float(K[k_off + d]) * scale : 0.0f;
        vs[warp * HS + d] = col_ok ? to_float(V[k_off + d]) : 0.0f;
    }
    float dk[MAX_R], dv[MAX_R];
#pragma unroll
    for (int r = 0; r < MAX_R; ++r) dk[r] = dv[r] = 0.0f;
    const long long stat_base = ((long long)b * sh.NH + h) * sh.Tq;
    // With a causal mask, queries i < j − offset see none of this block's keys.
    const int offset = sh.Tk - sh.Tq;
    const int qstart = causal ? max(0, min((int)blockIdx.x * ROWS - offset, sh.Tq)) : 0;
    for (int q0 = qstart - qstart % KT; q0 < sh.Tq; q0 += KT) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < KT * HS; idx += blockDim.x) {
            const int ii = idx / HS, d = idx % HS, i = q0 + ii;
            float qv = 0.0f, gv = 0.0f;
            if (i < sh.Tq) {
                const long long off = row_offset(b, i, h, sh.Tq, sh.NH, HS) + d;
                qv = to_float(Q[off]);
                gv = to_float(dO[off]);
            }
            Qs[ii * (HS + 1) + d] = qv;
            dOs[ii * (HS + 1) + d] = gv;
        }
        __syncthreads();
        const int i = q0 + lane;
        float p = 0.0f, ds = 0.0f;
        if (col_ok && i < sh.Tq && visible(i, j, klen, causal, offset)) {
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < HS; ++d) {
                s += Qs[lane * (HS + 1) + d] * ks[warp * HS + d];
                dp += dOs[lane * (HS + 1) + d] * vs[warp * HS + d];
            }
            if (bias_table) s += to_float(bias_table[bucket_of(bucket_lut, max_distance, i, j) * sh.NH + h]);
            const float L = lse[stat_base + i];
            p = (L == INFINITY) ? 0.0f : __expf(s - L);
            ds = p * (dp - D[stat_base + i]);
        }
        for (int ii = 0; ii < KT; ++ii) {
            const float pi = __shfl_sync(0xffffffffu, p, ii);
            const float dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
            for (int r = 0; r < MAX_R; ++r) {
                const int d = lane + 32 * r;
                if (d < HS) {
                    dv[r] += pi * dOs[ii * (HS + 1) + d];
                    dk[r] += dsi * Qs[ii * (HS + 1) + d];
                }
            }
        }
    }
    if (!col_ok) return;
#pragma unroll
    for (int r = 0; r < MAX_R; ++r) {
        const int d = lane + 32 * r;
        if (d < HS) {
            dK[k_off + d] = __float2bfloat16(dk[r] * scale);
            dV[k_off + d] = __float2bfloat16(dv[r]);
        }
    }
}

// dQ: (B, Tq, NH, HS), written with =; dbias: (num_buckets, NH) fp32, += (or NULL).
// One warp per query row; lanes own the keys of a 32-key tile staged in shared memory.
extern "C" __global__ void __launch_bounds__(ROWS * 32)
    attention_dq_backward_v1_bf16(bf16* dQ, float* dbias, const bf16* dO, const bf16* Q, const bf16* K,
                                  const bf16* V, const float* lse, const float* D, const bf16* bias_table,
                                  const int* bucket_lut, int max_distance, int num_buckets, const int* key_len,
                                  int causal, AttnShape sh, float scale) {
    extern __shared__ float smem[];
    const int HS = sh.HS;
    float* Ks = smem;                  // (KT, HS + 1)
    float* Vs = Ks + KT * (HS + 1);    // (KT, HS + 1)
    float* qs = Vs + KT * (HS + 1);    // (ROWS, HS), pre-scaled
    float* dos = qs + ROWS * HS;       // (ROWS, HS)
    float* dbias_s = dos + ROWS * HS;  // (num_buckets,)
    const int b = blockIdx.z, h = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int i = blockIdx.x * ROWS + warp;
    const bool row_ok = i < sh.Tq;
    const int klen = key_len ? min(key_len[b], sh.Tk) : sh.Tk;
    const int offset = sh.Tk - sh.Tq;  // causal: query i sees keys j ≤ i + offset
    const int kend = causal ? min(klen, (int)(blockIdx.x + 1) * ROWS + offset) : klen;
    const long long q_off = row_offset(b, row_ok ? i : 0, h, sh.Tq, sh.NH, HS);
    for (int d = lane; d < HS; d += 32) {
        qs[warp * HS + d] = row_ok ? to_float(Q[q_off + d]) * scale : 0.0f;
        dos[warp * HS + d] = row_ok ? to_float(dO[q_off + d]) : 0.0f;
    }
    if (dbias)
        for (int k = threadIdx.x; k < num_buckets; k += blockDim.x) dbias_s[k] = 0.0f;
    const long long stat = ((long long)b * sh.NH + h) * sh.Tq + (row_ok ? i : 0);
    const float L = row_ok ? lse[stat] : INFINITY;
    const float Di = row_ok ? D[stat] : 0.0f;
    float dq[MAX_R];
#pragma unroll
    for (int r = 0; r < MAX_R; ++r) dq[r] = 0.0f;
    for (int k0 = 0; k0 < kend; k0 += KT) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < KT * HS; idx += blockDim.x) {
            const int jj = idx / HS, d = idx % HS, j = k0 + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j < kend) {
                const long long off = row_offset(b, j, h, sh.Tk, sh.NH, HS) + d;
                kv = to_float(K[off]);
                vv = to_float(V[off]);
            }
            Ks[jj * (HS + 1) + d] = kv;
            Vs[jj * (HS + 1) + d] = vv;
        }
        __syncthreads();
        const int j = k0 + lane;
        float ds = 0.0f;
        if (row_ok && L != INFINITY && visible(i, j, kend, causal, offset)) {
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < HS; ++d) {
                s += qs[warp * HS + d] * Ks[lane * (HS + 1) + d];
                dp += dos[warp * HS + d] * Vs[lane * (HS + 1) + d];
            }
            int bucket = 0;
            if (bias_table) {
                bucket = bucket_of(bucket_lut, max_distance, i, j);
                s += to_float(bias_table[bucket * sh.NH + h]);
            }
            ds = __expf(s - L) * (dp - Di);
            if (dbias) atomicAdd(&dbias_s[bucket], ds);
        }
        for (int jj = 0; jj < KT; ++jj) {
            const float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
            for (int r = 0; r < MAX_R; ++r) {
                const int d = lane + 32 * r;
                if (d < HS) dq[r] += dsj * Ks[jj * (HS + 1) + d];
            }
        }
    }
    if (row_ok) {
#pragma unroll
        for (int r = 0; r < MAX_R; ++r) {
            const int d = lane + 32 * r;
            // Ks holds unscaled keys, so the scale of ∂s/∂q is applied once here.
            if (d < HS) dQ[q_off + d] = __float2bfloat16(dq[r] * scale);
        }
    }
    if (dbias) {
        __syncthreads();
        for (int k = threadIdx.x; k < num_buckets; k += blockDim.x)
            if (dbias_s[k] != 0.0f) atomicAdd(&dbias[(long long)k * sh.NH + h], dbias_s[k]);
    }
}
