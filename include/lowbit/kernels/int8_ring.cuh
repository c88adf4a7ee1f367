/// @file int8_ring.cuh
/// @brief Small-M (M ≤ 16) LLM.int8() layer for sm_90: one, two or three kernels, no workspace clear, no
/// atomics; K split only inside thread-block clusters (partial sums through distributed shared memory).
///
/// - `act_quant_kernel<T, true>` (M·K small: every block reads the whole of A, a few KB to 128 KB from
///   L2) or `act_partial_kernel` + `act_quant_kernel<T, false>`: per-row absmax over the finite
///   sub-threshold entries, outlier-column flags, int8 codes with the outlier columns' codes set to 0
///   (so the GEMM sums exactly the non-outlier columns, no correction), the outlier bitmask and the
///   statistics — every value written by plain stores from the one block that owns it. (No column list:
///   its block-wide compaction in block 0 gated the ring's start by up to 10 µs at K = 28672.)
/// - `gemv_ring_kernel`: one CTA per 64 rows of W over the whole K (N/64 CTAs), or, where that leaves
///   SMs idle, a cluster of up to 8 CTAs per 64 rows, each over a consecutive run of K (the plan sizes
///   the ring so that every CTA is resident in one wave); four consumer warps (16 rows each, mma.sync
///   m16n8k32 with the k permutation of the gemv kernel) and one producer thread that streams W (a
///   64 × 192-byte TMA box per stage) and
///   the activation codes (a 16 × 192 box, rows ≥ M zero-filled) into an S-stage shared-memory ring with
///   2-D tensor TMA copies + mbarriers (one copy per operand and stage: per-row 1-D bulk copies cost
///   ~34 ns each per CTA on the H200 and made the ring 2.6x slower than the split-K kernel). The weight
///   stream starts before `griddepcontrol.wait` (it does not depend on the activation pass), so the ring
///   fills while the activation kernels run. The layer's first kernel (an activation kernel, or the fused
///   ring below) waits in turn for the kernel before the layer, so under programmatic dependent launch a
///   chain of layers overlaps each layer's launch with the previous one's tail. Outlier columns are
///   handled when their stage is resident: the weights come from the ring (no gather), the activation
///   values from a table that each CTA builds once from the mask of its own K range (its first 64
///   outlier columns; any beyond are read from A when their stage comes).
///   Every output is written once: by the thread that owns its accumulator, or (split K) by one thread
///   of the cluster, which sums the CTAs' partials in rank order.
/// - `gemv_ring_kernel<T, true>` (M <= 4): the same ring with the activation pass inside, and no
///   activation kernel. Its stages carry weights only; each CTA reads A from L2 for the row scales and the
///   outlier flags and quantizes its own K range into shared memory (see the kernel's comment).
#pragma once

#include <cuda.h>  // CUtensorMap (the encoder is fetched through the runtime's driver entry point)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cstdint>

#include "int8_gemm.cuh"

namespace lowbit::kernels {

#if defined(LOWBIT_INT8_TRACE)
/// Timeline probe of the small-M layer (compiled only with LOWBIT_INT8_TRACE; `bench/probe/trace_int8.cu`):
/// kernels record `%globaltimer` (ns) at fixed points, the earliest and the latest over the CTAs that
/// pass each point, into a device array the host resets and reads around one layer call.
namespace trace {
/// The recorded points.
enum Event : int {
  kAct1Start,           ///< act_partial_kernel: a block starts
  kAct1End,             ///< act_partial_kernel: a block ends
  kAct2Start,           ///< act_quant_kernel: a block starts
  kAct2End,             ///< act_quant_kernel: a block ends (block 0 after the statistics)
  kRingStart,           ///< gemv_ring_kernel: a CTA starts
  kRingProducerWaited,  ///< the producer passed griddepcontrol.wait (weights of the first stages requested)
  kRingConsumersReady,  ///< the consumers loaded the activation pass's results
  kRingFirstStage,      ///< the consumers found the first stage landed
  kRingLoopDone,        ///< the consumers finished their stages
  kRingEnd,             ///< a CTA ends
  kEvents
};
/// [2e]: earliest, [2e + 1]: latest time of event e (ns).
__device__ unsigned long long g_times[2 * kEvents];
/// Records event `e` now.
LOWBIT_DEVICE void mark(int e) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  atomicMin(&g_times[2 * e], t);
  atomicMax(&g_times[2 * e + 1], t);
}
}  // namespace trace
/// Records trace event `e` (a trace::Event name) where `cond` holds.
#define LOWBIT_INT8_MARK(cond, e)                                       \
  do {                                                                  \
    if (cond) ::lowbit::kernels::trace::mark(::lowbit::kernels::trace::e); \
  } while (0)
#else
/// Timeline probe point of the small-M layer: nothing unless LOWBIT_INT8_TRACE is defined.
#define LOWBIT_INT8_MARK(cond, e) \
  do {                            \
  } while (0)
#endif

