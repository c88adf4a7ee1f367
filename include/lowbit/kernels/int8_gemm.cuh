/// @file int8_gemm.cuh
/// @brief int8 tensor-core GEMM `C[M,N] = Aq[M,K] · Wqᵀ` (W [N,K] row-major, int32 accumulation) with
/// the LLM.int8() epilogue fused: row scale ⊗ column scale dequantization, removal of the outlier
/// columns from the int8 sum, the outlier columns' fp32 product, bias, fp16/bf16 output.
///
/// Two kernels (see `lowbit/int8/linear.cuh` for the dispatch and the host API):
/// - `gemv_s8_kernel` for M ≤ 32: no shared memory; each warp streams 16 rows of W with 16-byte
///   `ld.global.nc` loads straight into mma fragments (k permuted alike in A and B) and the grid is
///   split along K to fill every SM; partial int32 sums are added with `red.global.add` (exact and
///   order-independent), then `int8_epilogue_kernel` finishes.
/// - `gemm_s8_tiled_kernel` for larger M: BM×128×64 tiles, 4-stage cp.async pipeline into XOR-swizzled
///   shared memory, ldmatrix, 8 warps; either the fused epilogue or int32 output (optionally split-K).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "../int8/llm_int8.hpp"
#include "int8_mma.cuh"

