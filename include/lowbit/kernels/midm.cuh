/// @file midm.cuh
/// @brief The mid-M (16 < M <= 256) weight-only GEMM: one CTA owns a block of `64 * WN` output columns,
///        `block_m` rows and a K range; activations AND weights of each k-step go through one shared
///        cp.async multi-stage pipeline, and every warp reuses each dequantized weight fragment for all
///        the rows it owns.
///
/// ## Why a separate kernel
/// At 16 < M <= 256 a weight-only GEMM is between the two regimes: cuBLAS fp16 still mostly streams its
/// 2·K·N weight bytes, but the fused kernel now does 16·M/… tensor-core work per weight. The tile kernels
/// of gemm.cuh (weights prefetched in registers: 245-255 registers, 2 CTAs of 4 warps per SM, 64-row
/// warps over 2 slabs split in K by 2 warps) measured 0.69-0.98x cuBLAS fp16 at M = 64 and 0.42-0.54x at
/// M = 128 on an H100. Here:
/// - a CTA of WN x WM x WK warps covers WN 64-column slabs, WM x (16·MI) rows, WK 64-row k-tiles per
///   k-step. Each k-step's activations `[block_m, 64·WK]` (swizzled, ATile) and the WN x WK weight
///   tiles (TiledLayout bytes copied verbatim) plus their groups' scales/zeros are fetched by all
///   threads with 16-byte `cp.async` into one stage of a `Stages`-deep ring: weights in flight cost no
///   registers, so a warp can hold 16·MI rows x 64 columns of fp32 accumulators (MI = 4: 128);
/// - the activation tile is loaded once per CTA and shared by the WN (x WK) warps through ldmatrix, so
///   activation traffic from L2 is `M·K·2 · N/block_n` (block_n = 256: an eighth of the tile kernels');
/// - each warp dequantizes its B fragments once per k16-step (scale and zero folded: `s·(c − z)`,
///   exact subtract, one rounding, the magic-number path of dequant.cuh) and reuses them for its MI
///   m16 row tiles: 0.5 dequantized pairs per mma at MI = 4;
/// - rows past M are zero-filled by the copies themselves (src-size 0), so partial row tiles need no
///   extra pass; columns past N (a partial last CTA column) are skipped per warp;
/// - split-K across CTAs where the output tiles do not fill the GPU: fp32 partials in the workspace,
///   the last-arriving CTA sums them in split order (deterministic), as the other kernels do; WK > 1
///   warps are reduced in shared memory in warp order.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../numeric.hpp"
#include "decode.cuh"
#include "dequant.cuh"
#include "layout.hpp"
#include "ptx.cuh"
#include "tile.cuh"

