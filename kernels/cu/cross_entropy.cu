// cross_entropy.cu — fused softmax + cross-entropy over the vocabulary (the T5 lm_head loss).
// The full probabilities are never stored: the forward keeps a running (max, sum) per thread,
// and the backward recomputes p = exp(logit − lse) while writing dlogits in the same kernel.
//   loss_n    = lse_n − logit[n, target_n]              (0 where target_n == ignore_index)
//   dlogits_n = (softmax_n − onehot(target_n)) · dloss   (0 rows where target_n == ignore_index)
// `dloss` is the upstream gradient of each row's loss, 1/(number of counted tokens) for the
// HF mean reduction. Pass dlogits = NULL for a forward-only (evaluation) call.
//
// Variants:
//   v1: one block per row; pass 1 online (max, sum-exp) per thread, then block_max/block_sum;
//       pass 2 writes dlogits. Block size a multiple of 32.
// Entry point: cross_entropy_forward_v1_bf16 (forward and, optionally, backward fused).
// Memory-bound: reads N·V·2 bytes (twice with dlogits) and writes N·V·2 bytes of dlogits.
#include "common.cuh"

// loss: (N,) fp32; dlogits: (N, V) or NULL (may alias logits); logits: (N, V); targets: (N,)
extern "C" __global__ void cross_entropy_forward_v1_bf16(float* loss, bf16* dlogits, const bf16* logits,
                                                         const int* targets, int N, int V, int ignore_index,
                                                         float dloss) {
    const int row = blockIdx.x;
    if (row >= N) return;
    const long long base = (long long)row * V;
    float m = -INFINITY, s = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = to_float(logits[base + v]);
        if (x > m) {
            s = s * __expf(m - x) + 1.0f;
            m = x;
        } else {
            s += __expf(x - m);
        }
    }
    const int target = targets[row];
    const bool counted = target != ignore_index && target >= 0 && target < V;
    // Read before the reductions' barriers: with dlogits aliasing logits, other threads
    // overwrite the row after them.
    const float target_logit = counted ? to_float(logits[base + target]) : 0.0f;
    const float row_max = block_max(m);
    s = (m == -INFINITY) ? 0.0f : s * __expf(m - row_max);
    const float lse = row_max + logf(block_sum(s));
    if (threadIdx.x == 0) loss[row] = counted ? lse - target_logit : 0.0f;
    if (dlogits == nullptr) return;
    // Every thread has read its logits above and the block reductions synchronised the block,
    // so writing in place over the logits is safe.
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float d = 0.0f;
        if (counted) d = (__expf(to_float(logits[base + v]) - lse) - (v == target ? 1.0f : 0.0f)) * dloss;
        dlogits[base + v] = __float2bfloat16(d);
    }
}