namespace lowbit::kernels {

/// Everything the LLM.int8() epilogue reads (all device pointers).
struct Int8EpilogueParams {
  const void* A = nullptr;                 ///< original activations [M, K] (fp16 or bf16)
  const std::int8_t* Aq = nullptr;         ///< activation codes [M, K]
  const float* row_absmax = nullptr;       ///< [M] activation row scales
  const std::int8_t* Wq = nullptr;         ///< weight codes [N, K]
  const float* w_absmax = nullptr;         ///< [N] weight row scales
  const float* bias = nullptr;             ///< [N] or nullptr
  const std::uint16_t* side_values = nullptr;  ///< fp16 side copy [D, N] or nullptr
  const int* side_index = nullptr;         ///< [K]: row of side_values for column k, or -1 (nullptr: none)
  const int* outlier_count = nullptr;      ///< number of outlier columns (device scalar)
  const int* outlier_list = nullptr;       ///< ascending outlier columns, first min(count, max_list)
  const std::uint32_t* outlier_mask = nullptr;  ///< [ceil(K/32)] outlier bitmask (fallback walk)
  int max_list = 0;                        ///< capacity of outlier_list; count > max_list walks the mask
  void* Y = nullptr;                       ///< output [M, N] (fp16 or bf16)
  /// [M, N] fp32, zeroed before the launch: the small-M kernel's split blocks add their outlier
  /// columns' product here (red.global.add.f32), its last block reads it (nullptr: not used)
  float* outlier_acc = nullptr;
  /// [min(count, max_list), N] fp32 weights of the listed outlier columns, gathered once per call by
  /// prepare_outliers_kernel (tiled / wgmma paths; nullptr: gather in the epilogue). Unused on overflow.
  const float* outlier_wslab = nullptr;
  /// [min(count, max_list), M] fp32 activation values A[m, c] of the listed outlier columns (same origin
  /// and condition as outlier_wslab; nullptr: gather in the epilogue).
  const float* outlier_aslab = nullptr;
  int M = 0;  ///< rows of A (the stride of outlier_aslab)
  /// Small-M kernel: take the outlier columns' weights from its own weight stream (false: gather them
  /// after the main loop; a testing / tuning knob, see LinearOptions::capture_outliers).
  bool capture_outliers = true;
};

namespace detail {

/// 1/127²: converts an int32 sum of code products into s_a·s_w units.
inline constexpr float kInvCodeMaxSq = 1.0f / (127.0f * 127.0f);
/// Outlier columns staged in shared memory per round of the epilogue.
inline constexpr int kOutlierChunk = 16;
/// Outlier columns whose loads (A values, codes, weight gathers) the small-M kernel keeps in flight at once.
inline constexpr int kGemvOutlierBatch = 4;
/// Outlier columns per K split whose weights the small-M kernel captures from its own weight stream
/// (more in one split: the tail gathers them instead).
inline constexpr int kGemvEarlyCap = 32;

/// Inclusive prefix sum of `v` over the lanes of a full warp (lane i gets the sum of lanes 0..i).
LOWBIT_DEVICE int warp_inclusive_sum(int v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  return v;
}

/// Element type helpers for fp16 / bf16 activations and outputs.
template <class T>
struct Elem;
template <>
struct Elem<__half> {
  LOWBIT_DEVICE static float to(__half v) { return __half2float(v); }
  LOWBIT_DEVICE static __half2 pack(float a, float b) { return __floats2half2_rn(a, b); }
  using pair = __half2;
};
template <>
struct Elem<__nv_bfloat16> {
  LOWBIT_DEVICE static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
  LOWBIT_DEVICE static __nv_bfloat162 pack(float a, float b) { return __floats2bfloat162_rn(a, b); }
  using pair = __nv_bfloat162;
};

/// Fills `s_cols` with the next chunk of outlier columns (at most kOutlierChunk) starting at the
/// chunk's first index `j0`; returns how many (same value in every thread). The compacted list is used
/// while it holds every outlier column; beyond its capacity (overflow) thread 0 walks the bitmask,
/// continuing from its cursor — slower, still exact. Must be called by all threads of the block.
struct OutlierCursor {
  int word = -1;          ///< current mask word (thread 0 only)
  std::uint32_t bits = 0; ///< remaining bits of that word (thread 0 only)
};

/// The default barrier of the outlier staging helpers: the whole block.
struct BlockBarrier {
  /// `__syncthreads()`.
  LOWBIT_DEVICE void operator()() const { __syncthreads(); }
};

/// The next chunk of outlier columns into `s_cols` (as described above OutlierCursor). `sync`
/// synchronises the threads taking part: the whole block by default, the consumer warps' named barrier
/// in a warp-specialized kernel whose producer warps have returned.
template <class Sync = BlockBarrier>
LOWBIT_DEVICE int next_outlier_chunk(const Int8EpilogueParams& p, int count, int j0, int K, OutlierCursor& cur,
                                     int* s_cols, int* s_n, Sync sync = {}) {
  if (count <= p.max_list) {
    const int n = min(kOutlierChunk, count - j0);
    if (threadIdx.x < n) s_cols[threadIdx.x] = p.outlier_list[j0 + threadIdx.x];
    return n;
  }
  if (threadIdx.x == 0) {
    const int words = (K + 31) / 32;
    int n = 0;
    while (n < kOutlierChunk) {
      if (cur.bits == 0) {
        if (++cur.word >= words) break;
        cur.bits = p.outlier_mask[cur.word];
        continue;
      }
      s_cols[n++] = cur.word * 32 + __ffs(static_cast<int>(cur.bits)) - 1;
      cur.bits &= cur.bits - 1;
    }
    *s_n = n;
  }
  sync();
  return *s_n;
}

/// Weight value used with outlier column c of output n: fp16 side copy if present, else int8 dequantized.
/// `absmax(n)` gives w_absmax[n], called only when needed: the split-K gemv kernel passes a global load
/// (evaluated lazily, as its register allocation needs), the ring kernel a value it holds in a register.
template <class Absmax>
LOWBIT_DEVICE float outlier_weight_with(const Int8EpilogueParams& p, int n, int c, int N, float wq, Absmax absmax) {
  if (p.side_index) {
    const int j = p.side_index[c];
    if (j >= 0) return __half2float(__ushort_as_half(p.side_values[static_cast<std::size_t>(j) * N + n]));
  }
  return wq * absmax(n) * (1.0f / 127.0f);
}
LOWBIT_DEVICE float outlier_weight(const Int8EpilogueParams& p, int n, int c, int N, float wq) {
  return outlier_weight_with(p, n, c, N, wq, [&](int r) { return p.w_absmax[r]; });
}

/// True when the pre-gathered outlier slabs hold every outlier column of this call.
LOWBIT_DEVICE bool use_outlier_slabs(const Int8EpilogueParams& p, int count) {
  return p.outlier_wslab != nullptr && p.outlier_aslab != nullptr && count <= p.max_list;
}

/// The slow staging path of stage_outlier_chunk (list capacity exceeded, or no slabs): column list or
/// mask walk, one gather per value. Kept out of line so that the register allocation of the callers'
/// common path (accumulators live) does not pay for it. `sync`: as in stage_outlier_chunk.
template <class T, int BM, int BN, int J, int P, class Sync>
__device__ __noinline__ int gather_outlier_chunk(float* s_a, float* s_wo, const Int8EpilogueParams& p, int count,
                                                 int j0, OutlierCursor& cur, int* s_cols, int* s_n, int bm, int bn,
                                                 int M, int N, int K, int tid, int threads, Sync sync) {
  const int jn = next_outlier_chunk(p, count, j0, K, cur, s_cols, s_n, sync);
  sync();
  const T* Aval = static_cast<const T*>(p.A);
  for (int i = tid; i < BM * J; i += threads) {
    const int r = i / J, j = i % J;
    const bool ok = j < jn && bm + r < M;
    s_a[r * P + j] = ok ? Elem<T>::to(Aval[static_cast<std::size_t>(bm + r) * K + s_cols[j]]) : 0.f;
  }
  for (int i = tid; i < BN * J; i += threads) {
    const int r = i / J, j = i % J;
    const bool ok = j < jn && bn + r < N;
    const int c = ok ? s_cols[j] : 0;
    const float wq = ok ? static_cast<float>(p.Wq[static_cast<std::size_t>(bn + r) * K + c]) : 0.f;
    s_wo[r * P + j] = ok ? outlier_weight(p, bn + r, c, N, wq) : 0.f;
  }
  return jn;
}

/// Copies kCount values per thread (`load(u)` → `store(u, v)`, u < kCount) in rounds of kBatch: each
/// round issues all of its loads before its first store, so a round costs one memory round trip, not
/// one per value (a load-store loop with `__ldcg` loads and generic stores compiled to exactly that:
/// every load waited for the store before it). kBatch bounds the registers the values in flight take
/// next to live accumulators.
template <int kCount, int kBatch, class Load, class Store>
LOWBIT_DEVICE void batched_copy(Load load, Store store) {
#pragma unroll
  for (int u0 = 0; u0 < kCount; u0 += kBatch) {
    float v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u)
      if (u0 + u < kCount) v[u] = load(u0 + u);
#pragma unroll
    for (int u = 0; u < kBatch; ++u)
      if (u0 + u < kCount) store(u0 + u, v[u]);
  }
}

/// Values a thread keeps in flight while staging outlier columns in the epilogues (their accumulators
/// are live: a larger batch made ptxas spill in the 128-register tiled kernels and the 168-register
/// warp-specialized one).
inline constexpr int kOutlierStageBatch = 8;

/// Stages outlier columns j0 .. j0+jn-1 of a BM × BN output tile from the pre-gathered slabs: activation
/// values into s_a (BM, P), weights into s_wo (BN, P), in batches of read-only loads (batched_copy;
/// consecutive threads on consecutive slab entries).
template <int BM, int BN, int J, int P, int kThreads>
LOWBIT_DEVICE void stage_outlier_slabs(float* s_a, float* s_wo, const Int8EpilogueParams& p, int j0, int jn, int bm,
                                       int bn, int M, int N, int tid) {
  static_assert(BM * J % kThreads == 0 && BN * J % kThreads == 0, "whole rounds of the block");
  batched_copy<BM * J / kThreads, kOutlierStageBatch>(
      [&](int u) {
        const int i = tid + u * kThreads, r = i % BM, j = i / BM;
        return j < jn && bm + r < M ? __ldg(p.outlier_aslab + static_cast<std::size_t>(j0 + j) * p.M + bm + r) : 0.f;
      },
      [&](int u, float v) {
        const int i = tid + u * kThreads;
        s_a[(i % BM) * P + i / BM] = v;
      });
  batched_copy<BN * J / kThreads, kOutlierStageBatch>(
      [&](int u) {
        const int i = tid + u * kThreads, r = i % BN, j = i / BN;
        return j < jn && bn + r < N ? __ldg(p.outlier_wslab + static_cast<std::size_t>(j0 + j) * N + bn + r) : 0.f;
      },
      [&](int u, float v) {
        const int i = tid + u * kThreads;
        s_wo[(i % BN) * P + i / BN] = v;
      });
}

/// Stages outlier columns j0, j0+1, ... of a BM × BN output tile: activation values into s_a (BM, P)
/// and weights into s_wo (BN, P) — from the pre-gathered slabs when there are some (stage_outlier_slabs:
/// no list read, no gather), else through the list / mask walk with one gather per value. Returns the
/// number of columns staged (block-uniform); called by all kThreads threads of the block; ends with a
/// `__syncthreads`.
template <class T, int BM, int BN, int J, int P, int kThreads>
LOWBIT_DEVICE int stage_outlier_chunk(float* s_a, float* s_wo, const Int8EpilogueParams& p, int count, int j0,
                                      OutlierCursor& cur, int* s_cols, int* s_n, int bm, int bn, int M, int N,
                                      int K, int tid) {
  const BlockBarrier sync;
  int jn;
  if (use_outlier_slabs(p, count)) {
    jn = min(J, count - j0);
    stage_outlier_slabs<BM, BN, J, P, kThreads>(s_a, s_wo, p, j0, jn, bm, bn, M, N, tid);
  } else {
    jn = gather_outlier_chunk<T, BM, BN, J, P>(s_a, s_wo, p, count, j0, cur, s_cols, s_n, bm, bn, M, N, K, tid,
                                               kThreads, sync);
  }
  sync();
  return jn;
}

}  // namespace detail

