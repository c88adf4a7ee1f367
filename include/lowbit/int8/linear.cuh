/// @file linear.cuh
/// @brief LLM.int8() linear layer on the GPU: one fused pass over the activations (row absmax over
/// sub-threshold entries, outlier-column flags, int8 codes, device-side compaction of the outlier
/// columns), then the int8 tensor-core GEMM with the decomposition fused into its epilogue.
/// No host synchronization anywhere; the host reference is `lowbit/int8/llm_int8.hpp`.
///
/// Example:
/// @code
///   lowbit::int8::DeviceWeight w{d_codes, d_scales, N, K};
///   std::size_t bytes = lowbit::int8::linear_workspace_size(M, N, K);
///   // ... cudaMalloc(&ws, bytes) once ...
///   auto st = lowbit::int8::linear_forward(d_A, M, w, d_bias, d_Y, ws, bytes, {}, stream);
///   // later (after a sync), the outlier count / overflow / non-finite count:
///   //   cudaMemcpy(&stats, lowbit::int8::workspace_stats(ws), sizeof stats, cudaMemcpyDeviceToHost);
/// @endcode
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "../kernels/device_info.cuh"
#include "../kernels/int8_gemm.cuh"
#include "../kernels/int8_ring.cuh"
#include "../kernels/int8_stream.cuh"
#include "../kernels/int8_wgmma.cuh"
#include "../kernels/tensor_map.cuh"
#include "../numeric.hpp"
#include "llm_int8.hpp"

namespace lowbit::int8 {

/// Per-call statistics the kernels leave at the start of the workspace (read them after the stream
/// reaches the end of the call; never needed by the call itself).
struct Int8Stats {
  int outlier_count;              ///< outlier columns found (all of them, even beyond max_outliers)
  int overflow;                   ///< 1 when outlier_count > max_outliers (list paths: the slower mask walk was
                                  ///< used; the ring path keeps no list and only reports it)
  unsigned int blocks_done;       ///< internal: last-block detection of the activation pass
  int reserved;                   ///< padding
  unsigned long long nonfinite;   ///< NaN / ±inf activations seen (the output is then meaningless)
};

/// Device views of a quantized weight (see Int8Weight and OutlierSideCopy for the host forms).
struct DeviceWeight {
  const std::int8_t* codes = nullptr;  ///< [N, K] int8, 16-byte aligned
  const float* scales = nullptr;       ///< [N] absmax per row
  int N = 0;                           ///< output features (multiple of 64)
  int K = 0;                           ///< input features (multiple of 64)
  const half_t* side_values = nullptr; ///< optional fp16 side copy [D, N] (OutlierSideCopy::values)
  const int* side_index = nullptr;     ///< [K]: row of side_values for column k or -1; null = no side copy
};

/// Run-time options.
struct LinearOptions {
  float threshold = kDefaultThreshold;  ///< outlier threshold (<= 0: plain W8A8, no decomposition)
  /// capacity of the compacted outlier list; more columns fall back to a mask walk (the small-M ring path
  /// lists each CTA's own columns from the mask and uses it only for Int8Stats::overflow)
  int max_outliers = 256;
  /// Testing/tuning knob: -1 picks by shape; 0 small-M split-K kernel (M <= 32 only), 1 tiled split-K +
  /// epilogue kernel, 2 tiled with the fused epilogue, 3 wgmma split-K + epilogue kernel, 4 wgmma with the
  /// fused epilogue (3 and 4 only when built with LOWBIT_INT8_WGMMA for sm_90a; see wgmma_available()),
  /// 5 small-M ring kernel (M <= 16, sm_90; see ring_available()), 6 small-M stream kernel (M <= 16; see
  /// stream_available()).
  int force_path = -1;
  /// Testing/tuning knob: tiled-kernel tile (m16 tiles, n8 tiles per warp); 0 picks kTiledPolicies.
  /// Instantiated tiles: (2,4), (4,4), (2,8), (4,8).
  int tile_mt = 0;  ///< m16 tiles per warp (0: by policy)
  int tile_nt = 0;  ///< n8 tiles per warp (0: by policy)
  /// Programmatic dependent launch: the activation pass launches while the workspace is being cleared,
  /// and on the small-M path the GEMM starts streaming weights while the activation pass runs. On the
  /// small-M ring path (sm_90) the layer's first kernel is PDL-launched too: its weight stream starts
  /// while the kernel before the layer finishes (in a chain of layers, the previous layer's tail), and it
  /// waits for that kernel (`griddepcontrol.wait`) before it reads A or touches Y or the workspace. The
  /// contract is gemm's (kernels::PdlMode): the weight (codes, scales, bias, side copy) must not be
  /// written by the kernel launched immediately before the layer in the same stream (weights prepared
  /// at load time, followed by a synchronization, are unaffected); A, Y and the workspace have no such
  /// restriction. false: every kernel launches plainly.
  bool pdl = true;
  /// Small-M path: take the outlier columns' weights from the GEMM's own weight stream (false: gather
  /// them after the main loop). Testing / tuning knob; both give identical results.
  bool capture_outliers = true;
  /// wgmma paths (M >= 64 on sm_90a): the warp-specialized kernel fed by tensor TMA (false: the cp.async
  /// kernel). Testing / tuning knob; both give identical results.
  bool wgmma_tma = true;
  /// wgmma TMA kernel, blocks launched: 0 = one per SM at most, each looping over output tiles (the next
  /// tile's loads overlap the current tile's epilogue); -1 = one per tile; n > 0 = at most n. Tuning knob;
  /// identical results. H100 (session 7, 8 outliers, three runs): the persistent grid is 2-17 % faster at
  /// M = 1024 and 4096 on 8192^2 and 8192 x 28672 and at M = 1024 on 28672 x 8192, 1-8 % slower at
  /// M = 4096 on 28672 x 8192.
  int wgmma_max_blocks = 0;
  /// Small-M ring and stream paths: CTAs that share one 64-row slab of W, each streaming a consecutive
  /// run of K (one thread-block cluster per slab, partial sums combined through distributed shared
  /// memory). 0 picks by shape (detail::ring_splits_for, detail::stream_plan); n in 1..8 asks for n, and
  /// gets fewer where n would leave a CTA without K to stream. Tuning knob; results are the same up to the
  /// fp32 summation order of the outlier columns' product (the int8 sums are exact).
  int ring_splits = 0;
  /// Small-M ring and stream paths, activation pass: 0 picks by shape; 1 one activation kernel (every
  /// block reads all of A); 2 two activation kernels; 3 inside the GEMM kernel where it fits (M <= 4: each
  /// CTA reads A from L2 while its weight stream fills; no activation kernel and no dependent-launch hop;
  /// with force_path 5 or 6 a shape where it does not fit is refused, otherwise the ring's plan falls
  /// back). By shape, where the ring path runs: the stream kernel with the pass inside it where that plan
  /// keeps one 16-warp CTA per SM (detail::stream_fused_default; e.g. 8192^2 at M <= 3); else the ring,
  /// with the pass inside it where M·K <= 8192 (detail::kRingFusedMaxElems), at most 2 ring CTAs share
  /// an SM (kRingFusedMaxCtasPerSm) and that keeps at least as many ring stages as the separate kernels,
  /// else one kernel while M·K <= 16384 (detail::ring_self_act), else two. Tuning knob;
  /// identical results up to the fp32 summation order of the outlier columns' product.
  int ring_act = 0;
};

/// True when this build has the sm_90a wgmma int8 kernels (`LOWBIT_INT8_WGMMA` defined; every CUDA
/// architecture of the build must then be sm_90a, or the kernel traps) and the current device is
/// compute capability 9.0.
inline bool wgmma_available() {
#if defined(LOWBIT_INT8_WGMMA)
  static const bool ok = kernels::detail::current_compute_capability() == 90;
  return ok;
#else
  return false;
#endif
}

namespace detail {
using kernels::detail::tensor_map_encoder;  // kernels/tensor_map.cuh
}  // namespace detail

/// True when the small-M ring kernels (lowbit/kernels/int8_ring.cuh: tensor TMA + mbarrier, sm_90) are
/// compiled for sm_90 or newer in this build, the driver offers the tensor-map encoder and the current
/// device is compute capability 9.0+.
inline bool ring_available() {
  static const bool ok = [] {
    if (kernels::detail::current_compute_capability() < 90 || detail::tensor_map_encoder() == nullptr) return false;
    cudaFuncAttributes a{};
    if (cudaFuncGetAttributes(&a, kernels::gemv_ring_kernel<__half>) != cudaSuccess) return false;
    return a.ptxVersion >= 90 && a.binaryVersion >= 90;
  }();
  return ok;
}

/// True when the small-M stream kernel (lowbit/kernels/int8_stream.cuh: per-warp cp.async rings, sm_80+)
/// is compiled for the current device, compute capability 8.0+. K split over a cluster (LinearOptions::
/// ring_splits > 1) needs 9.0+ as well: below it the stream plan keeps one CTA per slab.
inline bool stream_available() {
  static const bool ok = [] {
    if (kernels::detail::current_compute_capability() < 80) return false;
    cudaFuncAttributes a{};
    return cudaFuncGetAttributes(&a, kernels::gemv_stream_kernel<__half, 1>) == cudaSuccess && a.binaryVersion >= 80;
  }();
  return ok;
}

/// `side_index` for DeviceWeight: -1 everywhere except the side copy's dimensions.
inline std::vector<int> make_side_index(const OutlierSideCopy& side, int K) {
  std::vector<int> idx(static_cast<std::size_t>(K), -1);
  for (std::size_t j = 0; j < side.dims.size(); ++j) {
    LOWBIT_CHECK(side.dims[j] >= 0 && side.dims[j] < K, "int8::make_side_index: dimension ", side.dims[j],
                 " outside [0, ", K, ")");
    idx[side.dims[j]] = static_cast<int>(j);
  }
  return idx;
}

namespace detail {

/// Storage type → CUDA type.
template <class T>
struct CudaType;
template <>
struct CudaType<half_t> {
  using type = __half;
};
template <>
struct CudaType<bfloat16_t> {
  using type = __nv_bfloat16;
};

inline constexpr int kActThreads = 256;       ///< threads of the activation pass (one row per block)
/// Threads of the activation pass when there are fewer rows than kActWideMaxRowsPerSm·SMs: a few rows
/// leave most SMs idle, so each block takes a whole long row in one round of loads (a K = 28672 fp16
/// row is 56 KB: 3.5 rounds of 256 threads × kActBatch × 16 bytes, one round of 1024).
inline constexpr int kActThreadsWide = 1024;
inline constexpr int kActWideMaxRowsPerSm = 1;  ///< (see kActThreadsWide)
inline constexpr int kVec = 8;                ///< fp16/bf16 values per 16-byte load (scan_vec8's count)
inline constexpr int kActBatch = 4;           ///< 16-byte loads per thread in flight in the activation pass
inline constexpr std::size_t kWsAlign = 256;  ///< alignment of every workspace region
inline constexpr int kKAlign = 64;            ///< K and N must be multiples of this (GEMM k-chunk)

/// Max functor for the block reduction (CUB's own moved between CCCL versions).
struct MaxOp {
  LOWBIT_DEVICE float operator()(float a, float b) const { return fmaxf(a, b); }
};

/// The fused activation pass, one block per row of A.
/// @tparam T __half or __nv_bfloat16
/// @tparam kThreads threads per block
/// @param A [M, K] activations (16-byte aligned, K % 8 == 0)
/// @param Aq [M, K] int8 codes out
/// @param row_absmax [M] row scales out
/// @param mask [ceil(K/32)] outlier bitmask (zeroed before the launch)
/// @param list [max_list] compacted outlier columns out (ascending)
/// @param stats zeroed before the launch
template <class T, int kThreads>
__global__ void __launch_bounds__(kThreads) activation_pass_kernel(const T* __restrict__ A, int M, int K,
                                                                       float threshold, std::int8_t* __restrict__ Aq,
                                                                       float* __restrict__ row_absmax,
                                                                       std::uint32_t* mask, int* list, int max_list,
                                                                       Int8Stats* stats) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  using ReduceI = cub::BlockReduce<int, kThreads>;
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ union {
    typename Reduce::TempStorage r;
    typename ReduceI::TempStorage ri;
    typename Scan::TempStorage s;
  } tmp;
  __shared__ float s_amax;
  __shared__ unsigned int s_ticket;
  using E = kernels::detail::Elem<T>;
  kernels::detail::pdl_launch_dependents();  // the GEMM may start streaming weights meanwhile
  // Launched programmatically after the workspace clear: the first pass only reads A (complete before
  // the clear started), so it overlaps the clear; pdl_wait() comes before the first workspace access.
  const int row = blockIdx.x;
  const int nvec = K / kVec;
  const uint4* a = reinterpret_cast<const uint4*>(A + static_cast<std::size_t>(row) * K);

