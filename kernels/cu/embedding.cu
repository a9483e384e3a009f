// embedding.cu — token embedding lookup (HF T5 `shared`, no scaling) and its gradient.
//
// Variants:
//   v1: forward: one block per token, threads stride over C. Backward: one block per token,
//       fp32 atomicAdd into the table gradient (tokens that repeat collide; fine at T5 sizes).
// Ids are validated on the host when they are uploaded (`TokenIds`); an id outside [0, V)
// still cannot corrupt memory: forward writes zeros and backward skips the row.
// Entry points: embedding_forward_v1_bf16, embedding_backward_v1_bf16.
#include "common.cuh"

// out: (N, C), ids: (N,), table: (V, C)
extern "C" __global__ void embedding_forward_v1_bf16(bf16* out, const int* ids, const bf16* table, int N, int C, int V) {
    const int n = blockIdx.x;
    if (n >= N) return;
    const int id = ids[n];
    const bool valid = id >= 0 && id < V;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        out[(long long)n * C + c] = valid ? table[(long long)id * C + c] : __float2bfloat16(0.0f);
    }
}

// dtable: (V, C) fp32, accumulated with +=; ids: (N,), dout: (N, C)
extern "C" __global__ void embedding_backward_v1_bf16(float* dtable, const int* ids, const bf16* dout, int N, int C, int V) {
    const int n = blockIdx.x;
    if (n >= N) return;
    const int id = ids[n];
    if (id < 0 || id >= V) return;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        atomicAdd(dtable + (long long)id * C + c, to_float(dout[(long long)n * C + c]));
    }
}