namespace detail {

/// Block-level LLM.int8() finish of `kCols` output columns × `(kThreads / kCols) · kRows` rows from
/// int32 sums C: Y = (C − Σ_outliers Aq·Wq)·s_a⊗s_w/127² + Σ_outliers A·W_o + bias. Called by every
/// thread of the block (it synchronizes).
/// @tparam T __half or __nv_bfloat16
/// @tparam kThreads threads of the block
/// @tparam kCols output columns per block (one per thread of a row group)
/// @tparam kRows rows per thread
template <class T, int kThreads, int kCols, int kRows>
LOWBIT_DEVICE void epilogue_block(const int* C, const Int8EpilogueParams& p, int M, int N, int K, int n0, int m0) {
  constexpr int kGroups = kThreads / kCols, R = kGroups * kRows;
  static_assert(kThreads % kCols == 0, "whole row groups");
  __shared__ int s_cols[kOutlierChunk];
  __shared__ int s_n;
  __shared__ float s_a[R][kOutlierChunk];
  __shared__ int s_aq[R][kOutlierChunk];
  const int n = n0 + static_cast<int>(threadIdx.x) % kCols;
  const int rl0 = (static_cast<int>(threadIdx.x) / kCols) * kRows;  // first local row of this thread
  int acc[kRows];
  float yo[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int m = m0 + rl0 + r;
    acc[r] = (m < M && n < N) ? __ldcg(C + static_cast<std::size_t>(m) * N + n) : 0;
    yo[r] = 0.f;
  }
  const int count = *p.outlier_count;
  OutlierCursor cur;
  const T* A = static_cast<const T*>(p.A);
  const bool slabs = use_outlier_slabs(p, count);  // (then the outlier codes are zeroed: no correction)
  for (int j0 = 0; j0 < count; j0 += kOutlierChunk) {
    const int jn = slabs ? min(kOutlierChunk, count - j0) : next_outlier_chunk(p, count, j0, K, cur, s_cols, &s_n);
    __syncthreads();
    for (int i = threadIdx.x; i < R * kOutlierChunk; i += kThreads) {
      if (slabs) {
        const int r = i % R, j = i / R;
        const bool ok = j < jn && m0 + r < M;
        s_a[r][j] = ok ? __ldcg(p.outlier_aslab + static_cast<std::size_t>(j0 + j) * p.M + m0 + r) : 0.f;
        s_aq[r][j] = 0;
      } else {
        const int r = i / kOutlierChunk, j = i % kOutlierChunk;
        const bool ok = j < jn && m0 + r < M;
        const std::size_t off = ok ? static_cast<std::size_t>(m0 + r) * K + s_cols[j] : 0;
        s_a[r][j] = ok ? Elem<T>::to(A[off]) : 0.f;
        s_aq[r][j] = ok ? p.Aq[off] : 0;
      }
    }
    __syncthreads();
    if (n < N) {
      // all weight gathers of the chunk are issued before the first use (one DRAM latency per chunk)
      int wq[kOutlierChunk];
      float wo[kOutlierChunk];
      if (slabs) {  // codes already zeroed: no int8 correction needed
#pragma unroll
        for (int j = 0; j < kOutlierChunk; ++j) {
          wq[j] = 0;
          wo[j] = j < jn ? __ldcg(p.outlier_wslab + static_cast<std::size_t>(j0 + j) * N + n) : 0.f;
        }
      } else {
#pragma unroll
        for (int j = 0; j < kOutlierChunk; ++j)
          wq[j] = j < jn ? p.Wq[static_cast<std::size_t>(n) * K + s_cols[j]] : 0;
#pragma unroll
        for (int j = 0; j < kOutlierChunk; ++j)
          wo[j] = j < jn ? outlier_weight(p, n, s_cols[j], N, static_cast<float>(wq[j])) : 0.f;
      }
#pragma unroll
      for (int j = 0; j < kOutlierChunk; ++j) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          acc[r] -= s_aq[rl0 + r][j] * wq[j];
          yo[r] = fmaf(s_a[rl0 + r][j], wo[j], yo[r]);
        }
      }
    }
    __syncthreads();
  }
  if (n >= N) return;
  const float ws = p.w_absmax[n] * kInvCodeMaxSq;
  const float b = p.bias ? p.bias[n] : 0.f;
  T* Y = static_cast<T*>(p.Y);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int m = m0 + rl0 + r;
    if (m < M) {
      const float y = static_cast<float>(acc[r]) * (p.row_absmax[m] * ws) + yo[r] + b;
      Y[static_cast<std::size_t>(m) * N + n] = Elem<T>::pack(y, 0.f).x;
    }
  }
}

}  // namespace detail

/// Finishes a split-K int32 GEMM (see detail::epilogue_block).
/// Grid: x = ceil(N / 256), y = ceil(M / 8); block 256 (one output column per thread, 8 rows).
/// @tparam T __half or __nv_bfloat16
template <class T>
__global__ void __launch_bounds__(256) int8_epilogue_kernel(const int* __restrict__ C, Int8EpilogueParams p, int M,
                                                            int N, int K) {
  constexpr int kRows = 8;  // output rows per thread
  detail::pdl_wait();       // when launched programmatically after the GEMM: its sums must be complete
  detail::epilogue_block<T, 256, 256, kRows>(C, p, M, N, K, blockIdx.x * 256, blockIdx.y * kRows);
}

