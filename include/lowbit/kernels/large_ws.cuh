/// @file large_ws.cuh
/// @brief sm_90a weight-only GEMM for larger M: the weight tile is dequantized ONCE per CTA and k-tile
///        into a 128-byte-swizzled fp16/bf16 shared buffer, and two consumer warpgroups run
///        shared-memory wgmma m64n256k16 on it (activations by tensor TMA), so dequantization is
///        amortised over the CTA's 128 rows instead of being repeated per 64-row warpgroup.
///
/// ## Why
/// Above M = 256 gemm's tile kernels run at ~0.37x cuBLAS fp16 on an H200 and the `Linear` layer's
/// dequantize + cuBLAS path pays a whole-matrix fp16 round trip (23-25 % of its time at M = 1024).
/// Here a CTA owns a 128 (M) x 256 (N) output tile:
/// - a producer warpgroup (one thread issues; `setmaxnreg` gives its registers to the consumers) fills an
///   S-stage mbarrier ring: the activation box `[128 rows, 64 k]` by 2-D tensor TMA (128-byte swizzle,
///   rows past M zero-filled) and the four 64-column slabs' packed TiledLayout tiles + group
///   parameters by cp.async (`cp.async.mbarrier.arrive.noinc`), exactly as midm_ws.cuh;
/// - each of the 8 consumer warps dequantizes half (two k16 steps) of one slab's 64 x 64 tile: every
///   TiledLayout pair (k, k + 1) of one column becomes one 32-bit store into the K-major swizzled buffer
///   (bank-conflict free: the 8 columns of a store instruction land in 8 different 16-byte chunks), with
///   scale and zero folded as in every lowbit kernel; then `fence.proxy.async` and one named barrier over
///   the 256 consumer threads make the 256 x 64 tile visible to the tensor cores;
/// - each consumer warpgroup issues 4 x wgmma m64n256k16 (its 64 activation rows x the 256 columns),
///   keeps that group in flight while the next k-tile is dequantized, and releases a ring stage once the
///   group that read it has completed. The dequantized tile is triple-buffered: a buffer is rewritten two
///   k-tiles after its last wgmmas were issued, which every consumer warp has waited for before the named
///   barrier of the k-tile in between.
/// - epilogue straight from the accumulators (fp16/bf16 pairs, + bias), or fp32 partials + the
///   deterministic last-CTA split-K reduction of the mid-M kernels when the tiles do not fill the GPU.
///
/// Compiled only for sm_90a (`__CUDA_ARCH_FEAT_SM90_ALL`); elsewhere the body traps.
#pragma once

#include <cuda.h>  // CUtensorMap

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "midm_ws.cuh"

