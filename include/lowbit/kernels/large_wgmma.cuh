/// @file large_wgmma.cuh
/// @brief sm_90a weight-only GEMM for large M: the weights are dequantized once per CTA and k-tile into a
///        shared-memory operand, and `wgmma.mma_async m64nNk16` reads both operands from shared memory
///        (activations as A, dequantized weights as B), so the dequantization runs beside the tensor work.
///
/// ## Why (the mid-M kernels' limit)
/// The mid-M kernels (midm_wgmma.cuh) feed the dequantized weights to wgmma as the *register* A operand.
/// Session 25 measured (H100, bench/kernels/NOTES.md) that a register-A wgmma and the ALU work of the
/// warps sharing its sub-partition do not overlap: the dequantization adds its whole time, while with
/// both operands in shared memory it hides under the wgmmas completely. Staging the register fragments
/// back into shared memory per warpgroup (session 25's design 1) lost 15-20 %: every warpgroup wrote and
/// read its own 64-column tile. Here the operands are swapped: the output is not transposed, a CTA's
/// activation rows are m64 A operands, one per consumer warpgroup, and one dequantized weight tile is the B
/// operand all of them read, so each weight is dequantized and staged once per CTA and k-tile.
///
/// ## The CTA (one per SM; LargeWgmmaConfig<B, GPT, BM>)
/// Two shapes with the same output area: BM = 128 rows x 256 columns (two consumer warpgroups, m64n256) or
/// BM = 256 x 128 (four, m64n128; gemm's, kLargeWgmmaBlockM). Per k-tile the second does the same tensor work
/// with half the dequantization (128 columns, not 256) over twice the warps.
/// - a producer warpgroup (a whole one so that `setmaxnreg` can hand its registers to the consumers): its
///   first thread fills an S-stage ring; a stage holds the activation box (BM rows x 64 k, one TMA copy,
///   128-byte swizzled, rows past M zero-filled), the slabs' packed weight tiles (one bulk copy each,
///   TiledLayout bytes verbatim) and their groups' scales and zeros (bulk copies), all completing on the
///   stage's `full` mbarrier;
/// - the consumer warpgroups: per k-tile each dequantizes its share of the (slab, k16-step) pairs (two whole
///   slabs at BM = 128, half a slab at BM = 256; `s·(c − z)`, one rounding, midm_wgmma_fragments: the other
///   kernels' values) and writes it with `stmatrix` into a block_n x 64 staging tile in the K-major
///   128-byte-swizzled layout, then, after `fence.proxy.async` and one named barrier of all consumers, issues
///   four `m64nNk16` wgmmas (its 64 rows against all block_n columns) and waits until only those are pending:
///   the wgmmas of k-tile t run while k-tile t + 1 is dequantized. Three staging tiles: the one written at
///   step t was last read by the wgmmas of step t - 3, which every warpgroup has waited for before the
///   barrier of step t - 1.
/// - accumulators: 64 x block_n fp32 per warpgroup, stored to Y with the bias at the end.
/// - clusters (CN = 2, gemm's kLargeWgmmaClusterN): the two CTAs of a cluster cover the same rows and adjacent column
///   blocks; each TMA-loads half of the activation box and multicasts it to both, so the activations cross from L2
///   once per pair. A stage's `empty` mbarrier then counts both CTAs' consumer warps (each arrives on its own and on
///   the peer's, CTA-scope release: `.release.cluster` compiled to blocking ERRBARs and halved the speed), cluster
///   barriers follow the mbarrier init and precede exit, and a CTA past N still loads its share.
///
/// Measured (H100 SXM, 4-bit g128, bench/kernels/NOTES.md "Session 29" and "Session 30"): 256 x 128 CTAs run at
/// 0.63-0.73x of cuBLAS fp16 at M = 1024-4096 on the benchmark shapes in short runs (bench_gemm's sustained graphs:
/// 0.58-0.63x), in 2-CTA clusters 1.00-1.13x faster than that (0.64-0.74x), 128 x 256 ones at 0.56-0.66x (the tile
/// kernels: 0.31-0.40x; dequantize + cuBLAS: 0.72-1.0x, which the 256-row shape beats at M = 512 by 1.09-1.25x).
/// ncu (session 30): the tensor pipe is busy 56 % of the time; each consumer warp's k-tile is one serial chain (stage
/// wait, dequantization, proxy fence, the consumers' barrier, wgmma issue) and the wgmmas fill only part of the next.
/// A split variant that moved the dequantization to a third warpgroup lost (0.45-0.55x, branch
/// `wip/large-wgmma-split`): one warpgroup's dequantization is too slow for four slabs.
///
/// Programmatic dependent launch as the other streaming kernels: the producer requests the first S
/// stages' weights and parameters before `griddepcontrol.wait`, the activations after it; the consumers
/// wait before they write anything.
///
/// compute-sanitizer racecheck reports hazards between the producer's bulk copies and the consumers' loads of
/// the 128-row shape (none in the 256-row one); it reports the same on a minimal correct bulk-copy ring
/// (bench/probe/racecheck_bulk.cu, session 29), so those are the tool's. memcheck is clean on both.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "midm_wgmma.cuh"