/// Small-M int8 GEMM (M ≤ 16·MT): int32 partial sums of a K slice added into C with red.global.add.
/// Grid: x = ceil(N / 64) (4 warps × 16 rows of W), y = K splits of `k_per_split` (multiple of 64).
/// With an output type T (fused LLM.int8() layer), each split block also handles the outlier columns
/// inside its own K range right after its main loop, while their weight lines are still in L2: it
/// removes their int8 product from its partial sums (exact, int32) and adds their high-precision product
/// to `p.outlier_acc` (fp32 red.global.add; the order of those few additions across splits is not fixed,
/// so the fp32 sum may differ in its last bit between runs). The last block to finish each 64-column slab
/// (counted in `counters`, zeroed before the launch) then only scales, adds and stores: no gathers left
/// in the kernel's tail. The outlier columns come from the bitmask `p.outlier_mask` (so the
/// compacted list's capacity does not matter here).
/// @tparam MT m16 tiles (1: M ≤ 16, 2: M ≤ 32)
/// @tparam kUnroll 64-byte chunks per row loaded before the first mma (bytes in flight per thread: 32·kUnroll)
/// @tparam T void (int32 output only) or __half / __nv_bfloat16 (fused epilogue into p.Y)
/// @param A activation codes [M, K] int8, 16-byte aligned rows (K % 64 == 0)
/// @param W weight codes [N, K] int8
/// @param C int32 [M, N], zeroed before the launch
/// @param M rows of A (≤ 16·MT)
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64)
/// @param k_per_split K columns per split (multiple of 64)
/// @param p epilogue inputs, `outlier_acc` [M, N] fp32 zeroed, and the output (fused mode only)
/// @param counters [ceil(N/64)] finished-split counters, zeroed before the launch (fused mode only)
template <int MT, int kUnroll = 2, class T = void>
__global__ void __launch_bounds__(128, MT == 1 ? 7 : 3) gemv_s8_kernel(const std::int8_t* __restrict__ A, const std::int8_t* __restrict__ W,
                                                      int* __restrict__ C, int M, int N, int K, int k_per_split,
                                                      Int8EpilogueParams p = {}, unsigned* counters = nullptr) {
  constexpr int NT = 2;        // n8 tiles per warp: 16 rows of W
  constexpr int kChunk = 64;   // k bytes per row per step: 4 threads × 16 bytes
  constexpr int kPrefetch = 4; // further chunks per row prefetched into L2 while the activation pass ends
  constexpr bool kFused = !std::is_void_v<T>;
  detail::pdl_launch_dependents();  // a following kernel may start launching (it waits for our results)
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int n_base = (blockIdx.x * 4 + warp) * (8 * NT);
  const int k_begin = blockIdx.y * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  // ---- fused mode: outlier columns of this split, their weights captured from the stream ----
  // Right after pdl_wait every warp compacts the outlier bitmask of the split's K range into its own
  // ascending list (same contents in all warps: no block barrier in the main loop); right after a batch
  // that streamed such a column, lanes 0-15 re-read W[n, c] of the warp's 16 rows (an L2 hit: the line
  // was just fetched) into s_ewq. The tail then needs no weight gather (a gather after the loop is a DRAM
  // miss: the lines left the L2 long before, and all blocks' gathers land at the kernel's end).
  // Ranges with more than kEarlyCap outlier columns (or more than 32·kEarlyWords words) fall back to
  // gathers in the tail.
  constexpr int kEarlyCap = detail::kGemvEarlyCap;
  constexpr int kEarlyWords = 4;  // mask words per lane: ranges of up to 4·32·32 = 4096 columns
  __shared__ int s_ecols[4][kEarlyCap + 1];     // per warp: outlier columns of the range, ascending, INT_MAX
  __shared__ std::int8_t s_ewq[kEarlyCap][64];  // W[n, s_ecols[j]] for the slab's 64 rows
  __shared__ int s_enext[4];                    // per warp: next entry of s_ecols to capture
  __shared__ int s_count_early;                 // outlier columns of the whole layer
  __shared__ int s_ne;                          // columns in s_ecols, or -1: the tail gathers
  int e_col = INT_MAX;  // warp-uniform: next column to capture (the only register the main loop keeps)
  auto early_outliers = [&]() {
    if constexpr (kFused) {
      const int w_begin = k_begin / 32, w_end = (k_end + 31) / 32;
      std::uint32_t mw[kEarlyWords];
#pragma unroll
      for (int i = 0; i < kEarlyWords; ++i) {
        const int w = w_begin + lane + 32 * i;
        mw[i] = w < w_end ? __ldcg(p.outlier_mask + w) : 0u;
      }
      const int cnt = __ldcg(p.outlier_count);
      int base = 0;
#pragma unroll
      for (int i = 0; i < kEarlyWords; ++i) {
        std::uint32_t bits = mw[i];
        const int c = __popc(bits), incl = detail::warp_inclusive_sum(c, lane);
        for (int off = base + incl - c; bits; ++off) {
          if (off < kEarlyCap) s_ecols[warp][off] = (w_begin + lane + 32 * i) * 32 + __ffs(static_cast<int>(bits)) - 1;
          bits &= bits - 1;
        }
        base += __shfl_sync(0xffffffffu, incl, 31);
      }
      const int e_n = (!p.capture_outliers || w_end - w_begin > 32 * kEarlyWords || base > kEarlyCap) ? -1 : base;
      __syncwarp();
      if (lane == 0) {
        s_ecols[warp][e_n < 0 ? 0 : e_n] = INT_MAX;  // sentinel (fallback: nothing captured)
        s_enext[warp] = 0;
      }
      __syncwarp();
      e_col = s_ecols[warp][0];
      if (threadIdx.x == 0) {
        s_count_early = cnt;
        s_ne = e_n;
      }
    }
  };
  // copies W[n, c] of this warp's 16 rows for the outlier columns c < k_next not yet captured: bytes the
  // warp has just streamed, so an L2 hit (one small load per column and warp; a rare event)
  auto capture = [&](int k_next) {
    if constexpr (kFused) {
      if (e_col >= k_next) return;  // (the common case: one compare per batch)
      int j = s_enext[warp];
      for (; e_col < k_next; e_col = s_ecols[warp][++j])  // warp-uniform
        if (lane < 16) s_ewq[j][warp * 16 + lane] = W[static_cast<std::size_t>(min(n_base + lane, N - 1)) * K + e_col];
      __syncwarp();
      if (lane == 0) s_enext[warp] = j;
      __syncwarp();
    }
  };
  int acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mt][nt][i] = 0;
  if (n_base < N && k_begin < k_end) {  // (always true for the plan's grids; kept as a guard)

  const std::int8_t* wrow[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int n = min(n_base + nt * 8 + g, N - 1);  // N % 16 == 0 keeps this in range; min guards anyway
    wrow[nt] = W + static_cast<std::size_t>(n) * K + 16 * t;
  }
  const std::int8_t* arow[MT][2];
  bool aval[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = mt * 16 + h * 8 + g;
      aval[mt][h] = m < M;
      arow[mt][h] = A + static_cast<std::size_t>(aval[mt][h] ? m : 0) * K + 16 * t;
    }

  auto mma_chunk = [&](const uint4 (&w)[NT], const uint4 (&a)[MT][2]) {
#pragma unroll
    for (int s = 0; s < 2; ++s) {  // two k32 steps per 64-byte chunk: registers (2s, 2s+1)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const std::uint32_t* a0 = reinterpret_cast<const std::uint32_t*>(&a[mt][0]);
        const std::uint32_t* a1 = reinterpret_cast<const std::uint32_t*>(&a[mt][1]);
        const std::uint32_t af[4] = {a0[2 * s], a1[2 * s], a0[2 * s + 1], a1[2 * s + 1]};
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const std::uint32_t* wr = reinterpret_cast<const std::uint32_t*>(&w[nt]);
          const std::uint32_t bf[2] = {wr[2 * s], wr[2 * s + 1]};
          detail::mma_s8_m16n8k32(acc[mt][nt], af, bf);
        }
      }
    }
  };
  auto load_a = [&](uint4 (&a)[MT][2], int k) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) a[mt][h] = aval[mt][h] ? detail::ld_cached_16(arow[mt][h] + k) : make_uint4(0, 0, 0, 0);
  };

  // W does not depend on the preceding kernels (activation pass), so the first batch of weight loads is
  // issued before waiting on them (programmatic dependent launch): it overlaps their tail.
  auto batch = [&](int k, bool wait_before_a) {
    uint4 w[kUnroll][NT];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) w[u][nt] = detail::ld_stream_16(wrow[nt] + k + u * kChunk);
    if (wait_before_a) {
      detail::pdl_wait();
      early_outliers();
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      uint4 a[MT][2];
      load_a(a, k + u * kChunk);
      mma_chunk(w[u], a);
    }
    capture(k + kUnroll * kChunk);
  };
