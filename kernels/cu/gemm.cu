// gemm.cu — batched C = alpha · op(A) · op(B) + beta · C on tensor cores: bf16 inputs, fp32
// accumulation, bf16 or fp32 output. All matrices are row-major; a batch index (blockIdx.z)
// steps each pointer by its stride. The three layouts T5 needs:
//   nt: A (M, K), B (N, K): C = A·Bᵀ   linear forward   y  = x·Wᵀ   (W is HF (out, in)); Q·Kᵀ
//   nn: A (M, K), B (K, N): C = A·B    linear backward  dx = dy·W;  P·V
//   tn: A (K, M), B (K, N): C = Aᵀ·B   weight gradient  dW = dyᵀ·x  (accumulate with beta = 1)
//
// Variants:
//   v1: 128×128×32 block tile, 256 threads = 8 warps in a 2 (M) × 4 (N) grid, each warp a
//       64×32 tile = 4×4 `mma.sync.m16n8k16` (bf16 → fp32). Tiles are staged in shared memory
//       in one canonical layout (As[m][k], Bs[n][k], padded by 8 bf16 so the fragment loads hit
//       32 distinct banks); the transposes happen during the global → shared copy, so one
//       compute loop serves every layout. Loads are scalar and synchronous: any M, N, K and any
//       alignment work. Launch: grid (ceil(N/128), ceil(M/128), batch), block 256.
//   v2: v1 plus a double-buffered `cp.async` 16-byte pipeline for the `nt` layout (both
//       operands K-contiguous, the linear forward). Requires K % 8 == 0 and 16-byte aligned
//       A, B and batch strides; the launcher falls back to v1 otherwise.
//   strided: v1's tiling over arbitrary strided views (the engine's `MatView`: offset, row and
//       column strides, a two-level batch), for bf16 or fp32 storage; fp32 inputs are rounded
//       to bf16 while staged, so the math is the same tensor-core bf16 × bf16 → fp32. Each
//       operand's staging loop walks its unit-stride dimension when it has one. Launch: grid
//       (ceil(N/128), ceil(M/128), batch0·batch1), block 256.
// Entry points: gemm_{nt,nn,tn}_forward_v1_{bf16,f32}, gemm_nt_forward_v2_{bf16,f32}
// (the last part names the output dtype), gemm_strided_{bf16,f32}_forward_v1_{bf16,f32}
// (storage dtype of the inputs, then of the output; the two are equal).
#include "common.cuh"

#define BM 128
#define BN 128
#define BK 32
#define PAD 8
#define THREADS 256

__device__ __forceinline__ unsigned int ld_pair(const bf16* p) { return *reinterpret_cast<const unsigned int*>(p); }

// d += a·b for one m16n8k16 tile (PTX ISA "Matrix Fragments for mma.m16n8k16").
__device__ __forceinline__ void mma_bf16_16816(float* d, const unsigned int* a, const unsigned int* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// One BK-deep step of the warp tile from the staged shared-memory tiles.
// Fragment layout (g = lane/4, t = lane%4): A regs hold rows g, g+8 and k pairs 2t, 2t+8;
// B regs hold column g and k pairs 2t, 2t+8; C holds rows g, g+8 and columns 2t, 2t+1.
__device__ __forceinline__ void warp_tile_step(float (*acc)[4][4], const bf16 (*As)[BK + PAD],
                                               const bf16 (*Bs)[BK + PAD], int wm, int wn, int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
        unsigned int a[4][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
            const int row = wm * 64 + mi * 16 + g;
            a[mi][0] = ld_pair(&As[row][kk + 2 * t]);
            a[mi][1] = ld_pair(&As[row + 8][kk + 2 * t]);
            a[mi][2] = ld_pair(&As[row][kk + 8 + 2 * t]);
            a[mi][3] = ld_pair(&As[row + 8][kk + 8 + 2 * t]);
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            const int col = wn * 32 + ni * 8 + g;
            b[ni][0] = ld_pair(&Bs[col][kk + 2 * t]);
            b[ni][1] = ld_pair(&Bs[col][kk + 8 + 2 * t]);
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) mma_bf16_16816(acc[mi][ni], a[mi], b[ni]);
    }
}

template <typename OutT>
__device__ __forceinline__ void store_c(OutT* C, int M, int N, int row, int col, float v, float alpha, float beta) {
    if (row >= M || col >= N) return;
    OutT* p = C + (long long)row * N + col;
    float out = alpha * v;
    if (beta != 0.0f) out += beta * to_float(*p);
    store_as(p, out);
}

template <typename OutT>
__device__ __forceinline__ void epilogue(OutT* C, float (*acc)[4][4], int M, int N, int m0, int n0, int wm,
                                         int wn, int lane, float alpha, float beta) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            const int row = m0 + wm * 64 + mi * 16 + g;
            const int col = n0 + wn * 32 + ni * 8 + 2 * t;
            store_c(C, M, N, row, col, acc[mi][ni][0], alpha, beta);
            store_c(C, M, N, row, col + 1, acc[mi][ni][1], alpha, beta);
            store_c(C, M, N, row + 8, col, acc[mi][ni][2], alpha, beta);
            store_c(C, M, N, row + 8, col + 1, acc[mi][ni][3], alpha, beta);
        }
}

