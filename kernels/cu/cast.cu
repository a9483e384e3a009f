// cast.cu — dtype conversions between fp32 and bf16 (checkpoints, master weights, grads).
//
// Variants:
//   v1: grid-stride loop, one element per thread per step. Any block size.
// Entry points: cast_f32_forward_v1_bf16 (fp32 → bf16, round to nearest even),
//               cast_bf16_forward_v1_f32 (bf16 → fp32, exact).
// Memory-bound: reads n·(4|2) bytes, writes n·(2|4) bytes.
#include "common.cuh"

template <typename In, typename Out>
__device__ void cast_v1(Out* out, const In* inp, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        store_as(out + i, to_float(inp[i]));
    }
}

extern "C" __global__ void cast_f32_forward_v1_bf16(bf16* out, const float* inp, long long n) {
    cast_v1(out, inp, n);
}

extern "C" __global__ void cast_bf16_forward_v1_f32(float* out, const bf16* inp, long long n) {
    cast_v1(out, inp, n);
}