#pragma unroll
  for (int c = kUnroll; c < kUnroll + kPrefetch; ++c)
    if (k_begin + (c + 1) * kChunk <= k_end)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) detail::prefetch_l2(wrow[nt] + k_begin + c * kChunk);
  int k = k_begin;
  if (k + kUnroll * kChunk <= k_end) {
    batch(k, true);
    k += kUnroll * kChunk;
  } else {
    detail::pdl_wait();
    early_outliers();
  }
  for (; k + kUnroll * kChunk <= k_end; k += kUnroll * kChunk) batch(k, false);
  for (; k < k_end; k += kChunk) {
    uint4 w[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) w[nt] = detail::ld_stream_16(wrow[nt] + k);
    uint4 a[MT][2];
    load_a(a, k);
    mma_chunk(w, a);
    capture(k + kChunk);
  }

  } else {
    detail::pdl_wait();  // (empty K range) the partial sums below must still follow the preceding kernel
    early_outliers();
  }  // n_base < N && k_begin < k_end

  if constexpr (!kFused) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int m = mt * 16 + g + (i >> 1) * 8;
          const int n = n_base + nt * 8 + 2 * t + (i & 1);
          if (m < M && n < N) atomicAdd(C + static_cast<std::size_t>(m) * N + n, acc[mt][nt][i]);
        }
  } else {
    // ---- the outlier columns inside this split's K range, while their weight lines are still in L2 ----
    // Thread mapping here: output column n = 64·blockIdx.x + (tid % 64), rows (tid / 64) + 2r.
    constexpr int kRowsPerThread = 8 * MT;            // 2 row groups × 8·MT rows = 16·MT rows
    constexpr int kCap = 256;                         // outlier columns staged per round
    constexpr int kBatch = detail::kGemvOutlierBatch;  // outlier columns whose loads are in flight together
    __shared__ int s_cols[kCap];                      // this round's outlier columns, ascending
    __shared__ int s_wtot[4];                         // per-warp popcount totals (block of 4 warps)
    __shared__ float s_av[16 * MT][kBatch];           // A values of the batch's columns (rows < M)
    __shared__ int s_aq[16 * MT][kBatch];             // their int8 codes (removed from the int8 sum)
    __shared__ int s_corr[16 * MT][64];               // Σ_outliers Aq·Wq per (row, column) of the slab
    const int nl = static_cast<int>(threadIdx.x) & 63, rg = static_cast<int>(threadIdx.x) >> 6;
    const int n_out = blockIdx.x * 64 + nl;
    __syncthreads();  // s_count_early, s_ne and s_ewq are written
    const int count = s_count_early;
    const int ne = s_ne;
    if (count > 0 && k_begin < k_end && ne >= 0) {  // weights captured from the stream: no gathers
      int corr[kRowsPerThread];
      float yo[kRowsPerThread];
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        corr[r] = 0;
        yo[r] = 0.f;
      }
      const T* Aval = static_cast<const T*>(p.A);
      for (int j0 = 0; j0 < ne; j0 += kBatch) {
        for (int i = threadIdx.x; i < 16 * MT * kBatch; i += blockDim.x) {
          const int r = i / kBatch, j = i % kBatch;
          const bool ok = j0 + j < ne && r < M;
          const std::size_t o = ok ? static_cast<std::size_t>(r) * K + s_ecols[0][j0 + j] : 0;
          s_av[r][j] = ok ? detail::Elem<T>::to(Aval[o]) : 0.f;
          s_aq[r][j] = ok ? A[o] : 0;
        }
        int wq[kBatch];
        float wo[kBatch];
#pragma unroll
        for (int j = 0; j < kBatch; ++j) wq[j] = j0 + j < ne ? s_ewq[j0 + j][nl] : 0;
#pragma unroll
        for (int j = 0; j < kBatch; ++j)
          wo[j] = j0 + j < ne ? detail::outlier_weight(p, n_out, s_ecols[0][j0 + j], N, static_cast<float>(wq[j]))
                              : 0.f;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < kBatch; ++j)
#pragma unroll
          for (int r = 0; r < kRowsPerThread; ++r) {
            corr[r] += s_aq[rg + 2 * r][j] * wq[j];
            yo[r] = fmaf(s_av[rg + 2 * r][j], wo[j], yo[r]);
          }
        __syncthreads();
      }
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        const int m = rg + 2 * r;
        s_corr[m][nl] = corr[r];
        if (m < M && yo[r] != 0.f) atomicAdd(p.outlier_acc + static_cast<std::size_t>(m) * N + n_out, yo[r]);
      }
      __syncthreads();
    } else if (count > 0 && k_begin < k_end) {  // fallback: many outlier columns in this range — gathers
      int corr[kRowsPerThread];
      float yo[kRowsPerThread];
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        corr[r] = 0;
        yo[r] = 0.f;
      }
      const T* Aval = static_cast<const T*>(p.A);
      const int w_begin = k_begin / 32, w_end = (k_end + 31) / 32;
      for (int wb = w_begin; wb < w_end; wb += blockDim.x) {  // one mask word per thread
        const int w = wb + static_cast<int>(threadIdx.x);
        const std::uint32_t bits = w < w_end ? __ldcg(p.outlier_mask + w) : 0u;
        const int cnt = __popc(bits);
        int incl = cnt;  // block-wide exclusive prefix of the popcounts: ascending column order
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
          const int v = __shfl_up_sync(0xffffffffu, incl, o);
          if (lane >= o) incl += v;
        }
        __syncthreads();  // s_wtot / s_cols of the previous group are consumed
        if (lane == 31) s_wtot[warp] = incl;
        __syncthreads();
        int off = incl - cnt, total = 0;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          off += q < warp ? s_wtot[q] : 0;
          total += s_wtot[q];
        }
        for (int base = 0; base < total; base += kCap) {
          {
            std::uint32_t b = bits;
            for (int idx = off; b; ++idx) {
              const int c = w * 32 + __ffs(static_cast<int>(b)) - 1;
              b &= b - 1;
              if (idx >= base && idx < base + kCap) s_cols[idx - base] = c;
            }
          }
          __syncthreads();
          const int nc = min(kCap, total - base);
          for (int j0 = 0; j0 < nc; j0 += kBatch) {
            for (int i = threadIdx.x; i < 16 * MT * kBatch; i += blockDim.x) {
              const int r = i / kBatch, j = i % kBatch;
              const bool ok = j0 + j < nc && r < M;
              const std::size_t o = ok ? static_cast<std::size_t>(r) * K + s_cols[j0 + j] : 0;
              s_av[r][j] = ok ? detail::Elem<T>::to(Aval[o]) : 0.f;
              s_aq[r][j] = ok ? A[o] : 0;
            }
            int wq[kBatch];  // weight gathers, issued before the barrier (independent of s_av)
            float wo[kBatch];
#pragma unroll
            for (int j = 0; j < kBatch; ++j)
              wq[j] = j0 + j < nc ? W[static_cast<std::size_t>(n_out) * K + s_cols[j0 + j]] : 0;
#pragma unroll
            for (int j = 0; j < kBatch; ++j)
              wo[j] = j0 + j < nc ? detail::outlier_weight(p, n_out, s_cols[j0 + j], N, static_cast<float>(wq[j]))
                                  : 0.f;
            __syncthreads();
#pragma unroll
            for (int j = 0; j < kBatch; ++j)
#pragma unroll
              for (int r = 0; r < kRowsPerThread; ++r) {
                corr[r] += s_aq[rg + 2 * r][j] * wq[j];
                yo[r] = fmaf(s_av[rg + 2 * r][j], wo[j], yo[r]);
              }
            __syncthreads();  // s_av / s_aq (and s_cols after the last batch) are reused
          }
        }
      }
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        const int m = rg + 2 * r;
        s_corr[m][nl] = corr[r];
        if (m < M && yo[r] != 0.f) atomicAdd(p.outlier_acc + static_cast<std::size_t>(m) * N + n_out, yo[r]);
      }
      __syncthreads();
    }
    // int32 partial sums (fragment layout) minus the outlier columns' int8 product
    const bool corrected = count > 0 && k_begin < k_end;  // (s_corr written by either branch)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int m = mt * 16 + g + (i >> 1) * 8;
          const int nloc = warp * 16 + nt * 8 + 2 * t + (i & 1);
          const int v = acc[mt][nt][i] - (corrected ? s_corr[m][nloc] : 0);
          if (m < M && n_base < N && v != 0) atomicAdd(C + static_cast<std::size_t>(m) * N + blockIdx.x * 64 + nloc, v);
        }

    // ---- the last split block of this 64-column slab finishes it ----
    __shared__ unsigned s_last;
    __threadfence();  // our partial sums are visible before the count says so
    __syncthreads();
    if (threadIdx.x == 0) s_last = atomicAdd(counters + blockIdx.x, 1u) == gridDim.y - 1 ? 1u : 0u;
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    const float ws = p.w_absmax[n_out] * detail::kInvCodeMaxSq;
    const float b = p.bias ? p.bias[n_out] : 0.f;
    T* Y = static_cast<T*>(p.Y);
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int m = rg + 2 * r;
      if (m < M) {
        const std::size_t o = static_cast<std::size_t>(m) * N + n_out;
        const int c = __ldcg(C + o);
        const float f = count > 0 ? __ldcg(p.outlier_acc + o) : 0.f;
        Y[o] = detail::Elem<T>::pack(static_cast<float>(c) * (p.row_absmax[m] * ws) + f + b, 0.f).x;
      }
    }
  }
}

