/// @file decode.cuh
/// @brief The small-M (decode, M <= 16) weight-only GEMM: every warp runs its own copy pipeline over a
///        contiguous run of 64x64 weight tiles of one 64-column slab, with no CTA-wide barrier in the
///        main loop; the 4, 8 or 16 warps of a CTA split K and meet once at the end (a persistent CTA,
///        which loops over slabs, meets at two barriers per slab).
///
/// ## Why a separate kernel
/// At M <= 16 the GEMM streams packed weights (bytes / bandwidth) and dequantizes them (instructions
/// per weight); the tile kernel (gemm.cuh) locks the warps of a CTA together with a barrier per
/// k-step and holds its prefetched weights in registers (168 registers, 12 warps per SM). Here:
/// - each warp owns a private shared-memory ring of slots; a slot holds one weight tile (the
///   TiledLayout bytes, copied verbatim), the group's scales and zeros, and the M activation rows of
///   the tile's 64 k values, fetched with 16-byte `cp.async` (nothing in flight costs registers); the
///   warp waits with `cp.async.wait_group` + `__syncwarp`, never with a CTA barrier. A variant fills
///   the slots with sm_90 bulk copies (TMA) completing on per-slot mbarriers: it measured slower
///   (NOTES.md), so gemm uses cp.async;
/// - the MMA is transposed, `Y^T = W^T A^T`: dequantized weights are the m16n8k16 *A* operand (16
///   output columns x 16 k) and activations the *B* operand (16 k x 8 rows of A), so M <= 8 needs half
///   the MMAs of the row-major form. The TiledLayout needs no change: the A fragment of columns
///   8j..8j+15 is the B fragments of n8-tiles j and j+1 side by side;
/// - scales are applied once per group in fp32 (`acc += s * partial`) instead of once per weight: the
///   per-weight work is extract + one packed subtract of the (magic-biased) zero, and the accumulator
///   rows of a lane are exactly the columns whose scales the lane loads (scale_position interleave).
///   `c - z` is exact in fp16/bf16, products and sums are fp32: more accurate than rounding `s*(c-z)`;
/// - zeros are decoded once per group, and the per-tile copy path is pointer arithmetic on per-lane
///   precomputed sources: at 2-4 bits the kernel is bound by instructions per tile, not by bytes;
/// - split-K: the warps of a CTA take consecutive K ranges of one slab (reduced in shared memory in
///   warp order after the loop) and, when that does not fill the GPU, CTAs split K further through the
///   workspace (the last-arriving CTA sums the partials in split order): deterministic.
/// - programmatic dependent launch (sm_90+, gemm.cuh's GemmOptions::pdl): the prologue issues the
///   first ring slots' weights and group parameters before `griddepcontrol.wait`, everything that the
///   preceding kernel may write or read (activations, bias, Y, split-K partials and counters) after
///   it; right after the wait `griddepcontrol.launch_dependents` lets the next kernel launch, so the
///   next GEMM's CTAs can fill their rings during this one's last tiles and reduction. Without the
///   launch attribute both instructions are no-ops.
/// - two slabs per warp (template `NS = 2`, GemmOptions::decode.slabs; never planned by itself, run
///   where tune_decode measures it faster): a slot holds the tiles and parameters of two adjacent slabs
///   and one copy of the activation rows, whose B fragments serve both. Every slab's CTAs otherwise copy
///   the same activation rows: at M = 16 as many bytes as a 4-bit weight tile, from L2 (the session-7
///   profile: L2 hit rate 62 %, MIO stalls). The price: 225 registers at M > 8 (two slabs' accumulators
///   and partial sums), so at most 8 warps per SM.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../bits.hpp"
#include "../numeric.hpp"
#include "dequant.cuh"
#include "device_info.cuh"
#include "layout.hpp"
#include "ptx.cuh"

