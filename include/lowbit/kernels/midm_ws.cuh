/// @file midm_ws.cuh
/// @brief Warp-specialized sm_90a mid-M kernel: one producer warp streams activations (tensor TMA,
///        128-byte swizzled) and packed weights + group parameters (cp.async) into an mbarrier ring;
///        WG consumer warpgroups each dequantize their 64-column slab into wgmma A registers and keep one
///        wgmma group in flight while they dequantize the next k-tile.
///
/// ## Why
/// The first wgmma mid-M kernel (midm_wgmma.cuh) runs every k-step as copy-wait → `__syncthreads` →
/// dequantize → wgmma → wait, in lock-step across the CTA; on an H200 that took ~1.2 µs per k-tile per
/// CTA at M = 64 (about 4x the tensor-core time of the step), so the kernel ran at 0.74x cuBLAS fp16 where
/// the weight bytes alone would allow ~3.7x. Here nothing is CTA-wide inside the main loop:
/// - the producer warp waits only for a stage to be released (`empty` mbarrier) and refills it: lane 0
///   starts the activation box `[NT rows, 64 k]` as one TMA copy (rows past M zero-filled by the TMA unit,
///   stored in the canonical K-major 128-byte swizzle that the wgmma B descriptor reads) and the 32 lanes
///   copy the WG weight tiles (TiledLayout bytes verbatim) and their groups' scales/zeros with 16-byte
///   cp.async, each lane signalling the stage's `full` mbarrier when its copies land
///   (`cp.async.mbarrier.arrive.noinc`);
/// - each consumer warpgroup waits on `full`, dequantizes its slab's tile into A fragments (scale and zero
///   folded, as every lowbit kernel), issues the tile's four m64nNTk16 wgmmas, then waits until only that
///   group is pending, so the wgmmas of k-tile i run while k-tile i + 1 is dequantized (two fragment
///   buffers, kept live until their group completes), and releases the stage of k-tile i − 1 (one
///   arrival per warp);
/// - warpgroups never wait for each other inside the loop, so one warpgroup's dequantization overlaps
///   another's tensor-core work on the same SM.
/// Split-K across CTAs, the epilogue through shared memory and the deterministic last-CTA reduction are
/// those of midm_wgmma.cuh (over the consumer threads, with a named barrier: the producer warp has left).
///
/// Compiled only for sm_90a (`__CUDA_ARCH_FEAT_SM90_ALL`); elsewhere the body traps; gemm selects it only
/// when midm_ws_available().
#pragma once

#include <cuda.h>  // CUtensorMap

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "midm_wgmma.cuh"
#include "tensor_map.cuh"