  float amax = 0.f;
  int nonfinite = 0;
  for (int v0 = threadIdx.x; v0 < nvec; v0 += kActBatch * kThreads) {
    uint4 xs[kActBatch];  // all loads of the batch in flight before the first use
#pragma unroll
    for (int u = 0; u < kActBatch; ++u) {
      const int v = v0 + u * kThreads;
      xs[u] = v < nvec ? a[v] : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kActBatch; ++u)  // 8 values each (kVec); the outlier bits are the second loop's
      (void)kernels::detail::scan_vec8<T>(xs[u], threshold, nonfinite, amax);
  }
  amax = Reduce(tmp.r).Reduce(amax, MaxOp{});
  if (threadIdx.x == 0) s_amax = amax;
  __syncthreads();
  nonfinite = ReduceI(tmp.ri).Sum(nonfinite);
  kernels::detail::pdl_wait();  // the workspace (mask, stats) is cleared from here on
  if (threadIdx.x == 0) {
    row_absmax[row] = s_amax;
    if (nonfinite) atomicAdd(&stats->nonfinite, static_cast<unsigned long long>(nonfinite));
  }
  const float inv = lowbit::int8::detail::inv_scale(s_amax);
  std::int8_t* q = Aq + static_cast<std::size_t>(row) * K;
  for (int v = threadIdx.x; v < nvec; v += kThreads) {
    const uint4 x = a[v];  // second read of the row: hits the cache
    const T* e = reinterpret_cast<const T*>(&x);
    std::uint32_t w[2] = {0u, 0u};
    std::uint32_t bits = 0;  // outlier flags of these kVec columns
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const float f = E::to(e[i]);
      bits |= static_cast<std::uint32_t>(lowbit::int8::detail::is_outlier(f, threshold)) << i;
      const std::int8_t c =
          lowbit::int8::detail::in_row_scale(f, threshold) ? lowbit::int8::detail::quantize_code(f, inv) : 0;
      w[i / 4] |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(c)) << (8 * (i % 4));
    }
    *reinterpret_cast<uint2*>(q + v * kVec) = make_uint2(w[0], w[1]);
    if (bits) {  // skip the atomic when other rows already flagged these columns
      std::uint32_t* word = mask + (v * kVec) / 32;
      const std::uint32_t b = bits << ((v * kVec) % 32);
      if (b & ~__ldcg(word)) atomicOr(word, b);
    }
  }

  // ---- the last block to finish compacts the outlier bitmask into an ascending list ----
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_ticket = atomicAdd(&stats->blocks_done, 1u);
  __syncthreads();
  if (s_ticket != gridDim.x - 1) return;
  __threadfence();
  const int words = (K + 31) / 32;
  const int per = (words + kThreads - 1) / kThreads;
  const int w0 = min(words, static_cast<int>(threadIdx.x) * per), w1 = min(words, w0 + per);
  int mine = 0;
  for (int w = w0; w < w1; ++w) mine += __popc(__ldcg(mask + w));
  int offset = 0, total = 0;
  Scan(tmp.s).ExclusiveSum(mine, offset, total);
  for (int w = w0; w < w1; ++w) {
    std::uint32_t b = __ldcg(mask + w);
    while (b) {
      const int c = w * 32 + __ffs(static_cast<int>(b)) - 1;
      b &= b - 1;
      if (offset < max_list) list[offset] = c;
      ++offset;
    }
  }
  if (threadIdx.x == 0) {
    stats->outlier_count = total;
    stats->overflow = total > max_list ? 1 : 0;
  }
}

/// Clears the first `n16` 16-byte words of the workspace (stats, mask, counters, accumulators) and lets
/// the activation pass launch meanwhile (it waits for this kernel before touching the workspace).
__global__ void __launch_bounds__(256) zero_workspace_kernel(uint4* p, std::size_t n16) {
  kernels::detail::pdl_launch_dependents();
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n16;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    p[i] = make_uint4(0, 0, 0, 0);
}

/// Which kernels a call uses (a pure function of the shape, the SM count and the kernels' occupancy).
struct Plan {
  enum Path { gemv, tiled_split, tiled_fused, wgmma_split, wgmma_fused, ring, stream } path = gemv;
  int mt = 1;           ///< m16 tiles per warp
  int nt = 4;           ///< n8 tiles per warp (tiled paths)
  int splits = 1;       ///< K splits
  int k_per_split = 0;  ///< K columns per split (multiple of 64)
  int sk = 0;           ///< ring path: K bytes per stage
  int stages = 0;       ///< ring path: stages
  bool self_act = false;  ///< ring path: one activation kernel (every block reads all of A; small M·K)
  bool fused_act = false;  ///< ring path: the activation pass inside the ring kernel (no activation kernels)
  int warps = 0;        ///< stream path: warps per CTA
  int kt_per_warp = 0;  ///< stream path: 64-byte K tiles per warp
  /// wgmma paths: the warp-specialized kernel fed by tensor TMA (gemm_s8_wgmma_ws_kernel; needs the
  /// tensor-map encoder and, when split, K slices of whole 128-byte k-tiles); false: the cp.async kernel.
  bool tma = true;
  /// wgmma TMA kernel, blocks launched (as LinearOptions::wgmma_max_blocks). linear_forward takes the
  /// option, the int32 GEMM (gemm_s8_s32) sets 0: at most one block per SM, each looping over tiles.
  int max_blocks = -1;
  [[nodiscard]] bool needs_c32() const {
    return path != tiled_fused && path != wgmma_fused && path != ring && path != stream;
  }
  /// The small-M paths that run the ring's activation kernels (act_partial_kernel, act_quant_kernel).
  [[nodiscard]] bool ring_activation_pass() const { return path == ring || path == stream; }
  [[nodiscard]] bool wgmma() const { return path == wgmma_split || path == wgmma_fused; }
};

/// Smallest K slice worth a split.
inline constexpr int kMinSplitK = 256;

/// Resident blocks per SM of the small-M kernel (host query, cached; no device synchronization).
template <int MT>
int gemv_blocks_per_sm() {
  static const int n = [] {
    int b = 0;
    // the fused instantiation (what the layer runs); its register budget is fixed by __launch_bounds__
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, kernels::gemv_s8_kernel<MT, 2, __half>, 128, 0) !=
            cudaSuccess ||
        b <= 0)
      b = 4;
    return b;
  }();
  return n;
}