namespace lowbit::kernels {

/// CTA rows of the large-M kernel that gemm launches (LargeWgmmaConfig: 128 rows x 256 columns or 256 x 128).
inline constexpr int kLargeWgmmaBlockM = 256;

/// CTAs of a thread-block cluster along N that gemm's large-M kernel launches (LargeWgmmaConfig::cluster_n). H100 SXM,
/// 4-bit g128, 256 x 128 CTAs: 2-CTA clusters were faster than single CTAs at 22 of 24 points (M = 256-4096 on the four
/// benchmark shapes, plain and PDL launches; 1.00-1.13x, median 1.03x; 0.99x at 4096^2 M = 4096), in
/// bench/results/large_probe_NVIDIA_H100_80GB_HBM3_2026-12-08_s30b.json.
inline constexpr int kLargeWgmmaClusterN = 2;

/// Shape and shared-memory layout of the large-M kernel for width B, GPT groups per k-tile and BM rows a CTA.
/// A CTA covers BM x (32768 / BM) outputs with BM / 64 consumer warpgroups, each one m64nN wgmma row block:
/// - BM = 128: 256 columns (four slabs), two consumer warpgroups of m64n256 (128 accumulators a thread), each
///   dequantizing two slabs a k-tile;
/// - BM = 256: 128 columns (two slabs), four consumer warpgroups of m64n128 (64 accumulators), each dequantizing
///   half of one slab's k-tile (two of its four k16-steps): the same tensor work a k-tile with half the
///   dequantization, spread over twice the warps.
/// @tparam B code width.  @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).  @tparam BM CTA rows.
template <int B, int GPT, int BM = kLargeWgmmaBlockM, int CN = kLargeWgmmaClusterN>
struct LargeWgmmaConfig {
  static_assert(BM == 128 || BM == 256, "the large-M kernel's CTA covers 128 or 256 rows");
  static_assert(CN == 1 || CN == 2, "clusters of one or two CTAs along N");
  /// CTAs of a thread-block cluster along N (same rows, adjacent column blocks): each loads 1/CN of the activation
  /// box and multicasts it to all of them, so the activations cross from L2 once per cluster, not once per CTA.
  static constexpr int cluster_n = CN;
  static constexpr int box_rows = BM / CN;            ///< rows of one activation TMA copy
  static constexpr int block_m = BM;                  ///< activation rows per CTA (BM / 64 m64 warpgroups)
  static constexpr int block_n = 128 * 256 / BM;      ///< output columns per CTA (the wgmma N)
  static constexpr int slabs = block_n / TileGeometry::tile_n;  ///< 64-column weight slabs per CTA
  static constexpr int consumer_wgs = BM / 64;        ///< consumer warpgroups
  static constexpr int consumer_threads = 128 * consumer_wgs;  ///< threads of the consumer warpgroups
  static constexpr int threads = consumer_threads + 128;  ///< plus the producer warpgroup (one thread issues the copies)
  static constexpr int acc_regs = block_n / 2;        ///< fp32 accumulators a consumer thread (64 x block_n / 128)
  /// (slab, k16-step) pairs a consumer warpgroup dequantizes a k-tile: 8 (two whole slabs) or 2 (half a slab)
  static constexpr int wg_pairs = TileGeometry::k_steps * slabs / consumer_wgs;
  static_assert(wg_pairs == 8 || wg_pairs == 2, "a warpgroup dequantizes two whole slabs or half of one");
  /// Registers a thread at launch: the 64 K of the SM over the CTA's threads, in setmaxnreg's steps of 8
  /// (168 x 384 threads at BM = 128, 96 x 640 at BM = 256).
  static constexpr int launch_regs = (65536 / threads) / 8 * 8;
  static constexpr int producer_regs = BM == 128 ? 40 : 32;  ///< producer registers after setmaxnreg
  /// Consumer registers after setmaxnreg: what the producer warpgroup hands back, shared by the consumers
  /// (232 at BM = 128: 128 accumulators a thread; 112 at BM = 256: 64).
  static constexpr int consumer_regs = (launch_regs * threads - producer_regs * 128) / consumer_threads / 8 * 8;
  // setmaxnreg only moves registers inside the CTA's launch allocation
  static_assert(producer_regs * 128 + consumer_regs * consumer_threads <= launch_regs * threads,
                "setmaxnreg budgets exceed the CTA's launch register allocation");
  static constexpr int tile_bytes = TiledLayout<B>::words_per_tile * 4;  ///< one packed 64 x 64 weight tile
  static constexpr int act_bytes = block_m * detail::kSw128RowBytes;      ///< the activation box of a stage
  static constexpr int w_off = act_bytes;                                ///< the weight tiles in a stage
  static constexpr int p_off = w_off + slabs * tile_bytes;               ///< then the group parameters
  /// Bytes of one stage (a multiple of 1024: every activation box starts on a swizzle atom).
  static constexpr int stage_bytes = (p_off + slabs * GPT * kMidmParamBytes + 1023) / 1024 * 1024;
  static constexpr int staging_bytes = block_n * detail::kSw128RowBytes;  ///< one dequantized block_n x 64 tile
  static constexpr int staging_tiles = 3;                               ///< staging ring depth
  /// Ring depth: what the 227 KB of a CTA hold after the staging tiles, 1024 bytes of alignment slack and
  /// the mbarriers (at most 8).
  static constexpr int stages = std::min<int>(
      8, static_cast<int>((detail::kSm90SmemPerCta - 1024 - 16 * 8 - std::size_t(staging_tiles) * staging_bytes) / stage_bytes));
  static_assert(stages >= 2, "the large-M ring needs two stages");
  /// Offset of the staging tiles (after the ring), then of the mbarriers (full[stages], empty[stages]).
  static constexpr int staging_off = stages * stage_bytes;
  static constexpr int barrier_off = staging_off + staging_tiles * staging_bytes;  ///< mbarriers: full[stages], empty[stages]
  /// Dynamic shared memory of a CTA.
  static constexpr std::size_t smem_bytes = std::size_t(barrier_off) + 16 * stages + 1024;
};

namespace detail {

/// stmatrix row address offset (bytes, from a staging tile's base) of the lane's row for k16-step `ks`,
/// when warp `wq` of a warpgroup stores the fragments of slab `sb`: the warp's m16k16 fragment of k16-step
/// ks (midm_wgmma_fragments: rows 16·wq.. of the slab's 64 output columns) is four 8x8 matrices, matrix i
/// = lane / 8 holding rows 8·(i % 2).. and k 8·(i / 2).. of it; lane 8i + r supplies row r's address.
/// The staging tile is K-major, 128-byte swizzled (swz128): output column n is row n, and k16-step ks's
/// two 16-byte chunks are 2ks and 2ks + 1.
LOWBIT_HOST_DEVICE constexpr int large_stage_dst(int lane, int wq, int sb, int ks) {
  const int i = lane / 8, r = lane % 8;
  return swz128(64 * sb + 16 * wq + 8 * (i % 2) + r, 2 * ks + i / 2);
}

/// The large-M kernel. Grid (ceil(M / BM), ceil(N / block_n) rounded up to a multiple of CN), in clusters of (1, CN, 1)
/// when CN > 1; LargeWgmmaConfig::threads threads; one CTA per SM. `wargs.amap` maps the activations `[M, K]` with
/// boxes of 64 k x BM / CN rows, 128-byte swizzled. K is not split (`wargs.a.splits` must be 1).
/// @tparam B code width.  @tparam T element type.  @tparam GPT groups per 64-row k-tile.  @tparam BM CTA rows.
/// @tparam CN CTAs of a cluster along N sharing the activation loads.
template <int B, class T, int GPT, int BM = kLargeWgmmaBlockM, int CN = kLargeWgmmaClusterN>
__global__ void __launch_bounds__(LargeWgmmaConfig<B, GPT, BM, CN>::threads, 1)
    large_wgmma_kernel(const __grid_constant__ MidmWsArgs wargs) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using C = LargeWgmmaConfig<B, GPT, BM, CN>;
  using L = TiledLayout<B>;
  using Ops = ElementOps<T>;
  const MidmArgs& args = wargs.a;
  constexpr int S = C::stages;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = ptx::align_shared<1024>(smem_raw);
  auto* full = reinterpret_cast<std::uint64_t*>(smem + C::barrier_off);
  std::uint64_t* empty = full + S;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int m0 = static_cast<int>(blockIdx.x) * C::block_m;
  const int slab0 = static_cast<int>(blockIdx.y) * C::slabs;
  // slabs of this CTA inside N (none in a cluster's CTA past N: it still loads and multicasts its activation share)
  const int nvalid_n = min(C::slabs, args.N / TileGeometry::tile_n - slab0);
  const int nvalid = CN > 1 ? max(0, nvalid_n) : nvalid_n;
  const std::uint32_t crank = CN > 1 ? ptx::cluster_ctarank() : 0u;
  const int KT = args.K / TileGeometry::tile_k;
  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      ptx::mbarrier_init(&full[s], 1u);     // the producer's arrival with the stage's byte count
      // empty: lane 0 of each consumer warp of every CTA of the cluster (each writes its activation share here)
      ptx::mbarrier_init(&empty[s], static_cast<std::uint32_t>(CN * C::consumer_threads / 32));
    }
    ptx::fence_mbarrier_init();
  }
  if constexpr (CN > 1) ptx::cluster_sync();  // the cluster's mbarriers exist before any multicast or remote arrival
  else __syncthreads();

  if (tid >= C::consumer_threads) {  // the producer warpgroup: its first thread issues every copy
    ptx::setmaxnreg<false, C::producer_regs>();
    if (tid == C::consumer_threads) {
      const std::uint32_t tx = static_cast<std::uint32_t>(
          C::act_bytes + nvalid * (C::tile_bytes + GPT * (128 + (sym ? 0 : 64))));
      const int tpg = GPT == 2 ? 1 : args.group_size / TileGeometry::tile_k;
      auto issue_w = [&](int kt) {  // the stage's byte count, weight tiles and group parameters of k-tile kt
        const int st = kt % S;
        unsigned char* stage = smem + st * C::stage_bytes;
        ptx::mbarrier_arrive_expect_tx(&full[st], tx);
        for (int s = 0; s < nvalid; ++s) {
          ptx::bulk_copy_g2s(stage + C::w_off + s * C::tile_bytes, args.qweight + L::tile_offset(K, kt, slab0 + s),
                             C::tile_bytes, &full[st]);
#pragma unroll
          for (int gi = 0; gi < GPT; ++gi) {
            const std::size_t grp = GPT == 2 ? 2 * static_cast<std::size_t>(kt) + gi : static_cast<std::size_t>(kt / tpg);
            const std::size_t off = grp * N + static_cast<std::size_t>(slab0 + s) * TileGeometry::tile_n;
            unsigned char* pdst = stage + C::p_off + (s * GPT + gi) * kMidmParamBytes;
            ptx::bulk_copy_g2s(pdst, args.scales + off, 128, &full[st]);
            if (!sym) ptx::bulk_copy_g2s(pdst + 128, args.zeros + off, 64, &full[st]);
          }
        }
      };
      auto issue_a = [&](int kt) {  // the activation box of k-tile kt (its bytes were expected with the weights')
        unsigned char* dst = smem + (kt % S) * C::stage_bytes;
        if constexpr (CN == 1) {
          ptx::tma_load_2d(dst, &wargs.amap, kt * TileGeometry::tile_k, m0, &full[kt % S]);
        } else {  // this CTA's rows of the box, into every CTA of the cluster
          const int r0 = static_cast<int>(crank) * C::box_rows;
          ptx::tma_load_2d_multicast(dst + r0 * detail::kSw128RowBytes, &wargs.amap, kt * TileGeometry::tile_k, m0 + r0,
                                     &full[kt % S], static_cast<std::uint16_t>((1u << CN) - 1));
        }
      };
      const int pre = min(S, KT);
      for (int kt = 0; kt < pre; ++kt) issue_w(kt);
#if !defined(LOWBIT_TESTING_MIDM_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
      ptx::pdl_wait();
#endif
      ptx::pdl_launch_dependents();
      for (int kt = 0; kt < pre; ++kt) issue_a(kt);
#pragma unroll 1
      for (int kt = pre; kt < KT; ++kt) {
        ptx::mbarrier_wait_parity(&empty[kt % S], static_cast<std::uint32_t>((kt / S - 1) & 1));
        issue_w(kt);
        issue_a(kt);
      }
    }
    if constexpr (CN > 1) {  // the consumers' final cluster barrier counts every thread
      __syncwarp();
      ptx::cluster_sync();
    }
    return;  // no CTA-wide barrier follows
  }

  ptx::setmaxnreg<true, C::consumer_regs>();