namespace lowbit::kernels {

/// A CTA configuration of the large-M kernel: 128 x 256 output tile, two consumer warpgroups + a
/// producer warpgroup, a `Stages`-deep ring of activation boxes and packed weight tiles.
/// @tparam Stages ring depth (2..8).
template <int Stages>
struct LargeWsPolicy {
  static_assert(Stages >= 2 && Stages <= 8, "large-M kernel: 2 to 8 stages");
  static constexpr bool wgmma = true;            ///< a wgmma kernel (sm_90a)
  static constexpr bool ws = true;               ///< warp-specialized (TMA activation boxes, mbarrier ring)
  static constexpr bool large = true;            ///< the large-M kernel (large_ws.cuh)
  static constexpr int n_tile = 128;             ///< rows per CTA (the activation box's rows)
  static constexpr int warpgroups = 4;           ///< 64-column slabs per CTA (dequantized by 2 warps each)
  static constexpr int warps_n = 4;              ///< slabs per CTA (planner)
  static constexpr int warps_k = 1;              ///< k-tiles per stage (planner)
  static constexpr int stages = Stages;          ///< ring depth
  static constexpr int ctas_per_sm = 1;          ///< occupancy the planner assumes
  static constexpr int consumers = 256;          ///< consumer threads (two warpgroups)
  static constexpr int threads = consumers + 128;  ///< + the producer warpgroup
  static constexpr int producer_regs = 40;       ///< producer registers after setmaxnreg
  static constexpr int consumer_regs = 232;      ///< consumer registers after setmaxnreg
  static constexpr int block_m = 128;            ///< CTA rows
  static constexpr int block_n = 256;            ///< CTA columns
  static constexpr int block_k = 64;             ///< CTA k-step
  static constexpr int a_box_rows = n_tile;      ///< rows of the activation TMA box (rows past M zero-filled)
  static constexpr int a_box_cols = 64;          ///< k of the activation box: 64 2-byte elements = one 128-byte swizzle row
  /// Bytes one activation box delivers, zero-filled rows included: the `full` barrier's expect_tx.
  static constexpr int a_box_bytes = a_box_rows * a_box_cols * 2;
  static constexpr int dq_buffers = 3;           ///< dequantized-tile buffers (see the file comment)
  static constexpr int dq_bytes = block_n * 128; ///< one dequantized 256 x 64 tile
  // setmaxnreg only moves registers inside the CTA's launch allocation (65536 / threads rounded down to a
  // multiple of 8, per thread): asking for more would block the consumers forever
  static_assert(producer_regs * 128 + consumer_regs * consumers <= (65536 / threads) / 8 * 8 * threads,
                "setmaxnreg budgets exceed the CTA's launch register allocation");
  /// Bytes of one ring stage: the activation box, the 4 packed weight tiles, their groups' parameters;
  /// rounded up to 1024 (swizzle atoms).
  template <int B>
  static constexpr std::size_t stage_bytes(int gpt) {
    const std::size_t b = std::size_t(a_box_bytes) +
                          4 * (std::size_t(TiledLayout<B>::words_per_tile) * 4 + std::size_t(gpt) * kMidmParamBytes);
    return (b + 1023) / 1024 * 1024;
  }
  /// The ring and the dequantized-tile buffers.
  template <int B>
  static constexpr std::size_t body_bytes(int gpt) {
    return std::size_t(Stages) * stage_bytes<B>(gpt) + std::size_t(dq_buffers) * dq_bytes;
  }
  /// Dynamic shared memory: body, the 2 x Stages mbarriers, 1024 bytes of alignment slack.
  template <int B>
  static constexpr std::size_t smem_bytes(int gpt) {
    return body_bytes<B>(gpt) + 2 * std::size_t(Stages) * 8 + 1024;
  }
};

/// Whether mid-M policy P is the large-M kernel's (LargeWsPolicy).
template <class P>
inline constexpr bool midm_large_v = requires { requires P::large; };

/// The default large-M policy for width B: as many stages as fit next to the three dequantized buffers.
/// @tparam B code width.
template <int B>
struct LargeWsPolicies {
  /// Ring depth that fits one CTA's shared memory (group 32 worst case), 2..8.
  static constexpr int stages_fit() {
    const std::size_t fixed = LargeWsPolicy<2>::body_bytes<B>(2) - 2 * LargeWsPolicy<2>::stage_bytes<B>(2) + 2048;
    const std::size_t n = (detail::kSm90SmemPerCta - fixed) / LargeWsPolicy<2>::stage_bytes<B>(2);
    return static_cast<int>(n < 2 ? 2 : n > 8 ? 8 : n);
  }
  /// 128 x 256 CTA tiles.
  using L128 = LargeWsPolicy<stages_fit()>;
};

namespace detail {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/// Dequantizes k16 steps 2·KH and 2·KH + 1 of one 64 x 64 TiledLayout tile (`wsrc`, its GPT groups'
/// parameters at `prm`) into the K-major 128-byte-swizzled buffer `dq` (256 columns x 64 k, 128 bytes
/// per column), columns 64·slab.. : each code pair (k, k + 1) of column n becomes one 32-bit store.
/// @tparam B code width.  @tparam T element type.  @tparam GPT groups per k-tile.  @tparam KH k half (0, 1).
template <int B, class T, int GPT, int KH>
LOWBIT_DEVICE void large_dequant_half(unsigned char* dq, const unsigned char* wsrc, const unsigned char* prm,
                                      int slab, int lane, bool sym) {
  constexpr int ks_per_group = TileGeometry::k_steps / GPT;
  const int g = lane / 4, t = lane % 4;
  WeightTile<B> wt;  // only the words of this k half survive dead-code elimination
  wt.load_shared(wsrc, lane);
  GroupParams<T> gp;
#pragma unroll
  for (int kk = 0; kk < 2; ++kk) {
    const int ks = 2 * KH + kk;
    if (kk == 0 || ks % ks_per_group == 0) {
      const GroupRaw raw = load_group_shared(prm + (ks / ks_per_group) * kMidmParamBytes, lane, sym);
      gp.template prepare<B>(raw.scales, raw.zeros, sym);
    }
#pragma unroll
    for (int j = 0; j < TileGeometry::n_tiles; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int q = 2 * (TileGeometry::n_tiles * ks + j) + h;  // B fragment register h of (ks, j)
        const std::uint32_t pair = dequant_pair<B, T>(extract_pair<B>(wt.w, q), gp, j);
        const Sw128Coord p = large_dq_pair(slab, ks, j, h, g, t);  // {column n, k0}: (k0, k0 + 1) of column n
        *reinterpret_cast<std::uint32_t*>(sw128_at<2>(dq, p)) = pair;
      }
  }
}

/// One k16 step of the large-M kernel: m64n256k16 with both operands in shared memory.
template <class T>
LOWBIT_DEVICE void large_wgmma(float (&d)[128], std::uint64_t desc_a, std::uint64_t desc_b) {
  if constexpr (std::is_same_v<T, half_t>) wgmma_m64n256k16_f16_ss(d, desc_a, desc_b, 1);
  else wgmma_m64n256k16_bf16_ss(d, desc_a, desc_b, 1);
}
#endif

/// The large-M kernel. Grid (ceil(M / 128), ceil(N / 256), splits), 384 threads; `tmA` maps A (`[M, K]`,
/// 2-byte elements) with `128 x 64` boxes and 128-byte swizzling.
/// @tparam B code width.  @tparam T element type.  @tparam P LargeWsPolicy.
/// @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).
template <int B, class T, class P, int GPT>
__global__ void __launch_bounds__(P::threads, 1)
    midm_large_kernel(const __grid_constant__ CUtensorMap tmA, const MidmArgs args) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = TiledLayout<B>;
  using Ops = ElementOps<T>;
  constexpr int S = P::stages, kConsumers = P::consumers;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int kABytes = P::a_box_bytes;           // the activation box (first in the stage)
  constexpr int kWOff = kABytes;                    // then the 4 packed weight tiles
  constexpr int kPOff = kWOff + 4 * kTileBytes;     // then 4 x GPT group parameters
  constexpr int kStageBytes = static_cast<int>(P::template stage_bytes<B>(GPT));
  static_assert(kStageBytes % 1024 == 0 && P::dq_bytes % 1024 == 0, "boxes and buffers stay on swizzle atoms");
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) &
                                                         ~static_cast<std::uintptr_t>(1023));
  unsigned char* dq_base = smem + S * kStageBytes;
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(smem + P::template body_bytes<B>(GPT));
  std::uint64_t* empty = full + S;
  __shared__ int is_last_cta;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int m0 = blockIdx.x * P::block_m, n0 = blockIdx.y * P::block_n;
  const int slab0 = blockIdx.y * 4;
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = kt_end - kt_begin;  // >= 1: the planner leaves no split empty
  const std::size_t N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      ptx::mbarrier_init(full + s, 33);              // lane 0's arrive.expect_tx + 32 cp.async arrivals
      ptx::mbarrier_init(empty + s, kConsumers / 32);  // one arrival per consumer warp
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();

  if (tid >= kConsumers) {  // ------------------------- producer warpgroup -------------------------
    ptx::setmaxnreg<false, P::producer_regs>();
    if (warp != kConsumers / 32) return;  // one warp issues
    midm_ws_producer<B, GPT, 4, S>(smem, kStageBytes, kABytes, &tmA, full, empty, args, kt_begin, steps, m0, slab0, lane);
    return;
  }

  // ------------------------------- two consumer warpgroups -------------------------------
  ptx::setmaxnreg<true, P::consumer_regs>();
  const int wg = warp / 4, wq = warp % 4, g = lane / 4, t = lane % 4;
  const int dslab = warp >> 1;  // the slab this warp dequantizes (half of it: k16 steps 2·(warp & 1) ..)
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.f;
#pragma unroll
  for (int i = 0; i < 128; ++i) midm_reg_fence(acc[i]);