/// Tiled-kernel choice by M: tile (MT, NT). Tuning data: bench/int8 on H100 (see bench/int8/NOTES.md).
struct TiledPolicy {
  int max_m;  ///< use this tile while M <= max_m
  int mt, nt;
};
// H100, 2026-11-22 (layer µs, 8 outlier columns, 2x4 / 4x4 / 2x8 / 4x8): M=64 8192²: 57.9 / 59.2 / 66.7 / 61.1;
// M=256 8192x28672: 548 / 309 / 362 / 330; M=1024 8192²: 446 / 310 / 337 / 339; M=4096 8192²: 1757 / 1195 /
// 1398 / 1307 (4x8 wins by 2-7 % on the two larger shapes at M=4096, loses 9 % here: kept 4x4).
inline constexpr TiledPolicy kTiledPolicies[] = {{64, 2, 4}, {1 << 30, 4, 4}};
/// Smallest M for which the auto plan picks the wgmma kernel (when available); measured in bench/int8.
/// H100 (bench/int8, 2026-11-22), core µs at M = 64, wgmma (split-K where the tiles do not fill the
/// SMs) vs the best mma.sync tile: 8192²: 36.7 vs 60.6; 8192×28672: 94.3 vs 131.7; 28672×8192: 97.6 vs 203.3.
inline constexpr int kWgmmaMinM = 64;
/// The wgmma plan splits K (int32 partials, then the epilogue kernel) only where that beats the fused
/// kernel with idle SMs: fewer tiles than SMs and a long K (>= this), at most 64 rows (half-empty tiles:
/// the partials are small), or at most an eighth of the SMs busy. H100 (bench/int8, session 7, LLM.int8()
/// layer with 8 outlier columns, split vs fused, both forced in the same run, µs): N = 8192, K = 8192:
/// M = 64 52.6 vs 59.1, M = 128 66.8 vs 63.7, M = 256 79.7 vs 65.3; N = 8192, K = 28672: M = 64 117.4 vs
/// 154.4, M = 128 130.8 vs 159.4, M = 256 156.6 vs 168.6 (before this rule every M with fewer tiles than
/// SMs was split).
inline constexpr int kWgmmaSplitMinK = 16384;
/// Rows up to which a split always pays when the tiles leave SMs idle (see kWgmmaSplitMinK).
inline constexpr int kWgmmaSplitMaxM = 64;

/// Shared memory a streaming multiprocessor offers (228 KB on sm_90) and the per-block opt-in limit.
inline constexpr int kSmemPerSm = static_cast<int>(kernels::detail::kSm90SmemPerSm),
                     kSmemPerBlock = static_cast<int>(kernels::detail::kSm90SmemPerCta);
/// Shared memory left on each SM for one activation block running beside the ring CTAs (its 8 KB mask).
inline constexpr int kRingActReserve = 12288;
/// Largest M·K for which the separate activation pass of the ring and stream paths is one kernel: every
/// block of it reads all of A (four rows a round), so its cost grows with M·K. H100, ring layer with 8
/// outlier columns, one kernel minus two, us, in the runs since the ring's first kernel is PDL-launched
/// (sessions 18-21; bench/int8/NOTES.md, "Session 21"): M·K = 8192 (8192 x 28672, M = 1) -0.7 and -2.9;
/// 16384 (M = 2, K = 8192) -0.3 to +0.4, a tie; 24576 (M = 3) +0.4 and +2.4; 28672 (M = 1, K = 28672)
/// +2.4 to +3.1 (eleven runs, sessions 15-20); 32768 (M = 4) +0.6 to +3.2; 57344 (M = 2, K = 28672) +4.2
/// to +4.5. (Sessions 9-13 had set 65536, when one kernel still won at 8192^2 M = 4 by 0.5-1.1 us.)
inline constexpr long long kRingSelfMaxElems = 16384;
/// Whether the separate activation pass of the ring and stream paths is one kernel (else two).
inline bool ring_self_act(int M, int K) { return static_cast<long long>(M) * K <= kRingSelfMaxElems; }

/// Most CTAs of the ring path that share one slab (a portable thread-block cluster size).
inline constexpr int kRingMaxSplits = 8;
/// Fewest K stages per CTA for which the ring path splits a slab by default (3 KB of K: the splits are
/// measured on K = 8192 and 28672 only; shorter runs stay on the split-K gemv path).
inline constexpr int kRingMinSplitStages = 16;
/// CTAs per SM the ring path aims for when it splits slabs. H100 (bench/int8, session 9): at 4 CTAs per
/// SM only 124 of the 128 clusters of 8192^2 were resident (a second wave: 8 outliers, M = 1, layer 46.9
/// us against 32.7 us with 2 CTAs per slab and 36.8 us for the split-K gemv layer).
inline constexpr int kRingCtasPerSm = 2;
/// Most ring CTAs one SM holds: gemv_ring_kernel's __launch_bounds__ (160 threads, 4 blocks) caps its
/// registers at 96, so a fifth CTA would not fit beside four (a second wave), whatever the shared memory.
inline constexpr int kRingMaxCtasPerSm = 4;

/// Ring depth: the most stages (at most ring::kMaxStages; < 2 means it does not fit) with which
/// `per_sm` CTAs of the ring kernel are resident on one SM together, plus, unless the activation pass
/// is fused, one activation block (kRingActReserve). `k_per_split`: K bytes of one CTA's stages.
inline int ring_depth(bool fused, int M, int K, long long per_sm, int k_per_split) {
  namespace R = kernels::ring;
  if (per_sm < 1 || per_sm > kRingMaxCtasPerSm) return 0;
  const long long reserve = fused ? 0 : kRingActReserve;
  constexpr long long kReserved = static_cast<long long>(kernels::detail::kSmemReservedPerCta);
  const long long cap = std::min<long long>(kSmemPerBlock, (kSmemPerSm - reserve) / per_sm - kReserved);
  const long long S = (cap - R::kernel_smem(0, fused, M, std::min(k_per_split, K), K)) / R::stage_bytes(fused);
  return static_cast<int>(std::max(0LL, std::min<long long>(S, R::kMaxStages)));
}

/// Largest M·K for which the ring runs the activation pass inside its kernel by default. H100 (session
/// 13, bench/int8, layer µs fused vs separate, same run, 0 / 8 / 64 outlier columns): M = 1, K = 8192:
/// N = 8192 32.2 / 33.3 / 40.5 vs 33.3 / 33.8 / 40.1, N = 28672 88.7 / 89.4 / 96.3 vs 91.0 / 91.4 / 97.2;
/// but M = 1, K = 28672: 96.7 / 97.2 / 99.6 vs 95.7 / 95.4 / 95.5, and M = 4: 43.6-53.2 vs 35.0-41.8 at
/// 8192^2, 133.5-137.5 vs 93.8-97.0 at K = 28672. Every CTA reads all of A from L2 while the ring fill
/// keeps the memory system busy, so each round of its loads waits behind the weight stream.
inline constexpr long long kRingFusedMaxElems = 8192;
/// Most ring CTAs per SM with which the ring runs the activation pass inside its kernel by default: each
/// CTA reads all of A, and with more CTAs per SM those reads multiply. H100, layer us fused vs separate
/// (one activation kernel), 8192 x 28672 at M = 1 (448 slabs: 4 CTAs per SM), 0 / 8 / 64 outlier columns:
/// session 18 87.6 / 88.2 / 93.1 vs 84.4 / 85.2 / 90.6, its second run 90.0 / 90.5 / 94.8 vs 87.4 / 87.9 /
/// 93.5, session 21 87.7 / 88.5 / 93.0 vs 84.5 / 85.2 / 90.6 (session 17, before the ring's first kernel
/// was PDL-launched: 89.0 / 89.5 / 97.8 vs 90.7 / 91.3 / 98.2); 8192^2 at M = 1 (2 CTAs per SM) still
/// favours the pass inside, session 18 30.3 / 30.6 vs 31.0 / 31.4 (0 / 8 columns).
inline constexpr long long kRingFusedMaxCtasPerSm = 2;

/// Whether the ring runs the activation pass inside its kernel, given the depths of the two modes and
/// LinearOptions::ring_act: forced (3) where the fused ring fits; by default where M·K is at most
/// kRingFusedMaxElems, the SM holds at most kRingFusedMaxCtasPerSm of its CTAs (`per_sm`) and the fused
/// ring keeps at least as many stages (as many weight bytes in flight or more: its stages are the weight
/// box only).
inline bool ring_fuses(int M, int K, long long per_sm, int depth_fused, int depth_separate, int ring_act) {
  if (M > kernels::ring::kFusedMaxM || depth_fused < 2) return false;
  if (ring_act == 3) return true;
  return ring_act == 0 && static_cast<long long>(M) * K <= kRingFusedMaxElems && per_sm <= kRingFusedMaxCtasPerSm &&
         depth_fused >= depth_separate;
}

/// Ring path: CTAs per 64-row slab for `slabs` slabs of `nst` K stages on `sms` SMs. `forced` > 0 asks
/// for that many (at most kRingMaxSplits); 0 picks enough for kRingCtasPerSm CTAs per SM when the slabs
/// alone leave SMs idle, keeping kRingMinSplitStages stages per CTA. Either way the result is the
/// smallest count with the same stages per CTA, so that no CTA is left without stages.
inline int ring_splits_for(long long slabs, int nst, int sms, int forced = 0) {
  int splits = forced;
  if (splits <= 0) {
    splits = 1;
    if (slabs < sms)
      splits = static_cast<int>(std::min<long long>(kRingMaxSplits, kRingCtasPerSm * sms / std::max(1LL, slabs)));
    splits = std::min(splits, nst / kRingMinSplitStages);
  }
  splits = std::max(1, std::min({splits, kRingMaxSplits, nst}));
  const int per = (nst + splits - 1) / splits;
  return (nst + per - 1) / per;
}

/// The ring plan's arithmetic (no device query; ring_config checks availability first): K splits per
/// slab, the activation mode and the ring depth. Returns false when the ring does not fit.
inline bool ring_plan(int M, int N, int K, int sms, Plan& p, int forced_splits = 0, int ring_act = 0) {
  const long long slabs = N / 64;
  const int nst = (K + kernels::ring::kSK - 1) / kernels::ring::kSK;
  const int splits = ring_splits_for(slabs, nst, sms, forced_splits);
  const long long ctas = slabs * splits, per_sm = (ctas + sms - 1) / sms;
  const int k_per_split = (nst + splits - 1) / splits * kernels::ring::kSK;
  const int separate = ring_depth(false, M, K, per_sm, k_per_split);
  const int fused = M <= kernels::ring::kFusedMaxM ? ring_depth(true, M, K, per_sm, k_per_split) : 0;
  const bool fuse = ring_fuses(M, K, per_sm, fused, separate, ring_act);
  const int S = fuse ? fused : separate;
  if (S < 2) return false;
  p.path = Plan::ring;
  p.sk = kernels::ring::kSK;
  p.stages = S;
  p.splits = splits;
  p.k_per_split = k_per_split;
  p.fused_act = fuse;
  p.self_act = ring_act == 1 || (ring_act != 2 && ring_self_act(M, K));
  return true;
}

