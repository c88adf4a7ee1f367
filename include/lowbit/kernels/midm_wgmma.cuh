/// @file midm_wgmma.cuh
/// @brief sm_90a variant of the mid-M kernel (midm.cuh) on warpgroup MMA: `wgmma.mma_async m64nNk16`
///        with the dequantized weights as the register A operand and the activation tile as the
///        shared-memory B operand, so one warpgroup covers 64 output columns x N (= 64 or 128) rows.
///
/// Transposed product `Y^T = W^T A^T`: a warpgroup owns one 64-column slab; warp w of it supplies rows
/// 16w..16w+15 of W^T (output columns), whose m16n8k16 A fragment is exactly the TiledLayout B
/// fragments of n8-tiles 2w and 2w+1 side by side (the decode kernel's transposed form), dequantized
/// with scale and zero folded (`s·(c − z)`, one rounding, as the other kernels). The activation stage
/// `[N rows, 64 k]` is stored with the 128-byte swizzle (ATile's XOR swizzle is exactly that layout for
/// 64-column tiles), which is the canonical K-major wgmma B layout; a k16 step advances the descriptor
/// start by 32 bytes. Same copy ring, split-K, reduction and act-order handling as midm.cuh; the
/// accumulators go through shared memory once so that Y (or the fp32 partials) is written coalesced.
///
/// Compiled only for sm_90a (`__CUDA_ARCH_FEAT_SM90_ALL`); elsewhere the body traps, and gemm selects it
/// only when built with `LOWBIT_MIDM_WGMMA` (every CUDA architecture of the build sm_90a) on a compute
/// capability 9.0 device (midm_wgmma_available()).
#pragma once

#include <type_traits>

#include <cuda.h>  // CUtensorMap

#include "device_info.cuh"
#include "midm.cuh"
#include "wgmma_layout.hpp"

