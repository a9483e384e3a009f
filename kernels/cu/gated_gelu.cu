// gated_gelu.cu — T5 v1.1 gated-GELU (HF T5DenseGatedActDense): out = gelu_new(a) * b, where
// a = x·wi_0ᵀ and b = x·wi_1ᵀ come from two GEMMs. Fusing the activation with the gate saves
// one full read and write of the (N, F) hidden activation in each direction.
//
// gelu_new(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))   (HF ACT2FN["gelu_new"])
//
// Variants:
//   v1: elementwise grid-stride loop. Any block size.
// Entry points: gated_gelu_forward_v1_bf16, gated_gelu_backward_v1_bf16.
// Memory-bound: forward moves 3·n·2 bytes, backward 5·n·2 bytes.
#include "common.cuh"

#define GELU_K0 0.7978845608028654f  // sqrt(2/pi)
#define GELU_K1 0.044715f

__device__ __forceinline__ float gelu_new(float x) {
    return 0.5f * x * (1.0f + tanhf(GELU_K0 * (x + GELU_K1 * x * x * x)));
}

__device__ __forceinline__ float gelu_new_grad(float x) {
    const float u = GELU_K0 * (x + GELU_K1 * x * x * x);
    const float t = tanhf(u);
    const float du = GELU_K0 * (1.0f + 3.0f * GELU_K1 * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

// out, a, b: (n,)
extern "C" __global__ void gated_gelu_forward_v1_bf16(bf16* out, const bf16* a, const bf16* b, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        out[i] = __float2bfloat16(gelu_new(to_float(a[i])) * to_float(b[i]));
    }
}

// da, db (written with =), dout, a, b: (n,)
extern "C" __global__ void gated_gelu_backward_v1_bf16(bf16* da, bf16* db, const bf16* dout, const bf16* a,
                                                       const bf16* b, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float x = to_float(a[i]), y = to_float(b[i]), g = to_float(dout[i]);
        da[i] = __float2bfloat16(g * y * gelu_new_grad(x));
        db[i] = __float2bfloat16(g * gelu_new(x));
    }
}