/// Ring configuration for M <= 16: K splits per 64-row slab (ring_splits_for), then the ring depth such
/// that all CTAs are resident at once. Returns false when it does not fit (or the kernels are not
/// available).
inline bool ring_config(int M, int N, int K, int sms, Plan& p, int forced_splits = 0, int ring_act = 0) {
  if (M > kernels::ring::kMaxM || K > kernels::ring::kMaxK || !ring_available()) return false;
  return ring_plan(M, N, K, sms, p, forced_splits, ring_act);
}

/// Stream path: CTAs per SM up to which a CTA takes as many warps as the SM's share allows; beyond it
/// (more slabs than 4 per SM) the grid runs in several waves of 4 CTAs per SM.
inline constexpr int kStreamMaxCtasPerSm = 4;
/// Most warps an SM runs of the stream kernel: its __launch_bounds__ (512 threads, 1 block) caps a thread
/// at 128 registers, so 16 warps fill the register file.
inline constexpr int kStreamWarpsPerSm = kernels::stream8::kMaxWarps;

/// The stream plan's arithmetic (no device query; stream_config checks availability first). One CTA per
/// 64-row slab over all of K while the slabs occupy at least half the SMs (their warps still keep enough
/// tiles in flight to stream at the device's rate); else K split over a cluster of up to 8 CTAs per slab
/// so that the CTAs cover the SMs (`clusters`: the device has them; `forced` > 0 asks for that many).
/// Then as many warps per CTA as the SM's shared memory (less one activation block, kRingActReserve)
/// and registers hold with every CTA resident, at most one per 64-byte K tile.
/// `fused` (M <= stream8::kFusedMaxM): the activation pass inside the kernel, whose CTAs then share the SM
/// with no activation block, and whose shared memory adds each warp's codes and the outlier bits of K.
inline bool stream_plan(int M, int N, int K, int sms, bool clusters, Plan& p, int forced = 0, bool fused = false) {
  namespace S8 = kernels::stream8;
  if (M < 1 || M > (fused ? S8::kFusedMaxM : S8::kMaxM)) return false;
  const long long slabs = N / 64;
  const int KT = K / 64;
  int splits = forced > 0 ? forced : slabs * 2 >= sms ? 1 : static_cast<int>((sms + slabs - 1) / slabs);
  splits = clusters ? std::max(1, std::min({splits, S8::kMaxSplits, KT})) : 1;
  const int kps = (KT + splits - 1) / splits;  // tiles per CTA; no CTA left without tiles:
  splits = (KT + kps - 1) / kps;
  const long long per_sm = std::min<long long>(kStreamMaxCtasPerSm, (slabs * splits + sms - 1) / sms);
  constexpr long long kReserved = static_cast<long long>(kernels::detail::kSmemReservedPerCta);
  const long long cap =
      std::min<long long>(kSmemPerBlock, (kSmemPerSm - (fused ? 0 : kRingActReserve)) / per_sm - kReserved);
  auto smem = [&](int w) {
    return fused ? S8::fused_kernel_smem(M, w, (kps + w - 1) / w, K) : S8::kernel_smem(M, w);
  };
  int warps = static_cast<int>(std::min<long long>({S8::kMaxWarps, kStreamWarpsPerSm / per_sm, kps}));
  while (warps > 1 && smem(warps) > cap) --warps;
  if (warps < 1 || smem(warps) > cap) return false;
  const int ktw = (kps + warps - 1) / warps;
  p.path = Plan::stream;
  p.fused_act = fused;
  p.splits = splits;
  p.k_per_split = kps * 64;
  p.kt_per_warp = ktw;
  p.warps = (kps + ktw - 1) / ktw;  // no warp without tiles
  p.self_act = ring_self_act(M, K);
  return true;
}

/// Whether a fused stream plan `q` (stream_plan with `fused`) replaces the ring as the default: it keeps one
/// CTA of kMaxWarps warps per SM, so that its 512 threads read A for the activation pass while the first
/// weight tiles land. H100, session 20, layer us against the ring (8 outlier columns, interleaved replays;
/// bench/int8/NOTES.md, "Session 20"): 16-warp plans win, 8192^2 M = 1 / 2 / 3 28.0 / 30.0 / 32.0 against
/// 31.4 / 32.0 / 32.8 and 28672 x 8192 M = 1 90.0 against 92.7; plans with fewer warps lose, 8192^2 M = 4
/// (15 warps) 37.8 against 33.2, 28672 x 8192 M = 2 (13) 100.0 against 95.1, 8192 x 28672 M = 1 (3 warps,
/// 4 CTAs per SM) 95.7 against 90.5.
inline bool stream_fused_default(const Plan& q, int N, int sms) {
  return q.path == Plan::stream && q.fused_act && q.warps == kernels::stream8::kMaxWarps &&
         static_cast<long long>(N / 64) * q.splits <= sms;
}

/// Stream configuration for M <= 16 (stream_plan where the kernel is available).
inline bool stream_config(int M, int N, int K, int sms, Plan& p, int forced_splits = 0, bool fused = false) {
  if (!stream_available() || K > kernels::ring::kMaxK) return false;
  return stream_plan(M, N, K, sms, kernels::detail::current_compute_capability() >= 90, p, forced_splits, fused);
}

inline Plan make_plan(int M, int N, int K, int sms, int force_path = -1, int tile_mt = 0, int tile_nt = 0,
                      int ring_splits = 0, int ring_act = 0) {
  Plan p;
  // The ring by default when its N/64 slabs outnumber the SMs, or when ring_splits_for splits the slabs'
  // K over clusters (fewer slabs than SMs, >= 16 stages per CTA): with one CTA per SM its four consumer
  // warps cannot drain the stream (H200, same run: 8192^2 M=1 8 outliers unsplit ring 34.4 us vs split-K
  // gemv 32.0), while at 2-4 CTAs per SM it wins (8192x28672: 68.7-71.3 vs 90.3-96.1 us; H100 session 9,
  // 8192^2 split in 2: 32.7 vs 36.8 us). See bench/int8/NOTES.md.
  //
  // The stream kernel with the separate activation pass (force_path 6) is not a default: in session 19's
  // H100 runs its GEMM alone streamed faster than the ring's (8192^2, M = 1: 24.8 against 27.7-29.2 us),
  // but as a layer it only tied the ring at M = 1 and lost at M = 16 (39.5 against 34.0 us at 8192^2;
  // bench/int8/NOTES.md, "Session 19"). With the pass inside it, it replaces the ring where
  // stream_fused_default says (below).
  if (force_path == 6) {  // ring_act 3: the activation pass inside the stream kernel (M <= 4)
    if (stream_config(M, N, K, sms, p, ring_splits, ring_act == 3)) {
      if (ring_act == 1 || ring_act == 2) p.self_act = ring_act == 1;
      return p;
    }
    p = Plan{};  // does not fit / not available: linear_forward reports it
    p.path = Plan::stream;
    return p;
  }
  if (force_path == 5 && ring_config(M, N, K, sms, p, ring_splits, ring_act)) return p;
  if (force_path < 0 && tile_mt == 0 && ring_config(M, N, K, sms, p, ring_splits, ring_act) &&
      (N / 64 > sms || p.splits > 1)) {
    // where the ring runs by default (ring_act 0): the stream kernel with the activation pass inside it
    // when that plan keeps one CTA of 16 warps per SM (stream_fused_default)
    Plan q;
    if (ring_act == 0 && stream_config(M, N, K, sms, q, ring_splits, true) && stream_fused_default(q, N, sms))
      return q;
    return p;
  }
  p = Plan{};
  if (force_path == 5) {  // does not fit / not available: linear_forward reports it
    p.path = Plan::ring;
    p.stages = 0;
    return p;
  }
  // K split so that `tiles` blocks × splits fill (but do not exceed) one wave of `capacity` blocks
  auto split = [&](long long tiles, long long capacity) {
    long long s = tiles >= capacity ? 1 : capacity / tiles;
    s = std::max(1LL, std::min(s, static_cast<long long>(K / kMinSplitK)));
    const long long chunks = K / kKAlign;
    const int kps = static_cast<int>((chunks + s - 1) / s * kKAlign);
    p.k_per_split = kps;
    p.splits = (K + kps - 1) / kps;
  };
  if (M <= 32 && (force_path < 0 || force_path == 0)) {
    p.path = Plan::gemv;
    p.mt = M <= 16 ? 1 : 2;
    const int occ = p.mt == 1 ? gemv_blocks_per_sm<1>() : gemv_blocks_per_sm<2>();
    split((N + 63) / 64, static_cast<long long>(sms) * occ);
    return p;
  }
  const bool want_wgmma = force_path == 3 || force_path == 4 ||
                          (force_path < 0 && M >= kWgmmaMinM && tile_mt == 0 && wgmma_available());
  if (want_wgmma) {
    using WS = kernels::WgmmaShape;
    const long long tiles = static_cast<long long>((M + WS::BM - 1) / WS::BM) * ((N + WS::BN - 1) / WS::BN);
    const bool split_pays = tiles < sms && (K >= kWgmmaSplitMinK || M <= kWgmmaSplitMaxM || tiles * 8 <= sms);
    if (force_path == 3 || (force_path < 0 && split_pays)) {
      split(tiles, sms);  // one 128 x 256 block per SM (the accumulators take the register file)
      if (p.splits > 1 && p.k_per_split % WS::BK != 0) {  // whole k-tiles per split (the TMA kernel's boxes)
        p.k_per_split = (p.k_per_split + WS::BK - 1) / WS::BK * WS::BK;
        p.splits = (K + p.k_per_split - 1) / p.k_per_split;
      }
      if (p.splits > 1 || force_path == 3) {
        p.path = Plan::wgmma_split;
        return p;
      }
    }
    p.path = Plan::wgmma_fused;
    p.splits = 1;
    p.k_per_split = K;
    return p;
  }
  for (const auto& pol : kTiledPolicies)
    if (M <= pol.max_m) {
      p.mt = pol.mt;
      p.nt = pol.nt;
      break;
    }
  if (tile_mt > 0 && tile_nt > 0) {
    p.mt = tile_mt;
    p.nt = tile_nt;
  }
  const int bm = 32 * p.mt, bn = 32 * p.nt;
  const long long tiles = static_cast<long long>((M + bm - 1) / bm) * ((N + bn - 1) / bn);
  const int per_sm = p.mt * p.nt <= 16 ? 2 : 1;  // TiledShape::kMinBlocks
  if (force_path == 1 || (force_path < 0 && tiles < sms)) {
    split(tiles, static_cast<long long>(sms) * per_sm);
    if (p.splits > 1 || force_path == 1) {
      p.path = Plan::tiled_split;
      return p;
    }
  }
  p.path = Plan::tiled_fused;
  p.splits = 1;
  p.k_per_split = K;
  return p;
}