// TRANS_A: A is stored (K, M). TRANS_B: B is stored (N, K) (op(B) = Bᵀ).
template <bool TRANS_A, bool TRANS_B, typename OutT>
__device__ void gemm_v1(OutT* C, const bf16* A, const bf16* B, int M, int N, int K, long long stride_a,
                        long long stride_b, long long stride_c, float alpha, float beta) {
    __shared__ __align__(16) bf16 As[BM][BK + PAD];
    __shared__ __align__(16) bf16 Bs[BN][BK + PAD];
    A += blockIdx.z * stride_a;
    B += blockIdx.z * stride_b;
    C += blockIdx.z * stride_c;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp / 4, wn = warp % 4;
    const bf16 zero = __float2bfloat16(0.0f);
    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[mi][ni][r] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
        // Consecutive threads walk the contiguous dimension of each operand (coalesced).
        for (int idx = tid; idx < BM * BK; idx += THREADS) {
            const int i = TRANS_A ? idx % BM : idx / BK;
            const int k = TRANS_A ? idx / BM : idx % BK;
            const int gm = m0 + i, gk = k0 + k;
            bf16 v = zero;
            if (gm < M && gk < K) v = TRANS_A ? A[(long long)gk * M + gm] : A[(long long)gm * K + gk];
            As[i][k] = v;
        }
        for (int idx = tid; idx < BN * BK; idx += THREADS) {
            const int j = TRANS_B ? idx / BK : idx % BN;
            const int k = TRANS_B ? idx % BK : idx / BN;
            const int gn = n0 + j, gk = k0 + k;
            bf16 v = zero;
            if (gn < N && gk < K) v = TRANS_B ? B[(long long)gn * K + gk] : B[(long long)gk * N + gn];
            Bs[j][k] = v;
        }
        __syncthreads();
        warp_tile_step(acc, As, Bs, wm, wn, lane);
        __syncthreads();
    }
    epilogue(C, acc, M, N, m0, n0, wm, wn, lane, alpha, beta);
}

// 16-byte global → shared copy that bypasses registers; src_bytes < 16 zero-fills the rest.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
    const unsigned int s = static_cast<unsigned int>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

// Stage rows [r0, r0 + ROWS) × k [k0, k0 + BK) of a K-contiguous (rows, K) matrix. Each thread
// copies 8 bf16 (16 bytes); rows or k past the edge are zero-filled (K % 8 == 0 is required,
// so a 16-byte chunk is either fully inside or fully outside).
template <int ROWS>
__device__ __forceinline__ void stage_k_contiguous(bf16 (*S)[BK + PAD], const bf16* G, int rows, int K, int r0,
                                                   int k0, int tid) {
    for (int idx = tid; idx < ROWS * (BK / 8); idx += THREADS) {
        const int i = idx / (BK / 8), k = (idx % (BK / 8)) * 8;
        const int gr = r0 + i, gk = k0 + k;
        const bool inside = gr < rows && gk < K;
        const bf16* src = inside ? G + (long long)gr * K + gk : G;
        cp_async_16(&S[i][k], src, inside ? 16 : 0);
    }
}

template <typename OutT>
__device__ void gemm_nt_v2(OutT* C, const bf16* A, const bf16* B, int M, int N, int K, long long stride_a,
                           long long stride_b, long long stride_c, float alpha, float beta) {
    __shared__ __align__(16) bf16 As[2][BM][BK + PAD];
    __shared__ __align__(16) bf16 Bs[2][BN][BK + PAD];
    A += blockIdx.z * stride_a;
    B += blockIdx.z * stride_b;
    C += blockIdx.z * stride_c;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp / 4, wn = warp % 4;
    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[mi][ni][r] = 0.0f;

    const int tiles = (K + BK - 1) / BK;
    stage_k_contiguous<BM>(As[0], A, M, K, m0, 0, tid);
    stage_k_contiguous<BN>(Bs[0], B, N, K, n0, 0, tid);
    cp_async_commit();
    for (int tile = 0; tile < tiles; ++tile) {
        const int cur = tile & 1;
        if (tile + 1 < tiles) {
            // Prefetch the next tile into the other buffer while this one is consumed.
            stage_k_contiguous<BM>(As[cur ^ 1], A, M, K, m0, (tile + 1) * BK, tid);
            stage_k_contiguous<BN>(Bs[cur ^ 1], B, N, K, n0, (tile + 1) * BK, tid);
            cp_async_commit();
            cp_async_wait_all_but_one();
        } else {
            cp_async_wait_all();
        }
        __syncthreads();
        warp_tile_step(acc, As[cur], Bs[cur], wm, wn, lane);
        __syncthreads();
    }
    epilogue(C, acc, M, N, m0, n0, wm, wn, lane, alpha, beta);
}