#pragma unroll 1
  for (int it = 0; it < steps; ++it) {
    const int s = it % S;
    ptx::mbarrier_wait_parity(full + s, static_cast<std::uint32_t>((it / S) & 1));
    const unsigned char* st = smem + static_cast<std::size_t>(s) * kStageBytes;
    unsigned char* dq = dq_base + (it % P::dq_buffers) * P::dq_bytes;
    const unsigned char* wsrc = st + kWOff + dslab * kTileBytes;
    const unsigned char* prm = st + kPOff + dslab * GPT * kMidmParamBytes;
    if (warp & 1) large_dequant_half<B, T, GPT, 1>(dq, wsrc, prm, dslab, lane, sym);
    else large_dequant_half<B, T, GPT, 0>(dq, wsrc, prm, dslab, lane, sym);
    midm_fence_proxy_async();                // this thread's generic stores -> visible to wgmma
    ptx::named_barrier_sync(1, kConsumers);  // the whole 256 x 64 tile is in dq
    midm_wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < TileGeometry::k_steps; ++ks)
      large_wgmma<T>(acc, midm_desc_sw128(sw128_kstep_at(st, wg * 64, ks)), midm_desc_sw128(sw128_kstep_at(dq, 0, ks)));
    midm_wgmma_commit();
    midm_wgmma_wait1();  // k-tile it - 1's group is done: its ring stage is free
    if (it > 0) {
      __syncwarp();
      if (lane == 0) ptx::mbarrier_arrive(empty + (it - 1) % S);
    }
  }
  midm_wgmma_wait0();