namespace lowbit::kernels {

/// Shared memory the default wgmma policies give their cp.async ring (of 227 KB per CTA).
inline constexpr std::size_t kMidmRingBudget = 208 * 1024;

/// A CTA configuration of the wgmma mid-M kernel.
/// @tparam NT        rows per CTA (wgmma N: 64 or 128); accumulators NT/2 fp32 per thread.
/// @tparam WG        warpgroups per CTA, each one 64-column slab (block_n = 64·WG).
/// @tparam Stages    cp.async ring depth.
/// @tparam CtasPerSm CTAs per SM the planner assumes (also the __launch_bounds__ minimum).
/// @tparam KS        k-tiles per k-step (one barrier per k-step; a warpgroup dequantizes k-tile i + 1
///                   while the wgmmas of k-tile i run).
/// @tparam WS        0: lock-step (midm_wgmma_kernel). 1-3: warp-specialized (midm_wgmma_ws_kernel): an extra
///                   producer warpgroup fills the ring and each stage completes on a full/empty mbarrier pair,
///                   so the warpgroups never meet at a CTA barrier in the main loop (KS = 1 only); 1 copies
///                   the weight tiles with one bulk copy per slab, 2 with 16-byte cp.async like the rest, 3 as
///                   1 and the activation tile with one tensor copy (TMA, MidmWsArgs::amap).
template <int NT, int WG, int Stages, int CtasPerSm, int KS = 1, int WS = 0>
struct MidmWgmmaPolicy {
  static_assert(NT == 64 || NT == 128 || NT == 256, "wgmma N of the mid-M kernel: 64, 128 or 256");
  static_assert(!WS || KS == 1, "the warp-specialized mid-M kernel takes one k-tile per stage");
  static constexpr bool wgmma = true;            ///< the wgmma kernel (midm_wgmma.cuh)
  static_assert(WS >= 0 && WS <= 3, "WS: 0 lock-step, 1-3 warp-specialized");
  static constexpr bool ws = WS != 0;            ///< warp-specialized variant (producer warpgroup + mbarriers)
  static constexpr bool ws_bulk_weights = WS == 1 || WS == 3;  ///< its weight tiles by bulk copy (else cp.async)
  static constexpr bool ws_tma_acts = WS == 3;   ///< its activation tile by tensor copy (else cp.async)
  static constexpr int n_tile = NT;              ///< rows per CTA = wgmma N
  static constexpr int warpgroups = WG;          ///< warpgroups (slabs) per CTA
  static constexpr int warps_n = WG;             ///< slabs per CTA (planner)
  static constexpr int warps_k = KS;             ///< k-tiles per k-step (planner: splits are multiples)
  static constexpr int k_tiles = KS;             ///< k-tiles per k-step
  static constexpr int stages = Stages;          ///< ring depth
  static constexpr int ctas_per_sm = CtasPerSm;  ///< occupancy the planner assumes
  static constexpr int consumer_threads = 128 * WG;  ///< the warpgroups' threads (they run the epilogue)
  static constexpr int threads = consumer_threads + (WS ? 128 : 0);  ///< threads per CTA (+ the producer warpgroup)
  static constexpr int block_m = NT;             ///< CTA rows
  static constexpr int block_n = 64 * WG;        ///< CTA columns
  static constexpr int block_k = 64 * KS;        ///< CTA k-step
  /// Row stride (floats) of the epilogue staging: 68 puts a warp's 32 stores in distinct banks.
  static constexpr int stage_stride = 68;
  /// Bytes of one stage (a multiple of 1024: every activation tile starts on a swizzle atom).
  template <int B>
  static constexpr std::size_t stage_bytes(int gpt) {
    const std::size_t b = std::size_t(KS) * (std::size_t(NT) * 128 +
                          std::size_t(WG) * (std::size_t(TiledLayout<B>::words_per_tile) * 4 + std::size_t(gpt) * kMidmParamBytes));
    return (b + 1023) / 1024 * 1024;
  }
  /// Offset of the warp-specialized variant's mbarriers (full[Stages], then empty[Stages]): past both the
  /// ring and the epilogue staging, which reuses the ring's bytes.
  template <int B>
  static constexpr std::size_t barrier_offset(int gpt) {
    return (std::max<std::size_t>(std::size_t(Stages) * stage_bytes<B>(gpt),
                                  std::size_t(WG) * NT * stage_stride * sizeof(float)) + 7) / 8 * 8;
  }
  /// Dynamic shared memory: the ring (or the epilogue staging), the mbarriers of the warp-specialized
  /// variant, and 1024 bytes of alignment slack.
  template <int B>
  static constexpr std::size_t smem_bytes(int gpt) {
    return barrier_offset<B>(gpt) + (WS ? std::size_t(Stages) * 16 : 0) + 1024;
  }
};

/// Default wgmma policies. W64 and W128: 4 warpgroups (block_n = 256 keeps the activation re-reads at
/// M·K·2·N/256), rings as deep as ~208 KB of shared memory allow (the first H200 run, 4-5 stages, streamed
/// only ~13 GB/s per SM), W64's capped at 8 stages. W256: 2 warpgroups, 4 stages (measured, below).
/// @tparam B code width.
template <int B>
struct MidmWgmmaPolicies {
  /// Ring depth that fits `kMidmRingBudget` bytes for rows NT and KS k-tiles per step (3..Cap: the
  /// kernel keeps two stages in use).
  template <int NT, int KS, int Cap = 12, int WG = 4>
  static constexpr int stages_fit() {
    const std::size_t sb = MidmWgmmaPolicy<NT, WG, 2, 1, KS>::template stage_bytes<B>(2);
    const std::size_t n = kMidmRingBudget / sb;
    return static_cast<int>(n < 3 ? 3 : n > Cap ? Cap : n);
  }
  /// 16 < M <= 64 (gemm's choice on sm_90a from M = 17): 1 k-tile per step (with 2 k-tiles per step the
  /// kernel spilled at 128 registers), at most 8 stages: H100, 4-bit g128 M = 64, same run
  /// (bench/probe/large_probe.cu, bench/results/large_probe_*_s16*.log), 8 stages against the 11 that fit:
  /// 35.6 / 101.3 / 96.4 / 18.3 us against 36.3 / 104.9 / 99.7 / 18.4 us on 8192^2 / 8192 x 28672 /
  /// 28672 x 8192 / 4096^2.
  using W64ls = MidmWgmmaPolicy<64, 4, stages_fit<64, 1, 8>(), 1, 1>;
  /// Warp-specialized W64 (midm_wgmma_ws_kernel): 4 warpgroups and a producer warpgroup (20 warps: 96 registers
  /// a thread, no spills at any width), 8 stages, weights by cp.async at 2-4 bits (WS = 2) and by one bulk copy
  /// per slab at 8 bits (WS = 1). gemm takes it where a CTA streams at least kMidmWsMinKTiles k-tiles, else
  /// W64ls. H100, g128, M = 64, same run against W64ls (us, 8192^2 / 8192 x 28672 / 28672 x 8192 / 4096^2;
  /// bench/results/large_probe_*_2026-12-07_s25_ws_wg.log): 4 bits 33.8 / 91.8 / 86.9 / 19.2 against 35.2 /
  /// 101.1 / 93.7 / 18.3; 2 bits 32.8 / 88.8 / 83.8 / 18.9 against 34.4 / 100.7 / 92.8 / 17.6; 8 bits (bulk)
  /// 38.9 / 104.7 / 99.1 / 20.8 against 40.2 / 115.5 / 108.4 / 20.1 (cp.async: 43.2 / 129.8 / 121.7). 11
  /// stages were 2-6 % slower than 8.
  using W64 = MidmWgmmaPolicy<64, 4, stages_fit<64, 1, 8>(), 1, 1, B == 8 ? 1 : 2>;
  /// 64 < M <= 256 where W256 is not taken (two row blocks above 128); 1 k-tile per step (128 registers at
  /// 512 threads).
  using W128ls = MidmWgmmaPolicy<128, 4, stages_fit<128, 1>(), 1, 1>;
  /// Warp-specialized W128: 3 warpgroups and a producer warpgroup (16 warps: 128 registers a thread; with 4
  /// warpgroups the 96 registers of 17 warps spilled 552 bytes), block_n = 192, weights by bulk copy and the
  /// activation tile by one TMA box (WS = 3). gemm takes it unless its plan splits K more than W128ls's
  /// (block_n 256). H100, g128, M = 128, same run, against W128ls (us, 8192^2 / 28672 x 8192 / 4096^2): 4 bits
  /// 45.9 / 120.2 / 26.8 against 50.4 / 134.9 / 27.8; 8 bits 49.4 / 133.5 / 27.6 against 62.4 / 170.1 / 32.8;
  /// on 8192 x 28672 (150 column blocks, split 4, against 112 unsplit) 180.9 against 141.4.
  using W128 = MidmWgmmaPolicy<128, 3, stages_fit<128, 1, 12, 3>(), 1, 1, 3>;
  /// 128 < M <= 256 where gemm's midm_prefers_w256 says so (large weights; 8 bits always): one 256-row
  /// block, so each weight tile is dequantized once instead of once per 128-row block; two warpgroups
  /// (block_n = 128) with 128 fp32 accumulators a thread (up to 255 registers at 256 threads, no spills at
  /// any width), 4 stages. H100, 4-bit g128, same run against W128 (us, M = 192 / 256): 8192^2 74.1 / 76.7
  /// against 80.4 / 80.1; 8192 x 28672 264.7 / 269.2 against 287.2 / 287.8; 28672 x 8192 230.7 / 235.2
  /// against 250.9 / 252.8; but 4096^2 30.3 / 33.8 against 30.7 / 32.1. 5 stages were slower than 4
  /// (81.8 against 78.1 us at 8192^2, M = 256), 3 slower still.
  using W256 = MidmWgmmaPolicy<256, 2, 4, 1, 1>;
};

namespace detail {

/// Threads of the warp-specialized kernel's producer warpgroup.
inline constexpr int kMidmWsProducerThreads = 128;

#if !defined(LOWBIT_TESTING_MIDM_WS_DIAG)
/// Diagnostic bits of the warp-specialized mid-M kernel (kMidmWsDiag): defined only by probe builds of
/// bench/probe/large_probe.cu; 0 everywhere else.
#define LOWBIT_TESTING_MIDM_WS_DIAG 0
#endif
/// Probe builds only (bench/probe/large_probe.cu, wrong results by design), bits: 1 = the producer copies only the
/// first S stages and then just completes the barriers (the consumers' rate alone); 2 = the consumers only
/// wait for and release the stages (the producer's rate alone); 4 = the consumers skip the dequantization (their
/// wgmmas read the fragment registers as they are); 8 = the consumers skip the wgmmas (the fragments are still
/// computed: the step loop keeps them live); 16 = 64-row fp16 policies issue their wgmmas with both operands
/// from shared memory (midm_wgmma_ktile_ss_probe), the fragments still computed. 0 in every other build.
inline constexpr int kMidmWsDiag = LOWBIT_TESTING_MIDM_WS_DIAG;

/// The warp-specialized kernel's activation copies: producer thread `t` (0..127) copies, for j = 0 .. NT / 16 - 1,
/// the 16-byte chunk `t % 8` of tile row `t / 8 + 16j`. Returns that chunk's byte offset in the stage's
/// ATile<NT, 64> (128-byte swizzle): the swizzled position depends on the row only through r % 8 = (t / 8) % 8,
/// so it is one per-thread offset plus 2048 j (constant under unrolling).
LOWBIT_HOST_DEVICE constexpr int midm_ws_act_dst(int t, int j) {
  const int c = t % 8, r = t / 8;
  return r * 128 + ((c ^ r) & 7) * 16 + j * 2048;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The register-A wgmma wrappers below differ only in N (64/128/256) and the element type, so their
// inline PTX is assembled from these pieces: the accumulator list "%0 .. %(N/2-1)" and its "+f"
// operands (LOWBIT_WG_R<ND>, LOWBIT_WG_D<ND>, ND = N/2 fp32 per thread), then the four A registers, the
// B descriptor and the scale-d predicate, numbered after the accumulators.
#define LOWBIT_WG_R32 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
                      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define LOWBIT_WG_R64 LOWBIT_WG_R32 ", " \
                      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
                      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define LOWBIT_WG_R128 LOWBIT_WG_R64 ", " \
                       "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
                       "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
                       "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
                       "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define LOWBIT_WG_D8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), \
                        "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define LOWBIT_WG_D32 LOWBIT_WG_D8(0), LOWBIT_WG_D8(8), LOWBIT_WG_D8(16), LOWBIT_WG_D8(24)
#define LOWBIT_WG_D64 LOWBIT_WG_D32, LOWBIT_WG_D8(32), LOWBIT_WG_D8(40), LOWBIT_WG_D8(48), LOWBIT_WG_D8(56)
#define LOWBIT_WG_D128 LOWBIT_WG_D64, LOWBIT_WG_D8(64), LOWBIT_WG_D8(72), LOWBIT_WG_D8(80), LOWBIT_WG_D8(88), \
                       LOWBIT_WG_D8(96), LOWBIT_WG_D8(104), LOWBIT_WG_D8(112), LOWBIT_WG_D8(120)
// One wrapper: D (+)= A·B, wgmma m64nNk16 (TY = "f16" or "bf16"): A (64 x 16) from registers (per warp
// the mma.m16n8k16 A fragment of its 16 rows), B (16 x N) K-major in 128-byte-swizzled shared memory
// (descriptor), D ND = N/2 fp32 per thread. A_AND_DESC and PRED are the operand numbers after D's.
#define LOWBIT_WG_RS(NAME, N, TY, ND, A_AND_DESC, PRED)                                                        \
  LOWBIT_DEVICE void NAME(float (&d)[ND], const std::uint32_t (&a)[4], std::uint64_t desc_b, int accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                          \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " {" LOWBIT_WG_R##ND            \
                 "}, " A_AND_DESC ", p, 1, 1, 0;\n}\n"                                                       \
                 : LOWBIT_WG_D##ND                                                                           \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));                \
  }
LOWBIT_WG_RS(wgmma_m64n64k16_f16_rs, 64, "f16", 32, "{%32, %33, %34, %35}, %36", "%37")
LOWBIT_WG_RS(wgmma_m64n64k16_bf16_rs, 64, "bf16", 32, "{%32, %33, %34, %35}, %36", "%37")
LOWBIT_WG_RS(wgmma_m64n128k16_f16_rs, 128, "f16", 64, "{%64, %65, %66, %67}, %68", "%69")
LOWBIT_WG_RS(wgmma_m64n128k16_bf16_rs, 128, "bf16", 64, "{%64, %65, %66, %67}, %68", "%69")
LOWBIT_WG_RS(wgmma_m64n256k16_f16_rs, 256, "f16", 128, "{%128, %129, %130, %131}, %132", "%133")
LOWBIT_WG_RS(wgmma_m64n256k16_bf16_rs, 256, "bf16", 128, "{%128, %129, %130, %131}, %132", "%133")
#undef LOWBIT_WG_RS
// Shared-memory A and B (both K-major, 128-byte swizzled descriptors): D (+)= A·B, wgmma m64nNk16.
#define LOWBIT_WG_SS(NAME, N, TY, ND, DESCS, PRED)                                                          \
  LOWBIT_DEVICE void NAME(float (&d)[ND], std::uint64_t desc_a, std::uint64_t desc_b, int accumulate) {      \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                         \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " {" LOWBIT_WG_R##ND           \
                 "}, " DESCS ", p, 1, 1, 0, 0;\n}\n"                                                       \
                 : LOWBIT_WG_D##ND                                                                          \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate));                                              \
  }
LOWBIT_WG_SS(wgmma_m64n64k16_f16_ss, 64, "f16", 32, "%32, %33", "%34")
LOWBIT_WG_SS(wgmma_m64n128k16_f16_ss, 128, "f16", 64, "%64, %65", "%66")
LOWBIT_WG_SS(wgmma_m64n128k16_bf16_ss, 128, "bf16", 64, "%64, %65", "%66")
LOWBIT_WG_SS(wgmma_m64n256k16_f16_ss, 256, "f16", 128, "%128, %129", "%130")
LOWBIT_WG_SS(wgmma_m64n256k16_bf16_ss, 256, "bf16", 128, "%128, %129", "%130")
#undef LOWBIT_WG_SS
#undef LOWBIT_WG_D128
#undef LOWBIT_WG_D64
#undef LOWBIT_WG_D32
#undef LOWBIT_WG_D8
#undef LOWBIT_WG_R128
#undef LOWBIT_WG_R64
#undef LOWBIT_WG_R32

LOWBIT_DEVICE void midm_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
LOWBIT_DEVICE void midm_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
LOWBIT_DEVICE void midm_wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
/// Waits until at most one wgmma group of this warpgroup is pending (the one just committed).
LOWBIT_DEVICE void midm_wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
LOWBIT_DEVICE void midm_fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/// Keeps the compiler from moving accumulator accesses across the wgmma fences.
LOWBIT_DEVICE void midm_reg_fence(float& r) { asm volatile("" : "+f"(r)::"memory"); }
/// Keeps A-fragment registers live (unmodified) until here: wgmma reads them asynchronously.
LOWBIT_DEVICE void midm_reg_use(const std::uint32_t (&a)[4]) {
  asm volatile("" ::"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]) : "memory");
}

/// One k16-step wgmma of NT rows for element type T.
template <class T, int NT>
LOWBIT_DEVICE void midm_wgmma(float (&d)[NT / 2], const std::uint32_t (&a)[4], std::uint64_t desc) {
  constexpr bool f16 = std::is_same_v<T, half_t>;
  if constexpr (NT == 64) {
    if constexpr (f16) wgmma_m64n64k16_f16_rs(d, a, desc, 1); else wgmma_m64n64k16_bf16_rs(d, a, desc, 1);
  } else if constexpr (NT == 128) {
    if constexpr (f16) wgmma_m64n128k16_f16_rs(d, a, desc, 1); else wgmma_m64n128k16_bf16_rs(d, a, desc, 1);
  } else {
    if constexpr (f16) wgmma_m64n256k16_f16_rs(d, a, desc, 1); else wgmma_m64n256k16_bf16_rs(d, a, desc, 1);
  }
}

/// The wgmma A fragments of warp W (0..3) of a warpgroup for one 64 x 64 k-tile: rows 16·W.. of W^T
/// (output columns 8j + lane/4 of the slab for n8-tiles j = 2W, 2W + 1), k16-steps 0..3, dequantized
/// with scale and zero folded, `s·(c − z)` rounded once (the other kernels' value). The codes are
/// centered exactly by decode_centered_pair (one lop3 and one packed add or FMA per pair), then one
/// packed multiply applies the scale; only the lane's words and parameters that hold the two n8-tiles
/// are loaded (32-bit shared loads). `wsrc` is the tile's TiledLayout words in shared memory, `prm` its
/// GPT groups' parameters (kMidmParamBytes each: 64 scales at position 8g + j, then 64 zero codes).
/// Only k16-steps KS0 <= ks < KS1 are written (a[ks] of the others is left as it was; the large-M kernel's
/// 256-row CTA splits a slab's k-tile between two warpgroups), and only their words and groups are loaded.
/// @tparam B code width.  @tparam T element type.  @tparam W warp of the warpgroup.  @tparam GPT groups per k-tile.
/// @tparam KS0, KS1 the k16-steps computed.
template <int B, class T, int W, int GPT, int KS0 = 0, int KS1 = TileGeometry::k_steps>
LOWBIT_DEVICE void midm_wgmma_fragments_w(std::uint32_t (&a)[4][4], const std::uint32_t* wsrc, const unsigned char* prm,
                                          int lane, bool sym) {
  using L = TiledLayout<B>;
  using Ops = ElementOps<T>;
  constexpr int E1 = centered_e1_v<B, T>;
  constexpr int ks_per_group = TileGeometry::k_steps / GPT;
  constexpr int j0 = 2 * W;  // and j1 = j0 + 1
  const int g = lane / 4;
  std::uint32_t w[L::words_per_lane];  // only the words of n8-tiles j0, j1 are loaded (the rest is dead)
#pragma unroll
  for (int i = 0; i < L::words_per_lane; ++i) w[i] = wsrc[L::lane_word_offset(lane, i)];
#pragma unroll
  for (int gi = 0; gi < GPT; ++gi) {
    if (gi * ks_per_group >= KS1 || (gi + 1) * ks_per_group <= KS0) continue;  // no step of this group is asked for
    const unsigned char* gp = prm + gi * kMidmParamBytes;
    // scales of columns 8j0 + g and 8j1 + g: positions 8g + j0, 8g + j0 + 1 (one word)
    const std::uint32_t sw = *reinterpret_cast<const std::uint32_t*>(gp + 16 * g + 4 * W);
    const std::uint32_t s0 = Ops::scale2(sw & 0xffffu), s1 = Ops::scale2(sw >> 16);
    constexpr std::uint32_t sym_zero = 1u << (B - 1);
    const std::uint32_t zz = sym ? sym_zero * 0x101u : *reinterpret_cast<const std::uint16_t*>(gp + 128 + 8 * g + 2 * W);
    const std::uint32_t z0 = zz & 0xffu, z1 = zz >> 8;
    std::uint32_t n0 = 0, n1 = 0, n0e = 0, n1e = 0;
    float f0 = 0.f, f1 = 0.f, sf0 = 0.f, sf1 = 0.f;
    if constexpr (magic_exact_v<B, T>) {
      n0 = neg_biased_zero2<T>(z0);
      n1 = neg_biased_zero2<T>(z1);
      if constexpr (E1 > 0) {
        n0e = Ops::add2(n0, centered_e1_bias2<T, E1>());
        n1e = Ops::add2(n1, centered_e1_bias2<T, E1>());
      }
    } else {  // fp32 fallback (bf16, 8 bits): (c - z) * s in fp32 with the fp16 scale, one rounding
      f0 = static_cast<float>(z0);
      f1 = static_cast<float>(z1);
      sf0 = __half2float(__ushort_as_half(static_cast<unsigned short>(sw & 0xffffu)));
      sf1 = __half2float(__ushort_as_half(static_cast<unsigned short>(sw >> 16)));
    }
#pragma unroll
    for (int kk = 0; kk < ks_per_group; ++kk) {
      const int ks = gi * ks_per_group + kk;
      if (ks < KS0 || ks >= KS1) continue;
      const int q0 = 2 * (TileGeometry::n_tiles * ks + j0);  // pairs q0, q0 + 1: tile j0; q0 + 2, q0 + 3: tile j1
      if constexpr (magic_exact_v<B, T>) {
        a[ks][0] = Ops::mul2(decode_centered_pair<B, T, E1>(w, q0, n0, n0e, 0.f), s0);
        a[ks][1] = Ops::mul2(decode_centered_pair<B, T, E1>(w, q0 + 2, n1, n1e, 0.f), s1);
        a[ks][2] = Ops::mul2(decode_centered_pair<B, T, E1>(w, q0 + 1, n0, n0e, 0.f), s0);
        a[ks][3] = Ops::mul2(decode_centered_pair<B, T, E1>(w, q0 + 3, n1, n1e, 0.f), s1);
      } else {
        const auto pair = [&](int q, float z, float sc) {
          const std::uint32_t c = extract_pair<B>(w, q);
          return Ops::pack2((static_cast<float>(c & 0xffffu) - z) * sc, (static_cast<float>(c >> 16) - z) * sc);
        };
        a[ks][0] = pair(q0, f0, sf0);
        a[ks][1] = pair(q0 + 2, f1, sf1);
        a[ks][2] = pair(q0 + 1, f0, sf0);
        a[ks][3] = pair(q0 + 3, f1, sf1);
      }
    }
  }
}

/// midm_wgmma_fragments_w for the warp `wq` of its warpgroup known only at run time (warp-uniform).
template <int B, class T, int GPT, int KS0 = 0, int KS1 = TileGeometry::k_steps>
LOWBIT_DEVICE void midm_wgmma_fragments(std::uint32_t (&a)[4][4], int wq, const std::uint32_t* wsrc,
                                        const unsigned char* prm, int lane, bool sym) {
  switch (wq) {
    case 0: midm_wgmma_fragments_w<B, T, 0, GPT, KS0, KS1>(a, wsrc, prm, lane, sym); break;
    case 1: midm_wgmma_fragments_w<B, T, 1, GPT, KS0, KS1>(a, wsrc, prm, lane, sym); break;
    case 2: midm_wgmma_fragments_w<B, T, 2, GPT, KS0, KS1>(a, wsrc, prm, lane, sym); break;
    default: midm_wgmma_fragments_w<B, T, 3, GPT, KS0, KS1>(a, wsrc, prm, lane, sym); break;
  }
}

/// One k-tile's wgmmas of a warpgroup as one committed group: `issue(ks, desc_b)` for the four k16-steps, where
/// `desc_b` addresses k16-step ks of the activation tile at shared address `tile_s` (128-byte swizzled); the
/// accumulators are fenced on both sides so the compiler keeps their accesses out of the asynchronous window.
template <int NT, class Issue>
LOWBIT_DEVICE void midm_wgmma_group(float (&acc)[NT / 2], std::uint32_t tile_s, Issue&& issue) {
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);
  midm_wgmma_fence();
  // k-step ks starts 32 bytes further: +2 in the 14-bit start field of the low word (shared addresses
  // < 228 KB: no carry out of it), so the high word stays a constant
  const std::uint64_t desc = sw128_desc(tile_s);
  const std::uint32_t desc_lo = static_cast<std::uint32_t>(desc);
#pragma unroll
  for (int ks = 0; ks < TileGeometry::k_steps; ++ks)
    issue(ks, (desc & 0xFFFFFFFF00000000ull) | (desc_lo + (kWgmmaKStepBytes >> 4) * ks));
  midm_wgmma_commit();
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);
}

/// One k-tile's wgmmas of a warpgroup: the A fragments `a` (registers) against the activation tile at `tile_s`.
template <class T, int NT>
LOWBIT_DEVICE void midm_wgmma_ktile(float (&acc)[NT / 2], const std::uint32_t (&a)[4][4], std::uint32_t tile_s) {
  midm_wgmma_group<NT>(acc, tile_s, [&](int ks, std::uint64_t desc_b) { midm_wgmma<T, NT>(acc, a[ks], desc_b); });
}

/// Probe builds only (kMidmWsDiag bit 16): one k-tile's tensor work of a 64-row fp16 warpgroup with both operands
/// from shared memory, the activation tile serving as A (its 64 rows, K-major) and as B: the same wgmma count
/// and shape as midm_wgmma_ktile without the register A operand. Wrong results by design.
LOWBIT_DEVICE void midm_wgmma_ktile_ss_probe(float (&acc)[32], std::uint32_t tile_s) {
  midm_wgmma_group<64>(acc, tile_s, [&](int, std::uint64_t desc) { wgmma_m64n64k16_f16_ss(acc, desc, desc, 1); });
}

/// The main loops' step pairs: `body(step, parity)` for steps 0 .. steps - 1 with the compile-time parity
/// step % 2 (it picks the fragment register set), then both sets kept live to the end of each pair
/// (wgmma reads them asynchronously).
template <class Body>
LOWBIT_DEVICE void midm_step_pairs(int steps, std::uint32_t (&frag)[2][4][4], Body&& body) {
#pragma unroll 1
  for (int step = 0; step < steps; step += 2) {
    body(step, std::integral_constant<int, 0>{});
    if (step + 1 < steps) body(step + 1, std::integral_constant<int, 1>{});
#pragma unroll
    for (int b = 0; b < 2; ++b)
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) midm_reg_use(frag[b][ks]);
  }
}

/// Epilogue of the wgmma mid-M kernels, run by all their P::threads threads (four warps per slab; the
/// warp-specialized kernel's producer warpgroup joins the barriers only) once the main loop is done with the
/// shared-memory ring: the accumulators go through
/// `smem` once (skipped by warpgroups without `stage_acc`) so that Y (+ bias) or the fp32 split-K
/// partials are written coalesced; with split-K the last-arriving CTA of the tile sums the partials in
/// split order (midm_split_fixup) and resets the tile's counter.
/// @tparam T element type.  @tparam P policy (n_tile, block_m, block_n, stage_stride).
template <class T, class P>
LOWBIT_DEVICE void midm_wgmma_epilogue(const float (&acc)[P::n_tile / 2], unsigned char* smem, const MidmArgs& args,
                                       int tid, bool stage_acc) {
  constexpr int Threads = P::consumer_threads;
  using Ops = ElementOps<T>;
  constexpr int NT = P::n_tile, SS = P::stage_stride;
  const bool worker = !P::ws || tid < Threads;  // the producer warpgroup (tid >= Threads) only meets the barriers
  const int lane = tid % 32, warp = tid / 32, wg = warp / 4, wq = warp % 4, g = lane / 4, t = lane % 4;
  const int m0 = blockIdx.x * P::block_m;
  const int rows_valid = min(P::block_m, args.M - m0);
  const std::size_t N = static_cast<std::size_t>(args.N);
  __shared__ int is_last_cta;
  // accumulator i: rows m = 8(i/4) + 2t + i%2 of the CTA, column 16·wq + g + 8·((i/2)%2) of the slab
  float* red = reinterpret_cast<float*>(smem) + static_cast<std::size_t>(wg) * NT * SS;
  if (stage_acc) {
#pragma unroll
    for (int i = 0; i < NT / 2; ++i) {
      const int m = 8 * (i / 4) + 2 * t + (i % 2), n = 16 * wq + g + 8 * ((i / 2) % 2);
      red[m * SS + n] = acc[i];
    }
  }
  __syncthreads();
  constexpr int half_cols = P::block_n / 2;
  const int n0 = blockIdx.y * P::block_n;
  for (int i = worker ? tid : rows_valid * half_cols; i < rows_valid * half_cols; i += Threads) {
    const int r = i / half_cols, cl = 2 * (i % half_cols);
    const int col = n0 + cl;
    if (col >= args.N) continue;
    const float2 v = *reinterpret_cast<const float2*>(reinterpret_cast<const float*>(smem) +
                                                      static_cast<std::size_t>(cl / 64) * NT * SS + r * SS + cl % 64);
    const std::size_t o = static_cast<std::size_t>(m0 + r) * N + col;
    if (args.splits == 1) {
      float v0 = v.x, v1 = v.y;
      if (args.bias) {
        v0 += Ops::to_float(args.bias[col]);
        v1 += Ops::to_float(args.bias[col + 1]);
      }
      args.Y[o / 2] = Ops::pack2(v0, v1);
    } else {
      __stcg(reinterpret_cast<float2*>(args.partials + blockIdx.z * static_cast<std::size_t>(args.M) * N + o), v);
    }
  }
  if (args.splits == 1) return;

  if (!split_k_last_arrival(args.counters, blockIdx.y * gridDim.x + blockIdx.x, args.splits, tid, is_last_cta))
    return;
  if (worker) midm_split_fixup<T, Threads, P::block_n>(args, m0, n0, rows_valid, tid);
}
#endif

/// The wgmma mid-M kernel. Grid (ceil(M / NT), ceil(N / (64·WG)), splits), 128·WG threads.
///
/// Main loop, one k-step (KS k-tiles) per iteration: wait for the step's copies, one CTA barrier, issue
/// the copies of step + S - 2, then for each k-tile a warpgroup waits until at most one wgmma group (the
/// previous k-tile's) is pending, dequantizes its A fragments into the register set that group does not
/// read, and issues its wgmmas as one group: the dequantization of a k-tile overlaps the wgmmas of the
/// one before. The copy distance is S - 2 so that the stage a copy overwrites was read by wgmmas
/// already waited for. Copy sources and destinations are computed once per thread; a step adds its
/// offset. With programmatic dependent launch the prologue fetches the first stages' weights before
/// waiting for the preceding kernel (see the prologue).
/// @tparam B code width.  @tparam T element type.  @tparam P MidmWgmmaPolicy.
/// @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).
template <int B, class T, class P, int GPT>
__global__ void __launch_bounds__(P::threads, P::ctas_per_sm) midm_wgmma_kernel(const MidmArgs args) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(!P::ws, "a lock-step policy (warp-specialized ones run midm_wgmma_ws_kernel)");
  using L = TiledLayout<B>;
  using Tile = ATile<P::block_m, 64>;
  constexpr int S = P::stages, WG = P::warpgroups, NT = P::n_tile, KS = P::k_tiles;
  static_assert(S >= 3, "two stages stay in use (one step's wgmmas in flight): the ring needs three");
  constexpr int kThreads = P::threads;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int kWOff = KS * NT * 128;                 // KS activation tiles (each 128-byte swizzled)
  constexpr int kPOff = kWOff + KS * WG * kTileBytes;  // then KS x WG weight tiles, then parameters
  constexpr int kStageBytes = static_cast<int>(P::template stage_bytes<B>(GPT));
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = ptx::align_shared<1024>(smem_raw);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wg = warp / 4, wq = warp % 4;
  const int m0 = blockIdx.x * P::block_m;
  const int slab0 = blockIdx.y * WG;
  const int slabs = args.N / TileGeometry::tile_n;
  const bool slab_ok = slab0 + wg < slabs;  // warpgroup-uniform
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = (kt_end - kt_begin + KS - 1) / KS;
  const int rows_valid = min(P::block_m, args.M - m0);
  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;