namespace lowbit::kernels {

/// A CTA configuration of the warp-specialized mid-M kernel.
/// @tparam NT        rows per CTA (wgmma N: 64 or 128); NT/2 fp32 accumulators per consumer thread.
/// @tparam WG        consumer warpgroups, each one 64-column slab (block_n = 64·WG); + one producer warp.
/// @tparam Stages    ring depth (k-tiles in flight), 2..16.
/// @tparam CtasPerSm CTAs per SM the planner assumes (also the __launch_bounds__ minimum).
template <int NT, int WG, int Stages, int CtasPerSm = 1>
struct MidmWsPolicy {
  static_assert(NT == 64 || NT == 128, "warp-specialized mid-M kernel: NT = 64 or 128");
  static_assert(WG >= 1 && WG <= 4, "warp-specialized mid-M kernel: 1 to 4 consumer warpgroups");
  static_assert(Stages >= 2 && Stages <= 16, "warp-specialized mid-M kernel: 2 to 16 stages");
  static constexpr bool wgmma = true;            ///< a wgmma kernel (sm_90a)
  static constexpr bool ws = true;               ///< the warp-specialized kernel (midm_ws.cuh)
  static constexpr int n_tile = NT;              ///< rows per CTA = wgmma N
  static constexpr int warpgroups = WG;          ///< consumer warpgroups (slabs) per CTA
  static constexpr int warps_n = WG;             ///< slabs per CTA (planner)
  static constexpr int warps_k = 1;              ///< k-tiles per stage (planner: splits are multiples)
  static constexpr int k_tiles = 1;              ///< k-tiles per stage
  static constexpr int stages = Stages;          ///< ring depth
  static constexpr int ctas_per_sm = CtasPerSm;  ///< occupancy the planner assumes
  static constexpr int consumers = 128 * WG;     ///< consumer threads
  static constexpr int threads = consumers + 32; ///< threads per CTA (+ the producer warp)
  static constexpr int block_m = NT;             ///< CTA rows
  static constexpr int block_n = 64 * WG;        ///< CTA columns
  static constexpr int block_k = 64;             ///< CTA k-step
  static constexpr int a_box_rows = NT;          ///< rows of the activation TMA box (rows past M zero-filled)
  static constexpr int a_box_cols = 64;          ///< k of the activation box: 64 2-byte elements = one 128-byte swizzle row
  /// Bytes one activation box delivers, zero-filled rows included: the `full` barrier's expect_tx.
  static constexpr int a_box_bytes = a_box_rows * a_box_cols * 2;
  /// Row stride (floats) of the epilogue staging: 68 puts a warp's 32 stores in distinct banks.
  static constexpr int stage_stride = 68;
  /// Bytes of one stage: the activation box (a_box_bytes, first: 1024-byte aligned for the swizzle),
  /// the WG weight tiles, their groups' parameters; rounded up to 1024 bytes.
  template <int B>
  static constexpr std::size_t stage_bytes(int gpt) {
    const std::size_t b = std::size_t(a_box_bytes) +
                          std::size_t(WG) * (std::size_t(TiledLayout<B>::words_per_tile) * 4 + std::size_t(gpt) * kMidmParamBytes);
    return (b + 1023) / 1024 * 1024;
  }
  /// The ring, reused after the main loop as the epilogue staging (whichever is larger).
  template <int B>
  static constexpr std::size_t body_bytes(int gpt) {
    return std::max<std::size_t>(std::size_t(Stages) * stage_bytes<B>(gpt),
                                 std::size_t(WG) * NT * stage_stride * sizeof(float));
  }
  /// Dynamic shared memory: body, the 2 x Stages mbarriers, 1024 bytes of alignment slack.
  template <int B>
  static constexpr std::size_t smem_bytes(int gpt) {
    return body_bytes<B>(gpt) + 2 * std::size_t(Stages) * 8 + 1024;
  }
};

/// Whether mid-M policy P is a warp-specialized one (MidmWsPolicy).
template <class P>
inline constexpr bool midm_ws_v = requires { requires P::ws; };

/// Default warp-specialized policies for width B, rings as deep as kMidmRingBudget allows.
/// @tparam B code width.
template <int B>
struct MidmWsPolicies {
  /// Ring depth for rows NT and WG warpgroups that fits kMidmRingBudget (2..16, group 32 worst case).
  template <int NT, int WG>
  static constexpr int stages_fit() {
    const std::size_t sb = MidmWsPolicy<NT, WG, 2, 1>::template stage_bytes<B>(2);
    const std::size_t n = kMidmRingBudget / sb;
    return static_cast<int>(n < 2 ? 2 : n > 16 ? 16 : n);
  }
  /// 64-row CTAs, 4 consumer warpgroups (block_n 256): 32 accumulators per thread.
  using W64 = MidmWsPolicy<64, 4, stages_fit<64, 4>(), 1>;
  /// 128-row CTAs, 2 consumer warpgroups (block_n 128): 64 accumulators per thread (four 128-row
  /// warpgroups would need more registers than the SM has).
  using W128 = MidmWsPolicy<128, 2, stages_fit<128, 2>(), 1>;
};

namespace detail {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/// Producer warp of the warp-specialized kernels (midm_ws.cuh, large_ws.cuh): fills ring stage
/// `it % S` for each of the CTA's `steps` k-tiles, once the consumers have released it (`empty`, from the
/// S-th k-tile on). A stage is the activation box (`a_bytes`: lane 0 arms `full` with them and starts
/// the 2-D TMA copy at row m0; rows past M zero-filled), then the WG packed weight tiles and their GPT
/// groups' parameters (kMidmParamBytes each), copied by the 32 lanes with cp.async, each lane signalling
/// `full` when its copies land (the barrier counts 33 arrivals). Slabs past N are zero-filled: the
/// consumers compute zeros there that are never stored, so no consumer branches around a wgmma (ptxas
/// would serialize them).
/// @tparam B code width.  @tparam GPT groups per k-tile.  @tparam WG slabs per CTA.  @tparam S stages.
template <int B, int GPT, int WG, int S>
LOWBIT_DEVICE void midm_ws_producer(unsigned char* smem, int stage_bytes, int a_bytes, const void* tmA,
                                    std::uint64_t* full, std::uint64_t* empty, const MidmArgs& args, int kt_begin,
                                    int steps, int m0, int slab0, int lane) {
  using L = TiledLayout<B>;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int w_chunks = kTileBytes / 16;
  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const int nslab = min(WG, args.N / TileGeometry::tile_n - slab0);  // slabs of this CTA inside N
  const bool sym = args.sym != 0;
  const auto* qw = reinterpret_cast<const unsigned char*>(args.qweight);
  const auto* sc = reinterpret_cast<const unsigned char*>(args.scales);
#pragma unroll 1
  for (int it = 0; it < steps; ++it) {
    const int s = it % S;
    if (it >= S) ptx::mbarrier_wait_parity(empty + s, static_cast<std::uint32_t>(((it / S) - 1) & 1));
    unsigned char* stage = smem + static_cast<std::size_t>(s) * stage_bytes;
    unsigned char* wdst = stage + a_bytes;
    unsigned char* pdst = wdst + WG * kTileBytes;
    const int kt = kt_begin + it;
    if (lane == 0) {
      ptx::mbarrier_arrive_expect_tx(full + s, static_cast<std::uint32_t>(a_bytes));
      ptx::tma_load_2d(stage, tmA, kt * TileGeometry::tile_k, m0, full + s);
    }
#pragma unroll 4
    for (int i = lane; i < WG * w_chunks; i += 32) {
      const int si = i / w_chunks, c = i % w_chunks;
      const bool ok = si < nslab;
      ptx::cp_async_16(wdst + si * kTileBytes + 16 * c, ok ? qw + L::tile_offset(K, kt, slab0 + si) * 4 + 16 * c : qw, ok);
    }
    // per (slab, group): 8 chunks of scales (64 fp16), 4 of zeros (64 codes; none when symmetric)
    for (int i = lane; i < WG * GPT * 12; i += 32) {
      const int pi = i / 12, c = i % 12;
      const int si = pi / GPT, gi = pi % GPT;
      if (c >= 8 && sym) continue;
      const bool ok = si < nslab;
      const int grp = GPT == 2 ? 2 * kt + gi : kt * TileGeometry::tile_k / args.group_size;
      const std::size_t off = static_cast<std::size_t>(grp) * N + static_cast<std::size_t>(slab0 + si) * TileGeometry::tile_n;
      const unsigned char* src = !ok ? sc : c < 8 ? sc + 2 * off + 16 * c : args.zeros + off + 16 * (c - 8);
      ptx::cp_async_16(pdst + pi * kMidmParamBytes + 16 * c, src, ok);
    }
    ptx::cp_async_mbarrier_arrive_noinc(full + s);
  }
  ptx::cp_async_wait_all();  // nothing of this thread in flight when it leaves
}
#endif

/// The warp-specialized mid-M kernel. Grid (ceil(M / NT), ceil(N / (64·WG)), splits), 128·WG + 32
/// threads; `tmA` maps A (`[M, K]`, 2-byte elements) with `NT x 64` boxes and 128-byte swizzling.
/// @tparam B code width.  @tparam T element type.  @tparam P MidmWsPolicy.
/// @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).
template <int B, class T, class P, int GPT>
__global__ void __launch_bounds__(P::threads, P::ctas_per_sm)
    midm_ws_kernel(const __grid_constant__ CUtensorMap tmA, const MidmArgs args) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = TiledLayout<B>;
  constexpr int S = P::stages, WG = P::warpgroups, NT = P::n_tile, kConsumers = P::consumers;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int kABytes = P::a_box_bytes;           // the activation box (first in the stage)
  constexpr int kWOff = kABytes;                    // then the WG weight tiles
  constexpr int kPOff = kWOff + WG * kTileBytes;    // then WG x GPT group parameters
  constexpr int kStageBytes = static_cast<int>(P::template stage_bytes<B>(GPT));
  static_assert(kStageBytes % 1024 == 0, "stages must keep the activation box on a swizzle atom");
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                                         ~static_cast<std::uintptr_t>(1023));
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(smem + P::template body_bytes<B>(GPT));
  std::uint64_t* empty = full + S;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int m0 = blockIdx.x * NT;
  const int slab0 = blockIdx.y * WG;
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = kt_end - kt_begin;  // >= 1: the planner leaves no split empty
  const bool sym = args.sym != 0;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      ptx::mbarrier_init(full + s, 33);         // lane 0's arrive.expect_tx + 32 cp.async arrivals
      ptx::mbarrier_init(empty + s, 4 * WG);    // one arrival per consumer warp
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();

