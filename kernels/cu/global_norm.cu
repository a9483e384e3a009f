// global_norm.cu — sum of squares of a gradient buffer, added into one fp32 scalar, for
// global-norm clipping (torch.nn.utils.clip_grad_norm_). Call once per parameter gradient on
// a zeroed accumulator; AdamW reads the accumulator on the device, so no host sync is needed.
//
// Variants:
//   v1: grid-stride per-thread partial sums, block_sum, one atomicAdd per block. Block size a
//       multiple of 32.
// Entry point: global_norm_forward_v1_f32. Memory-bound: reads n·4 bytes.
#include "common.cuh"

// out_sq: scalar accumulator (+=), grad: (n,)
extern "C" __global__ void global_norm_forward_v1_f32(float* out_sq, const float* grad, long long n) {
    float acc = 0.0f;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float g = grad[i];
        acc += g * g;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(out_sq, acc);
}