namespace lowbit::kernels {

/// Bytes of one group's parameters in a stage: 64 fp16 scales, then 64 zero codes.
inline constexpr int kMidmParamBytes = 64 * 2 + 64;

/// A CTA configuration of the mid-M kernel.
/// @tparam MI        m16 row tiles per warp (accumulators: 32·MI fp32 registers per lane).
/// @tparam WN        warps side by side along N (each owns one 64-column slab).
/// @tparam WM        warps stacked along M (each owns 16·MI rows).
/// @tparam WK        warps along K: a k-step covers WK k-tiles, reduced in shared memory at the end.
/// @tparam Stages    depth of the cp.async ring (k-steps in flight: Stages - 1).
/// @tparam CtasPerSm CTAs per SM the planner assumes (also the __launch_bounds__ minimum).
template <int MI, int WN, int WM, int WK, int Stages, int CtasPerSm>
struct MidmPolicy {
  static_assert(MI >= 1 && WN >= 1 && WM >= 1 && WK >= 1 && Stages >= 2, "invalid mid-M policy");
  static constexpr bool wgmma = false;                   ///< the mma.sync kernel (midm_wgmma.cuh has the other)
  static constexpr bool ws = false;                      ///< not the warp-specialized wgmma kernel
  static constexpr int mi = MI;                          ///< m16 tiles per warp
  static constexpr int warps_n = WN;                     ///< warps along N
  static constexpr int warps_m = WM;                     ///< warps along M
  static constexpr int warps_k = WK;                     ///< warps along K
  static constexpr int stages = Stages;                  ///< ring depth
  static constexpr int ctas_per_sm = CtasPerSm;          ///< occupancy the planner assumes
  static constexpr int threads = 32 * WN * WM * WK;      ///< threads per CTA
  static constexpr int block_m = 16 * MI * WM;           ///< CTA rows
  static constexpr int block_n = 64 * WN;                ///< CTA columns
  static constexpr int block_k = 64 * WK;                ///< CTA k-step
  /// Bytes of one stage for width B and GPT groups per k-tile: activations, weight tiles, parameters.
  template <int B>
  static constexpr std::size_t stage_bytes(int gpt) {
    return std::size_t(block_m) * block_k * 2 +
           std::size_t(WN) * WK * (std::size_t(TiledLayout<B>::words_per_tile) * 4 + std::size_t(gpt) * kMidmParamBytes);
  }
  /// Dynamic shared memory: the ring, reused after the loop for the cross-warp K reduction.
  template <int B>
  static constexpr std::size_t smem_bytes(int gpt) {
    return std::max<std::size_t>(std::size_t(Stages) * stage_bytes<B>(gpt),
                                 std::size_t(WK - 1) * WN * WM * MI * 32 * 32 * sizeof(float));
  }
};

/// Default mid-M policies for width B (stages sized so that a CTA's ring stays near 100-140 KB).
/// @tparam B code width.
template <int B>
struct MidmPolicies {
  /// 16 < M <= 32: 32-row warps (64 accumulators), 4 slabs x 2 k-tiles per k-step, 2 CTAs per SM.
  using M32 = MidmPolicy<2, 4, 1, 2, (B == 8 ? 2 : 4), (B == 8 ? 1 : 2)>;
  /// 32 < M <= 64: 64-row warps (128 accumulators), 4 slabs x 2 k-tiles per k-step.
  using M64 = MidmPolicy<4, 4, 1, 2, (B == 8 ? 3 : 4), 1>;
  /// 64 < M <= 256: 128-row CTAs (two 64-row warps per slab), 4 slabs, 1 k-tile per k-step.
  using M128 = MidmPolicy<4, 4, 2, 1, (B == 8 ? 3 : 4), 1>;
};

namespace detail {

/// Mid-M kernel arguments: those of every streaming kernel (kt_per_split a multiple of the policy's WK).
using MidmArgs = StreamGemmArgs;

/// Split-K fix-up of one output tile `[rows_valid, BlockN]` at (m0, n0) by the last-arriving CTA: sums the
/// fp32 partials of every split in split order (deterministic), adds the bias, writes Y. Four columns per
/// thread and four independent rows of work in flight per thread: a naive loop (one 8-byte load, one
/// dependent add) took ~20 us for a 64 x 256 tile of 4 splits on an H200, longer than the GEMM itself.
template <class T, int Threads, int BlockN>
LOWBIT_DEVICE void midm_split_fixup(const MidmArgs& args, int m0, int n0, int rows_valid, int tid) {
  using Ops = ElementOps<T>;
  constexpr int quads = BlockN / 4;
  constexpr int U = 4;
  const std::size_t N = static_cast<std::size_t>(args.N), MN = static_cast<std::size_t>(args.M) * N;
  const int items = rows_valid * quads;
  for (int base = tid; base < items; base += Threads * U) {
    float4 sum[U];
    std::size_t off[U];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = base + u * Threads;
      const int row = m0 + i / quads, col = n0 + 4 * (i % quads);
      ok[u] = i < items && col < args.N;
      off[u] = ok[u] ? static_cast<std::size_t>(row) * N + col : 0;
      sum[u] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll 2
    for (int z = 0; z < args.splits; ++z) {
      const float* part = args.partials + z * MN;
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (ok[u]) {
          const float4 p = __ldcg(reinterpret_cast<const float4*>(part + off[u]));
          sum[u].x += p.x;
          sum[u].y += p.y;
          sum[u].z += p.z;
          sum[u].w += p.w;
        }
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (ok[u]) {
        const int col = static_cast<int>(off[u] % N);
        if (args.bias) {
          sum[u].x += Ops::to_float(args.bias[col]);
          sum[u].y += Ops::to_float(args.bias[col + 1]);
          sum[u].z += Ops::to_float(args.bias[col + 2]);
          sum[u].w += Ops::to_float(args.bias[col + 3]);
        }
        args.Y[off[u] / 2] = Ops::pack2(sum[u].x, sum[u].y);
        args.Y[off[u] / 2 + 1] = Ops::pack2(sum[u].z, sum[u].w);
      }
  }
}

/// The mid-M kernel. Grid (ceil(M / block_m), ceil(N / block_n), splits), P::threads threads.
/// @tparam B code width.  @tparam T element type.  @tparam P MidmPolicy.
/// @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).
template <int B, class T, class P, int GPT>
__global__ void __launch_bounds__(P::threads, P::ctas_per_sm) midm_gemm_kernel(const MidmArgs args) {
  using L = TiledLayout<B>;
  using Tile = ATile<P::block_m, P::block_k>;
  using Ops = ElementOps<T>;
  constexpr int S = P::stages, MI = P::mi, WN = P::warps_n, WM = P::warps_m, WK = P::warps_k;
  constexpr int kThreads = P::threads;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int kWOff = Tile::elems * 2;                       // weight tiles after the activations
  constexpr int kPOff = kWOff + WN * WK * kTileBytes;          // then the group parameters
  constexpr int kStageBytes = kPOff + WN * WK * GPT * kMidmParamBytes;
  static_assert(kStageBytes % 16 == 0 && kPOff % 16 == 0, "stage parts must stay 16-byte aligned");
  constexpr int ks_per_group = TileGeometry::k_steps / GPT;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int is_last_cta;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wn = warp % WN, wm = (warp / WN) % WM, wk = warp / (WN * WM);
  const int m0 = blockIdx.x * P::block_m;
  const int slab0 = blockIdx.y * WN;
  const int slabs = args.N / TileGeometry::tile_n;
  const int slab = slab0 + wn;
  const bool slab_ok = slab < slabs;  // the last CTA column may be partial (warp-uniform)
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = (kt_end - kt_begin + WK - 1) / WK;
  const int rows_valid = min(P::block_m, args.M - m0);
  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;

  // Copies of CTA k-step `step` into stage `st`: activations (rows past M and k past the split are
  // zero-filled), the WN x WK weight tiles verbatim, and their groups' scales (and zeros).
  auto issue = [&](int step, int st) {
    if (step >= steps) return;  // CTA-uniform
    unsigned char* stage = smem + static_cast<std::size_t>(st) * kStageBytes;
    const int kt0 = kt_begin + step * WK;
    const int k_lim = kt_end * TileGeometry::tile_k;
    std::uint16_t* a_dst = reinterpret_cast<std::uint16_t*>(stage);
    constexpr int a_chunks = P::block_m * Tile::chunks_per_row;
#pragma unroll 2
    for (int i = tid; i < a_chunks; i += kThreads) {
      const int r = i / Tile::chunks_per_row, c = i % Tile::chunks_per_row;
      const int k = kt0 * TileGeometry::tile_k + 8 * c;
      const bool ok = r < rows_valid && k < k_lim;
      const std::uint16_t* src = ok ? args.A + static_cast<std::size_t>(m0 + r) * K + k : args.A;
      ptx::cp_async_16(a_dst + Tile::chunk_offset(r, c), src, ok);
    }
    constexpr int w_chunks = kTileBytes / 16;
#pragma unroll 2
    for (int i = tid; i < WN * WK * w_chunks; i += kThreads) {
      const int ti = i / w_chunks, c = i % w_chunks;
      const int kt = kt0 + ti / WN, s = slab0 + ti % WN;
      if (kt < kt_end && s < slabs)
        ptx::cp_async_16(stage + kWOff + ti * kTileBytes + 16 * c,
                         reinterpret_cast<const unsigned char*>(args.qweight + L::tile_offset(K, kt, s)) + 16 * c);
    }
    // per (tile, group): 8 chunks of scales, 4 of zeros
    for (int i = tid; i < WN * WK * GPT * 12; i += kThreads) {
      const int pi = i / 12, c = i % 12;
      const int ti = pi / GPT, gi = pi % GPT;
      const int kt = kt0 + ti / WN, s = slab0 + ti % WN;
      if (kt >= kt_end || s >= slabs || (c >= 8 && sym)) continue;
      const int grp = GPT == 2 ? 2 * kt + gi : kt * TileGeometry::tile_k / args.group_size;
      const std::size_t off = static_cast<std::size_t>(grp) * N + static_cast<std::size_t>(s) * TileGeometry::tile_n;
      const unsigned char* src = c < 8 ? reinterpret_cast<const unsigned char*>(args.scales + off) + 16 * c
                                       : args.zeros + off + 16 * (c - 8);
      ptx::cp_async_16(stage + kPOff + pi * kMidmParamBytes + 16 * c, src);
    }
  };

  float acc[MI][8][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    issue(s, s);
    ptx::cp_async_commit();
  }
  int rs = 0, ws = S - 1;  // stage read at this step, stage filled at this step
  const int ti_own = wk * WN + wn;

#pragma unroll 1
  for (int step = 0; step < steps; ++step) {
    ptx::cp_async_wait<S - 2>();  // this step's copies have landed (for this thread) ...
    __syncthreads();              // ... and for all threads; the stage read at step - 1 is free again
    issue(step + S - 1, ws);
    ptx::cp_async_commit();
    const unsigned char* stage = smem + static_cast<std::size_t>(rs) * kStageBytes;
    ws = ws + 1 == S ? 0 : ws + 1;
    rs = rs + 1 == S ? 0 : rs + 1;

    const int kt = kt_begin + step * WK + wk;
    if (kt < kt_end && slab_ok) {  // warp-uniform
      const std::uint16_t* a_tile = reinterpret_cast<const std::uint16_t*>(stage);
      const unsigned char* wsrc = stage + kWOff + ti_own * kTileBytes;
      const unsigned char* prm = stage + kPOff + ti_own * GPT * kMidmParamBytes;
      WeightTile<B> wt;
      wt.load_shared(wsrc, lane);
      GroupParams<T> gp;
#pragma unroll
      for (int ks = 0; ks < TileGeometry::k_steps; ++ks) {
        if (ks % ks_per_group == 0) {
          const GroupRaw raw = load_group_shared(prm + (ks / ks_per_group) * kMidmParamBytes, lane, sym);
          gp.template prepare<B>(raw.scales, raw.zeros, sym);
        }
        std::uint32_t a[MI][4];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
          Tile::load_fragment(a[mi], a_tile, 16 * MI * wm + 16 * mi, TileGeometry::tile_k * wk + TileGeometry::mma_k * ks, lane);
        warp_tile_mma<B, T, MI>(acc, a, wt, gp, ks);
      }
    }
  }
  ptx::cp_async_wait_all();
  __syncthreads();  // every warp is done with the ring: it becomes the reduction buffer

  // Cross-warp K reduction (layout [warp][register][lane]: conflict-free), summed in warp order.
  if constexpr (WK > 1) {
    float* red = reinterpret_cast<float*>(smem);
    constexpr int regs = MI * 8 * 4;
    const int wnm = wn + WN * wm;
    if (wk > 0) {
      float* dst = red + ((wk - 1) * WN * WM + wnm) * regs * 32 + lane;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) dst[((mi * 8 + j) * 4 + e) * 32] = acc[mi][j][e];
    }
    __syncthreads();
    if (wk == 0) {
#pragma unroll 1
      for (int w2 = 1; w2 < WK; ++w2) {
        const float* src = red + ((w2 - 1) * WN * WM + wnm) * regs * 32 + lane;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][j][e] += src[((mi * 8 + j) * 4 + e) * 32];
      }
    }
  }