namespace lowbit::kernels {

/// Configuration of the decode kernel for width B.
/// @tparam B code width (sets the cp.async ring depth: about 6-8 KB of weights in flight per warp).
template <int B>
struct DecodeConfig {
  static constexpr int max_warps = 16;       ///< most warps per CTA (the planner picks 4, 8 or 16)
  static constexpr int max_threads = 32 * max_warps;  ///< most threads per CTA
  static constexpr int max_m = 16;           ///< rows served (two 8-row MMA column blocks)
  /// Bytes of one 64x64 weight tile.
  static constexpr int tile_bytes = TiledLayout<B>::words_per_tile * 4;
  /// Ring slots per warp of the cp.async variant for M <= 8 (compile time: cp.async.wait_group needs a
  /// constant).
  static constexpr int cp_async_stages = B <= 2 ? 6 : B == 3 ? 5 : B == 4 ? 4 : 3;
  /// Ring slots of the cp.async variant for `mt` 8-row blocks: one fewer for M > 8 (the 16 activation
  /// rows make a slot about twice as large; this keeps 16 warps of 4-bit in an SM's shared memory).
  static constexpr int cp_async_stages_for(int mt) { return mt == 1 || cp_async_stages <= 3 ? cp_async_stages : cp_async_stages - 1; }
  /// Most ring slots of the bulk-copy variant (its depth is chosen at run time from the slot size).
  static constexpr int max_stages = 8;
  /// Warps per SM the registers allow: __launch_bounds__(max_threads, 1) caps a thread at 128
  /// registers (the planner also checks shared memory).
  static constexpr int warps_per_sm = 16;
  /// Two-slab variant (each warp streams the tiles of two adjacent slabs over its K range and copies
  /// the activation rows once for both): most warps per CTA, and per SM, at up to 255 registers
  /// (two slabs' accumulators and partial sums are 128 floats at M > 8).
  static constexpr int max_warps_two_slabs = 8;
};

namespace detail {

/// Bytes of one group's parameters in a ring slot: 64 fp16 scales, then 64 zero codes.
inline constexpr int kDecodeParamBytes = 64 * 2 + 64;
/// Bytes of one activation row of a tile (64 values of 2 bytes).
inline constexpr int kDecodeRowBytes = 64 * 2;
/// Stride of the activation rows in a slot: 16 bytes of padding put the 8 rows an ldmatrix reads
/// in distinct banks.
inline constexpr int kDecodeRowStride = kDecodeRowBytes + 16;
/// Per-warp header in shared memory: a 16-byte zero chunk (ldmatrix rows >= M) and the slots' mbarriers.
inline constexpr int kDecodeWarpHeader = 16 + 8 * 8;
/// Shared memory an SM offers to resident CTAs (H100; A100 has 164 KB: the planner only over-estimates
/// occupancy there, which costs speed, never correctness).
inline constexpr std::size_t kSmemPerSm = kSm90SmemPerSm;
/// Ring bytes per warp the bulk-copy variant aims for: 4 CTAs of 4 warps share an SM's shared memory.
inline constexpr std::size_t kDecodeWarpRingBudget = 14 * 1024;

/// Bytes of one ring slot: the weight tiles of `ns` slabs (1 or 2), their GPT groups' parameters, M
/// activation rows.
template <int B>
constexpr std::size_t decode_slot_bytes(int gpt, std::size_t M, int ns = 1) {
  return static_cast<std::size_t>(ns) * (static_cast<std::size_t>(DecodeConfig<B>::tile_bytes) + gpt * kDecodeParamBytes) +
         M * kDecodeRowStride;
}
/// Ring depth of the decode kernel: fixed for cp.async, from the slot size for bulk copies (deeper
/// rings for small slots, 3..max_stages).
template <int B>
constexpr int decode_stages(bool bulk, int gpt, std::size_t M) {
  if (!bulk) return DecodeConfig<B>::cp_async_stages_for(M > 8 ? 2 : 1);
  const std::size_t s = kDecodeWarpRingBudget / decode_slot_bytes<B>(gpt, M);
  return static_cast<int>(std::min<std::size_t>(DecodeConfig<B>::max_stages, std::max<std::size_t>(3, s)));
}
/// Dynamic shared memory of a decode CTA of `warps` warps on `ns` slabs per warp: per warp its header
/// and ring; the same memory holds the cross-warp reduction (warps x M x 64·ns floats) after the loop.
/// A persistent CTA (`persist`: it loops over slabs, its rings stay live across them) keeps the
/// reduction buffer beside the rings.
template <int B>
constexpr std::size_t decode_smem_bytes(bool bulk, int gpt, std::size_t M, int warps, int ns = 1, bool persist = false) {
  const std::size_t ring = static_cast<std::size_t>(warps) *
                           (kDecodeWarpHeader + decode_stages<B>(bulk, gpt, M) * decode_slot_bytes<B>(gpt, M, ns));
  const std::size_t red = static_cast<std::size_t>(warps) * M * 64 * static_cast<std::size_t>(ns) * sizeof(float);
  return persist ? ring + red : ring > red ? ring : red;
}

/// Arguments shared by the kernels that stream TiledLayout weights through shared memory (decode and
/// mid-M; device pointers, shapes in elements).
struct StreamGemmArgs {
  const std::uint16_t* A;        ///< [M, K] activations (already gathered for act-order), T bits
  std::uint32_t* Y;              ///< [M, N] outputs as pairs of T
  const std::uint16_t* bias;     ///< [N] T bits or null
  const std::uint32_t* qweight;  ///< TiledLayout<B> words
  const std::uint16_t* scales;   ///< [G, N] fp16 bits, interleaved
  const std::uint8_t* zeros;     ///< [G, N] zero codes, interleaved (unused when sym)
  int M, N, K;                   ///< problem shape
  int group_size;                ///< rows per group (K for per-channel)
  int sym;                       ///< zeros are all 2^(B-1)
  float* partials;               ///< [splits, M, N] fp32 split-K partials (splits > 1)
  unsigned* counters;            ///< one arrival counter per output tile, zero between launches
  int splits;                    ///< CTAs along K (grid.z)
  int kt_per_split;              ///< 64-row K tiles per split
  int weight_evict_first;        ///< decode kernel: nonzero copies weight tiles and group parameters under L2 evict-first
};

/// Split-K arrival, called by every thread of a CTA once its fp32 partials are written: makes them
/// visible device-wide, counts the CTA in `counters[tile]`, and returns true (in every thread) only in
/// the last of the `splits` CTAs of that output tile to arrive, after resetting the counter for the next
/// launch; that CTA may then read every split's partials. `is_last` is a `__shared__ int` of the kernel.
/// @tparam Tile the tile index type (int or unsigned: kept as the caller computes it).
template <class Tile>
LOWBIT_DEVICE bool split_k_last_arrival(unsigned* counters, Tile tile, int splits, int tid, int& is_last) {
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const unsigned prev = atomicAdd(counters + tile, 1u);
    is_last = prev == static_cast<unsigned>(splits - 1);
    if (is_last) counters[tile] = 0u;  // every split has arrived: ready for the next launch
  }
  __syncthreads();
  if (!is_last) return false;
  __threadfence();
  return true;
}

/// Decode kernel arguments (M <= 16): the shared ones plus the per-warp split and ring depth.
struct DecodeArgs : StreamGemmArgs {
  int kt_per_warp;  ///< 64-row K tiles per warp
  int stages;       ///< ring slots per warp (decode_stages)
};

/// 2^23 as a float (the fp32 fallback's biased zero is kFloatMagicValue + z).
inline constexpr float kFloatMagicValue = 8388608.0f;

/// Turns a code pair (from extract_pair) into the packed T pair (c_lo - z, c_hi - z), exact.
/// `z2` is the magic-biased zero pair (magic path); `zf` is 2^23 + z (fp32 fallback, used when the
/// element type's mantissa cannot hold the code: the same trick in fp32, then one exact conversion,
/// since |c - z| <= 255 needs 8 significant bits).
template <int B, class T>
LOWBIT_DEVICE std::uint32_t decode_centered(std::uint32_t codes, std::uint32_t z2, float zf) {
  if constexpr (magic_exact_v<B, T>) {
    return ElementOps<T>::sub2(codes | (ElementOps<T>::magic * 0x10001u), z2);
  } else {
    return ElementOps<T>::pack2(__uint_as_float(kFloatMagic | (codes & 0xffffu)) - zf,
                                __uint_as_float(kFloatMagic | (codes >> 16)) - zf);
  }
}

/// The decode kernel. Grid (1, N/(64·NS), splits), or (1, <= N/64, 1) persistent; 32 x (4, 8 or 16) threads.
/// @tparam B code width.  @tparam T element type.  @tparam MT 8-row column blocks of the MMA (M <= 8*MT).
/// @tparam GPT groups per 64-row tile (2 for group size 32, else 1).
/// @tparam Bulk true: slots are filled by bulk copies (sm_90 TMA) completing on a per-slot mbarrier;
///         false: by 16-byte cp.async per lane (sm_80+).
/// The decode kernel: CTA (blockIdx.y, blockIdx.z) covers NS adjacent 64-column slabs starting at
/// NS·blockIdx.y and split blockIdx.z of K; each warp streams its K range of those slabs' tiles (NS = 2:
/// both slabs' tiles share one ring slot with the tile's activation rows, copied and loaded once).
/// @tparam Persist persistent CTAs (M <= 8, one slab per CTA, one split; at M > 8 the variant spilled
///         registers): CTA y takes slabs y, y + gridDim.y, ...
///         and its warps' rings run on from one slab into the next, so the copies of the next slab's
///         first tiles are in flight while the current slab is reduced: one generation of resident
///         CTAs, no ring fill per CTA generation. Measured (H100, session 14) it wins only where the
///         last generation is short (3-8 % on 3584 x 18944: 296 slabs on 264 CTAs) and loses on the
///         N-heavy shapes it was meant for, so only tune_decode chooses it. Every warp must have the same
///         number of tiles per slab (kt_per_warp x warps = K/64): the warps meet at two CTA barriers per slab.
template <int B, class T, int MT, int GPT, bool Bulk, int NS = 1, bool Persist = false>
__global__ void __launch_bounds__(NS == 1 ? DecodeConfig<B>::max_threads : 32 * DecodeConfig<B>::max_warps_two_slabs, 1)
    decode_gemm_kernel(const DecodeArgs args) {
  static_assert(NS == 1 || NS == 2, "one or two slabs per warp");
  static_assert(NS == 1 || !Bulk, "the two-slab variant has the cp.async ring only");
  static_assert(!Persist || (NS == 1 && !Bulk && MT == 1), "the persistent variant: M <= 8, one slab per CTA, cp.async ring");
  using C = DecodeConfig<B>;
  using L = TiledLayout<B>;
  using Ops = ElementOps<T>;
  constexpr int WPL = L::words_per_lane;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int is_last_cta;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int M = args.M;
  constexpr int kCpS = C::cp_async_stages_for(MT);
  const int S = Bulk ? args.stages : kCpS;
  const int slab = blockIdx.y * NS;  // first slab of this CTA
  const int KT = args.K / TileGeometry::tile_k;
  const int cta_kt0 = blockIdx.z * args.kt_per_split;
  const int cta_kt1 = min(KT, cta_kt0 + args.kt_per_split);
  const int kt0 = min(cta_kt1, cta_kt0 + warp * args.kt_per_warp);
  const int kt1 = min(cta_kt1, kt0 + args.kt_per_warp);
  const int ntiles = kt1 - kt0;  // may be 0 for the last warps of a short split
  // persistent: this CTA's slabs (units) and the tiles a warp streams over all of them
  const int units = Persist ? (args.N / TileGeometry::tile_n - static_cast<int>(blockIdx.y) + static_cast<int>(gridDim.y) - 1) /
                                  static_cast<int>(gridDim.y)
                            : 1;
  const int total = ntiles * units;

  const int slot_bytes = static_cast<int>(decode_slot_bytes<B>(GPT, static_cast<std::size_t>(M), NS));
  unsigned char* wbase = smem + static_cast<std::size_t>(warp) * (kDecodeWarpHeader + S * slot_bytes);
  unsigned char* zero_chunk = wbase;
  unsigned char* bars = wbase + 16;  // S mbarriers of 8 bytes (bulk variant)
  unsigned char* ring = wbase + kDecodeWarpHeader;
  // slot layout: NS weight tiles, then NS x GPT groups' parameters, then the activation rows
  constexpr int kParamOff = NS * C::tile_bytes;
  constexpr int kAOff = NS * (C::tile_bytes + GPT * kDecodeParamBytes);
  if (lane == 0) *reinterpret_cast<uint4*>(zero_chunk) = make_uint4(0u, 0u, 0u, 0u);
  // 32-bit shared-window addresses of the ring and the zero chunk (the hot loop uses these)
  const std::uint32_t ring_s = ptx::smem_addr(ring), zero_s = ptx::smem_addr(zero_chunk);
  if constexpr (Bulk) {
    if (lane < S) ptx::mbarrier_init(bars + 8 * lane, 1u);
    ptx::fence_mbarrier_init();
  }

  const std::size_t K = static_cast<std::size_t>(args.K), N = static_cast<std::size_t>(args.N);
  const bool sym = args.sym != 0;
  // bytes a slot receives (bulk variant: the mbarrier's transaction count)
  const std::uint32_t slot_tx = static_cast<std::uint32_t>(C::tile_bytes + GPT * (128 + (sym ? 0 : 64)) + M * kDecodeRowBytes);

  // Copy sources, precomputed per lane: the issue path runs once per tile and is kept to pointer
  // arithmetic (the kernel is issue-bound at small widths; every instruction per tile counts).
  const unsigned char* w_src = reinterpret_cast<const unsigned char*>(args.qweight + L::tile_offset(K, kt0, slab));
  // group of the next tile to issue, and the tiles left in it (GPT = 1: groups cover whole tiles)
  const int tpg = GPT == 2 ? 1 : args.group_size / TileGeometry::tile_k;
  int iss_grp = GPT == 2 ? 2 * kt0 : kt0 / tpg;
  int iss_left = GPT == 2 ? 1 : tpg - kt0 % tpg;
  // cp.async roles: lanes [16 gi, 16 gi + 8) copy the 8 scale chunks of group gi, the next 4 lanes its
  // zero chunks; chunk r of a lane's activations is row lane/8 + 4r, 16-byte column lane % 8
  const int p_gi = lane / 16, p_c = lane % 16;
  const bool p_active = !Bulk && p_gi < GPT && (p_c < 8 || (p_c < 12 && !sym));
  const unsigned char* p_src = p_c < 8 ? reinterpret_cast<const unsigned char*>(args.scales + slab * 64) + 16 * p_c
                                       : args.zeros + slab * 64 + 16 * (p_c - 8);
  const std::size_t p_stride = p_c < 8 ? 2 * N : N;  // bytes per group row
  const int p_slab = p_c < 8 ? 128 : 64;              // bytes from one slab's parameters to the next's
  const std::size_t w_slab = static_cast<std::size_t>(KT) * C::tile_bytes;  // bytes from one slab's tiles to the next's
  const int p_dst = kParamOff + p_gi * kDecodeParamBytes + (p_c < 8 ? 16 * p_c : 128 + 16 * (p_c - 8));
  const std::uint16_t* a_src = args.A + static_cast<std::size_t>(lane / 8) * K + 8 * (lane % 8) +
                               static_cast<std::size_t>(kt0) * TileGeometry::tile_k;
  const int a_dst = kAOff + (lane / 8) * kDecodeRowStride + 16 * (lane % 8);
  const int a_chunks = lane < 8 * M ? (8 * M - lane + 31) / 32 : 0;
  // cp.async variant: this lane's next weight, parameter and activation sources
  const unsigned char* w_run = w_src + 16 * lane;
  const unsigned char* p_run = p_src + static_cast<std::size_t>(iss_grp + p_gi) * p_stride;
  const std::uint16_t* a_run = a_src;
  const std::size_t a_rstride = 4 * K;  // elements between a lane's activation chunks (4 rows)
  // persistent: where the current unit's weight and parameter runs began, the step to the next unit's,
  // and the tiles of the current unit whose weights / activations are issued
  const unsigned char* w_unit = w_run;
  const unsigned char* p_unit = p_run;
  const std::size_t w_next = static_cast<std::size_t>(gridDim.y) * w_slab;
  const std::size_t p_next = static_cast<std::size_t>(gridDim.y) * p_slab;
  const int iss_grp0 = iss_grp, iss_left0 = iss_left;
  int iss_wt = 0, iss_at = 0;
  // L2 policy of the weight tiles and group parameters (GemmOptions::l2_evict_first)
  const std::uint64_t w_pol = ptx::l2_policy_weights(args.weight_evict_first != 0);

  // Issues the copies of tile `i` of this warp into slot `si` (tiles are issued in order, each part
  // at most once per tile): `weights` the weight tile and its groups' scales/zeros, `acts` the M
  // activation rows (and, cp.async, closes the step's copy group). The split exists for programmatic
  // dependent launch: weights never come from the preceding kernel in the stream (gemm.cuh, PdlMode),
  // so the prologue issues them before griddepcontrol.wait; activations may, so they wait.
  auto issue = [&](int i, int si, bool weights, bool acts) {
    if (i < total) {
      if constexpr (Bulk) {
        unsigned char* slot = ring + si * slot_bytes;
        void* bar = bars + 8 * si;
        // lane 0: the weight tile and the transaction count (every byte of the slot, activations
        // included: the phase completes only when they have landed too); lanes 1..4: group
        // parameters; 8..: rows of A
        if (weights) {
          const unsigned char* wsrc = w_src + static_cast<std::size_t>(i) * C::tile_bytes;
          const int grp0 = GPT == 2 ? 2 * (kt0 + i) : iss_grp;
          if (lane == 0) {
            ptx::mbarrier_arrive_expect_tx(bar, slot_tx);
            ptx::bulk_copy_g2s_hint(slot, wsrc, C::tile_bytes, bar, w_pol);
          } else if (lane <= 2 * GPT) {
            const int gi = (lane - 1) / 2;
            const std::size_t off = static_cast<std::size_t>(grp0 + gi) * N + static_cast<std::size_t>(slab) * 64;
            unsigned char* pdst = slot + kParamOff + gi * kDecodeParamBytes;
            if ((lane - 1) % 2 == 0) ptx::bulk_copy_g2s_hint(pdst, args.scales + off, 128, bar, w_pol);
            else if (!sym) ptx::bulk_copy_g2s_hint(pdst + 128, args.zeros + off, 64, bar, w_pol);
          }
        }
        if (acts && lane >= 8 && lane - 8 < M) {
          const int m = lane - 8;
          ptx::bulk_copy_g2s(slot + kAOff + m * kDecodeRowStride,
                             args.A + static_cast<std::size_t>(m) * K +
                                 static_cast<std::size_t>(kt0 + i) * TileGeometry::tile_k,
                             kDecodeRowBytes, bar);
        }
      } else {
        // running sources (advanced below): no per-tile index arithmetic
        const std::uint32_t slot = ring_s + si * slot_bytes, d = slot + 16 * lane;
        if (weights) {
#pragma unroll
          for (int sl = 0; sl < NS; ++sl) {
#pragma unroll
            for (int v = 0; v < L::vecs_per_lane; ++v)
              ptx::cp_async_16_s_hint(d + sl * C::tile_bytes + 512 * v, w_run + sl * w_slab + 512 * v, w_pol);
            if (p_active) ptx::cp_async_16_s_hint(slot + p_dst + sl * GPT * kDecodeParamBytes, p_run + sl * p_slab, w_pol);
          }
          w_run += C::tile_bytes;
          if (GPT == 2) p_run += 2 * p_stride;
        }
        if (acts) {
#pragma unroll
          for (int r = 0; r < 2 * MT; ++r)
            if (r < a_chunks) ptx::cp_async_16_s(slot + a_dst + r * 4 * kDecodeRowStride, a_run + r * a_rstride);
          a_run += TileGeometry::tile_k;
        }
      }
      if (weights && GPT == 1 && --iss_left == 0) {
        ++iss_grp;
        iss_left = tpg;
        if constexpr (!Bulk) p_run += p_stride;
      }
      if constexpr (Persist) {  // the unit's last tile: the next unit's runs start at its first tile
        if (weights && ++iss_wt == ntiles) {
          iss_wt = 0;
          w_unit += w_next;
          p_unit += p_next;
          w_run = w_unit;
          p_run = p_unit;
          iss_grp = iss_grp0;
          iss_left = iss_left0;
        }
        if (acts && ++iss_at == ntiles) {
          iss_at = 0;
          a_run = a_src;
        }
      }
    }
    if constexpr (!Bulk) {
      if (acts) ptx::cp_async_commit();  // every lane commits one group per step, maybe empty
    }
  };

  float acc[NS][4][MT][4];  // [slab][column pair jp][row block][mma D register]
  float part[NS][4][MT][4]; // the current group's unscaled partial sums
  // Calls f(sl, jp, mt, e) for every accumulator register (constant indices once unrolled).
  auto for_each_acc = [&](auto&& f) {
#pragma unroll
    for (int sl = 0; sl < NS; ++sl)
#pragma unroll
      for (int jp = 0; jp < 4; ++jp)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 4; ++e) f(sl, jp, mt, e);
  };
  for_each_acc([&](int sl, int jp, int mt, int e) { acc[sl][jp][mt][e] = part[sl][jp][mt][e] = 0.f; });

