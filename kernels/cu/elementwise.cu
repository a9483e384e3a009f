// elementwise.cu — the op interface's element-wise helpers: the residual stream's `a += b`,
// gradient scaling `a *= s`, both as one kernel, a = alpha·a + b (b optional).
// __fmul_rn/__fadd_rn keep the compiler from contracting to an FMA, so results equal the CPU
// backend's bit for bit in fp32.
//
// Variants:
//   v1: grid-stride loop, one element per thread per step. Any block size.
// Entry points: scale_add_forward_v1_f32, scale_add_forward_v1_bf16 (in place over a).
// Memory-bound: reads 2 (or 1) and writes 1 value per element.
#include "common.cuh"

template <typename T>
__device__ void scale_add(T* a, const T* b, float alpha, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        float v = __fmul_rn(alpha, to_float(a[i]));
        if (b != nullptr) v = __fadd_rn(v, to_float(b[i]));
        store_as(&a[i], v);
    }
}

// a: (n,) in place; b: (n,) or NULL
extern "C" __global__ void scale_add_forward_v1_f32(float* a, const float* b, float alpha, long long n) {
    scale_add(a, b, alpha, n);
}

// a: (n,) in place; b: (n,) or NULL
extern "C" __global__ void scale_add_forward_v1_bf16(bf16* a, const bf16* b, float alpha, long long n) {
    scale_add(a, b, alpha, n);
}