inline int sm_count() {
  int dev = 0, sms = 132;
  if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  return sms;
}

inline std::size_t align_up(std::size_t x) { return (x + kWsAlign - 1) / kWsAlign * kWsAlign; }

/// Workspace regions (byte offsets); stats, mask and C32 are contiguous so one memset clears them.
struct Layout {
  std::size_t stats = 0, mask = 0, counters = 0, tiles = 0, c32 = 0, oacc = 0, zero_end = 0, list = 0, rows = 0,
              aq = 0, wslab = 0, aslab = 0, partmax = 0, part_nf = 0, total = 0;
};
inline Layout make_layout(int M, int N, int K, int max_outliers, const Plan& plan) {
  Layout l;
  l.stats = 0;
  l.mask = align_up(sizeof(Int8Stats));
  // (the mask's region is padded to kWsAlign: the stream kernel copies it in whole 16-byte chunks)
  l.counters = l.mask + align_up(static_cast<std::size_t>((K + 31) / 32) * 4);  // per 64-column slab (gemv)
  l.tiles = l.counters + align_up(static_cast<std::size_t>((N + 63) / 64) * 4);  // persistent wgmma: next tile
  l.c32 = l.tiles + align_up(sizeof(int));
  l.oacc = l.c32 + (plan.needs_c32() ? align_up(static_cast<std::size_t>(M) * N * 4) : 0);
  // small-M kernel: fp32 accumulator of the outlier columns' product
  l.zero_end = l.oacc + (plan.path == Plan::gemv ? align_up(static_cast<std::size_t>(M) * N * 4) : 0);
  l.list = l.zero_end;
  l.rows = l.list + align_up(static_cast<std::size_t>(std::max(max_outliers, 1)) * 4);
  l.aq = l.rows + align_up(static_cast<std::size_t>(M) * 4);
  l.wslab = l.aq + align_up(static_cast<std::size_t>(M) * K);
  // tiled / wgmma paths: the outlier columns' weights gathered once per call ([max_outliers, N] fp32)
  // and their activation values ([max_outliers, M] fp32)
  // (the small-M paths take the outlier weights from their own weight stream: no slabs)
  const std::size_t slab_rows =
      plan.path == Plan::gemv || plan.ring_activation_pass() ? 0 : static_cast<std::size_t>(std::max(max_outliers, 1));
  l.aslab = l.wslab + align_up(slab_rows * N * sizeof(float));
  l.partmax = l.aslab + align_up(slab_rows * M * sizeof(float));
  // ring and stream paths: per-block row absmax and non-finite counts of the two-kernel activation pass
  const std::size_t parts = plan.ring_activation_pass() ? static_cast<std::size_t>((K + kernels::ring::kActCols - 1) /
                                                                             kernels::ring::kActCols)
                                                    : 0;
  l.part_nf = l.partmax + align_up(parts * kernels::ring::kMaxM * sizeof(float));
  l.total = l.part_nf + align_up(parts * sizeof(int));
  return l;
}

/// Launches the tiled kernel for tile (MT, NT).
template <int MT, int NT, kernels::TiledOut Out, class CT>
cudaError_t launch_tiled(const std::int8_t* Aq, const std::int8_t* W, int* C, const kernels::Int8EpilogueParams& ep,
                         int M, int N, int K, int splits, int kps, cudaStream_t stream) {
  using S = kernels::TiledShape<MT, NT>;
  auto kernel = kernels::gemm_s8_tiled_kernel<MT, NT, Out, CT>;
  static const cudaError_t attr =  // once per instantiation and process
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmemBytes);
  if (attr != cudaSuccess) return attr;
  const dim3 grid((N + S::BN - 1) / S::BN, (M + S::BM - 1) / S::BM, splits);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(Aq, W, C, ep, M, N, K, kps);
  return cudaGetLastError();
}

/// Runtime (MT, NT) → the instantiated tiles (those in kTiledPolicies).
template <kernels::TiledOut Out, class CT>
cudaError_t launch_tiled_plan(const Plan& plan, const std::int8_t* Aq, const std::int8_t* W, int* C,
                              const kernels::Int8EpilogueParams& ep, int M, int N, int K, cudaStream_t stream) {
  if (plan.mt == 2 && plan.nt == 4)
    return launch_tiled<2, 4, Out, CT>(Aq, W, C, ep, M, N, K, plan.splits, plan.k_per_split, stream);
  if (plan.mt == 4 && plan.nt == 4)
    return launch_tiled<4, 4, Out, CT>(Aq, W, C, ep, M, N, K, plan.splits, plan.k_per_split, stream);
  if (plan.mt == 2 && plan.nt == 8)
    return launch_tiled<2, 8, Out, CT>(Aq, W, C, ep, M, N, K, plan.splits, plan.k_per_split, stream);
  if (plan.mt == 4 && plan.nt == 8)
    return launch_tiled<4, 8, Out, CT>(Aq, W, C, ep, M, N, K, plan.splits, plan.k_per_split, stream);
  return cudaErrorInvalidConfiguration;
}

/// Launches an sm_90a wgmma kernel (cudaErrorNotSupported when the build does not have them): the
/// warp-specialized TMA kernel when `tma` is set, the encoder is there, every split is whole 128-byte
/// k-tiles and the output (C, or ep.Y when fused) is 16-byte aligned (its tensor stores), else the cp.async kernel.
template <kernels::TiledOut Out, class CT>
cudaError_t launch_wgmma(const std::int8_t* Aq, const std::int8_t* W, int* C, const kernels::Int8EpilogueParams& ep,
                         int M, int N, int K, int splits, int kps, bool tma, int max_blocks,
                         cudaStream_t stream, int* tile_counter = nullptr) {
#if defined(LOWBIT_INT8_WGMMA)
  const void* out = Out == kernels::TiledOut::i32 ? static_cast<const void*>(C) : ep.Y;
  if (tma && tensor_map_encoder() != nullptr && (splits == 1 || kps % kernels::WgmmaShape::BK == 0) &&
      reinterpret_cast<std::uintptr_t>(out) % 16 == 0) {
    using S = kernels::WgmmaWsShape;
    auto kernel = kernels::gemm_s8_wgmma_ws_kernel<Out, CT>;
    static const cudaError_t attr =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmemBytes);
    if (attr != cudaSuccess) return attr;
    static const cudaError_t regs = kernels::detail::check_setmaxnreg_regs(  // setmaxnreg would block below it
        kernel, kernels::detail::setmaxnreg_launch_regs(S::kProducerRegs, S::kConsumerRegs, S::kConsumers));
    if (regs != cudaSuccess) return regs;
    CUtensorMap tmA, tmW;  // 128 x 128-byte and 256 x 128-byte boxes, 128-byte swizzle, zero-filled past M, N, K
    cudaError_t e = kernels::detail::encode_2d(tmA, 1, Aq, static_cast<std::size_t>(M), static_cast<std::size_t>(K),
                                               S::BM, S::BK, true);
    if (e == cudaSuccess)
      e = kernels::detail::encode_2d(tmW, 1, W, static_cast<std::size_t>(N), static_cast<std::size_t>(K), S::BN, S::BK,
                                     true);
    // the output's tensor map: boxes of a warpgroup's rows x one 128-byte swizzle row (32 int32 or 64 16-bit
    // columns), 128-byte swizzle (kernels::detail::wgmma_store_tma)
    CUtensorMap tmO;
    if (e == cudaSuccess) {
      constexpr int kRow = kernels::detail::kSw128RowBytes;
      if constexpr (Out == kernels::TiledOut::i32)
        e = kernels::detail::encode_2d(tmO, CU_TENSOR_MAP_DATA_TYPE_INT32, 4, C, static_cast<std::size_t>(M),
                                       static_cast<std::size_t>(N), S::kWgRows, kRow / 4, true);
      else
        e = kernels::detail::encode_2d(tmO, std::is_same_v<CT, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                       : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                                       2, ep.Y, static_cast<std::size_t>(M), static_cast<std::size_t>(N), S::kWgRows,
                                       kRow / 2, true);
    }
    if (e != cudaSuccess) return e;
    const long long tiles = static_cast<long long>((M + S::BM - 1) / S::BM) * ((N + S::BN - 1) / S::BN);
    // the kernel loops over the tiles; one block fits an SM
    const long long cap = max_blocks == 0 ? sm_count() : max_blocks < 0 ? tiles : max_blocks;
    const long long blocks = std::min<long long>(tiles, cap);
    const dim3 grid(static_cast<unsigned>(blocks), splits);
    // the blocks take tiles from the counter (launch order, no drift between blocks) when there is one
    // K split; the counter must be zero
    kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(tmA, tmW, tmO, C, ep, M, N, K, kps,
                                                          splits == 1 ? tile_counter : nullptr);
    return cudaGetLastError();
  }
  using S = kernels::WgmmaShape;
  auto kernel = kernels::gemm_s8_wgmma_kernel<Out, CT>;
  static const cudaError_t attr =  // once per instantiation and process
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmemBytes);
  if (attr != cudaSuccess) return attr;
  const dim3 grid(static_cast<unsigned>(((M + S::BM - 1) / S::BM) * ((N + S::BN - 1) / S::BN)), splits);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(Aq, W, C, ep, M, N, K, kps);
  return cudaGetLastError();
#else
  (void)Aq, (void)W, (void)C, (void)ep, (void)M, (void)N, (void)K, (void)splits, (void)kps, (void)tma, (void)max_blocks,
      (void)stream, (void)tile_counter;
  return cudaErrorNotSupported;