  // ---- copy roles of this thread: chunk i = tid + j * kThreads of each part, kept as 32-bit offsets
  // in 16-byte chunks from the argument pointers at step 0 (registers are the limit: 512 threads at
  // 128 each; offsets reach 64 GB) and 4-bit k-tile fields (KS: no chunk) ----
  // activations: KS tiles [NT rows, 64 k] (rows past M zero-filled, reading row m0, which exists)
  constexpr int kAChunks = KS * P::block_m * Tile::chunks_per_row;
  constexpr int kAPer = (kAChunks + kThreads - 1) / kThreads;
  static_assert(kAPer <= 8, "4-bit fields of one word");
  std::uint32_t a_off[kAPer];
  int a_dst[kAPer];
  unsigned a_kk = 0, a_ok = 0;
#pragma unroll
  for (int j = 0; j < kAPer; ++j) {
    const int i = tid + j * kThreads;
    const int kk = i / (P::block_m * Tile::chunks_per_row), r = (i / Tile::chunks_per_row) % P::block_m,
              c = i % Tile::chunks_per_row;
    const bool ok = r < rows_valid;
    a_ok |= ok ? 1u << j : 0u;
    a_kk |= static_cast<unsigned>(i < kAChunks ? kk : KS) << (4 * j);
    a_off[j] = static_cast<std::uint32_t>((static_cast<std::size_t>(m0 + (ok ? r : 0)) * K +
                                           static_cast<std::size_t>(kt_begin + kk) * TileGeometry::tile_k) / 8 + c);
    a_dst[j] = kk * Tile::elems * 2 + Tile::chunk_offset(r, c) * 2;
  }
  // weights: KS x WG tiles (a slab's tiles are contiguous along K: a step advances KS tiles)
  constexpr int kWChunksTile = kTileBytes / 16;
  constexpr int kWChunks = KS * WG * kWChunksTile;
  constexpr int kWPer = (kWChunks + kThreads - 1) / kThreads;
  static_assert(kWPer <= 8, "4-bit fields of one word");
  std::uint32_t w_off[kWPer];
  int w_dst[kWPer];
  unsigned w_kk = 0;
#pragma unroll
  for (int j = 0; j < kWPer; ++j) {
    const int i = tid + j * kThreads;
    const int ti = i / kWChunksTile, c = i % kWChunksTile;  // ti = kk * WG + slab
    const int sl = slab0 + ti % WG, kk = ti / WG;
    w_kk |= static_cast<unsigned>(i < kWChunks && sl < slabs ? kk : KS) << (4 * j);
    w_off[j] = static_cast<std::uint32_t>(L::tile_offset(K, kt_begin + kk, sl < slabs ? sl : 0) / 4 + c);
    w_dst[j] = kWOff + ti * kTileBytes + 16 * c;
  }
  // group parameters: 12 chunks per (k-tile, slab, group): 8 of scales, 4 of zeros (none when sym)
  constexpr int kPChunks = KS * WG * GPT * 12;
  static_assert(kPChunks <= kThreads, "one parameter chunk per thread at most");
  const int p_pi = tid / 12, p_c = tid % 12, p_ti = p_pi / GPT, p_gi = p_pi % GPT;
  const int p_kk = p_ti / WG, p_s = slab0 + p_ti % WG;
  const int p_kn = tid < kPChunks && p_s < slabs && !(p_c >= 8 && sym) ? p_kk : KS;  // KS: no chunk
  const int p_dst = kPOff + p_pi * kMidmParamBytes + 16 * p_c;
  // chunk offsets: scales rows are 2N bytes (N / 8 chunks), zero rows N bytes (N / 16 chunks)
  const std::uint32_t p_off = p_c < 8 ? static_cast<std::uint32_t>(p_s) * 8 + p_c : static_cast<std::uint32_t>(p_s) * 4 + (p_c - 8);
  const std::uint32_t p_stride = static_cast<std::uint32_t>(p_c < 8 ? N / 8 : N / 16);
  const uint4* p_base = p_c < 8 ? reinterpret_cast<const uint4*>(args.scales) : reinterpret_cast<const uint4*>(args.zeros);
  // group of this thread's k-tile at the next issued step (GPT = 1: kt / tiles-per-group, tracked)
  const int tpg = GPT == 2 ? 1 : args.group_size / TileGeometry::tile_k;
  int p_grp = GPT == 2 ? 2 * (kt_begin + p_kk) + p_gi : (kt_begin + p_kk) / tpg;
  int p_rem = GPT == 2 ? 0 : (kt_begin + p_kk) % tpg;