  if (warp == 4 * WG) {  // ------------------------------ producer warp ------------------------------
    midm_ws_producer<B, GPT, WG, S>(smem, kStageBytes, kABytes, &tmA, full, empty, args, kt_begin, steps, m0, slab0, lane);
    return;
  }

  // ----------------------------------- consumer warpgroups -----------------------------------
  const int wg = warp / 4, wq = warp % 4;

  float acc[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) acc[i] = 0.f;
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);
  std::uint32_t fa[2][4][4];  // fragments of k-tile i (buffer i % 2): live until its wgmma group completes
#pragma unroll
  for (int b = 0; b < 2; ++b)
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
#pragma unroll
      for (int r = 0; r < 4; ++r) fa[b][ks][r] = 0u;

  // release of k-tile `it`'s stage: this warp's shared reads and (after the wait) wgmma reads are done
  auto release = [&](int it) {
    __syncwarp();
    if (lane == 0) ptx::mbarrier_arrive(empty + it % S);
  };
  auto step = [&](auto cur_c, int it) {
    constexpr int cur = decltype(cur_c)::value;
    ptx::mbarrier_wait_parity(full + it % S, static_cast<std::uint32_t>((it / S) & 1));
    {  // every warpgroup, also one of a slab past N (zero tiles): no branch around the wgmmas
      const unsigned char* st = smem + static_cast<std::size_t>(it % S) * kStageBytes;
      midm_wgmma_fragments<B, T, GPT>(fa[cur], wq, st + kWOff + wg * kTileBytes, st + kPOff + wg * GPT * kMidmParamBytes,
                                      lane, sym);
      midm_wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < TileGeometry::k_steps; ++ks) midm_wgmma<T, NT>(acc, fa[cur][ks], midm_desc_sw128(sw128_kstep_at(st, 0, ks)));
      midm_wgmma_commit();
      midm_wgmma_wait1();  // k-tile it - 1's group has completed: its fragments and stage are free
      if (it > 0) {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) midm_reg_use(fa[cur ^ 1][ks]);
      }
    }
    if (it > 0) release(it - 1);
  };