/// Output modes of the tiled kernel.
enum class TiledOut {
  fused,  ///< the LLM.int8() epilogue, fp16/bf16 output
  i32,    ///< raw int32 sums (stored when gridDim.z == 1, red.global.add for split-K)
};

/// Shape of the tiled kernel: 2 × 4 warps, each owning a (16·MT) × (8·NT) tile; BK = 64 bytes, 4 stages.
/// Measured on H100 (bench/int8, 2026-11-22): see the dispatch table in lowbit/int8/linear.cuh.
/// @tparam MT m16 tiles per warp along M (BM = 32·MT)
/// @tparam NT n8 tiles per warp along N (BN = 32·NT)
template <int MT, int NT_>
struct TiledShape {
  static constexpr int kWarpsM = 2;                          ///< warps along M
  static constexpr int kWarpsN = 4;                          ///< warps along N
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;    ///< threads per block
  static constexpr int NT = NT_;                             ///< n8 tiles per warp
  static constexpr int BM = kWarpsM * MT * 16;               ///< block tile rows (M)
  static constexpr int BN = kWarpsN * NT * 8;                ///< block tile columns (N)
  static constexpr int BK = 64;                              ///< bytes of K per stage and row
  static constexpr int kStages = 4;                          ///< cp.async pipeline depth
  static constexpr int kChunksPerRow = BK / 16;              ///< 16-byte chunks per smem row
  static constexpr int kStageBytes = (BM + BN) * BK;         ///< shared memory per stage
  static constexpr int kSmemBytes = kStages * kStageBytes;   ///< dynamic shared memory of the kernel
  /// Blocks per SM the register budget is capped for (2 when the accumulators allow it).
  static constexpr int kMinBlocks = MT * NT <= 16 ? 2 : 1;
  /// Epilogue staging: A values for BM rows and outlier weights for BN columns, kOutlierChunk each.
  static constexpr int kPad = detail::kOutlierChunk + 1;  // odd stride: rows land in distinct banks
  static constexpr int kEpilogueBytes = (BM * kPad + BN * kPad) * 4;  ///< staging bytes (fit in kSmemBytes)
  static_assert(NT % 2 == 0, "B fragments are loaded two n8 tiles per ldmatrix.x4");
  static_assert(kEpilogueBytes <= kSmemBytes, "epilogue staging must fit in the pipeline's shared memory");
};