  const std::uint32_t smem_s = ptx::smem_addr(smem);
  // No L2 policy on the mid-M kernels' weight copies (GemmOptions::l2_evict_first): with hinted copies beside
  // their zero-filling activation copies, nvcc 13.0's code for this kernel, midm.cuh's and the 3-bit
  // warp-specialized one raised "illegal instruction" on the H100 (bench/kernels/NOTES.md, session 27).
  // The copies of k-step `step` (steps are issued in order, once each) into stage `st`: the
  // activations, and the weights with their group parameters (split for programmatic dependent
  // launch: only the weights may be fetched before griddepcontrol.wait).
  auto issue_a = [&](int step, int st) {
    if (step >= steps) return;  // CTA-uniform
    unsigned char* stage = smem + st * kStageBytes;
    const int kn = min(KS, kt_end - (kt_begin + step * KS));  // k-tiles of this step
    const auto* a_base = reinterpret_cast<const uint4*>(args.A);
#pragma unroll
    for (int j = 0; j < kAPer; ++j)
      if (static_cast<int>((a_kk >> (4 * j)) & 15u) < kn)
        ptx::cp_async_16(stage + a_dst[j], a_base + (a_off[j] + static_cast<std::uint32_t>(step) * (KS * TileGeometry::tile_k / 8)),
                         (a_ok >> j) & 1u);
  };
  auto issue_w = [&](int step, int st) {
    if (step >= steps) return;  // CTA-uniform
    unsigned char* stage = smem + st * kStageBytes;
    const int kn = min(KS, kt_end - (kt_begin + step * KS));  // k-tiles of this step
    const auto* w_base = reinterpret_cast<const uint4*>(args.qweight);
#pragma unroll
    for (int j = 0; j < kWPer; ++j)
      if (static_cast<int>((w_kk >> (4 * j)) & 15u) < kn)
        ptx::cp_async_16(stage + w_dst[j], w_base + (w_off[j] + static_cast<std::uint32_t>(step) * (KS * kWChunksTile)));
    if (p_kn < kn) ptx::cp_async_16(stage + p_dst, p_base + (p_off + static_cast<std::uint32_t>(p_grp) * p_stride));
    if constexpr (GPT == 2) {
      p_grp += 2 * KS;
    } else {
      p_rem += KS;
      while (p_rem >= tpg) {
        p_rem -= tpg;
        ++p_grp;
      }
    }
  };