#if !defined(LOWBIT_TESTING_MIDM_SKIP_PDL_WAIT)
  ptx::pdl_wait();
#endif
  ptx::pdl_launch_dependents();
  const int wg = warp / 4, wq = warp % 4;
  const std::uint32_t smem_s = ptx::smem_addr(smem);
  const std::uint32_t staging_s = smem_s + C::staging_off;
  // accumulators: the first k-tile's first wgmma overwrites them (scale-d 0); zeroing them instead made ptxas
  // serialize the wgmmas (C7515: non-wgmma instructions defining accumulator registers)
  float acc[C::acc_regs];

#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    const int st = kt % S;
    ptx::mbarrier_wait_parity(&full[st], static_cast<std::uint32_t>((kt / S) & 1));
    const unsigned char* stage = smem + st * C::stage_bytes;
    const std::uint32_t stile = staging_s + (kt % C::staging_tiles) * C::staging_bytes;
    // slabs past N are skipped (warp-uniform): their columns are never stored, so their staging rows may hold anything
    auto stage_slab = [&](int sb, auto ks0) {  // k16-steps ks0 .. ks0 + (wg_pairs, at most 4) of slab sb
      constexpr int KS0 = decltype(ks0)::value, KS1 = KS0 + (C::wg_pairs < 4 ? C::wg_pairs : 4);
      std::uint32_t a[4][4];
      const auto* wsrc = reinterpret_cast<const std::uint32_t*>(stage + C::w_off + sb * C::tile_bytes);
      midm_wgmma_fragments<B, T, GPT, KS0, KS1>(a, wq, wsrc, stage + C::p_off + sb * GPT * kMidmParamBytes, lane, sym);
#pragma unroll
      for (int ks = KS0; ks < KS1; ++ks)
        ptx::stmatrix_x4(stile + large_stage_dst(lane, wq, sb, ks), a[ks][0], a[ks][1], a[ks][2], a[ks][3]);
    };
    // this warpgroup's (slab, k16-step) pairs, slab-major: p0 .. p0 + wg_pairs
    const int p0 = wg * C::wg_pairs, ks_steps = TileGeometry::k_steps;
    if constexpr (C::wg_pairs >= 4) {  // whole slabs
#pragma unroll
      for (int sl = 0; sl < C::wg_pairs / 4; ++sl) {
        const int sb = p0 / ks_steps + sl;
        if (sb < nvalid) stage_slab(sb, std::integral_constant<int, 0>{});
      }
    } else {  // half a slab: k16-steps 0-1 or 2-3
      const int sb = p0 / ks_steps;
      if (sb < nvalid) {
        if (p0 % ks_steps == 0) stage_slab(sb, std::integral_constant<int, 0>{});
        else stage_slab(sb, std::integral_constant<int, 2>{});
      }
    }
    midm_fence_proxy_async();            // the staging stores, visible to wgmma (async proxy)
    ptx::named_barrier_sync(1, C::consumer_threads);  // both warpgroups' halves of the staging tile are written