#endif
}

/// Launches `kernel` with the programmatic-stream-serialization attribute when `pdl` is set.
template <class... KArgs, class... Args>
cudaError_t launch_maybe_pdl(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream,
                             Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

/// Small-M GEMM: int32 output only (T = void) or with the fused epilogue (T = __half / __nv_bfloat16).
template <class T = void>
cudaError_t launch_gemv(const std::int8_t* Aq, const std::int8_t* W, int* C, int M, int N, int K, const Plan& plan,
                        cudaStream_t stream, bool pdl = false, const kernels::Int8EpilogueParams& ep = {},
                        unsigned* counters = nullptr) {
  constexpr int kUnroll = 2;  // measured: 2 beats 4 by 2-5 % at M = 1-16 (bench/int8/NOTES.md)
  const dim3 grid((N + 63) / 64, plan.splits);
  if (plan.mt == 1)
    return launch_maybe_pdl(pdl, kernels::gemv_s8_kernel<1, kUnroll, T>, grid, dim3(128), stream, Aq, W, C, M, N, K,
                            plan.k_per_split, ep, counters);
  return launch_maybe_pdl(pdl, kernels::gemv_s8_kernel<2, kUnroll, T>, grid, dim3(128), stream, Aq, W, C, M, N, K,
                          plan.k_per_split, ep, counters);
}

/// int32 GEMM through the plan (no epilogue); C must be zeroed when plan.needs_c32().
inline cudaError_t launch_gemm_i32(const std::int8_t* Aq, const std::int8_t* W, int* C, int M, int N, int K,
                                   const Plan& plan, cudaStream_t stream) {
  if (plan.path == Plan::gemv) return launch_gemv(Aq, W, C, M, N, K, plan, stream);
  const kernels::Int8EpilogueParams none{};
  if (plan.wgmma())
    return launch_wgmma<kernels::TiledOut::i32, __half>(Aq, W, C, none, M, N, K, plan.splits, plan.k_per_split, plan.tma,
                                                        plan.max_blocks, stream);
  return launch_tiled_plan<kernels::TiledOut::i32, __half>(plan, Aq, W, C, none, M, N, K, stream);
}

/// Where the ring's activation kernels put their results in the workspace.
inline kernels::RingActOut ring_act_out(std::uint8_t* base, const Layout& lay, const LinearOptions& opt) {
  auto* stats = reinterpret_cast<Int8Stats*>(base + lay.stats);
  kernels::RingActOut o;
  o.Aq = reinterpret_cast<std::int8_t*>(base + lay.aq);
  o.row_absmax = reinterpret_cast<float*>(base + lay.rows);
  o.mask = reinterpret_cast<std::uint32_t*>(base + lay.mask);
  o.max_list = opt.max_outliers;
  o.count = &stats->outlier_count;
  o.overflow = &stats->overflow;
  o.nonfinite = &stats->nonfinite;
  o.partmax = reinterpret_cast<float*>(base + lay.partmax);
  o.part_nf = reinterpret_cast<int*>(base + lay.part_nf);
  return o;
}

/// The ring and stream paths' separate activation pass: one kernel (plan.self_act: every block reads all of
/// A) or two. The first is the layer's first kernel: under PDL it waits for the one before (see
/// LinearOptions::pdl).
template <class CT>
cudaError_t launch_ring_act(const CT* A, int M, int K, const kernels::RingActOut& o, const Plan& plan,
                            const LinearOptions& opt, cudaStream_t stream) {
  namespace R = kernels::ring;
  const int parts = (K + R::kActCols - 1) / R::kActCols;
  if (plan.self_act)
    return launch_maybe_pdl(opt.pdl, kernels::act_quant_kernel<CT, true>, dim3(parts), dim3(R::kActThreads), stream,
                            A, M, K, opt.threshold, o, parts);
  cudaError_t e = launch_maybe_pdl(opt.pdl, kernels::act_partial_kernel<CT>, dim3(parts), dim3(R::kActThreads), stream,
                                   A, M, K, opt.threshold, o);
  if (e == cudaSuccess)
    e = launch_maybe_pdl(opt.pdl, kernels::act_quant_kernel<CT, false>, dim3(parts), dim3(R::kActThreads), stream, A,
                         M, K, opt.threshold, o, parts);
  return e;
}

/// The LLM.int8() epilogue inputs of the small-M ring and stream kernels.
inline kernels::Int8EpilogueParams small_m_epilogue(const void* A, int M, const DeviceWeight& w, const float* bias,
                                                    void* Y, const kernels::RingActOut& o) {
  kernels::Int8EpilogueParams ep;
  ep.A = A;
  ep.Aq = o.Aq;
  ep.row_absmax = o.row_absmax;
  ep.Wq = w.codes;
  ep.w_absmax = w.scales;
  ep.bias = bias;
  ep.side_values = reinterpret_cast<const std::uint16_t*>(w.side_values);
  ep.side_index = w.side_index;
  ep.outlier_mask = o.mask;
  ep.Y = Y;
  ep.M = M;
  return ep;
}

/// The kernel arguments the small-M ring and stream GEMMs share: the epilogue inputs and the fused
/// activation pass's threshold and statistics outputs.
struct SmallMArgs {
  kernels::RingActOut out;         ///< the activation results' places in the workspace (ring_act_out)
  kernels::Int8EpilogueParams ep;  ///< epilogue inputs (small_m_epilogue)
  kernels::RingFusedAct fa;        ///< plan.fused_act: the pass's threshold and statistics (unused otherwise)
};

/// The small-M ring and stream launches' common start: the activation kernel(s) unless the plan runs the
/// pass inside the GEMM kernel or `gemm_only` (benchmark: the GEMM alone on the activation results in the
/// workspace; refused with a fused plan, whose pass is inside the kernel), then the GEMM's arguments.
template <class CT>
cudaError_t small_m_prelude(const CT* A, int M, const DeviceWeight& w, const float* bias, CT* Y, std::uint8_t* base,
                            const Layout& lay, const Plan& plan, const LinearOptions& opt, cudaStream_t stream,
                            bool gemm_only, SmallMArgs& args) {
  const kernels::RingActOut o = args.out = ring_act_out(base, lay, opt);
  if (gemm_only && plan.fused_act) return cudaErrorInvalidValue;
  if (!gemm_only && !plan.fused_act)
    if (const cudaError_t e = launch_ring_act(A, M, w.K, o, plan, opt, stream); e != cudaSuccess) return e;
  args.ep = small_m_epilogue(A, M, w, bias, Y, o);
  args.fa.threshold = opt.threshold;
  args.fa.max_list = opt.max_outliers;
  args.fa.count = o.count;
  args.fa.overflow = o.overflow;
  args.fa.nonfinite = o.nonfinite;
  return cudaSuccess;
}

/// Lets a small-M kernel (ring, stream) take an SM's whole shared memory: the opt-in dynamic size and the
/// largest carveout. Call once per kernel and process.
template <class Kernel>
cudaError_t small_m_smem_attrs(Kernel k) {
  cudaError_t r = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemPerBlock);
  if (r == cudaSuccess) r = cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
  return r;
}

/// Launch attributes of a small-M kernel: a cluster of `splits` CTAs along y when it splits K, and
/// programmatic dependent launch. Returns the count set in `la`.
inline unsigned small_m_attrs(cudaLaunchAttribute (&la)[2], int splits, bool pdl) {
  unsigned na = 0;
  if (splits > 1) {  // the CTAs of one slab form a cluster (partial sums through distributed smem)
    la[na].id = cudaLaunchAttributeClusterDimension;
    la[na].val.clusterDim.x = 1;
    la[na].val.clusterDim.y = static_cast<unsigned>(splits);
    la[na].val.clusterDim.z = 1;
    ++na;
  }
  if (pdl) {
    la[na].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    la[na].val.programmaticStreamSerializationAllowed = 1;
    ++na;
  }
  return na;
}