  // Folds the partial sums of a group into the accumulators with its scales. The lane's scales are
  // those of columns 8j + g, j = 0..7 (8 consecutive fp16 at position 8g, scale_position); D rows g and
  // g+8 of column pair jp are n8-tiles 2jp and 2jp+1: the low and high half of scale word jp.
  auto fold = [&](std::uint32_t params, float (&ac)[4][MT][4], float (&pa)[4][MT][4]) {
    const uint4 sv = ptx::ld_shared_16(params + 16 * g);
    const std::uint32_t sw[4] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      const float s0 = __half2float(__ushort_as_half(static_cast<unsigned short>(sw[jp] & 0xffffu)));
      const float s1 = __half2float(__ushort_as_half(static_cast<unsigned short>(sw[jp] >> 16)));
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        ac[jp][mt][0] = fmaf(s0, pa[jp][mt][0], ac[jp][mt][0]);
        ac[jp][mt][1] = fmaf(s0, pa[jp][mt][1], ac[jp][mt][1]);
        ac[jp][mt][2] = fmaf(s1, pa[jp][mt][2], ac[jp][mt][2]);
        ac[jp][mt][3] = fmaf(s1, pa[jp][mt][3], ac[jp][mt][3]);
#pragma unroll
        for (int e = 0; e < 4; ++e) pa[jp][mt][e] = 0.f;
      }
    }
  };

  __syncwarp();  // zero chunk and mbarriers initialised
  // Prologue. The weights of the first S-1 tiles go out before griddepcontrol.wait: under programmatic
  // dependent launch they stream while the preceding kernel (often the previous GEMM) finishes. After
  // the wait (a no-op without PDL) come everything the preceding kernel may produce or consume: the
  // activation rows here, then the outputs, partials and split counters after the main loop. With
  // cp.async, copy group 0 holds the weights of tiles 0..S-2 and tile 0's activations, group i < S-1
  // tile i's activations: the main loop's wait_group<S-2> for tile i still covers all of tile i.
  for (int i = 0; i < S - 1; ++i) issue(i, i, true, false);
