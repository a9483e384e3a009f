// dropout.cu — inverted dropout with the engine's counter-based mask (the spec is
// `ops::dropout::dropout_forward_cpu`, which the engine's CPU backend also uses): elements go in
// groups of four; group g draws 64 bits splitmix64(seed ^ g·φ), and element 4g + j is kept when
// bits 16j..16j+16 are >= threshold = ceil(2^16·p); kept elements are scaled by 1/(1 − p).
// The mask is a pure function of (seed, i): nothing is stored, and the backward is the same
// launch with the same seed on the gradient.
//
// Variants:
//   v1: grid-stride loop, one thread per group of four elements (one hash, four selects).
//       Any block size.
// Entry points: dropout_forward_v1_f32, dropout_forward_v1_bf16 (in place).
// Memory-bound: reads and writes n·sizeof(T) bytes.
#include "common.cuh"

__device__ __forceinline__ unsigned long long group_bits(unsigned long long seed, unsigned long long g) {
    unsigned long long z = seed ^ (g * 0x9E3779B97F4A7C15ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

template <typename T>
__device__ void dropout(T* t, long long n, unsigned long long seed, unsigned int threshold, float scale) {
    const long long groups = (n + 3) / 4;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups;
         g += (long long)gridDim.x * blockDim.x) {
        const unsigned long long bits = group_bits(seed, (unsigned long long)g);
        for (int lane = 0; lane < 4; ++lane) {
            const long long i = g * 4 + lane;
            if (i >= n) break;
            const unsigned int draw = (unsigned int)((bits >> (16 * lane)) & 0xFFFFull);
            store_as(&t[i], draw >= threshold ? to_float(t[i]) * scale : 0.0f);
        }
    }
}

// t: (n,) in place
extern "C" __global__ void dropout_forward_v1_f32(float* t, long long n, unsigned long long seed,
                                                  unsigned int threshold, float scale) {
    dropout(t, n, seed, threshold, scale);
}

// t: (n,) in place
extern "C" __global__ void dropout_forward_v1_bf16(bf16* t, long long n, unsigned long long seed,
                                                   unsigned int threshold, float scale) {
    dropout(t, n, seed, threshold, scale);
}
