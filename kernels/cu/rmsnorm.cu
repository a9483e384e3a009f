// rmsnorm.cu — T5LayerNorm (RMSNorm, no mean, no bias) fused with the residual add before it.
//   h = x + r            (r optional: the residual stream; h is written out as the new stream)
//   y = h · rsqrt(mean(h²) + eps) · w        (HF T5LayerNorm; variance in fp32)
// Backward, with rstd = rsqrt(mean(h²) + eps) saved by the forward:
//   dh_c = rstd·w_c·dy_c − h_c·rstd³/C · Σ_j w_j·dy_j·h_j  (+ dresid_c, the residual stream's grad)
//   dw_c += Σ_rows dy_c·h_c·rstd
// Fusing the add saves a read and a write of (N, C) in each direction.
//
// Variants:
//   v1: forward: one block per row, two passes over the row (sum of squares, then scale).
//       Backward: each block walks rows with a grid stride and keeps its dw partials in
//       shared memory (C floats, dynamic), then one atomicAdd per column per block.
//       Block size a multiple of 32; backward needs C·4 bytes of dynamic shared memory.
// Entry points: rmsnorm_forward_v1_bf16, rmsnorm_backward_v1_bf16.
#include "common.cuh"

// y: (N, C); h_out: (N, C) or NULL (only written when resid != NULL); rstd: (N,) fp32;
// x, resid: (N, C) (resid may be NULL); w: (C,)
extern "C" __global__ void rmsnorm_forward_v1_bf16(bf16* y, bf16* h_out, float* rstd, const bf16* x, const bf16* resid,
                                                   const bf16* w, int N, int C, float eps) {
    const int row = blockIdx.x;
    if (row >= N) return;
    const long long base = (long long)row * C;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float h = to_float(x[base + c]);
        if (resid != nullptr) {
            h += to_float(resid[base + c]);
            if (h_out != nullptr) h_out[base + c] = __float2bfloat16(h);
        }
        ss += h * h;
    }
    const float r = rsqrtf(block_sum(ss) / C + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float h = to_float(x[base + c]);
        if (resid != nullptr) h += to_float(resid[base + c]);
        y[base + c] = __float2bfloat16(h * r * to_float(w[c]));
    }
}

// dx: (N, C), written with = (it is the gradient of both x and resid); dw: (C,) fp32, +=;
// dy: (N, C); dresid: (N, C) or NULL; h: (N, C) the normalised input (x + resid);
// w: (C,); rstd: (N,)
extern "C" __global__ void rmsnorm_backward_v1_bf16(bf16* dx, float* dw, const bf16* dy, const bf16* dresid,
                                                    const bf16* h, const bf16* w, const float* rstd, int N, int C) {
    extern __shared__ float dw_partial[];  // (C,)
    for (int c = threadIdx.x; c < C; c += blockDim.x) dw_partial[c] = 0.0f;
    __syncthreads();
    for (int row = blockIdx.x; row < N; row += gridDim.x) {
        const long long base = (long long)row * C;
        const float r = rstd[row];
        float dot = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            const float hc = to_float(h[base + c]), g = to_float(dy[base + c]);
            dot += to_float(w[c]) * g * hc;
            dw_partial[c] += g * hc * r;  // each thread owns its columns: no race
        }
        dot = block_sum(dot);
        const float k = dot * r * r * r / C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            const float hc = to_float(h[base + c]), g = to_float(dy[base + c]);
            float d = r * to_float(w[c]) * g - hc * k;
            if (dresid != nullptr) d += to_float(dresid[base + c]);
            dx[base + c] = __float2bfloat16(d);
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dw + c, dw_partial[c]);
}