#pragma unroll
  for (int i = 0; i < 128; ++i) midm_reg_fence(acc[i]);

  // ---- epilogue straight from the accumulators: d[i] = row 16·wq + g + 8·((i/2)%2) of the warpgroup's
  // 64, column 8·(i/4) + 2t + i%2 of the CTA's 256 ----
  const int rows_valid = min(P::block_m, args.M - m0);
  const int mrow = m0 + wg * 64 + 16 * wq + g;
#pragma unroll
  for (int i = 0; i < 128; i += 2) {
    const int m = mrow + 8 * ((i / 2) % 2), col = n0 + 8 * (i / 4) + 2 * t;
    if (m >= args.M || col >= args.N) continue;
    const std::size_t o = static_cast<std::size_t>(m) * N + col;
    if (args.splits == 1) {
      float v0 = acc[i], v1 = acc[i + 1];
      if (args.bias) {
        v0 += Ops::to_float(args.bias[col]);
        v1 += Ops::to_float(args.bias[col + 1]);
      }
      args.Y[o / 2] = Ops::pack2(v0, v1);
    } else {
      __stcg(reinterpret_cast<float2*>(args.partials + blockIdx.z * static_cast<std::size_t>(args.M) * N + o),
             make_float2(acc[i], acc[i + 1]));
    }
  }
  if (args.splits == 1) return;
  if (!split_k_last_arrival(args.counters, blockIdx.y * gridDim.x + blockIdx.x, args.splits, tid, is_last_cta,
                            [] { ptx::named_barrier_sync(1, kConsumers); }))
    return;
  midm_split_fixup<T, kConsumers, P::block_n>(args, m0, n0, rows_valid, tid);
#else
  (void)tmA;
  (void)args;
  __trap();  // wgmma, TMA, mbarriers and setmaxnreg need sm_90a
#endif
}

}  // namespace detail
}  // namespace lowbit::kernels