#pragma unroll
    for (int i = 0; i < C::acc_regs; ++i) midm_reg_fence(acc[i]);
    midm_wgmma_fence();
    {
      const std::uint64_t da = sw128_desc(smem_s + st * C::stage_bytes + wg * 64 * kSw128RowBytes);
      const std::uint64_t db = sw128_desc(stile);
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        const std::uint64_t step = static_cast<std::uint64_t>((kWgmmaKStepBytes >> 4) * ks);
        const int accumulate = kt > 0 || ks > 0;
        constexpr bool f16 = std::is_same_v<T, half_t>;
        if constexpr (C::block_n == 256) {
          if constexpr (f16) wgmma_m64n256k16_f16_ss(acc, da + step, db + step, accumulate);
          else wgmma_m64n256k16_bf16_ss(acc, da + step, db + step, accumulate);
        } else {
          if constexpr (f16) wgmma_m64n128k16_f16_ss(acc, da + step, db + step, accumulate);
          else wgmma_m64n128k16_bf16_ss(acc, da + step, db + step, accumulate);
        }
      }
    }
    midm_wgmma_commit();
#pragma unroll
    for (int i = 0; i < C::acc_regs; ++i) midm_reg_fence(acc[i]);
    midm_wgmma_wait1();  // the previous k-tile's wgmmas are done: its stage may be refilled
    if (kt > 0) {
      __syncwarp();  // the warp's reads of that stage are ordered before its release
      if (lane == 0) {
        if constexpr (CN == 1) {
          ptx::mbarrier_arrive(&empty[(kt - 1) % S]);
        } else {  // every CTA of the cluster writes a share of this stage
#pragma unroll
          for (int r = 0; r < CN; ++r) ptx::mbarrier_arrive_cluster(&empty[(kt - 1) % S], static_cast<std::uint32_t>(r));
        }
      }
    }
  }
  midm_wgmma_wait0();