namespace ring {

inline constexpr int kRows = 64;           ///< W rows per CTA (4 consumer warps × 16)
inline constexpr int kConsumers = 4;       ///< consumer warps
inline constexpr int kThreads = 32 * (kConsumers + 1);  ///< + one producer warp
inline constexpr int kMaxM = 16;           ///< rows of A (one m16 tile)
inline constexpr int kOTable = 64;         ///< outlier columns whose activation values a CTA tables
inline constexpr int kActCols = 256;       ///< columns per block of the activation kernels
inline constexpr int kActThreads = 256;    ///< threads of the activation kernels
inline constexpr int kMaxK = 65536;        ///< K bound (outlier bitmask copies in shared memory)
inline constexpr int kMaxStages = 16;      ///< ring depth bound
/// K bytes per stage = the TMA box's inner size (≤ 256; an odd multiple of 64, so the rows of a box are
/// 192 bytes apart and the fragment reads of rows g and g+1 fall into different bank halves).
inline constexpr int kSK = 192;

/// Rows of A up to which the activation pass can run inside the ring kernel (`gemv_ring_kernel<T, true>`:
/// every CTA reads all of A from L2, so the pass is cheap only for a few rows).
inline constexpr int kFusedMaxM = 4;
/// Bytes of the fused kernel's reduction scratch (row maxima, non-finite and outlier counts per warp).
inline constexpr int kFusedScratch = 128;

/// Shared memory of gemv_ring_kernel besides the ring and the fused kernel's code buffer and scratch
/// (alignment slack, mask, outlier table, barriers).
LOWBIT_HOST_DEVICE constexpr int fixed_smem(int K) {
  return 128 + ((K / 32) * 4 + 15) / 16 * 16 + kOTable * 4 + kOTable * kMaxM * 4 + 2 * kMaxStages * 8;
}
/// Bytes of one ring stage: the W box (64 rows), then (unless the activation pass is fused) the
/// activation box (16 rows), kSK bytes per row.
LOWBIT_HOST_DEVICE constexpr int stage_bytes(bool fused) { return (kRows + (fused ? 0 : kMaxM)) * kSK; }
/// Fused kernel: row stride of the shared-memory activation codes of a K range of `range` bytes (64 mod
/// 128, so that the fragment reads of rows g and g + 1 fall into different halves of the banks).
LOWBIT_HOST_DEVICE constexpr int code_stride(int range) { return (range + 127) / 128 * 128 + 64; }
/// Dynamic shared memory of gemv_ring_kernel: S stages, the fused kernel's code buffer (M rows of the
/// CTA's K range, `range` bytes) and reduction scratch, the fixed part.
LOWBIT_HOST_DEVICE constexpr int kernel_smem(int S, bool fused, int M, int range, int K) {
  return S * stage_bytes(fused) + (fused ? M * code_stride(range) + kFusedScratch : 0) + fixed_smem(K);
}

}  // namespace ring

namespace detail {

LOWBIT_DEVICE std::uint32_t smem_u32(const void* p) { return static_cast<std::uint32_t>(__cvta_generic_to_shared(p)); }

LOWBIT_DEVICE void mbar_init(std::uint64_t* bar, unsigned count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
#endif
}
LOWBIT_DEVICE void mbar_fence_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
LOWBIT_DEVICE void mbar_arrive_expect_tx(std::uint64_t* bar, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
#endif
}
LOWBIT_DEVICE void mbar_arrive(std::uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
#endif
}
LOWBIT_DEVICE void mbar_wait(std::uint64_t* bar, unsigned parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const std::uint32_t a = smem_u32(bar);
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(a), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
/// 2-D tensor TMA copy of the box at (c0 = inner coordinate, c1 = row) into shared memory (128-byte
/// aligned), completing the box's bytes on `bar`; out-of-bounds elements are zero-filled.
LOWBIT_DEVICE void tma_2d_g2s(std::uint32_t dst, const CUtensorMap* map, int c0, int c1, std::uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
#endif
}
/// Cluster-wide barrier (release / acquire): every thread of every CTA of the cluster, warps converged.
LOWBIT_DEVICE void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}
/// 16 bytes at this CTA's shared address `local`, read from the same offset in cluster CTA `rank`.
LOWBIT_DEVICE uint4 ld_cluster_16(std::uint32_t local, unsigned rank) {
  uint4 v = make_uint4(0, 0, 0, 0);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  std::uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local), "r"(rank));
  asm volatile("ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(remote)
               : "memory");
#endif
  return v;
}
LOWBIT_DEVICE void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/// Outlier bits of 8 consecutive values (bit i: value i).
template <class T>
LOWBIT_DEVICE std::uint32_t outlier_bits8(const uint4& x, float threshold) {
  const T* e = reinterpret_cast<const T*>(&x);
  std::uint32_t bits = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i)
    bits |= static_cast<std::uint32_t>(lowbit::int8::detail::is_outlier(detail::Elem<T>::to(e[i]), threshold)) << i;
  return bits;
}

/// The activation pass's look at 8 consecutive values `x` of one row: adds their non-finite count to `nf`,
/// raises `amax` to the largest in-scale magnitude among them, and returns their outlier bits.
template <class T>
LOWBIT_DEVICE std::uint32_t scan_vec8(const uint4& x, float threshold, int& nf, float& amax) {
  const T* e = reinterpret_cast<const T*>(&x);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float f = detail::Elem<T>::to(e[i]);
    nf += !isfinite(f);
    if (lowbit::int8::detail::in_row_scale(f, threshold)) amax = fmaxf(amax, fabsf(f));
  }
  return outlier_bits8<T>(x, threshold);
}

