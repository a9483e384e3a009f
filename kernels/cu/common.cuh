// common.cuh — helpers shared by every kernel family (included by each .cu file).
//
// Conventions for all kernels in this folder:
// - bf16 storage, fp32 math: every load converts to float, every store rounds once.
// - Shape letters: B batch, T sequence, C channels, NH heads, HS head size, V vocabulary,
//   N rows (B*T flattened), M/N/K the GEMM sizes.
// - Parameter gradients accumulate with `+=` (fp32, atomics where blocks share a slot);
//   activation gradients overwrite with `=`, except where a kernel says it adds the residual
//   stream's gradient.
// - Block reductions need blockDim.x to be a multiple of 32 and at most 1024.
#pragma once
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

// NVRTC has no <math.h>, so INFINITY is not defined; this is the same bit pattern.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ void store_as(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void store_as(float* p, float v) { *p = v; }

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the whole block; every thread gets the result. The leading __syncthreads makes
// back-to-back calls safe (the scratch array is reused).
__device__ float block_sum(float v) {
    __shared__ float scratch[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = (lane < warps) ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

// Maximum over the whole block; every thread gets the result.
__device__ float block_max(float v) {
    __shared__ float scratch[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = (lane < warps) ? scratch[lane] : -INFINITY;
    return warp_max(v);
}