  auto issue = [&](int step, int st) {
    issue_a(step, st);
    issue_w(step, st);
  };

  float acc[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) acc[i] = 0.f;

  // Prologue. Programmatic dependent launch (gemm.cuh, GemmOptions::pdl): the weights and group
  // parameters of the first S - 2 steps never come from the preceding kernel in the stream (PdlMode's
  // contract), so they are requested before griddepcontrol.wait; the activations, and everything this
  // kernel writes (Y, split-K partials and counters), only after it, by every thread. Copy group 0 holds
  // those weights and step 0's activations, group s step s's activations: wait_group S - 3 at step s
  // still covers the whole step. Without the launch attribute both instructions are no-ops.
#pragma unroll
  for (int s = 0; s < S - 2; ++s) issue_w(s, s);
#if !defined(LOWBIT_TESTING_MIDM_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
  ptx::pdl_wait();
#endif
  ptx::pdl_launch_dependents();
#pragma unroll
  for (int s = 0; s < S - 2; ++s) {
    issue_a(s, s);
    ptx::cp_async_commit();
  }
  // Fragment registers: two sets used in turn by consecutive k-tiles; before a set is refilled,
  // `wait_group 1` leaves only the previous k-tile's wgmmas pending, so the set's last readers (two
  // k-tiles back) are done and the dequantization overlaps the previous k-tile's wgmmas.
  std::uint32_t frag[2][4][4] = {};
  // One k-step; PAR = step % 2 (with an odd KS the sets alternate between steps as well).
  auto step_body = [&](int step, auto par) {
    constexpr int PAR = decltype(par)::value;
    ptx::cp_async_wait<S - 3>();  // this step's copies have landed (for this thread)
    midm_fence_proxy_async();     // ... and are visible to wgmma (async proxy)
    __syncthreads();              // for every thread; the wgmmas of step - 2 are done (waited for in step - 1)
    issue(step + S - 2, (step + S - 2) % S);
    ptx::cp_async_commit();
    const int st = step % S;
    if (slab_ok) {  // warpgroup-uniform
      const unsigned char* stage = smem + st * kStageBytes;
      const std::uint32_t stage_s = smem_s + st * kStageBytes;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        if (kt_begin + step * KS + kk < kt_end) {  // CTA-uniform
          std::uint32_t (&a)[4][4] = frag[(PAR * KS + kk) % 2];
          midm_wgmma_wait1();  // the wgmmas that read `a` (two k-tiles back) are done
          const auto* wsrc = reinterpret_cast<const std::uint32_t*>(stage + kWOff + (kk * WG + wg) * kTileBytes);
          const unsigned char* prm = stage + kPOff + (kk * WG + wg) * GPT * kMidmParamBytes;
          midm_wgmma_fragments<B, T, GPT>(a, wq, wsrc, prm, lane, sym);
          midm_wgmma_ktile<T, NT>(acc, a, stage_s + kk * NT * 128);
        }
      }
    }
  };
  midm_step_pairs(steps, frag, step_body);
  midm_wgmma_wait0();  // unconditional: a wait in a divergent path serializes every wgmma (ptxas C7518)
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);
  ptx::cp_async_wait_all();
  __syncthreads();  // the ring becomes the epilogue staging

  midm_wgmma_epilogue<T, P>(acc, smem, args, tid, slab_ok);
