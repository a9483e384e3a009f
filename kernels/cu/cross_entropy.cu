// cross_entropy.cu — fused softmax + cross-entropy over the vocabulary (the T5 lm_head loss),
// with label smoothing ε as PyTorch's `F.cross_entropy(..., label_smoothing=ε)`: the target
// distribution is q = (1 − ε)·onehot(target) + ε/V.
// The full probabilities are never stored: the forward keeps a running (max, sum) per thread,
// and the backward recomputes p = exp(logit − lse) while writing dlogits in the same kernel.
//   loss_n    = lse_n − (1 − ε)·logit[n, target_n] − (ε/V)·Σ_v logit[n, v]
//                                                       (0 where target_n == ignore_index)
//   dlogits_n = (softmax_n − q_n) · dloss               (0 rows where target_n == ignore_index)
// `dloss` is the upstream gradient of each row's loss, 1/(number of counted tokens) for the
// HF mean reduction. Pass dlogits = NULL for a forward-only (evaluation) call.
//
// Variants:
//   v1: one block per row; pass 1 online (max, sum-exp) and the logit sum per thread, then
//       block_max/block_sum;
//       pass 2 writes dlogits. Block size a multiple of 32.
// Entry point: cross_entropy_forward_v1_bf16 (forward and, optionally, backward fused).
// Memory-bound: reads N·V·2 bytes (twice with dlogits) and writes N·V·2 bytes of dlogits.
#include "common.cuh"

// loss: (N,) fp32; dlogits: (N, V) or NULL (may alias logits); logits: (N, V); targets: (N,)
extern "C" __global__ void cross_entropy_forward_v1_bf16(float* loss, bf16* dlogits, const bf16* logits,
                                                         const int* targets, int N, int V, int ignore_index,
                                                         float label_smoothing, float dloss) {
    const int row = blockIdx.x;
    if (row >= N) return;
    const long long base = (long long)row * V;
    float m = -INFINITY, s = 0.0f, sum_x = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = to_float(logits[base + v]);
        sum_x += x;
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
    const float smooth = label_smoothing / V;
    const float row_sum = block_sum(sum_x);
    if (threadIdx.x == 0)
        loss[row] = counted ? lse - (1.0f - label_smoothing) * target_logit - smooth * row_sum : 0.0f;
    if (dlogits == nullptr) return;
    // Every thread has read its logits above and the block reductions synchronised the block,
    // so writing in place over the logits is safe.
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float d = 0.0f;
        if (counted) {
            const float q = (v == target ? 1.0f - label_smoothing : 0.0f) + smooth;
            d = (__expf(to_float(logits[base + v]) - lse) - q) * dloss;
        }
        dlogits[base + v] = __float2bfloat16(d);
    }
}