  if (wk == 0 && slab_ok) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int row = m0 + 16 * MI * wm + 16 * mi + lane / 4 + 8 * hh;
          const int col = slab * TileGeometry::tile_n + 8 * j + 2 * (lane % 4);
          if (row >= args.M) continue;
          float v0 = acc[mi][j][2 * hh], v1 = acc[mi][j][2 * hh + 1];
          const std::size_t o = static_cast<std::size_t>(row) * N + col;
          if (args.splits == 1) {
            if (args.bias) {
              v0 += Ops::to_float(args.bias[col]);
              v1 += Ops::to_float(args.bias[col + 1]);
            }
            args.Y[o / 2] = Ops::pack2(v0, v1);
          } else {
            __stcg(reinterpret_cast<float2*>(args.partials + blockIdx.z * static_cast<std::size_t>(args.M) * N + o),
                   make_float2(v0, v1));
          }
        }
  }
  if (args.splits == 1) return;

  // Split-K: the last CTA of this output tile to arrive sums the partials in split order (deterministic).
  if (!split_k_last_arrival(args.counters, blockIdx.y * gridDim.x + blockIdx.x, args.splits, tid, is_last_cta)) return;
  midm_split_fixup<T, kThreads, P::block_n>(args, m0, blockIdx.y * P::block_n, rows_valid, tid);
}