/// The small-M ring path: activation kernel(s), then the ring GEMM (programmatic dependent launches); or,
/// plan.fused_act, the ring kernel alone with the activation pass inside (a plain launch).
template <class CT>
cudaError_t launch_ring(const CT* A, int M, const DeviceWeight& w, const float* bias, CT* Y, std::uint8_t* base,
                        const Layout& lay, const Plan& plan, const LinearOptions& opt, cudaStream_t stream,
                        bool gemm_only = false) {
  namespace R = kernels::ring;
  const int N = w.N, K = w.K;
  const bool fused = plan.fused_act;
  SmallMArgs args;
  if (const cudaError_t e = small_m_prelude(A, M, w, bias, Y, base, lay, plan, opt, stream, gemm_only, args);
      e != cudaSuccess)
    return e;
  auto kernel = fused ? kernels::gemv_ring_kernel<CT, true> : kernels::gemv_ring_kernel<CT, false>;
  static const cudaError_t attr_separate = small_m_smem_attrs(kernels::gemv_ring_kernel<CT, false>);  // once per process
  static const cudaError_t attr_fused = small_m_smem_attrs(kernels::gemv_ring_kernel<CT, true>);
  if (const cudaError_t a = fused ? attr_fused : attr_separate; a != cudaSuccess) return a;
  const int smem = R::kernel_smem(plan.stages, fused, M, std::min(plan.k_per_split, K), K);
  // tensor maps (host-side encode, passed by value): W [N, K] box {kSK, 64}, Aq [M, K] box {kSK, 16}
  CUtensorMap tmW{}, tmA{};
  {
    auto enc = tensor_map_encoder();
    if (!enc) return cudaErrorNotSupported;
    const cuuint32_t estr[2] = {1, 1};
    const cuuint64_t gw[2] = {static_cast<cuuint64_t>(K), static_cast<cuuint64_t>(N)};
    const cuuint64_t sw[1] = {static_cast<cuuint64_t>(K)};
    const cuuint32_t bw[2] = {static_cast<cuuint32_t>(R::kSK), static_cast<cuuint32_t>(R::kRows)};
    if (enc(&tmW, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<std::int8_t*>(w.codes), gw, sw, bw, estr,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
      return cudaErrorInvalidValue;
    const cuuint64_t ga[2] = {static_cast<cuuint64_t>(K), static_cast<cuuint64_t>(M)};
    const cuuint32_t ba[2] = {static_cast<cuuint32_t>(R::kSK), static_cast<cuuint32_t>(R::kMaxM)};
    if (!fused &&  // (the fused kernel takes no activation box)
        enc(&tmA, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, args.out.Aq, ga, sw, ba, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) !=
            CUDA_SUCCESS)
      return cudaErrorInvalidValue;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(N / 64), static_cast<unsigned>(plan.splits));
  cfg.blockDim = dim3(R::kThreads);
  cfg.dynamicSmemBytes = static_cast<std::size_t>(smem);
  cfg.stream = stream;
  // PDL: after the activation kernels, or (fused) the layer's first kernel, after the one before it
  cudaLaunchAttribute la[2];
  cfg.attrs = la;
  cfg.numAttrs = small_m_attrs(la, plan.splits, opt.pdl);
  return cudaLaunchKernelEx(&cfg, kernel, tmW, tmA, args.ep, args.fa, M, N, K, plan.stages);
}

/// The small-M stream path: the activation kernel(s), then gemv_stream_kernel (programmatic dependent
/// launches: its weight stream starts while the activation pass runs). `gemm_only` (benchmark): the
/// GEMM alone on the activation results already in the workspace.
template <class CT>
cudaError_t launch_stream(const CT* A, int M, const DeviceWeight& w, const float* bias, CT* Y, std::uint8_t* base,
                          const Layout& lay, const Plan& plan, const LinearOptions& opt, cudaStream_t stream,
                          bool gemm_only = false) {
  namespace S8 = kernels::stream8;
  const int N = w.N, K = w.K;
  const bool fused = plan.fused_act;
  SmallMArgs args;
  if (const cudaError_t e = small_m_prelude(A, M, w, bias, Y, base, lay, plan, opt, stream, gemm_only, args);
      e != cudaSuccess)
    return e;
  static const cudaError_t attr1 = small_m_smem_attrs(kernels::gemv_stream_kernel<CT, 1>);  // once per process
  static const cudaError_t attr2 = small_m_smem_attrs(kernels::gemv_stream_kernel<CT, 2>);
  static const cudaError_t attr_f = small_m_smem_attrs(kernels::gemv_stream_kernel<CT, 1, true>);
  static const cudaError_t attr_f4 = small_m_smem_attrs(kernels::gemv_stream_kernel<CT, 1, true, S8::kFusedMaxM>);
  const bool one = M <= 8;  // one 8-row block of A (half the MMAs and accumulators)
  const bool rows4 = S8::fused_reg_rows(M) == S8::kFusedMaxM;  // fused at M = 3, 4: the 4-row register path
  if (const cudaError_t a = fused ? (rows4 ? attr_f4 : attr_f) : one ? attr1 : attr2; a != cudaSuccess) return a;
  auto kernel = fused ? (rows4 ? kernels::gemv_stream_kernel<CT, 1, true, S8::kFusedMaxM>
                               : kernels::gemv_stream_kernel<CT, 1, true>)
                : one ? kernels::gemv_stream_kernel<CT, 1> : kernels::gemv_stream_kernel<CT, 2>;
  const int ktw = plan.kt_per_warp;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(N / 64), static_cast<unsigned>(plan.splits));
  cfg.blockDim = dim3(static_cast<unsigned>(32 * plan.warps));
  cfg.dynamicSmemBytes = static_cast<std::size_t>(fused ? S8::fused_kernel_smem(M, plan.warps, ktw, K)
                                                        : S8::kernel_smem(M, plan.warps));
  cfg.stream = stream;
  // PDL: after the activation kernels, or (fused) the layer's first kernel, after the one before it
  cudaLaunchAttribute la[2];
  cfg.attrs = la;
  cfg.numAttrs = small_m_attrs(la, plan.splits, opt.pdl);
  return cudaLaunchKernelEx(&cfg, kernel, args.ep, args.fa, M, N, K, plan.k_per_split / 64, ktw);
}

inline Status check_shapes(int M, int N, int K) {
  if (M <= 0 || N <= 0 || K <= 0)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8: M, N, K must be positive (got ", M,
                                       ", ", N, ", ", K, ")");
  if (K % kKAlign != 0 || N % kKAlign != 0)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8: K and N must be multiples of ", kKAlign,
                                       " (got K=", K, ", N=", N, ")");
  return Status::success();
}

inline bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

}  // namespace detail

/// Workspace bytes linear_forward needs for this shape (query once, allocate once; no allocation in
/// the call itself).
/// @param M rows of A
/// @param N output features
/// @param K input features
/// @param opt options (max_outliers sizes the outlier list; force_path, ring_splits, ring_act pick the plan)
inline std::size_t linear_workspace_size(int M, int N, int K, const LinearOptions& opt = {}) {
  const auto plan = detail::make_plan(M, N, K, detail::sm_count(), opt.force_path, opt.tile_mt, opt.tile_nt,
                                     opt.ring_splits, opt.ring_act);
  return detail::make_layout(M, N, K, opt.max_outliers, plan).total;
}

/// Device pointer to the call's statistics inside the workspace.
inline const Int8Stats* workspace_stats(const void* workspace) { return static_cast<const Int8Stats*>(workspace); }