#if !defined(LOWBIT_TESTING_DECODE_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
  ptx::pdl_wait();
#endif
  // Let the next kernel in the stream launch (PDL; without it a no-op). Its CTAs start as SM resources
  // free up (at 16 warps x 128 registers only when a CTA of this grid exits; at once on idle SMs) and
  // prefetch their first weight tiles during this grid's last tiles and reduction, then wait for this
  // grid's completion. Here, not when the warp issues its last tile: a trigger inside the main loop
  // cost 1-5 SASS instructions per tile, and after the wait at most two grids share the SMs (a trigger
  // before it would let a third prefetch while the grid everyone waits for still runs). The act-order
  // pre-gather (gemm.cuh, gather_columns_kernel) is the one kernel that triggers first: it is small, and
  // the GEMM behind it must prefetch while it waits.
  ptx::pdl_launch_dependents();
  for (int i = 0; i < S - 1; ++i) issue(i, i, false, true);
  int rs = 0, ws = S - 1;  // slot of tile i, slot tile i + S - 1 goes to
  std::uint32_t phase = 0;  // parity of slot rs's current phase (bulk variant)
  const int use_left0 = GPT == 2 ? 1 : tpg - kt0 % tpg;
  int use_left = use_left0;  // tiles left in the group of tile i, itself included
  int ui = 0;                // persistent: tile i's index in its unit (else i itself)
  int unit_slab = slab;      // persistent: the current unit's slab
  std::uint32_t z2[NS][8];  // negated magic-biased zero pairs -(magic + z) of the current group, per slab
  // Second decode offset (dequant.cuh, decode_centered_pair): its zero pairs -(magic * 2^-E1 + z) cost
  // 8 registers, so only the M <= 8 kernel (MT = 1) uses it; MT = 2 shifts every code to bit 0.
  constexpr int kE1 = MT == 1 ? centered_e1_v<B, T> : 0;
  std::uint32_t z2e[NS][8];
  // magic * (1 - 2^-E1) in both halves: z2e = z2 + this (exact: small integers)
  const std::uint32_t e1_bias2 = centered_e1_bias2<T, kE1>();
  float zf[NS][8];          // 2^23 + zero (fp32 fallback)

  // Cross-warp reduction: red[warp][m][n] (the 64·NS columns of the CTA's slabs), summed in warp order
  // into Y (or this split's partials) at columns col0...
  constexpr int kCols = 64 * NS;
  auto stage_acc = [&](float* red) {
    for_each_acc([&](int sl, int jp, int mt, int e) {
      const int m = 8 * mt + 2 * t + (e % 2), n = 64 * sl + 16 * jp + 8 * (e / 2) + g;
      if (m < M) red[(warp * M + m) * kCols + n] = acc[sl][jp][mt][e];
    });
  };
  auto reduce_out = [&](const float* red, int col0) {
    for (int i = tid; i < M * 32 * NS; i += blockDim.x) {
      const int m = i / (32 * NS), n = 2 * (i % (32 * NS));
      float2 s = make_float2(0.f, 0.f);
      for (int wk = 0; wk < nwarps; ++wk) {
        s.x += red[(wk * M + m) * kCols + n];
        s.y += red[(wk * M + m) * kCols + n + 1];
      }
      const std::size_t o = static_cast<std::size_t>(m) * N + col0 + n;
      if (args.splits == 1) {
        if (args.bias) {
          s.x += Ops::to_float(args.bias[col0 + n]);
          s.y += Ops::to_float(args.bias[col0 + n + 1]);
        }
        args.Y[o / 2] = Ops::pack2(s.x, s.y);
      } else {
        __stcg(reinterpret_cast<float2*>(args.partials + blockIdx.z * static_cast<std::size_t>(M) * N + o), s);
      }
    }
  };
  // persistent: the reduction buffer sits after the rings (they stay live across units)
  float* red_p = reinterpret_cast<float*>(smem + static_cast<std::size_t>(nwarps) * (kDecodeWarpHeader + S * slot_bytes));

  // One tile's work once it has landed in ring slot `slot`: its activation fragments, then per slab the
  // weight tile's dequantization and MMAs, the group's zeros at its first tile (`group_start`) and the
  // fold of the group's partial sums at its last (`group_end`).
  auto consume = [&](std::uint32_t slot, bool group_start, bool group_end) {
    // activation fragments (mma B operand): b[mt][ks] = rows 8mt + g, k = 16ks + 2t (+8)
    std::uint32_t b[MT][4][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const int m = 8 * mt + lane % 8, c = 4 * p + lane / 8;
        const std::uint32_t row = m < M ? slot + kAOff + m * kDecodeRowStride + 16 * c : zero_s;
        std::uint32_t r[4];
        ptx::ldmatrix_x4_s(r, row);
        b[mt][2 * p][0] = r[0];
        b[mt][2 * p][1] = r[1];
        b[mt][2 * p + 1][0] = r[2];
        b[mt][2 * p + 1][1] = r[3];
      }

    // per slab: its weight tile, its groups' zeros and scales; the activation fragments are shared
#pragma unroll
    for (int sl = 0; sl < NS; ++sl) {
      std::uint32_t w[WPL];
#pragma unroll
      for (int v = 0; v < L::vecs_per_lane; ++v) {
        const uint4 x = ptx::ld_shared_16(slot + sl * C::tile_bytes + 16 * (v * 32 + lane));
        w[4 * v + 0] = x.x;
        w[4 * v + 1] = x.y;
        w[4 * v + 2] = x.z;
        w[4 * v + 3] = x.w;
      }
#pragma unroll
      for (int gi = 0; gi < GPT; ++gi) {
        const std::uint32_t params = slot + kParamOff + (sl * GPT + gi) * kDecodeParamBytes;
        if (group_start) {  // zero pairs of the lane's 8 columns: once per group
          constexpr std::uint32_t sym_zero = 1u << (B - 1);
          if constexpr (magic_exact_v<B, T>) {
            if (sym) {
#pragma unroll
              for (int j = 0; j < 8; ++j) z2[sl][j] = neg_biased_zero2<T>(sym_zero);
            } else {
              neg_biased_zero_pairs<T>(ptx::ld_shared_8(params + 128 + 8 * g), z2[sl]);  // -(magic + z) pairs
            }
            if constexpr (kE1 > 0) {
#pragma unroll
              for (int j = 0; j < 8; ++j) z2e[sl][j] = Ops::add2(z2[sl][j], e1_bias2);
            }
          } else {
            uint2 zv = make_uint2(0u, 0u);
            if (!sym) zv = ptx::ld_shared_8(params + 128 + 8 * g);
#pragma unroll
            for (int j = 0; j < 8; ++j) {
              const std::uint32_t z = sym ? sym_zero : ((j < 4 ? zv.x : zv.y) >> (8 * (j % 4))) & 0xffu;
              zf[sl][j] = kFloatMagicValue + static_cast<float>(z);
            }
          }
        }
#pragma unroll
        for (int kk = 0; kk < 4 / GPT; ++kk) {
          const int ks = gi * (4 / GPT) + kk;
#pragma unroll
          for (int jp = 0; jp < 4; ++jp) {
            const int j = 2 * jp;
            const int q0 = 2 * (TileGeometry::n_tiles * ks + j), q1 = q0 + 2;  // pairs of n8-tiles j, j+1
            std::uint32_t a[4];
            a[0] = decode_centered_pair<B, T, kE1>(w, q0, z2[sl][j], z2e[sl][j], zf[sl][j]);
            a[1] = decode_centered_pair<B, T, kE1>(w, q1, z2[sl][j + 1], z2e[sl][j + 1], zf[sl][j + 1]);
            a[2] = decode_centered_pair<B, T, kE1>(w, q0 + 1, z2[sl][j], z2e[sl][j], zf[sl][j]);
            a[3] = decode_centered_pair<B, T, kE1>(w, q1 + 1, z2[sl][j + 1], z2e[sl][j + 1], zf[sl][j + 1]);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) Ops::mma(part[sl][jp][mt], a, b[mt][ks]);
          }
        }
        // fold at the end of a group (group 32: twice per tile) and at the end of the warp's range
        if (group_end) fold(params, acc[sl], part[sl]);
      }
    }
  };

  // Two tiles per step (2 bits at M <= 8, 3 bits at M <= 4; one slab, groups of an even number of tiles
  // that the warp's range starts on, an even number of tiles): one ring wait, one pass of the step's
  // bookkeeping and group flags known for both tiles (a pair never straddles a group), so fewer
  // instructions per tile where these widths are bound by issue (session 14's profile: 320 per 2-bit
  // tile, ~90 of them bookkeeping). H100, planned shapes, same run against one tile per step (bench/
  // results/kernels_tune_*_s14_pair2_*.json): 2-bit 0.5-4 % faster at M = 1, 4 and 8 (mean 2 %); 3-bit
  // 2 % faster at M = 1, even at M = 4, and at M = 8 mixed (-5 % to +7 %), so 3 bits pair only to M = 4.
  // The next pair's copies go out before the wait, so S - 2 tiles are in flight beyond the pair waited for,
  // as in the one-tile loop (S >= 5 at these widths).
  constexpr bool kPairable = !Bulk && NS == 1 && !Persist && MT == 1 && GPT == 1 && B <= 3;
  constexpr int kPairMaxM = B == 2 ? 8 : 4;  // most rows that pair
  static_assert(!kPairable || kCpS >= 4, "a pair and the copies beyond it need a ring of 4 slots or more");
  bool paired = false;
  if constexpr (kPairable) paired = tpg % 2 == 0 && kt0 % 2 == 0 && ntiles % 2 == 0 && M <= kPairMaxM;
  // Ring bookkeeping of both loops: issue tile i into the next slot to fill, and take the slot of the next
  // tile to consume (its wrap flips the bulk variant's mbarrier phase)
  auto issue_next = [&](int i) {
    issue(i, ws, true, true);
    ws = ws + 1 == S ? 0 : ws + 1;
  };
  auto take_slot = [&]() {
    const std::uint32_t slot = ring_s + rs * slot_bytes;
    if (++rs == S) {
      rs = 0;
      phase ^= 1u;
    }
    return slot;
  };
  if (paired) {
#pragma unroll 1
    for (int i = 0; i < ntiles; i += 2) {
      // every lane is done with the slots of tiles i - 2 and i - 1: they take tiles i + S - 2 and i + S - 1
      // (at i = 0 only tile S - 1, to the ring's last slot: the prologue issued tiles 0 .. S - 2)
      __syncwarp();
      if (i > 0) issue_next(i + S - 2);
      issue_next(i + S - 1);
      // tiles i and i + 1 have landed for every lane (the copy groups left in flight are those of tiles
      // i + 2 .. i + S - 1)
      ptx::cp_async_wait<kCpS - 2>();
      __syncwarp();
      const std::uint32_t slot0 = take_slot(), slot1 = take_slot();
      const bool group_start = i == 0 || use_left == tpg;
      const bool group_end = use_left == 2 || i + 2 == ntiles;
      use_left = use_left == 2 ? tpg : use_left - 2;
      consume(slot0, group_start, false);
      consume(slot1, false, group_end);
    }
  }