#pragma unroll
  for (int i = 0; i < C::acc_regs; ++i) midm_reg_fence(acc[i]);

  // accumulator j of the m64nN fragment: n8-block j / 4, row 16·wq + g (+8 for the upper two), columns 2t, 2t + 1
  const int g = lane / 4, t = lane % 4;
  const int r0 = m0 + 64 * wg + 16 * wq + g;
  const int ncol0 = slab0 * TileGeometry::tile_n;
#pragma unroll
  for (int j = 0; j < C::block_n / 8; ++j) {
    const int n = ncol0 + 8 * j + 2 * t;
    if (n < args.N) {
      float b0 = 0.f, b1 = 0.f;
      if (args.bias) {
        b0 = Ops::to_float(args.bias[n]);
        b1 = Ops::to_float(args.bias[n + 1]);
      }
      if (r0 < args.M) args.Y[(static_cast<std::size_t>(r0) * N + n) / 2] = Ops::pack2(acc[4 * j] + b0, acc[4 * j + 1] + b1);
      if (r0 + 8 < args.M)
        args.Y[(static_cast<std::size_t>(r0 + 8) * N + n) / 2] = Ops::pack2(acc[4 * j + 2] + b0, acc[4 * j + 3] + b1);
    }
  }
  // no CTA of the cluster exits while another may still arrive on its mbarriers
  if constexpr (CN > 1) ptx::cluster_sync();
#else
  (void)wargs;
  __trap();  // wgmma needs sm_90a: gemm selects this kernel only when midm_wgmma_available()
#endif
}

}  // namespace detail
}  // namespace lowbit::kernels
