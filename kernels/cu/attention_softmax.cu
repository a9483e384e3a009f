// attention_softmax.cu — the unfused attention's middle step, in place over the (B, NH, Tq, Tk)
// score tensor: add the T5 relative-position bias, mask, softmax (and the backward). It is the
// peer the fused attention is measured against, and the engine's `attention_softmax` op, with
// the engine's layouts: bias (Tq·Tk, NH) laid out (q, k, h) as a relative-position embedding
// gather produces it; key_mask (B, Tk), 0 = padding; causal: query q sees keys k ≤ q + Tk − Tq.
// Rows with no visible key become all zeros. No 1/√d scaling (T5).
//   forward:  p_k = softmax_k(s_k + bias_k) over visible k, else 0
//   backward: ds_k = p_k·(dp_k − Σ_j p_j·dp_j); dbias[(q·Tk + k)·NH + h] += Σ_b ds_k
//
// Variants:
//   v1: one warp per row (4 rows per block), lanes stride over Tk; three passes (max, sum,
//       write), fp32 math, bf16 or fp32 storage; dbias with fp32 atomics. Block 128 threads.
// Entry points: attention_softmax_{forward,backward}_v1_{bf16,f32}.
#include "common.cuh"

#define SOFTMAX_ROWS 4

struct SoftmaxShape {
    int B, NH, Tq, Tk;
};

template <typename T>
__device__ void softmax_forward_v1(T* att, const T* bias, const T* key_mask, SoftmaxShape sh, int causal) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long row = (long long)blockIdx.x * SOFTMAX_ROWS + warp;
    if (row >= (long long)sh.B * sh.NH * sh.Tq) return;
    const int q = row % sh.Tq, h = (row / sh.Tq) % sh.NH, b = row / ((long long)sh.Tq * sh.NH);
    const int last = causal ? max(0, min(sh.Tk, q + 1 + sh.Tk - sh.Tq)) : sh.Tk;
    T* s = att + row * sh.Tk;
    float mx = -INFINITY;
    for (int k = lane; k < last; k += 32) {
        if (key_mask && to_float(key_mask[(long long)b * sh.Tk + k]) == 0.0f) continue;
        float x = to_float(s[k]);
        if (bias) x += to_float(bias[((long long)q * sh.Tk + k) * sh.NH + h]);
        mx = fmaxf(mx, x);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int k = lane; k < last; k += 32) {
        if (key_mask && to_float(key_mask[(long long)b * sh.Tk + k]) == 0.0f) continue;
        float x = to_float(s[k]);
        if (bias) x += to_float(bias[((long long)q * sh.Tk + k) * sh.NH + h]);
        sum += __expf(x - mx);
    }
    sum = warp_sum(sum);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int k = lane; k < sh.Tk; k += 32) {
        float p = 0.0f;
        if (k < last && !(key_mask && to_float(key_mask[(long long)b * sh.Tk + k]) == 0.0f)) {
            float x = to_float(s[k]);
            if (bias) x += to_float(bias[((long long)q * sh.Tk + k) * sh.NH + h]);
            p = __expf(x - mx) * inv;
        }
        store_as(s + k, p);
    }
}

template <typename T>
__device__ void softmax_backward_v1(T* datt, float* dbias, const T* probs, SoftmaxShape sh) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long row = (long long)blockIdx.x * SOFTMAX_ROWS + warp;
    if (row >= (long long)sh.B * sh.NH * sh.Tq) return;
    const int q = row % sh.Tq, h = (row / sh.Tq) % sh.NH;
    T* dp = datt + row * sh.Tk;
    const T* p = probs + row * sh.Tk;
    float dot = 0.0f;
    for (int k = lane; k < sh.Tk; k += 32) dot += to_float(p[k]) * to_float(dp[k]);
    dot = warp_sum(dot);
    for (int k = lane; k < sh.Tk; k += 32) {
        const float ds = to_float(p[k]) * (to_float(dp[k]) - dot);
        store_as(dp + k, ds);
        if (dbias && ds != 0.0f) atomicAdd(dbias + ((long long)q * sh.Tk + k) * sh.NH + h, ds);
    }
}

// att: (B, NH, Tq, Tk) in place; bias: (Tq·Tk, NH) or NULL; key_mask: (B, Tk) or NULL.
extern "C" __global__ void attention_softmax_forward_v1_bf16(bf16* att, const bf16* bias, const bf16* key_mask,
                                                             SoftmaxShape sh, int causal) {
    softmax_forward_v1(att, bias, key_mask, sh, causal);
}
extern "C" __global__ void attention_softmax_forward_v1_f32(float* att, const float* bias, const float* key_mask,
                                                            SoftmaxShape sh, int causal) {
    softmax_forward_v1(att, bias, key_mask, sh, causal);
}

// datt: (B, NH, Tq, Tk) in place (∂/∂probs → ∂/∂scores); dbias: (Tq·Tk, NH) fp32 += or NULL.
extern "C" __global__ void attention_softmax_backward_v1_bf16(bf16* datt, float* dbias, const bf16* probs,
                                                              SoftmaxShape sh) {
    softmax_backward_v1(datt, dbias, probs, sh);
}
extern "C" __global__ void attention_softmax_backward_v1_f32(float* datt, float* dbias, const float* probs,
                                                             SoftmaxShape sh) {
    softmax_backward_v1(datt, dbias, probs, sh);
}