#pragma unroll 1
  for (int i = 0; i < (paired ? 0 : total); ++i) {
    if constexpr (Bulk) {
      ptx::mbarrier_wait_parity(bars + 8 * rs, phase);
      __syncwarp();  // every lane is done with the slot read in step i-1 before it is refilled
    } else {
      ptx::cp_async_wait<kCpS - 2>();
      __syncwarp();  // tile i has landed for every lane; slot (i-1) % S is free again
    }
    issue_next(i + S - 1);
    const std::uint32_t slot = take_slot();

    const int it = Persist ? ui : i;  // index in the unit
    const bool group_start = GPT == 2 || it == 0 || use_left == tpg;
    const bool group_end = GPT == 2 || use_left == 1 || it == ntiles - 1;
    if (--use_left == 0) use_left = tpg;
    consume(slot, group_start, group_end);
    if constexpr (Persist) {  // the unit's last tile: reduce its slab (the rings keep streaming)
      if (++ui == ntiles) {
        ui = 0;
        use_left = use_left0;
        __syncthreads();  // the previous unit's sums have read red_p
        stage_acc(red_p);
        __syncthreads();
        reduce_out(red_p, unit_slab * TileGeometry::tile_n);
        unit_slab += gridDim.y;
        for_each_acc([&](int sl, int jp, int mt, int e) { acc[sl][jp][mt][e] = 0.f; });
      }
    }
  }
  if constexpr (Persist) return;  // every unit is stored; no copy is left in flight
  if constexpr (Bulk) {
    __syncwarp();
    if (lane < S) ptx::mbarrier_inval(bars + 8 * lane);  // every issued copy was waited for
  }
  if constexpr (!Bulk) ptx::cp_async_wait_all();
  __syncthreads();  // every warp is done with its ring: the memory becomes the reduction buffer

  // the ring's memory becomes the reduction buffer
  float* red = reinterpret_cast<float*>(smem);
  stage_acc(red);
  __syncthreads();
  const int col0 = slab * TileGeometry::tile_n;
  reduce_out(red, col0);
  if (args.splits == 1) return;

  // Split-K: the last CTA of this slab to arrive sums the partials in split order (deterministic).
  if (!split_k_last_arrival(args.counters, slab, args.splits, tid, is_last_cta)) return;
  for (int i = tid; i < M * 32 * NS; i += blockDim.x) {
    const int m = i / (32 * NS), n = 2 * (i % (32 * NS));
    const std::size_t o = static_cast<std::size_t>(m) * N + col0 + n;
    float2 s = make_float2(0.f, 0.f);
    for (int z = 0; z < args.splits; ++z) {
      const float2 p = __ldcg(reinterpret_cast<const float2*>(args.partials + z * static_cast<std::size_t>(M) * N + o));
      s.x += p.x;
      s.y += p.y;
    }
    if (args.bias) {
      s.x += Ops::to_float(args.bias[col0 + n]);
      s.y += Ops::to_float(args.bias[col0 + n + 1]);
    }
    args.Y[o / 2] = Ops::pack2(s.x, s.y);
  }
}

}  // namespace detail
}  // namespace lowbit::kernels