#pragma unroll 1
  for (int it = 0; it < steps; it += 2) {
    step(std::integral_constant<int, 0>{}, it);
    if (it + 1 < steps) step(std::integral_constant<int, 1>{}, it + 1);
  }
  {
    midm_wgmma_wait0();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      midm_reg_use(fa[0][ks]);
      midm_reg_use(fa[1][ks]);
    }
  }
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);

  ptx::named_barrier_sync(1, kConsumers);  // every stage has been consumed: the ring becomes the staging
  // (warpgroups of slabs past N stage zeros that are never stored)
  midm_wgmma_epilogue<T, P, kConsumers>(acc, smem, args, tid, true, [] { ptx::named_barrier_sync(1, P::consumers); });
#else
  (void)tmA;
  (void)args;
  __trap();  // wgmma, TMA and mbarriers need sm_90a: gemm selects this kernel only when midm_ws_available()
#endif
}

}  // namespace detail

/// True when the warp-specialized mid-M kernel can run: the wgmma mid-M kernels are available
/// (midm_wgmma_available()) and the driver offers the tensor-map encoder.
inline bool midm_ws_available() {
  static const bool ok = midm_wgmma_available() && detail::tensor_map_encoder() != nullptr;
  return ok;
}

}  // namespace lowbit::kernels