/// Split-K choice of the mid-M kernel: minimises a byte-cost model of the launch. Every resident CTA
/// slot of every wave streams as many weight tiles as a split holds (wave quantisation paid in full),
/// plus the fp32 partials written and read back and a fixed tail (~2 us) for the cross-CTA reduction.
/// Returns the number of splits and the k-tiles per split (a multiple of `wk`, no empty split).
/// @param tiles output tiles (CTAs per split).  @param slots resident CTAs on the GPU.
/// @param tile_bytes weight bytes one CTA streams per k-tile.
inline void midm_choose_splits(std::size_t M, std::size_t N, std::size_t KT, std::size_t tiles, std::size_t slots,
                               int wk, double tile_bytes, int& splits, int& kt_per_split, std::size_t max_counters) {
  constexpr double kSplitTailBytes = 6.0e6;
  const std::size_t w = static_cast<std::size_t>(wk);
  const std::size_t max_splits = tiles <= max_counters ? std::max<std::size_t>(1, std::min<std::size_t>(32, KT / (2 * w))) : 1;
  double best = -1;
  splits = 1;
  kt_per_split = static_cast<int>((KT + w - 1) / w * w);
  for (std::size_t sp = 1; sp <= max_splits; ++sp) {
    std::size_t per = (KT + sp - 1) / sp;
    per = (per + w - 1) / w * w;
    const std::size_t real = (KT + per - 1) / per;
    if (real != sp) continue;  // would leave an empty split
    const std::size_t waves = (tiles * sp + slots - 1) / slots;
    const double cost = static_cast<double>(waves * slots * per) * tile_bytes +
                        (sp > 1 ? 2.0 * static_cast<double>(sp * M * N) * sizeof(float) + kSplitTailBytes : 0.0);
    if (best < 0 || cost < best * 0.999) {
      best = cost;
      splits = static_cast<int>(sp);
      kt_per_split = static_cast<int>(per);
    }
  }
}

}  // namespace detail
}  // namespace lowbit::kernels