namespace detail {
/// Byte offset of 16-byte chunk `c` of row `r` in a 64-byte-row tile, XOR-swizzled so that the eight
/// rows read by one ldmatrix phase hit eight different 16-byte bank groups.
LOWBIT_DEVICE int swz64(int r, int c) { return r * 64 + ((c ^ ((r >> 1) & 3)) << 4); }
}  // namespace detail

/// Prepares the outlier columns for the tiled and wgmma paths, in one launch: the first `zero_blocks`
/// blocks zero the activation codes of the outlier columns (so the int8 GEMM sums the non-outlier
/// columns only; kRowsPerBlock rows each), the others gather the outlier columns' weights once into
/// `wslab` [count, N] fp32 (dequantized int8 or the fp16 side copy), so that no GEMM block gathers
/// W[n, c] itself (each value would otherwise be fetched once per M tile, one 32-byte sector each).
/// The slab is written only when the compacted list holds every column (count ≤ max_list).
/// The activation values of those columns go into `aslab` [count, M] fp32 the same way.
/// @tparam T __half or __nv_bfloat16 (activations)
/// @tparam kRowsPerBlock rows of A per zeroing block
/// @param Aq activation codes [M, K]
/// @param p epilogue inputs (list, mask, count, weights, side copy, activations)
/// @param wslab [max_list, N] fp32 out
/// @param aslab [max_list, M] fp32 out
/// @param M rows of A
/// @param N output features
/// @param K input features
/// @param zero_blocks ceil(M / kRowsPerBlock)
template <class T, int kRowsPerBlock = 32>
__global__ void __launch_bounds__(256) prepare_outliers_kernel(std::int8_t* Aq, Int8EpilogueParams p, float* wslab,
                                                                float* aslab, int M, int N, int K, int zero_blocks) {
  const int count = *p.outlier_count;
  if (static_cast<int>(blockIdx.x) >= zero_blocks) {
    if (count > p.max_list || wslab == nullptr || aslab == nullptr) return;
    const std::size_t nw = static_cast<std::size_t>(count) * N, total = nw + static_cast<std::size_t>(count) * M;
    const std::size_t stride = static_cast<std::size_t>(gridDim.x - zero_blocks) * blockDim.x;
    const T* Aval = static_cast<const T*>(p.A);
    for (std::size_t i = (blockIdx.x - zero_blocks) * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += stride) {
      if (i < nw) {
        const int j = static_cast<int>(i / N), n = static_cast<int>(i % N);
        const int c = p.outlier_list[j];
        wslab[i] = detail::outlier_weight(p, n, c, N, static_cast<float>(p.Wq[static_cast<std::size_t>(n) * K + c]));
      } else {
        const std::size_t ia = i - nw;
        const int j = static_cast<int>(ia / M), m = static_cast<int>(ia % M);
        aslab[ia] = detail::Elem<T>::to(Aval[static_cast<std::size_t>(m) * K + p.outlier_list[j]]);
      }
    }
    return;
  }
  __shared__ int s_cols[detail::kOutlierChunk];
  __shared__ int s_n;
  const int m0 = blockIdx.x * kRowsPerBlock;
  detail::OutlierCursor cur;
  for (int j0 = 0; j0 < count; j0 += detail::kOutlierChunk) {
    const int jn = detail::next_outlier_chunk(p, count, j0, K, cur, s_cols, &s_n);
    __syncthreads();
    for (int i = threadIdx.x; i < kRowsPerBlock * jn; i += blockDim.x) {
      const int m = m0 + i / jn;
      if (m < M) Aq[static_cast<std::size_t>(m) * K + s_cols[i % jn]] = 0;
    }
    __syncthreads();
  }
}