/// One pass over whole rows of A [M, K] by `nthreads` threads (this one is `tid`): the absmax of every
/// row over its in-scale entries, handed to `row_max(m, amax)` on every lane of each warp after a warp
/// reduction (the caller combines its warps); the outlier bits of 8 columns into byte v of `s_b8`,
/// owned by the thread that loads vector v of every row; returns the thread's count of non-finite
/// values. Rows go kR at a time, kU vectors of each per thread and round: kR·kU 16-byte loads in flight
/// (the L2 round trips, not the bytes, bound this pass).
template <class T, int kR, int kU, class RowMax>
LOWBIT_DEVICE int scan_act_rows(const T* A, int M, int K, int tid, int nthreads, float threshold, std::uint8_t* s_b8,
                                RowMax row_max) {
  const int nvec = K / 8;
  const uint4* A4 = reinterpret_cast<const uint4*>(A);
  int nf = 0;
  for (int m0 = 0; m0 < M; m0 += kR) {
    float amax[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) amax[r] = 0.f;
    for (int v0 = tid; v0 < nvec; v0 += kU * nthreads) {
      uint4 xs[kR][kU];
#pragma unroll
      for (int r = 0; r < kR; ++r)
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          const int v = v0 + u * nthreads;
          xs[r][u] = v < nvec && m0 + r < M ? __ldcg(A4 + static_cast<std::size_t>(m0 + r) * nvec + v)
                                            : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int v = v0 + u * nthreads;
        if (v >= nvec) continue;
        std::uint32_t bits = m0 == 0 ? 0u : s_b8[v];
#pragma unroll
        for (int r = 0; r < kR; ++r) {
          if (m0 + r >= M) continue;
          bits |= scan_vec8<T>(xs[r][u], threshold, nf, amax[r]);
        }
        s_b8[v] = static_cast<std::uint8_t>(bits);
      }
    }
#pragma unroll
    for (int r = 0; r < kR; ++r) {
#pragma unroll
      for (int off = 16; off; off >>= 1) amax[r] = fmaxf(amax[r], __shfl_xor_sync(0xffffffffu, amax[r], off));
      if (m0 + r < M) row_max(m0 + r, amax[r]);
    }
  }
  return nf;
}

/// One warp (all 32 lanes call it): the first `cap` outlier columns of mask words [w_lo, w_hi) in
/// ascending order into `cols` (a warp prefix sum of the words' popcounts, 32 words per round), -1 in
/// the entries past them.
LOWBIT_DEVICE void list_range_outliers(const std::uint32_t* s_mask, int w_lo, int w_hi, int* cols, int cap, int lane) {
  int listed = 0;
  for (int wb = w_lo; wb < w_hi && listed < cap; wb += 32) {
    const int w = wb + lane;
    std::uint32_t word = w < w_hi ? s_mask[w] : 0u;
    const int c = __popc(word), incl = warp_inclusive_sum(c, lane);
    int j = listed + incl - c;
    while (word) {
      if (j < cap) cols[j] = w * 32 + __ffs(static_cast<int>(word)) - 1;
      word &= word - 1;
      ++j;
    }
    listed += __shfl_sync(0xffffffffu, incl, 31);
  }
  for (int j = min(listed, cap) + lane; j < cap; j += 32) cols[j] = -1;
}

}  // namespace detail

/// Where the activation kernels put their results (all device pointers into the workspace).
struct RingActOut {
  std::int8_t* Aq = nullptr;       ///< [M, K] codes, 0 in the outlier columns
  float* row_absmax = nullptr;     ///< [M]
  std::uint32_t* mask = nullptr;   ///< [ceil(K/32)] outlier bitmask
  int max_list = 0;                ///< the layer's outlier-list capacity (for the overflow flag)
  int* count = nullptr;            ///< statistics: outlier columns found
  int* overflow = nullptr;         ///< statistics: 1 when count > max_list
  unsigned long long* nonfinite = nullptr;  ///< statistics: NaN / inf activations
  float* partmax = nullptr;        ///< [blocks, kMaxM] per-block row absmax (two-kernel mode)
  int* part_nf = nullptr;          ///< [blocks] per-block non-finite counts (two-kernel mode)
};

/// What the fused kernel (`gemv_ring_kernel<T, true>`) needs in place of the activation kernels' results.
struct RingFusedAct {
  float threshold = 0.f;                    ///< outlier threshold (<= 0: no decomposition)
  int max_list = 0;                         ///< the layer's outlier-list capacity (for the overflow flag)
  int* count = nullptr;                     ///< statistics: outlier columns found (written by CTA (0, 0))
  int* overflow = nullptr;                  ///< statistics: 1 when count > max_list
  unsigned long long* nonfinite = nullptr;  ///< statistics: NaN / inf activations
};