#define GEMM_V1_ENTRY(name, TA, TB, OutT)                                                                     \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                   \
        name(OutT* C, const bf16* A, const bf16* B, int M, int N, int K, long long stride_a, long long stride_b, \
             long long stride_c, float alpha, float beta) {                                                 \
        gemm_v1<TA, TB, OutT>(C, A, B, M, N, K, stride_a, stride_b, stride_c, alpha, beta);                 \
    }

GEMM_V1_ENTRY(gemm_nt_forward_v1_bf16, false, true, bf16)
GEMM_V1_ENTRY(gemm_nt_forward_v1_f32, false, true, float)
GEMM_V1_ENTRY(gemm_nn_forward_v1_bf16, false, false, bf16)
GEMM_V1_ENTRY(gemm_nn_forward_v1_f32, false, false, float)
GEMM_V1_ENTRY(gemm_tn_forward_v1_bf16, true, false, bf16)
GEMM_V1_ENTRY(gemm_tn_forward_v1_f32, true, false, float)

#define GEMM_NT_V2_ENTRY(name, OutT)                                                                          \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                   \
        name(OutT* C, const bf16* A, const bf16* B, int M, int N, int K, long long stride_a, long long stride_b, \
             long long stride_c, float alpha, float beta) {                                                 \
        gemm_nt_v2<OutT>(C, A, B, M, N, K, stride_a, stride_b, stride_c, alpha, beta);                      \
    }

GEMM_NT_V2_ENTRY(gemm_nt_forward_v2_bf16, bf16)
GEMM_NT_V2_ENTRY(gemm_nt_forward_v2_f32, float)

// A strided matrix view: element (b0, b1, r, c) at offset + b0·batch0 + b1·batch1 + r·row + c·col.
struct MatStrides {
    long long offset, row, col, batch0, batch1;
};

__device__ __forceinline__ bf16 to_bf16(bf16 x) { return x; }
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16(x); }

// C (m×n) = alpha·A (m×k)·B (k×n) + beta·C over strided views, batch = batch0 × batch1.
template <typename T>
__device__ void gemm_strided_v1(T* C, MatStrides cv, const T* A, MatStrides av, const T* B, MatStrides bv, int M,
                                int N, int K, int batch1, float alpha, float beta) {
    __shared__ __align__(16) bf16 As[BM][BK + PAD];
    __shared__ __align__(16) bf16 Bs[BN][BK + PAD];
    const long long b0 = blockIdx.z / batch1, b1 = blockIdx.z % batch1;
    A += av.offset + b0 * av.batch0 + b1 * av.batch1;
    B += bv.offset + b0 * bv.batch0 + b1 * bv.batch1;
    C += cv.offset + b0 * cv.batch0 + b1 * cv.batch1;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp / 4, wn = warp % 4;
    const bf16 zero = __float2bfloat16(0.0f);
    // Walk k fastest when it is A's unit-stride dimension (and n fastest for B when that is).
    const bool a_k_fast = av.col == 1, b_n_fast = bv.col == 1;
    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[mi][ni][r] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int idx = tid; idx < BM * BK; idx += THREADS) {
            const int i = a_k_fast ? idx / BK : idx % BM;
            const int k = a_k_fast ? idx % BK : idx / BM;
            const int gm = m0 + i, gk = k0 + k;
            As[i][k] = (gm < M && gk < K) ? to_bf16(A[gm * av.row + gk * av.col]) : zero;
        }
        for (int idx = tid; idx < BN * BK; idx += THREADS) {
            const int j = b_n_fast ? idx % BN : idx / BK;
            const int k = b_n_fast ? idx / BN : idx % BK;
            const int gn = n0 + j, gk = k0 + k;
            Bs[j][k] = (gn < N && gk < K) ? to_bf16(B[gk * bv.row + gn * bv.col]) : zero;
        }
        __syncthreads();
        warp_tile_step(acc, As, Bs, wm, wn, lane);
        __syncthreads();
    }
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int row = m0 + wm * 64 + mi * 16 + g + (r >= 2 ? 8 : 0);
                const int col = n0 + wn * 32 + ni * 8 + 2 * t + (r & 1);
                if (row >= M || col >= N) continue;
                T* p = C + row * cv.row + col * cv.col;
                float out = alpha * acc[mi][ni][r];
                if (beta != 0.0f) out += beta * to_float(*p);
                store_as(p, out);
            }
}

#define GEMM_STRIDED_ENTRY(name, T)                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                    \
        name(T* C, MatStrides cv, const T* A, MatStrides av, const T* B, MatStrides bv, int M, int N, int K,  \
             int batch1, float alpha, float beta) {                                                          \
        gemm_strided_v1<T>(C, cv, A, av, B, bv, M, N, K, batch1, alpha, beta);                               \
    }

GEMM_STRIDED_ENTRY(gemm_strided_bf16_forward_v1_bf16, bf16)
GEMM_STRIDED_ENTRY(gemm_strided_f32_forward_v1_f32, float)