/// LLM.int8() forward `Y = A · Wᵀ + bias` with outlier decomposition, asynchronous on `stream`.
/// @tparam T half_t or bfloat16_t (activations and output)
/// @param A device [M, K], 16-byte aligned
/// @param M rows (any positive count)
/// @param w quantized weight on the device (K, N multiples of 64)
/// @param bias device [N] fp32 or nullptr
/// @param Y device [M, N] output, 4-byte aligned
/// @param workspace device buffer of at least linear_workspace_size(M, N, K, opt) bytes, 256-byte aligned
/// @param workspace_bytes its size
/// @param opt threshold and outlier-list capacity
/// @param stream CUDA stream
/// @return ok, or invalid_argument / misaligned / workspace_too_small / cuda_error with a message
template <class T>
Status linear_forward(const T* A, int M, const DeviceWeight& w, const float* bias, T* Y, void* workspace,
                      std::size_t workspace_bytes, const LinearOptions& opt, cudaStream_t stream) {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");
  using CT = typename detail::CudaType<T>::type;
  const int N = w.N, K = w.K;
  if (Status s = detail::check_shapes(M, N, K); !s.ok()) return s;
  if (!A || !Y || !w.codes || !w.scales || !workspace)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::linear_forward: null pointer");
  if ((w.side_index == nullptr) != (w.side_values == nullptr))
    return lowbit::detail::make_status(StatusCode::invalid_argument,
                                       "int8::linear_forward: side_values and side_index go together");
  if (opt.tile_mt || opt.tile_nt) {
    const bool known = (opt.tile_mt == 2 || opt.tile_mt == 4) && (opt.tile_nt == 4 || opt.tile_nt == 8);
    if (!known)
      return lowbit::detail::make_status(StatusCode::unsupported, "int8::linear_forward: tile (", opt.tile_mt, ", ",
                                         opt.tile_nt, ") is not instantiated");
  }
  if (opt.force_path == 5 && (M > kernels::ring::kMaxM || K > kernels::ring::kMaxK || !ring_available()))
    return lowbit::detail::make_status(StatusCode::unsupported,
                                       "int8::linear_forward: the ring path needs M <= 16, K <= 65536 and an sm_90 "
                                       "build on a compute capability 9.0+ device");
  if (opt.force_path == 6 && (M > kernels::stream8::kMaxM || K > kernels::ring::kMaxK || !stream_available()))
    return lowbit::detail::make_status(StatusCode::unsupported,
                                       "int8::linear_forward: the stream path needs M <= 16, K <= 65536 and a build "
                                       "for this device, compute capability 8.0+ (got M = ", M, ", K = ", K, ")");
  if (opt.force_path == 6 && opt.ring_act == 3 && M > kernels::stream8::kFusedMaxM)
    return lowbit::detail::make_status(StatusCode::unsupported, "int8::linear_forward: ring_act 3 (activation pass "
                                       "inside the stream kernel) needs M <= ", kernels::stream8::kFusedMaxM,
                                       " (got M = ", M, ")");
  if ((opt.force_path == 3 || opt.force_path == 4) && !wgmma_available())
    return lowbit::detail::make_status(StatusCode::unsupported,
                                       "int8::linear_forward: the wgmma path needs an sm_90a build with "
                                       "LOWBIT_INT8_WGMMA on a compute capability 9.0 device");
  if (opt.force_path < -1 || opt.force_path > 6)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::linear_forward: force_path ",
                                       opt.force_path, " is not one of -1..6");
  if (opt.ring_splits < 0 || opt.ring_splits > detail::kRingMaxSplits)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::linear_forward: ring_splits ",
                                       opt.ring_splits, " is not 0 (by shape) or 1..", detail::kRingMaxSplits);
  if (opt.ring_act < 0 || opt.ring_act > 3)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::linear_forward: ring_act ", opt.ring_act,
                                       " is not 0 (by shape), 1 (one activation kernel), 2 (two) or 3 (fused)");
  if (opt.wgmma_max_blocks < -1)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::linear_forward: wgmma_max_blocks ",
                                       opt.wgmma_max_blocks, " is not -1 (one block per tile), 0 (one per SM) or a cap");
  if (opt.max_outliers < 1 || std::isnan(opt.threshold))
    return lowbit::detail::make_status(StatusCode::invalid_argument,
                                       "int8::linear_forward: max_outliers must be >= 1 and threshold not NaN");
  if (!detail::aligned(A, 16) || !detail::aligned(w.codes, 16) || !detail::aligned(Y, 4) ||
      !detail::aligned(workspace, detail::kWsAlign))
    return lowbit::detail::make_status(StatusCode::misaligned,
                                       "int8::linear_forward: A and weight codes need 16-byte, Y 4-byte, workspace ",
                                       detail::kWsAlign, "-byte alignment");
  auto plan = detail::make_plan(M, N, K, detail::sm_count(), opt.force_path, opt.tile_mt, opt.tile_nt,
                                opt.ring_splits, opt.ring_act);
  plan.tma = opt.wgmma_tma;
  plan.max_blocks = opt.wgmma_max_blocks;
  const auto lay = detail::make_layout(M, N, K, opt.max_outliers, plan);
  if (workspace_bytes < lay.total)
    return lowbit::detail::make_status(StatusCode::workspace_too_small, "int8::linear_forward: workspace has ",
                                       workspace_bytes, " bytes, needs ", lay.total);
  auto* base = static_cast<std::uint8_t*>(workspace);
  auto* stats = reinterpret_cast<Int8Stats*>(base + lay.stats);
  auto* mask = reinterpret_cast<std::uint32_t*>(base + lay.mask);
  auto* c32 = reinterpret_cast<int*>(base + lay.c32);
  auto* counters = reinterpret_cast<unsigned*>(base + lay.counters);
  auto* list = reinterpret_cast<int*>(base + lay.list);
  auto* rows = reinterpret_cast<float*>(base + lay.rows);
  auto* aq = reinterpret_cast<std::int8_t*>(base + lay.aq);

  auto fail = [](cudaError_t e, const char* what) {
    return lowbit::detail::make_status(StatusCode::cuda_error, "int8::linear_forward: ", what, ": ",
                                       cudaGetErrorString(e));
  };
  if (plan.path == detail::Plan::stream) {
    if (plan.warps < 1)
      return lowbit::detail::make_status(StatusCode::unsupported,
                                         "int8::linear_forward: the stream path does not fit this shape");
    const cudaError_t e = detail::launch_stream<CT>(reinterpret_cast<const CT*>(A), M, w, bias,
                                                    reinterpret_cast<CT*>(Y), base, lay, plan, opt, stream);
    if (e != cudaSuccess) return fail(e, "stream path");
    return Status::success();
  }
  if (plan.path == detail::Plan::ring) {
    if (plan.stages < 2)
      return lowbit::detail::make_status(StatusCode::unsupported,
                                         "int8::linear_forward: the ring path does not fit this shape (N too large)");
    if (opt.force_path == 5 && opt.ring_act == 3 && !plan.fused_act)
      return lowbit::detail::make_status(StatusCode::unsupported, "int8::linear_forward: ring_act 3 (activation pass "
                                         "inside the ring kernel) needs M <= ", kernels::ring::kFusedMaxM,
                                         " and room for two stages beside the codes (M = ", M, ", K = ", K, ")");
    const cudaError_t e = detail::launch_ring<CT>(reinterpret_cast<const CT*>(A), M, w, bias, reinterpret_cast<CT*>(Y),
                                                  base, lay, plan, opt, stream);
    if (e != cudaSuccess) return fail(e, "ring path");
    return Status::success();
  }
  {
    constexpr int kZeroThreads = 256, kZeroBlocksPerSm = 4;  // a short grid-stride clear
    const std::size_t n16 = lay.zero_end / 16;                // zero_end is a multiple of kWsAlign
    const auto blocks = static_cast<unsigned>(std::max<std::size_t>(
        1, std::min<std::size_t>((n16 + kZeroThreads - 1) / kZeroThreads,
                                 static_cast<std::size_t>(detail::sm_count()) * kZeroBlocksPerSm)));
    detail::zero_workspace_kernel<<<blocks, kZeroThreads, 0, stream>>>(reinterpret_cast<uint4*>(base), n16);
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(e, "workspace clear");
  if (M <= detail::kActWideMaxRowsPerSm * detail::sm_count())
    e = detail::launch_maybe_pdl(opt.pdl, detail::activation_pass_kernel<CT, detail::kActThreadsWide>, dim3(M),
                                 dim3(detail::kActThreadsWide), stream, reinterpret_cast<const CT*>(A), M, K,
                                 opt.threshold, aq, rows, mask, list, opt.max_outliers, stats);
  else
    e = detail::launch_maybe_pdl(opt.pdl, detail::activation_pass_kernel<CT, detail::kActThreads>, dim3(M),
                                 dim3(detail::kActThreads), stream, reinterpret_cast<const CT*>(A), M, K,
                                 opt.threshold, aq, rows, mask, list, opt.max_outliers, stats);
  if (e != cudaSuccess) return fail(e, "activation pass");

  kernels::Int8EpilogueParams ep;
  ep.A = A;
  ep.Aq = aq;
  ep.row_absmax = rows;
  ep.Wq = w.codes;
  ep.w_absmax = w.scales;
  ep.bias = bias;
  ep.side_values = reinterpret_cast<const std::uint16_t*>(w.side_values);
  ep.side_index = w.side_index;
  ep.outlier_count = &stats->outlier_count;
  ep.outlier_list = list;
  ep.outlier_mask = mask;
  ep.max_list = opt.max_outliers;
  ep.Y = Y;
  ep.M = M;
  ep.capture_outliers = opt.capture_outliers;
  ep.outlier_acc = plan.path == detail::Plan::gemv ? reinterpret_cast<float*>(base + lay.oacc) : nullptr;

  if (plan.path != detail::Plan::gemv) {  // zero the outlier columns' codes, gather their weights once
    constexpr int kZeroRows = 32;          // prepare_outliers_kernel's rows per zeroing block
    constexpr int kGatherBlocksPerSm = 2;  // blocks gathering the weight slab (grid-stride)
    auto* wslab = reinterpret_cast<float*>(base + lay.wslab);
    auto* aslab = reinterpret_cast<float*>(base + lay.aslab);
    const int zero_blocks = (M + kZeroRows - 1) / kZeroRows;
    const int gather_blocks = detail::sm_count() * kGatherBlocksPerSm;
    kernels::prepare_outliers_kernel<CT, kZeroRows>
        <<<zero_blocks + gather_blocks, 256, 0, stream>>>(aq, ep, wslab, aslab, M, N, K, zero_blocks);
    if ((e = cudaGetLastError()) != cudaSuccess) return fail(e, "prepare outliers");
    ep.outlier_wslab = wslab;
    ep.outlier_aslab = aslab;
  }
  if (plan.path == detail::Plan::tiled_fused || plan.path == detail::Plan::wgmma_fused) {
    e = plan.wgmma() ? detail::launch_wgmma<kernels::TiledOut::fused, CT>(aq, w.codes, nullptr, ep, M, N, K, 1, K, plan.tma,
                                                                          plan.max_blocks, stream,
                                                                          plan.max_blocks == -1
                                                                              ? nullptr
                                                                              : reinterpret_cast<int*>(base + lay.tiles))
                     : detail::launch_tiled_plan<kernels::TiledOut::fused, CT>(plan, aq, w.codes, nullptr, ep, M, N, K,
                                                                              stream);
    if (e != cudaSuccess) return fail(e, "int8 GEMM");
    return Status::success();
  }
  if (plan.path == detail::Plan::gemv) {  // fused: the last block of each column slab finishes it
    e = detail::launch_gemv<CT>(aq, w.codes, c32, M, N, K, plan, stream, opt.pdl, ep, counters);
    if (e != cudaSuccess) return fail(e, "int8 GEMM");
    return Status::success();
  }
  if ((e = detail::launch_gemm_i32(aq, w.codes, c32, M, N, K, plan, stream)) != cudaSuccess)
    return fail(e, "int8 GEMM");
  constexpr int kEpiRows = 8;  // rows per epilogue thread (int8_epilogue_kernel's kRows)
  const dim3 grid((N + 255) / 256, (M + kEpiRows - 1) / kEpiRows);
  e = detail::launch_maybe_pdl(false, kernels::int8_epilogue_kernel<CT>, grid, dim3(256), stream,
                               static_cast<const int*>(c32), ep, M, N, K);
  if (e != cudaSuccess) return fail(e, "epilogue");
  return Status::success();
}

/// The int8 GEMM core alone: `C[M,N] = A[M,K] · Wᵀ` with int32 output (what cuBLASLt's
/// CUBLAS_COMPUTE_32I computes). Zeroes C on the stream first when the plan accumulates (small M or
/// split K).
/// @param A device int8 [M, K] (16-byte aligned)
/// @param W device int8 [N, K] (16-byte aligned)
/// @param C device int32 [M, N]
/// @param M rows
/// @param N columns (multiple of 64)
/// @param K depth (multiple of 64)
/// @param stream CUDA stream
inline Status gemm_s8_s32(const std::int8_t* A, const std::int8_t* W, std::int32_t* C, int M, int N, int K,
                          cudaStream_t stream) {
  if (Status s = detail::check_shapes(M, N, K); !s.ok()) return s;
  if (!A || !W || !C) return lowbit::detail::make_status(StatusCode::invalid_argument, "int8::gemm_s8_s32: null pointer");
  if (!detail::aligned(A, 16) || !detail::aligned(W, 16) || !detail::aligned(C, 8))
    return lowbit::detail::make_status(StatusCode::misaligned, "int8::gemm_s8_s32: A, W need 16-byte alignment");
  // (the small-M split-K kernel for M <= 32: the ring path is a fused layer, not an int32 GEMM)
  auto plan = detail::make_plan(M, N, K, detail::sm_count(), M <= 32 ? 0 : -1);
  // wgmma TMA kernel: the persistent grid (blocks take tiles b, b + grid, ...). H100, session 16, the variants
  // timed against each other with interleaved replays (bench/results/int8_*_s16.json, core_variant_us): faster
  // than one block per tile at M = 1024 and 4096 on 8192^2, 8192 x 28672 and 28672 x 8192 (370.3 / 1365.6 /
  // 1203.8 against 377.7 / 1417.0 / 1235.8 us at M = 4096), equal within 1 % at M = 64 and 256. (Session 7's
  // sequential timings had favoured one block per tile on the 28672 shapes.)
  plan.max_blocks = 0;
  cudaError_t e = cudaSuccess;
  if (plan.needs_c32()) e = cudaMemsetAsync(C, 0, static_cast<std::size_t>(M) * N * 4, stream);
  if (e == cudaSuccess) e = detail::launch_gemm_i32(A, W, C, M, N, K, plan, stream);
  if (e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "int8::gemm_s8_s32: ", cudaGetErrorString(e));
  return Status::success();
}

}  // namespace lowbit::int8