/// First of the two activation kernels for larger M·K: block b owns columns [256b, 256b + 256) of every
/// row; it writes those columns' mask words, its per-row absmax and its non-finite count (plain stores).
template <class T>
__global__ void __launch_bounds__(ring::kActThreads) act_partial_kernel(const T* __restrict__ A, int M, int K,
                                                                          float threshold, RingActOut o) {
  __shared__ std::uint32_t s_bits[ring::kActCols / 32];
  __shared__ int s_nf[ring::kActThreads / 32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  LOWBIT_INT8_MARK(threadIdx.x == 0, kAct1Start);
  detail::pdl_launch_dependents();  // the quantization kernel (and through it the GEMM) may launch
  if (threadIdx.x < ring::kActCols / 32) s_bits[threadIdx.x] = 0u;
  // the layer's first kernel: under PDL the kernel before it (which may write A, or be the previous layer
  // still reading this workspace) has finished from here on
  detail::pdl_wait();
  __syncthreads();
  const int nvec = K / 8, v = blockIdx.x * (ring::kActCols / 8) + lane;
  int nf = 0;
  for (int m = warp; m < M; m += ring::kActThreads / 32) {  // one warp per row: 32 vectors of 8 columns
    float amax = 0.f;
    if (v < nvec) {
      const uint4 x = __ldg(reinterpret_cast<const uint4*>(A + static_cast<std::size_t>(m) * K) + v);
      const std::uint32_t bits = detail::scan_vec8<T>(x, threshold, nf, amax);
      if (bits) atomicOr(&s_bits[lane / 4], bits << (8 * (lane % 4)));
    }
#pragma unroll
    for (int off = 16; off; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if (lane == 0) o.partmax[blockIdx.x * ring::kMaxM + m] = amax;
  }
#pragma unroll
  for (int off = 16; off; off >>= 1) nf += __shfl_xor_sync(0xffffffffu, nf, off);
  if (lane == 0) s_nf[warp] = nf;
  __syncthreads();
  const int words = (K + 31) / 32, w = blockIdx.x * (ring::kActCols / 32) + static_cast<int>(threadIdx.x);
  if (threadIdx.x < ring::kActCols / 32 && w < words) o.mask[w] = s_bits[threadIdx.x];
  if (threadIdx.x == 0) {
    int t = 0;
    for (int i = 0; i < ring::kActThreads / 32; ++i) t += s_nf[i];
    o.part_nf[blockIdx.x] = t;
  }
  LOWBIT_INT8_MARK(threadIdx.x == 0, kAct1End);
}

/// Second activation kernel (kSelf = false: after act_partial_kernel) or the only one (kSelf = true:
/// every block reads the whole of A itself; used when M·K is small). Block b quantizes columns
/// [256b, 256b + 256) of every row with the final row scales, zeroing the outlier columns' codes;
/// block 0 also writes the row scales and the statistics (and, kSelf, the mask).
template <class T, bool kSelf>
__global__ void __launch_bounds__(ring::kActThreads) act_quant_kernel(const T* __restrict__ A, int M, int K,
                                                                        float threshold, RingActOut o, int nparts) {
  constexpr int kT = ring::kActThreads, kW = kT / 32;
  __shared__ float s_red[kW][ring::kMaxM];
  __shared__ float s_amax[ring::kMaxM];
  __shared__ __align__(16) std::uint8_t s_b8[kSelf ? ring::kMaxK / 8 : ring::kActCols / 8];  // bits of 8 columns
  __shared__ unsigned long long s_nf;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int nvec = K / 8, words = (K + 31) / 32;
  const int vb = blockIdx.x * (ring::kActCols / 8);  // first vector of this block's columns
  LOWBIT_INT8_MARK(threadIdx.x == 0, kAct2Start);
  detail::pdl_launch_dependents();  // the GEMM may start streaming weights
  if (threadIdx.x == 0) s_nf = 0ull;
  __syncthreads();
  if constexpr (kSelf) {
    detail::pdl_wait();  // the layer's first kernel: the kernel before it has finished (A, workspace)
    // whole rows, 4 at a time: absmax per row, outlier flags per 8 columns (thread-owned slots of s_b8)
    int nf = detail::scan_act_rows<T, 4, 4>(A, M, K, threadIdx.x, kT, threshold, s_b8, [&](int m, float a) {
      if (lane == 0) s_red[warp][m] = a;
    });
#pragma unroll
    for (int off = 16; off; off >>= 1) nf += __shfl_xor_sync(0xffffffffu, nf, off);
    if (lane == 0 && nf) atomicAdd(&s_nf, static_cast<unsigned long long>(nf));
    __syncthreads();
    if (threadIdx.x < M) {
      float a = 0.f;
      for (int w = 0; w < kW; ++w) a = fmaxf(a, s_red[w][threadIdx.x]);
      s_amax[threadIdx.x] = a;
    }
    __syncthreads();
  } else {
    detail::pdl_wait();  // partial results of act_partial_kernel
    for (int m = warp; m < M; m += kW) {
      float a = 0.f;
      for (int b = lane; b < nparts; b += 32) a = fmaxf(a, __ldcg(o.partmax + b * ring::kMaxM + m));
#pragma unroll
      for (int off = 16; off; off >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, off));
      if (lane == 0) s_amax[m] = a;
    }
    if (threadIdx.x < ring::kActCols / 32) {
      const int w = blockIdx.x * (ring::kActCols / 32) + static_cast<int>(threadIdx.x);
      reinterpret_cast<std::uint32_t*>(s_b8)[threadIdx.x] = w < words ? __ldcg(o.mask + w) : 0u;
    }
    __syncthreads();
  }
  // ---- codes of this block's columns (outlier columns: 0) ----
  for (int i = threadIdx.x; i < M * (ring::kActCols / 8); i += kT) {
    const int m = i / (ring::kActCols / 8), vl = i % (ring::kActCols / 8), v = vb + vl;
    if (v >= nvec) continue;
    const uint4 x = __ldg(reinterpret_cast<const uint4*>(A + static_cast<std::size_t>(m) * K) + v);
    const T* e = reinterpret_cast<const T*>(&x);
    const std::uint32_t ob = kSelf ? s_b8[v] : s_b8[vl];
    const float inv = lowbit::int8::detail::inv_scale(s_amax[m]);
    std::uint32_t wv[2] = {0u, 0u};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float f = detail::Elem<T>::to(e[j]);
      const bool keep = !((ob >> j) & 1u) && lowbit::int8::detail::in_row_scale(f, threshold);
      const std::int8_t c = keep ? lowbit::int8::detail::quantize_code(f, inv) : 0;
      wv[j / 4] |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(c)) << (8 * (j % 4));
    }
    *reinterpret_cast<uint2*>(o.Aq + static_cast<std::size_t>(m) * K + v * 8) = make_uint2(wv[0], wv[1]);
  }
  LOWBIT_INT8_MARK(threadIdx.x == 0 && blockIdx.x != 0, kAct2End);
  if (blockIdx.x != 0) return;
  // ---- block 0: row scales, mask (kSelf), statistics. Its end gates the ring's griddepcontrol.wait, so
  // it does one round of independent loads: the outlier count as a popcount of the mask words, the
  // non-finite count as a sum over the first kernel's blocks (the ring lists its own range's outlier
  // columns from the mask) ----
  __shared__ int s_cnt[kW];
  __shared__ unsigned long long s_nfw[kW];
  if (threadIdx.x < M) o.row_absmax[threadIdx.x] = s_amax[threadIdx.x];
  int count = 0;
  unsigned long long nf_part = 0;
  for (int w = threadIdx.x; w < words; w += kT) {
    const std::uint32_t b = kSelf ? reinterpret_cast<const std::uint32_t*>(s_b8)[w] : __ldcg(o.mask + w);
    if constexpr (kSelf) o.mask[w] = b;
    count += __popc(b);
  }
  if constexpr (!kSelf)
    for (int b = threadIdx.x; b < nparts; b += kT) nf_part += static_cast<unsigned long long>(__ldcg(o.part_nf + b));