#else
  (void)args;
  __trap();  // wgmma needs sm_90a: gemm selects this kernel only when midm_wgmma_available()
#endif
}

/// Arguments of the warp-specialized kernel: the mid-M ones and, for policies with `ws_tma_acts`, a tensor map
/// over the activations `[M, K]` with boxes of 64 k x NT rows, 128-byte swizzled (rows past M zero-filled).
struct MidmWsArgs {
  MidmArgs a;        ///< the mid-M kernel arguments
  CUtensorMap amap;  ///< activation map (ws_tma_acts only; else unused)
};

/// The warp-specialized wgmma mid-M kernel. Grid as midm_wgmma_kernel, 128·(WG + 1) threads: the WG
/// warpgroups (consumers) and one producer warpgroup.
///
/// The lock-step kernel above meets at a CTA barrier every k-step and has every thread issue copies; here
/// the last warpgroup alone fills the S-stage ring and each stage s has two mbarriers:
/// - `full[s]` (128 arrivals, + 1 with bulk weights): each producer thread arrives through
///   `cp.async.mbarrier.arrive.noinc` once its 16-byte copies of the stage have landed (the activation tile,
///   swizzled as in the other kernel, the group parameters, and with WS = 2 the weight tiles); with WS = 1 or 3
///   producer thread 0 also arrives with the byte count of the weight tiles (one bulk copy per slab) and, with
///   WS = 3, of the activation box (one TMA copy), which complete as transactions;
/// - `empty[s]` (4·WG arrivals): lane 0 of every consumer warp arrives once the wgmmas that read the stage
///   are done, i.e. after `wgmma.wait_group 1` in the next k-step.
/// A warpgroup waits on `full`, makes cp.async activation data visible to wgmma (`fence.proxy.async`; not
/// needed for a TMA box), dequantizes its fragments (the same midm_wgmma_fragments) into the register set the
/// previous k-tile's wgmmas do not read, issues its wgmmas and waits until only those are pending: the
/// dequantization of a k-tile overlaps the previous k-tile's wgmmas, and warpgroups drift apart freely. The
/// epilogue (midm_wgmma_epilogue, split-K included) is the other kernel's; the producer only meets its barriers.
///
/// Where the time goes (H100, 4-bit g128, M = 64, bench/results/large_probe_*_s25_ws_diag*.log): with the
/// producer's copies removed after the first S stages the consumers alone take 31.4 / 81.5 us on 8192^2 /
/// 8192 x 28672 (33.8 / 91.8 with them), with the consumers' work removed the producer alone 23.0 / 47.4 us:
/// the dequantization and wgmma issue set the rate.
///
/// Programmatic dependent launch: the producer requests the first S stages' weights and group parameters
/// before `griddepcontrol.wait` (they never come from the preceding kernel: PdlMode's contract), the
/// activations after it; the consumers wait before anything else, so all writes follow it.
/// @tparam B code width.  @tparam T element type.  @tparam P MidmWgmmaPolicy with WS = true.
/// @tparam GPT groups per 64-row k-tile (2 for group size 32, else 1).
template <int B, class T, class P, int GPT>
__global__ void __launch_bounds__(P::threads, P::ctas_per_sm) midm_wgmma_ws_kernel(const __grid_constant__ MidmWsArgs wargs) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const MidmArgs& args = wargs.a;
  static_assert(P::ws && P::k_tiles == 1, "a warp-specialized policy (one k-tile per stage)");
  using L = TiledLayout<B>;
  using Tile = ATile<P::block_m, 64>;
  constexpr int S = P::stages, WG = P::warpgroups, NT = P::n_tile;
  constexpr int kTileBytes = L::words_per_tile * 4;
  constexpr int kWOff = NT * 128;                // the activation tile (128-byte swizzled)
  constexpr int kPOff = kWOff + WG * kTileBytes;  // then WG weight tiles, then the parameters
  constexpr int kStageBytes = static_cast<int>(P::template stage_bytes<B>(GPT));
  constexpr int kBarOff = static_cast<int>(P::template barrier_offset<B>(GPT));
  static_assert(kTileBytes % 16 == 0, "bulk copies move multiples of 16 bytes");
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = ptx::align_shared<1024>(smem_raw);
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(smem + kBarOff);
  std::uint64_t* empty = full + S;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wg = warp / 4, wq = warp % 4;
  const int m0 = blockIdx.x * P::block_m;
  const int slab0 = blockIdx.y * WG;
  const int slabs = args.N / TileGeometry::tile_n;
  const bool producer = warp >= 4 * WG;
  const bool slab_ok = !producer && slab0 + wg < slabs;  // warpgroup-uniform
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = kt_end - kt_begin;
  const int rows_valid = min(P::block_m, args.M - m0);
  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      ptx::mbarrier_init(&full[s], kMidmWsProducerThreads + (P::ws_bulk_weights ? 1 : 0));
      ptx::mbarrier_init(&empty[s], 4 * WG);
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();

  float acc[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) acc[i] = 0.f;

  if (producer) {
    const int pt = tid - P::consumer_threads, pw = pt / 32;  // producer thread 0..127, its warp
    const int nvalid = min(WG, slabs - slab0);              // slabs of this CTA inside N (>= 1)
    // activation chunks of this thread: rows pt / 8 + 16j, 16-byte column chunk pt % 8 (NT / 16 per stage)
    static_assert(Tile::chunks_per_row == 8, "64-column activation tiles");
    constexpr int kAPer = NT * Tile::chunks_per_row / kMidmWsProducerThreads;
    const int a_r0 = pt / 8;
    const auto* a_m0 = reinterpret_cast<const uint4*>(args.A) + (static_cast<std::size_t>(m0) * K) / 8 + pt % 8;
    const auto* a_row0 = a_m0 + (a_r0 < rows_valid ? static_cast<std::size_t>(a_r0) * (K / 8) : 0);
    const std::size_t a_rstride = 2 * K;  // 16 rows, in 16-byte chunks
    // weight chunks (cp.async mode): item i = pt + 128j of WG tiles x kTileBytes / 16
    constexpr int kWChunksTile = kTileBytes / 16;
    constexpr int kWPer = (WG * kWChunksTile + kMidmWsProducerThreads - 1) / kMidmWsProducerThreads;
    // group parameters: item pt of WG x GPT x 12 chunks (8 of scales, 4 of zeros)
    constexpr int kPItems = WG * GPT * 12;
    static_assert(kPItems <= kMidmWsProducerThreads, "one parameter chunk per producer thread");
    const int p_s = pt / (GPT * 12), p_gi = (pt / 12) % GPT, p_c = pt % 12;
    const bool p_on = pt < kPItems && p_s < nvalid && !(p_c >= 8 && sym);
    const int tpg = GPT == 2 ? 1 : args.group_size / TileGeometry::tile_k;
    const uint4* p_src = p_c < 8 ? reinterpret_cast<const uint4*>(args.scales) + static_cast<std::size_t>(slab0 + p_s) * 8 + p_c
                                 : reinterpret_cast<const uint4*>(args.zeros) + static_cast<std::size_t>(slab0 + p_s) * 4 + (p_c - 8);
    const std::size_t p_stride = p_c < 8 ? N / 8 : N / 16;  // one group's row, in 16-byte chunks
    const int p_dst = kPOff + (p_s * GPT + p_gi) * kMidmParamBytes + 16 * p_c;

    auto issue_w = [&](int step) {  // weights and group parameters of k-tile kt_begin + step
      const int st = step % S, kt = kt_begin + step;
      unsigned char* stage = smem + st * kStageBytes;
      if ((kMidmWsDiag & 1) && step >= S) {  // probe: no copies past the first S stages, the arrivals only
        if (P::ws_bulk_weights && pt == 0) ptx::mbarrier_arrive(&full[st]);
        return;
      }
      if constexpr (P::ws_bulk_weights) {  // one bulk copy per slab, by warp 0
        if (pw == 0) {
          if (pt == 0)
            ptx::mbarrier_arrive_expect_tx(&full[st], static_cast<std::uint32_t>(nvalid * kTileBytes +
                                                                               (P::ws_tma_acts ? NT * 128 : 0)));
          __syncwarp();
          if (pt < nvalid)
            ptx::bulk_copy_g2s(stage + kWOff + pt * kTileBytes, args.qweight + L::tile_offset(K, kt, slab0 + pt), kTileBytes,
                               &full[st]);
        }
      } else {  // a slab's tiles are K / 64 tiles apart: chunk c of slab ts at w_src + ts * w_slab + c
        const auto* w_src = reinterpret_cast<const uint4*>(args.qweight + L::tile_offset(K, kt, slab0));
        const std::size_t w_slab = (K / TileGeometry::tile_k) * kWChunksTile;
#pragma unroll 4
        for (int j = 0; j < kWPer; ++j) {
          const int i = pt + kMidmWsProducerThreads * j, ts = i / kWChunksTile, c = i % kWChunksTile;
          if (i < WG * kWChunksTile && ts < nvalid)
            ptx::cp_async_16(stage + kWOff + 16 * i, w_src + ts * w_slab + c);
        }
      }
      if (p_on) {
        const std::size_t grp = GPT == 2 ? 2 * static_cast<std::size_t>(kt) + p_gi : static_cast<std::size_t>(kt / tpg);
        ptx::cp_async_16(stage + p_dst, p_src + grp * p_stride);
      }
    };
    auto issue_a = [&](int step) {  // activations of k-tile kt_begin + step (rows past M zero-filled)
      const int st = step % S;
      unsigned char* stage = smem + st * kStageBytes;
      if ((kMidmWsDiag & 1) && step >= S) {
        ptx::mbarrier_arrive(&full[st]);
        return;
      }
      if constexpr (P::ws_tma_acts) {  // one box; its bytes were expected with the weights'
        if (pt == 0) ptx::tma_load_2d(stage, &wargs.amap, (kt_begin + step) * TileGeometry::tile_k, m0, &full[st]);
        ptx::cp_async_mbarrier_arrive_noinc(&full[st]);  // the parameters' copies
        return;
      }
      const std::size_t kofs = static_cast<std::size_t>(kt_begin + step) * (TileGeometry::tile_k / 8);
      const uint4* src = a_row0 + kofs;
      // rows past M: zero-filled (source size 0) from row m0's address, which exists; partial unrolling
      // keeps the row pointers out of the registers
#pragma unroll 4
      for (int j = 0; j < kAPer; ++j) {
        const bool ok = a_r0 + 16 * j < rows_valid;
        ptx::cp_async_16(stage + midm_ws_act_dst(pt, j), ok ? src : a_m0 + kofs, ok);
        src += a_rstride;
      }
      ptx::cp_async_mbarrier_arrive_noinc(&full[st]);
    };

    const int pre = min(S, steps);
    for (int s = 0; s < pre; ++s) issue_w(s);
#if !defined(LOWBIT_TESTING_MIDM_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
    ptx::pdl_wait();
#endif
    ptx::pdl_launch_dependents();
    for (int s = 0; s < pre; ++s) issue_a(s);
#pragma unroll 1
    for (int step = pre; step < steps; ++step) {
      ptx::mbarrier_wait_parity(&empty[step % S], static_cast<std::uint32_t>((step / S - 1) & 1));
      issue_w(step);
      issue_a(step);
    }
  } else {
#if !defined(LOWBIT_TESTING_MIDM_SKIP_PDL_WAIT)
    ptx::pdl_wait();
#endif
    ptx::pdl_launch_dependents();
    const std::uint32_t smem_s = ptx::smem_addr(smem);
    std::uint32_t frag[2][4][4] = {};
    auto step_body = [&](int step, auto par) {
      constexpr int PAR = decltype(par)::value;
      const int st = step % S;
      ptx::mbarrier_wait_parity(&full[st], static_cast<std::uint32_t>((step / S) & 1));
      // the producer's cp.async activation data, now visible to this thread, for wgmma (a TMA box needs no
      // fence: it is written by the async proxy that wgmma reads through)
      if constexpr (!P::ws_tma_acts) midm_fence_proxy_async();
      if (slab_ok && !(kMidmWsDiag & 2)) {  // warpgroup-uniform
        const unsigned char* stage = smem + st * kStageBytes;
        std::uint32_t (&a)[4][4] = frag[PAR];  // last read by the wgmmas of step - 2: done
        (void)stage;  // unused only in probe builds (kMidmWsDiag)
        (void)a;
        if constexpr (!(kMidmWsDiag & 4))
          midm_wgmma_fragments<B, T, GPT>(a, wq, reinterpret_cast<const std::uint32_t*>(stage + kWOff + wg * kTileBytes),
                                          stage + kPOff + wg * GPT * kMidmParamBytes, lane, sym);
        if constexpr (!(kMidmWsDiag & 8)) {
          if constexpr ((kMidmWsDiag & 16) && NT == 64 && std::is_same_v<T, half_t>)
            midm_wgmma_ktile_ss_probe(acc, smem_s + st * kStageBytes);
          else
            midm_wgmma_ktile<T, NT>(acc, a, smem_s + st * kStageBytes);
          midm_wgmma_wait1();  // the previous step's wgmmas are done: its stage may be refilled
        }
      }
      if (step > 0 && lane == 0) ptx::mbarrier_arrive(&empty[(step - 1) % S]);
    };
    midm_step_pairs(steps, frag, step_body);
  }
  midm_wgmma_wait0();  // unconditional (ptxas C7518); a no-op in the producer
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) midm_reg_fence(acc[i]);
  __syncthreads();  // every stage was waited for (all copies landed) and read: the ring becomes the staging

  midm_wgmma_epilogue<T, P>(acc, smem, args, tid, slab_ok);
#else
  (void)wargs;
  __trap();  // wgmma needs sm_90a: gemm selects this kernel only when midm_wgmma_available()
#endif
}

}  // namespace detail

/// True when this build has the sm_90a wgmma mid-M kernels (`LOWBIT_MIDM_WGMMA` defined: every CUDA
/// architecture of the build must then be sm_90a, or the kernel traps) and the current device is
/// compute capability 9.0.
inline bool midm_wgmma_available() {
#if defined(LOWBIT_MIDM_WGMMA)
  static const bool ok = detail::current_compute_capability() == 90;
  return ok;
#else
  return false;
#endif
}

}  // namespace lowbit::kernels