/// Tiled int8 GEMM with the LLM.int8() epilogue (or int32 output).
/// Grid: x = ceil(N / BN), y = ceil(M / BM), z = K splits (`k_per_split`, multiple of 64; z > 1 only
/// for TiledOut::i32). Dynamic shared memory TiledShape<MT, NT>::kSmemBytes.
/// In fused mode the outlier columns of A must already be zeroed (prepare_outliers_kernel); the
/// epilogue adds their high-precision product.
/// @tparam MT m16 tiles per warp along M (BM = 32·MT)
/// @tparam NT n8 tiles per warp along N (BN = 32·NT)
/// @tparam Out output mode
/// @tparam T __half or __nv_bfloat16 (fused mode)
/// @param A activation codes [M, K], K % 64 == 0
/// @param W weight codes [N, K]
/// @param C int32 [M, N] for TiledOut::i32 (zeroed first when split), unused otherwise
/// @param p epilogue inputs and the output (fused mode)
/// @param M rows of A
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64)
/// @param k_per_split K columns per split (multiple of 64)
template <int MT, int NT, TiledOut Out, class T>
__global__ void __launch_bounds__(TiledShape<MT, NT>::kThreads, TiledShape<MT, NT>::kMinBlocks) gemm_s8_tiled_kernel(
    const std::int8_t* __restrict__ A, const std::int8_t* __restrict__ W, int* __restrict__ C, Int8EpilogueParams p,
    int M, int N, int K, int k_per_split) {
  using S = TiledShape<MT, NT>;
  constexpr int BM = S::BM, BN = S::BN, BK = S::BK;
  extern __shared__ __align__(128) std::uint8_t smem[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int wm = warp / S::kWarpsN, wn = warp % S::kWarpsN;
  const int bm = blockIdx.y * BM, bn = blockIdx.x * BN;
  const int k_begin = blockIdx.z * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  const int ktiles = max(0, (k_end - k_begin) / BK);
  // (fused mode) read before the main loop: the epilogue's first dependent load is then off the tail
  const int count = Out == TiledOut::fused ? *p.outlier_count : 0;

  auto stage_a = [&](int s) { return smem + s * S::kStageBytes; };
  auto stage_b = [&](int s) { return smem + s * S::kStageBytes + BM * BK; };
  auto load_stage = [&](int s, int k0) {
    std::uint8_t* sa = stage_a(s);
    std::uint8_t* sb = stage_b(s);
#pragma unroll
    for (int i = tid; i < BM * S::kChunksPerRow; i += S::kThreads) {
      const int r = i / S::kChunksPerRow, c = i % S::kChunksPerRow;
      const bool ok = bm + r < M;
      const std::int8_t* src = A + static_cast<std::size_t>(ok ? bm + r : 0) * K + k0 + c * 16;
      detail::cp_async_16(sa + detail::swz64(r, c), src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = tid; i < BN * S::kChunksPerRow; i += S::kThreads) {
      const int r = i / S::kChunksPerRow, c = i % S::kChunksPerRow;
      const bool ok = bn + r < N;
      const std::int8_t* src = W + static_cast<std::size_t>(ok ? bn + r : 0) * K + k0 + c * 16;
      detail::cp_async_16(sb + detail::swz64(r, c), src, ok ? 16 : 0);
    }
  };

  int acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mt][nt][i] = 0;

#pragma unroll
  for (int s = 0; s < S::kStages - 1; ++s) {
    if (s < ktiles) load_stage(s, k_begin + s * BK);
    detail::cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    detail::cp_async_wait<S::kStages - 2>();
    __syncthreads();
    const int next = kt + S::kStages - 1;
    if (next < ktiles) load_stage(next % S::kStages, k_begin + next * BK);
    detail::cp_async_commit();
    const std::uint8_t* sa = stage_a(kt % S::kStages);
    const std::uint8_t* sb = stage_b(kt % S::kStages);
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks) {
      std::uint32_t af[MT][4];
      std::uint32_t bf[NT][2];
      const int mi = lane >> 3;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r = wm * MT * 16 + mt * 16 + (mi & 1) * 8 + (lane & 7);
        detail::ldmatrix_x4(af[mt], sa + detail::swz64(r, ks * 2 + (mi >> 1)));
      }
#pragma unroll
      for (int pr = 0; pr < NT / 2; ++pr) {
        const int r = wn * NT * 8 + pr * 16 + (mi >> 1) * 8 + (lane & 7);
        std::uint32_t q[4];
        detail::ldmatrix_x4(q, sb + detail::swz64(r, ks * 2 + (mi & 1)));
        bf[2 * pr][0] = q[0];
        bf[2 * pr][1] = q[1];
        bf[2 * pr + 1][0] = q[2];
        bf[2 * pr + 1][1] = q[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) detail::mma_s8_m16n8k32(acc[mt][nt], af[mt], bf[nt]);
    }
  }
  detail::cp_async_wait<0>();

  if constexpr (Out == TiledOut::i32) {
    const bool split = gridDim.z > 1;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int m = bm + wm * MT * 16 + mt * 16 + g + (i >> 1) * 8;
          const int n = bn + wn * NT * 8 + nt * 8 + 2 * t + (i & 1);
          if (m < M && n < N) {
            int* dst = C + static_cast<std::size_t>(m) * N + n;
            if (split) atomicAdd(dst, acc[mt][nt][i]);
            else *dst = acc[mt][nt][i];
          }
        }
  } else {
    // ---- fused LLM.int8() epilogue: dequantize in place, then add the outlier columns' product ----
    float y[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = min(bm + wm * MT * 16 + mt * 16 + g + h * 8, M - 1);
        const float rs = p.row_absmax[m] * detail::kInvCodeMaxSq;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int n = min(bn + wn * NT * 8 + nt * 8 + 2 * t + e, N - 1);
            y[mt][nt][2 * h + e] = static_cast<float>(acc[mt][nt][2 * h + e]) * (rs * p.w_absmax[n]) +
                                   (p.bias ? p.bias[n] : 0.f);
          }
      }
    if (count > 0) {
      __syncthreads();  // pipeline smem is reused for the outlier staging
      constexpr int J = detail::kOutlierChunk, P = S::kPad;
      float* s_a = reinterpret_cast<float*>(smem);  // (BM, P) activation values
      float* s_wo = s_a + BM * P;                    // (BN, P) outlier weight values
      __shared__ int s_cols[J];
      __shared__ int s_n;
      detail::OutlierCursor cur;
      for (int j0 = 0; j0 < count; j0 += J) {
        const int jn = detail::stage_outlier_chunk<T, BM, BN, J, P, S::kThreads>(s_a, s_wo, p, count, j0, cur, s_cols,
                                                                                 &s_n, bm, bn, M, N, K, tid);
        for (int j = 0; j < jn; ++j) {
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const float av = s_a[(wm * MT * 16 + mt * 16 + g + h * 8) * P + j];
#pragma unroll
              for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                  y[mt][nt][2 * h + e] =
                      fmaf(av, s_wo[(wn * NT * 8 + nt * 8 + 2 * t + e) * P + j], y[mt][nt][2 * h + e]);
            }
        }
        __syncthreads();
      }
    }
    T* Y = static_cast<T*>(p.Y);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = bm + wm * MT * 16 + mt * 16 + g + h * 8;
        if (m >= M) continue;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const int n = bn + wn * NT * 8 + nt * 8 + 2 * t;
          if (n >= N) continue;  // N % 64 == 0, so n + 1 < N as well
          *reinterpret_cast<typename detail::Elem<T>::pair*>(Y + static_cast<std::size_t>(m) * N + n) =
              detail::Elem<T>::pack(y[mt][nt][2 * h], y[mt][nt][2 * h + 1]);
        }
      }
  }
}

}  // namespace lowbit::kernels