#pragma unroll
  for (int off = 16; off; off >>= 1) {
    count += __shfl_xor_sync(0xffffffffu, count, off);
    nf_part += __shfl_xor_sync(0xffffffffu, nf_part, off);
  }
  if (lane == 0) {
    s_cnt[warp] = count;
    s_nfw[warp] = nf_part;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    unsigned long long nf_total = 0;
    for (int w = 0; w < kW; ++w) {
      total += s_cnt[w];
      nf_total += s_nfw[w];
    }
    *o.count = total;
    *o.overflow = total > o.max_list ? 1 : 0;
    *o.nonfinite = kSelf ? s_nf : nf_total;
  }
  LOWBIT_INT8_MARK(threadIdx.x == 0, kAct2End);
}

/// The small-M GEMM with the LLM.int8() epilogue (see the file comment).
/// Grid: (N / 64, splits) CTAs, ring::kThreads threads, dynamic shared memory
/// ring::kernel_smem(S, kFused, M, range, K), range = the K bytes of one CTA's stages (at most K). With
/// splits > 1 the grid must be launched in clusters of (1, splits, 1): the CTAs of a cluster share 64 rows
/// of W and take consecutive runs of the K stages, and each CTA finalises an interleaved share of the
/// outputs from the partial sums of all of them (distributed shared memory, summed in rank order:
/// deterministic, no workspace, no atomics).
///
/// kFused (M <= ring::kFusedMaxM): no activation kernels. The producer streams weight-only stages from
/// the start; meanwhile the consumers read A from L2 (row absmax over all of K, outlier flags, counts),
/// quantize the CTA's own K range into a shared-memory code buffer that the MMA loop reads instead of an
/// activation box, and table the range's outlier columns; CTA (0, 0) writes the statistics. It is the
/// layer's first kernel: under programmatic dependent launch its weight stream (and the consumers' loads
/// of weight scales and biases) starts while the kernel before it runs; everything else (A, Y, the
/// statistics) comes after the consumers' `griddepcontrol.wait`, and the producer touches nothing but
/// the weight codes.
/// @tparam T __half or __nv_bfloat16 (activations and output)
/// @tparam kFused the activation pass inside the kernel (see above); false: after the activation kernels
/// @param tmW tensor map of the weight codes [N, K] int8, box {kSK, 64}
/// @param tmA tensor map of the activation codes [M, K] int8 (outlier columns 0), box {kSK, 16} (unused
/// when kFused)
/// @param p epilogue inputs: A, row_absmax, w_absmax, bias, side copy, outlier_mask, Y (kFused: A,
/// w_absmax, bias, side copy, Y)
/// @param fa kFused: threshold and statistics outputs (unused otherwise)
/// @param M rows (1..16; kFused 1..ring::kFusedMaxM)
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64, ≤ ring::kMaxK)
/// @param S stages (2..ring::kMaxStages)
template <class T, bool kFused = false>
__global__ void __launch_bounds__(ring::kThreads, 4) gemv_ring_kernel(const __grid_constant__ CUtensorMap tmW,
                                                                       const __grid_constant__ CUtensorMap tmA,
                                                                       Int8EpilogueParams p, RingFusedAct fa, int M,
                                                                       int N, int K, int S) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) std::uint8_t smem_raw[];
  // TMA boxes need 128-byte aligned destinations
  std::uint8_t* smem = smem_raw + ((128u - (detail::smem_u32(smem_raw) & 127u)) & 127u);
  constexpr int sk = ring::kSK;
  constexpr int stage = ring::stage_bytes(kFused);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = blockIdx.x * ring::kRows;
  // this CTA's stages: a consecutive run of the K stages (one run per CTA of the cluster)
  const int splits = static_cast<int>(gridDim.y), rank = static_cast<int>(blockIdx.y);
  const int nst_all = (K + sk - 1) / sk, per = (nst_all + splits - 1) / splits;
  const int it0 = min(nst_all, rank * per), nst = min(nst_all, it0 + per) - it0;
  // K range [k_lo, k_hi) of this CTA's stages; kFused: its codes, rows cs bytes apart, after the ring
  const int k_lo = it0 * sk, k_hi = min(K, (it0 + nst) * sk), cs = ring::code_stride(per * sk < K ? per * sk : K);
  std::uint8_t* s_code = smem + S * stage;
  std::uint32_t* s_mask = reinterpret_cast<std::uint32_t*>(s_code + (kFused ? M * cs : 0));
  int* s_ocol = reinterpret_cast<int*>(reinterpret_cast<std::uint8_t*>(s_mask) + ((K / 32) * 4 + 15) / 16 * 16);
  float* s_oa = reinterpret_cast<float*>(s_ocol + ring::kOTable);  // [kOTable][kMaxM]
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(s_oa + ring::kOTable * ring::kMaxM);
  std::uint64_t* empty = full + ring::kMaxStages;
  float* s_red = reinterpret_cast<float*>(empty + ring::kMaxStages);  // kFused: [kConsumers][kFusedMaxM]
  int* s_cnt = reinterpret_cast<int*>(s_red + ring::kConsumers * ring::kFusedMaxM);  // [2][kConsumers]
  static_assert((ring::kConsumers * ring::kFusedMaxM + 2 * ring::kConsumers) * 4 <= ring::kFusedScratch,
                "fused scratch");
  LOWBIT_INT8_MARK(threadIdx.x == 0, kRingStart);
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      detail::mbar_init(full + s, 1);
      detail::mbar_init(empty + s, ring::kConsumers);  // one arrival per consumer warp
    }
    detail::mbar_fence_init();
  }
  __syncthreads();
  detail::pdl_launch_dependents();

  const int g = lane >> 2, t = lane & 3;
  const int ctid = threadIdx.x;  // consumers: 0..127
  int acc[2][4];
  float yo[2][4];
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      acc[nt][i] = 0;
      yo[nt][i] = 0.f;
    }
  // The consumer thread's per-column and per-row values, loaded before the main loop (the outlier
  // columns' weights and the epilogue then wait on no global load): weight scales and biases of its 4
  // columns (n0 + 16·warp + 8·nt + 2t + e), row scales of its rows g and g + 8.
  float wsc[2][2] = {}, bia[2][2] = {}, rsv[2] = {};
  // Y for this consumer thread's slot from its (summed) accumulators
  auto store = [&](const int (&ac)[2][4], const float (&yv)[2][4]) {
    T* Y = static_cast<T*>(p.Y);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = g + 8 * h;
      if (m >= M) continue;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const int n = n0 + warp * 16 + nt * 8 + 2 * t;
        float y[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float ws = wsc[nt][e] * detail::kInvCodeMaxSq;
          y[e] = static_cast<float>(ac[nt][2 * h + e]) * (rsv[h] * ws) + yv[nt][2 * h + e] + bia[nt][e];
        }
        *reinterpret_cast<typename detail::Elem<T>::pair*>(Y + static_cast<std::size_t>(m) * N + n) =
            detail::Elem<T>::pack(y[0], y[1]);
      }
    }
  };

  if (warp == ring::kConsumers) {  // ---------------- producer warp (one thread) ----------------
    if (lane == 0) {
      const std::uint32_t base = detail::smem_u32(smem);
      auto issue_w = [&](int li) {  // expects the whole stage (both boxes, zero-filled parts included)
        const int s = li % S;
        detail::mbar_arrive_expect_tx(full + s, static_cast<unsigned>(stage));
        detail::tma_2d_g2s(base + s * stage, &tmW, (it0 + li) * sk, n0, full + s);
      };
      auto issue_a = [&](int li) {
        if constexpr (!kFused) {
          const int s = li % S;
          detail::tma_2d_g2s(base + s * stage + ring::kRows * sk, &tmA, (it0 + li) * sk, 0, full + s);
        }
      };
      const int pro = min(S, nst);
      for (int li = 0; li < pro; ++li) issue_w(li);  // weights do not depend on the activation kernels
      if constexpr (!kFused) {
        detail::pdl_wait();
        LOWBIT_INT8_MARK(true, kRingProducerWaited);
        for (int li = 0; li < pro; ++li) issue_a(li);
      }
      for (int li = S; li < nst; ++li) {
        detail::mbar_wait(empty + li % S, static_cast<unsigned>((li / S - 1) & 1));
        issue_w(li);
        issue_a(li);
      }
    }
    __syncwarp();
  } else {  // ---------------- consumer warps ----------------
    // weight-side values do not depend on the activation pass: loaded before griddepcontrol.wait
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int n = n0 + warp * 16 + nt * 8 + 2 * t + e;
        wsc[nt][e] = p.w_absmax[n];
        bia[nt][e] = p.bias ? p.bias[n] : 0.f;
      }
    const T* Aval = static_cast<const T*>(p.A);
    detail::pdl_wait();
    constexpr int kCT = 32 * ring::kConsumers;  // consumer threads
    if constexpr (kFused) {
      // (1) all of A, 4 vectors of a row per thread and round (L2 only: every CTA reads it): row absmax
      // over the in-scale entries, outlier bits of 8 columns per mask byte (vector v's byte is owned by
      // the thread that loads v, for every row), non-finite count.
      const int nvec = K / 8;
      const uint4* A4 = reinterpret_cast<const uint4*>(Aval);
      std::uint8_t* s_b8 = reinterpret_cast<std::uint8_t*>(s_mask);
      int nf = detail::scan_act_rows<T, 1, 4>(Aval, M, K, ctid, kCT, fa.threshold, s_b8, [&](int m, float a) {
        if (lane == 0) s_red[warp * ring::kFusedMaxM + m] = a;
      });
#pragma unroll
      for (int off = 16; off; off >>= 1) nf += __shfl_xor_sync(0xffffffffu, nf, off);
      if (lane == 0) s_cnt[warp] = nf;
      detail::named_barrier_sync(1, kCT);
      // (2) row scales; codes of this CTA's K range into s_code (outlier columns and non-finite values 0)
      const int v_lo = k_lo / 8, nv = (k_hi - k_lo) / 8;
#pragma unroll
      for (int m = 0; m < ring::kFusedMaxM; ++m) {
        if (m >= M) continue;
        float a = 0.f;
#pragma unroll
        for (int w = 0; w < ring::kConsumers; ++w) a = fmaxf(a, s_red[w * ring::kFusedMaxM + m]);
        if (m == g) rsv[0] = a;
        const float inv = lowbit::int8::detail::inv_scale(a);
        for (int vl = ctid; vl < nv; vl += kCT) {
          const int v = v_lo + vl;
          const uint4 x = __ldcg(A4 + static_cast<std::size_t>(m) * nvec + v);
          const T* e = reinterpret_cast<const T*>(&x);
          const std::uint32_t ob = s_b8[v];
          std::uint32_t wv[2] = {0u, 0u};
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const float f = detail::Elem<T>::to(e[j]);
            const bool keep = !((ob >> j) & 1u) && lowbit::int8::detail::in_row_scale(f, fa.threshold);
            const std::int8_t c = keep ? lowbit::int8::detail::quantize_code(f, inv) : 0;
            wv[j / 4] |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(c)) << (8 * (j % 4));
          }
          *reinterpret_cast<uint2*>(s_code + m * cs + vl * 8) = make_uint2(wv[0], wv[1]);
        }
      }
      // CTA (0, 0): the layer's statistics over all of K
      if (blockIdx.x == 0 && blockIdx.y == 0) {
        int oc = 0;
        for (int w = ctid; w < K / 32; w += kCT) oc += __popc(s_mask[w]);
#pragma unroll
        for (int off = 16; off; off >>= 1) oc += __shfl_xor_sync(0xffffffffu, oc, off);
        if (lane == 0) s_cnt[ring::kConsumers + warp] = oc;
        detail::named_barrier_sync(1, kCT);
        if (ctid == 0) {
          int count = 0;
          unsigned long long nft = 0;
          for (int w = 0; w < ring::kConsumers; ++w) {
            count += s_cnt[ring::kConsumers + w];
            nft += static_cast<unsigned long long>(s_cnt[w]);
          }
          *fa.count = count;
          *fa.overflow = count > fa.max_list ? 1 : 0;
          *fa.nonfinite = nft;
        }
      }
    } else {
      // the activation kernels' results in one round of independent loads: the mask words of this CTA's
      // K range and the thread's row scales (a loop of dependent loads cost an L2 round trip each, and the
      // loads queue behind the ring fill)
      constexpr int kMW = (ring::kMaxK / 32 + kCT - 1) / kCT;  // mask words per thread (bound)
      const int w_lo = k_lo / 32, w_hi = k_hi / 32;            // K % 64 == 0
      std::uint32_t mw[kMW];
#pragma unroll
      for (int r = 0; r < kMW; ++r) {
        const int w = w_lo + ctid + r * kCT;
        mw[r] = w < w_hi ? __ldcg(p.outlier_mask + w) : 0u;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) rsv[h] = g + 8 * h < M ? __ldcg(p.row_absmax + g + 8 * h) : 0.f;
#pragma unroll
      for (int r = 0; r < kMW; ++r) {
        const int w = w_lo + ctid + r * kCT;
        if (w < w_hi) s_mask[w] = mw[r];
      }
    }
    // the first kOTable outlier columns of this CTA's K range (warp 0, from the mask), then their
    // activation values (rows < M: the loop reads no others) in one round of loads
    detail::named_barrier_sync(1, kCT);
    if (warp == 0) detail::list_range_outliers(s_mask, k_lo / 32, k_hi / 32, s_ocol, ring::kOTable, lane);
    detail::named_barrier_sync(1, kCT);
    constexpr int kJ = ring::kOTable * ring::kMaxM / kCT;  // table entries per thread (bound)
    static_assert(kJ * kCT == ring::kOTable * ring::kMaxM, "table entries per thread");
    float av[kJ];
