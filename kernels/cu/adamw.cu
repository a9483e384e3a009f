// adamw.cu — AdamW step with fp32 master weights, fp32 moments and bf16 working parameters,
// with the global-norm clip folded in. Matches torch.optim.AdamW (decoupled weight decay):
//   g  = grad · grad_scale · clip,   clip = min(1, max_norm / (‖grad‖ + 1e-6))  (clip_grad_norm_)
//   (grad_scale: 1/accumulation steps; norm_sq, when given, is of the scaled gradient)
//   m  = β1·m + (1−β1)·g;   v = β2·v + (1−β2)·g²
//   w  = w·(1 − lr·wd) − lr · (m / bc1) / (√v / √bc2 + eps),  bc_i = 1 − β_iᵗ
//   param = bf16(w)
// The squared norm is read from device memory (global_norm.cu wrote it), so clipping never
// waits on the host. Pass norm_sq = NULL to skip clipping.
//
// Variants:
//   v1: elementwise grid-stride loop. Any block size.
// Entry point: adamw_forward_v1_bf16. Memory-bound: reads 16 and writes 14 bytes per element.
#include "common.cuh"

// param: (n,) bf16 out; master, m, v: (n,) fp32 in/out; grad: (n,) fp32
extern "C" __global__ void adamw_forward_v1_bf16(bf16* param, float* master, float* m, float* v, const float* grad,
                                                 long long n, float lr, float beta1, float beta2, float eps,
                                                 float weight_decay, float bias_correction1,
                                                 float bias_correction2, float grad_scale, const float* norm_sq,
                                                 float max_norm) {
    float clip = 1.0f;
    if (norm_sq != nullptr) {
        const float norm = sqrtf(*norm_sq);
        clip = fminf(1.0f, max_norm / (norm + 1e-6f));
    }
    const float denom_scale = rsqrtf(bias_correction2);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float g = grad[i] * grad_scale * clip;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float w = master[i] * (1.0f - lr * weight_decay);
        w -= lr * (mi / bias_correction1) / (sqrtf(vi) * denom_scale + eps);
        master[i] = w;
        param[i] = __float2bfloat16(w);
    }
}