#pragma unroll
    for (int r = 0; r < kJ; ++r) {
      const int i = ctid + r * kCT, j = i / M, m = i % M;
      const int col = i < ring::kOTable * M ? s_ocol[j] : -1;
      av[r] = col >= 0 ? detail::Elem<T>::to(Aval[static_cast<std::size_t>(m) * K + col]) : 0.f;
    }
#pragma unroll
    for (int r = 0; r < kJ; ++r) {
      const int i = ctid + r * kCT;
      if (i < ring::kOTable * M) s_oa[(i / M) * ring::kMaxM + i % M] = av[r];
    }
    detail::named_barrier_sync(1, kCT);
    LOWBIT_INT8_MARK(ctid == 0, kRingConsumersReady);

    const bool a0ok = g < M, a1ok = !kFused && g + 8 < M;
    const int wrow0 = (warp * 16 + g) * sk + 16 * t, wrow1 = wrow0 + 8 * sk;
    // activation fragments: the stage's activation box, or (kFused) the code buffer at the stage's offset
    const int arow0 = kFused ? g * cs + 16 * t : ring::kRows * sk + g * sk + 16 * t, arow1 = arow0 + 8 * sk;
    for (int li = 0; li < nst; ++li) {
      const int s = li % S, k0 = (it0 + li) * sk, bytes = min(sk, K - k0);
      const std::uint8_t* st = smem + s * stage;
      const std::uint8_t* sa = kFused ? s_code + (k0 - k_lo) : st;
      detail::mbar_wait(full + s, static_cast<unsigned>((li / S) & 1));
      LOWBIT_INT8_MARK(ctid == 0 && li == 0, kRingFirstStage);
      for (int c = 0; c < bytes; c += 64) {
        const uint4 w0 = *reinterpret_cast<const uint4*>(st + wrow0 + c);
        const uint4 w1 = *reinterpret_cast<const uint4*>(st + wrow1 + c);
        const uint4 x0 = a0ok ? *reinterpret_cast<const uint4*>(sa + arow0 + c) : make_uint4(0, 0, 0, 0);
        const uint4 x1 = a1ok ? *reinterpret_cast<const uint4*>(sa + arow1 + c) : make_uint4(0, 0, 0, 0);
        const std::uint32_t* a0 = reinterpret_cast<const std::uint32_t*>(&x0);
        const std::uint32_t* a1 = reinterpret_cast<const std::uint32_t*>(&x1);
        const std::uint32_t* b0 = reinterpret_cast<const std::uint32_t*>(&w0);
        const std::uint32_t* b1 = reinterpret_cast<const std::uint32_t*>(&w1);
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // two k32 steps per 64-byte chunk: registers (2h, 2h+1)
          const std::uint32_t af[4] = {a0[2 * h], a1[2 * h], a0[2 * h + 1], a1[2 * h + 1]};
          const std::uint32_t bf0[2] = {b0[2 * h], b0[2 * h + 1]};
          const std::uint32_t bf1[2] = {b1[2 * h], b1[2 * h + 1]};
          detail::mma_s8_m16n8k32(acc[0], af, bf0);
          detail::mma_s8_m16n8k32(acc[1], af, bf1);
        }
      }
      // ---- outlier columns of this stage: weights from the ring, activation values from the table ----
      const int w0 = k0 / 32, nw = bytes / 32;
      std::uint32_t mw = lane < nw ? s_mask[w0 + lane] : 0u;
      std::uint32_t any = __ballot_sync(0xffffffffu, mw != 0u);
      while (any) {  // warp-uniform
        const int src = __ffs(static_cast<int>(any)) - 1;
        any &= any - 1;
        std::uint32_t word = __shfl_sync(0xffffffffu, mw, src);
        while (word) {
          const int c = (w0 + src) * 32 + __ffs(static_cast<int>(word)) - 1;
          word &= word - 1;
          const std::uint32_t hit0 = __ballot_sync(0xffffffffu, s_ocol[lane] == c);
          const std::uint32_t hit1 = __ballot_sync(0xffffffffu, s_ocol[32 + lane] == c);
          const int j = hit0 ? __ffs(static_cast<int>(hit0)) - 1 : hit1 ? 31 + __ffs(static_cast<int>(hit1)) : -1;
          float av[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int m = g + 8 * h;
            av[h] = m >= M ? 0.f
                    : j >= 0 ? s_oa[j * ring::kMaxM + m]
                             : detail::Elem<T>::to(Aval[static_cast<std::size_t>(m) * K + c]);
          }
#pragma unroll
          for (int nt = 0; nt < 2; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int nl = warp * 16 + nt * 8 + 2 * t + e;
              const float wq = static_cast<float>(static_cast<std::int8_t>(st[nl * sk + (c - k0)]));
              const float sc = wsc[nt][e];
              const float wo = detail::outlier_weight_with(p, n0 + nl, c, N, wq, [sc](int) { return sc; });
#pragma unroll
              for (int h = 0; h < 2; ++h) yo[nt][2 * h + e] = fmaf(av[h], wo, yo[nt][2 * h + e]);
            }
        }
      }
      __syncwarp();  // this warp's reads of the stage are done: one arrival for the warp (128 per-thread
      if (lane == 0) detail::mbar_arrive(empty + s);  // arrivals per stage were 128 shared-memory atomics)
    }
    LOWBIT_INT8_MARK(ctid == 0, kRingLoopDone);
    if (splits == 1) {  // every output written once by the thread owning it
      store(acc, yo);
    } else {  // partial sums to this CTA's (consumed) ring: 16 words per consumer thread
      detail::named_barrier_sync(1, 32 * ring::kConsumers);  // every warp is done reading the ring
      uint4* part = reinterpret_cast<uint4*>(smem) + 4 * ctid;
      part[0] = make_uint4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]);
      part[1] = make_uint4(acc[1][0], acc[1][1], acc[1][2], acc[1][3]);
      part[2] = make_uint4(__float_as_uint(yo[0][0]), __float_as_uint(yo[0][1]), __float_as_uint(yo[0][2]),
                           __float_as_uint(yo[0][3]));
      part[3] = make_uint4(__float_as_uint(yo[1][0]), __float_as_uint(yo[1][1]), __float_as_uint(yo[1][2]),
                           __float_as_uint(yo[1][3]));
    }
  }
  LOWBIT_INT8_MARK(threadIdx.x == 0 && splits == 1, kRingEnd);
  if (splits == 1) return;
  // ---- split K: consumer thread ctid of rank ctid % splits sums the partials of its slot over the
  // cluster's CTAs (rank order) and writes its outputs; the second barrier keeps every CTA's shared
  // memory alive until all reads are done ----
  detail::cluster_barrier();
  if (warp < ring::kConsumers && ctid % splits == rank) {
    int ac[2][4] = {};
    float yv[2][4] = {};
    const std::uint32_t local = detail::smem_u32(smem) + 64u * static_cast<unsigned>(ctid);
    for (int q = 0; q < splits; ++q) {
      uint4 v[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) v[i] = detail::ld_cluster_16(local + 16u * i, static_cast<unsigned>(q));
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const std::uint32_t* iv = reinterpret_cast<const std::uint32_t*>(&v[nt]);
        const std::uint32_t* fv = reinterpret_cast<const std::uint32_t*>(&v[2 + nt]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          ac[nt][i] += static_cast<int>(iv[i]);
          yv[nt][i] += __uint_as_float(fv[i]);
        }
      }
    }
    store(ac, yv);
  }
  detail::cluster_barrier();
  LOWBIT_INT8_MARK(threadIdx.x == 0, kRingEnd);
#else
  (void)tmW, (void)tmA, (void)p, (void)fa, (void)M, (void)N, (void)K, (void)S;
  __trap();  // cp.async.bulk and mbarrier transactions need sm_90
#endif
}

}  // namespace lowbit::kernels
