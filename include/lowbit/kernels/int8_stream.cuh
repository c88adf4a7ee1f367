/// @file int8_stream.cuh
/// @brief Small-M (M ≤ 16) LLM.int8() GEMM with the weight stream of the weight-only decode kernel:
/// every warp runs its own 16-byte `cp.async` ring over a consecutive run of K of one 64-row slab of W,
/// with no producer warp, no mbarrier and no CTA barrier in the main loop.
///
/// Why a second small-M kernel beside the ring (int8_ring.cuh): the ring's single producer thread
/// streams 64 × 192-byte tensor-TMA boxes to four consumer warps. On an H100 its stream alone ran at
/// 1.10x a plain read of the weights at 8192^2, and its GEMM at 1.19-1.25x (bench/int8/NOTES.md,
/// sessions 13 and 18), while the weight-only decode kernel (decode.cuh), whose warps each keep a few
/// 4 KB tiles in flight with `cp.async`, reads 8-bit weights at the plain-read rate (23.4 us for 8192^2
/// at M = 1, against 23.3 us for the read alone). This kernel gives the int8 layer that stream:
/// - a CTA of `w` warps (1..16) owns a 64-row slab of W and a run of K (the whole of K, or one of the
///   `splits` runs of a thread-block cluster); warp i streams the i-th part of that run in tiles of
///   64 rows × 64 bytes of K. A ring slot holds the weight tile (4 KB, 64 bytes per row, copied from the
///   row-major [N, K] codes: no layout change), the tile's two outlier-mask words, and the M activation
///   code rows of its 64 columns;
/// - the prologue issues the first kStages - 1 weight tiles before `griddepcontrol.wait` (the weights
///   never come from the kernel before: LinearOptions::pdl's contract), so under programmatic dependent
///   launch the ring fills while the activation kernels run; the activation codes, the mask, A, Y and the
///   row scales are touched only after the wait;
/// - the MMA is transposed as the decode kernel's: weight rows are the m16n8k32 A operand (four m16 tiles
///   cover the slab's 64 rows), activation code rows the B operand (one n8 tile at M <= 8, two at M <= 16:
///   the template's MT; rows >= M zero), and each lane reads 16 contiguous bytes of its rows (a k
///   permutation applied to both operands alike, so no ldmatrix);
/// - outlier columns (their codes are 0, so the int8 sums exclude them) are added in fp32 when their tile
///   is resident: weights from the slot (or the side copy), activation values from A, four columns per
///   round of loads (with the activation pass inside the kernel, the values of a warp's first 32-64
///   outlier columns and the weight scales come from shared memory: no L2 round trip in the main loop);
/// - after the loop the warps' int32 sums (exact) and fp32 outlier sums meet in shared memory, summed in
///   warp order; with splits > 1 the CTAs of a cluster then sum each other's partials in rank order
///   through distributed shared memory. Deterministic; no workspace, no atomics.
///
/// Measured (H100, session 19, bench/int8/NOTES.md): with a 128-byte L2 prefetch on the weight copies the
/// GEMM alone streams 8192^2 at M = 1 in 24.8 us (1.07x a plain read of the 67 MB; the ring 27.7-29.2 us,
/// cuBLASLt's int8 GEMM 25.9 us). As a layer it only ties the ring at M = 1 and loses at M = 16 (39.5
/// against 34.0 us): a CTA of 13-16 warps at up to 128 registers fills the register file, so it cannot
/// start beside the activation kernels' blocks, and its weight stream waits for them where the ring's
/// (96 registers, 160 threads) does not. With the activation pass inside it (the template's kFused,
/// M <= 4; session 20) the layer is this one kernel: every CTA reads all of A from L2 while its first
/// weight tiles land, and at 8192^2, M = 1 with 8 outlier columns it takes 28.0 us against the ring's 31.4.
/// That form is the default where its plan keeps one 16-warp CTA per SM (detail::stream_fused_default);
/// the separate-pass form stays an opt-in path (LinearOptions::force_path 6).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "int8_gemm.cuh"
#include "int8_ring.cuh"
#include "ptx.cuh"

namespace lowbit::kernels {

namespace stream8 {

inline constexpr int kRows = 64;        ///< W rows per CTA (one slab: eight n8 tiles per warp)
inline constexpr int kTileK = 64;       ///< K bytes of one tile (two k32 MMA steps)
inline constexpr int kMaxM = 16;        ///< rows of A (one m16 tile)
inline constexpr int kMaxWarps = 16;    ///< most warps per CTA
inline constexpr int kMaxThreads = 32 * kMaxWarps;  ///< most threads per CTA
/// Ring slots per warp (cp.async.wait_group takes a constant): two 4 KB tiles in flight beyond the one
/// being read, as the 8-bit decode kernel keeps.
inline constexpr int kStages = 3;
inline constexpr int kMaxSplits = 8;    ///< most CTAs per slab (a portable cluster size)
inline constexpr int kWBytes = kRows * kTileK;  ///< bytes of a slot's weight tile
/// Offset of the tile's outlier-mask words in a slot: the 16-byte aligned chunk of the mask that holds
/// them (4 words; the tile's two are words 0-1 or 2-3 of it).
inline constexpr int kMaskOff = kWBytes;
inline constexpr int kActOff = kWBytes + 16;  ///< offset of the activation code rows (64 bytes each)
/// Bytes one warp-wide 16-byte copy instruction moves: 8 rows of a tile (kTileK / 16 lanes per row).
inline constexpr int kWarpCopyBytes = 32 * 16;
/// Rows of a tile one warp-wide copy instruction covers.
inline constexpr int kWarpCopyRows = kWarpCopyBytes / kTileK;
/// Outlier-mask words of one tile (one bit per K column).
inline constexpr int kMaskWordsPerTile = kTileK / 32;
/// Outlier-mask words of the 16-byte mask chunk a slot receives.
inline constexpr int kMaskWordsPerChunk = 16 / 4;
/// Tiles whose mask words share one 16-byte chunk (a power of two).
inline constexpr int kTilesPerMaskChunk = kMaskWordsPerChunk / kMaskWordsPerTile;
#if !defined(LOWBIT_INT8_STREAM_PREFETCH)
/// L2 prefetch size of the weight copies (bytes around each 16-byte source fetched from DRAM at once; 0:
/// none). A warp reads 64 bytes of each of its 64 rows per tile, rows K bytes apart: without it the
/// DRAM sees 64-byte accesses scattered over 64 rows. H100 (session 19, GEMM alone, M = 1, 8192^2 /
/// 8192 x 28672 / 28672 x 8192, us): none 31.1 / 120.9 / 116.1, 128 bytes 24.8 / 86.7 / 81.7, 256 bytes
/// 29.3 / 92.7 / 91.3 (a plain read of the weights: 23.1 / 76.2 / 76.3).
#define LOWBIT_INT8_STREAM_PREFETCH 128
#endif
inline constexpr int kPrefetch = LOWBIT_INT8_STREAM_PREFETCH;  ///< (see LOWBIT_INT8_STREAM_PREFETCH)

/// Bytes of one ring slot for M rows of A.
LOWBIT_HOST_DEVICE constexpr int slot_bytes(int M) { return kActOff + M * kTileK; }
/// Bytes of the rings of `warps` warps.
LOWBIT_HOST_DEVICE constexpr int ring_bytes(int M, int warps) { return warps * kStages * slot_bytes(M); }
/// Bytes of the cross-warp reduction buffer (int32 and fp32 sums of every warp) and, after it, the CTA's
/// partial sums that the cluster reads (16 bytes per output pair).
LOWBIT_HOST_DEVICE constexpr int reduce_bytes(int M, int warps) { return warps * M * kRows * 8 + M * kRows * 8; }
/// Dynamic shared memory of gemv_stream_kernel: the rings, which the reduction reuses.
LOWBIT_HOST_DEVICE constexpr int kernel_smem(int M, int warps) {
  return ring_bytes(M, warps) > reduce_bytes(M, warps) ? ring_bytes(M, warps) : reduce_bytes(M, warps);
}

/// Rows of A up to which the activation pass can run inside the stream kernel (every CTA reads all of A).
inline constexpr int kFusedMaxM = 4;
/// Fused kernel without a K split: a warp keeps its range of A in registers for the activation pass when
/// the range is at most this many 16-byte vectors a lane (8 K tiles) ...
inline constexpr int kFusedRegVecs = 2;
/// ... of at most this many rows (else every CTA reads all of A and each warp reads its range again): the
/// kernel's kRegRows, 2 for M <= 2 and kFusedMaxM (4) for M = 3, 4. The 4-row register arrays compile at
/// 128 registers with no spill but cost 0.6 us at M = 1 on 8192^2 (H100), so M <= 2 keeps the 2-row form.
inline constexpr int kFusedRegRows = 2;
/// The register-path row count the fused kernel is launched with for M rows.
LOWBIT_HOST_DEVICE constexpr int fused_reg_rows(int M) { return M <= kFusedRegRows ? kFusedRegRows : kFusedMaxM; }
/// Fused kernel: row stride of a warp's activation codes for `kt_per_warp` tiles (64 mod 128: the rows
/// a fragment load reads fall into different halves of the banks). The 64 or 128 bytes past the codes of
/// a row hold the values of the row at the warp's first outlier columns (fused_outlier_slots).
LOWBIT_HOST_DEVICE constexpr int fused_code_stride(int kt_per_warp) { return (kt_per_warp * kTileK + 127) / 128 * 128 + 64; }
/// Fused kernel: activation values (2 bytes each) a warp keeps per row for its first outlier columns, in
/// column order, in the code row's padding; the outlier products read them there instead of from A.
LOWBIT_HOST_DEVICE constexpr int fused_outlier_slots(int kt_per_warp) {
  return (fused_code_stride(kt_per_warp) - kt_per_warp * kTileK) / 2;
}
/// Fused kernel: bytes of the weight-only rings (or the reduction buffer, whichever is larger); the warps'
/// activation codes, the outlier bits of all of K (one byte per 8 columns) and the pass's scratch follow.
LOWBIT_HOST_DEVICE constexpr int fused_ring_region(int M, int warps) {
  return warps * kStages * kWBytes > reduce_bytes(M, warps) ? warps * kStages * kWBytes : reduce_bytes(M, warps);
}
/// Fused kernel: bytes of the outlier-bit array for K columns (16-byte padded).
LOWBIT_HOST_DEVICE constexpr int fused_bits_bytes(int K) { return (K / 8 + 15) / 16 * 16; }
/// Fused kernel: bytes of the pass's scratch (per-warp row maxima, the row scales, per-warp non-finite
/// counts, the slab's weight row scales).
inline constexpr int kFusedScratch = (kMaxWarps * kFusedMaxM + kFusedMaxM + kMaxWarps + kRows) * 4;
/// Dynamic shared memory of gemv_stream_kernel<T, 1, true>.
LOWBIT_HOST_DEVICE constexpr int fused_kernel_smem(int M, int warps, int kt_per_warp, int K) {
  return fused_ring_region(M, warps) + warps * M * fused_code_stride(kt_per_warp) + fused_bits_bytes(K) + kFusedScratch;
}

}  // namespace stream8

namespace detail {

/// A[m, c] of fp16 / bf16 activations as float, through L2 (A may come from the kernel before).
template <class T>
LOWBIT_DEVICE float load_act_value(const T* A, std::size_t i) {
  const unsigned short b = __ldcg(reinterpret_cast<const unsigned short*>(A) + i);
  if constexpr (std::is_same_v<T, __half>) return __half2float(__ushort_as_half(b));
  else return __bfloat162float(__ushort_as_bfloat16(b));
}

/// The int8 codes of 8 consecutive activation values `x` (value i in byte i): 0 where outlier bit i of
/// `ob` is set or the value is outside the row scale, else the row-scaled code (act_quant_kernel's rule).
template <class T>
LOWBIT_DEVICE uint2 stream_quantize8(const uint4& x, std::uint32_t ob, float inv, float threshold) {
  const T* e = reinterpret_cast<const T*>(&x);
  std::uint32_t wv[2] = {0u, 0u};
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float f = Elem<T>::to(e[j]);
    const bool keep = !((ob >> j) & 1u) && lowbit::int8::detail::in_row_scale(f, threshold);
    const std::int8_t c = keep ? lowbit::int8::detail::quantize_code(f, inv) : 0;
    wv[j / 4] |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(c)) << (8 * (j % 4));
  }
  return make_uint2(wv[0], wv[1]);
}

}  // namespace detail

/// The small-M LLM.int8() GEMM with its epilogue (see the file comment), after the ring path's activation
/// kernels (act_partial_kernel / act_quant_kernel: codes with the outlier columns zeroed, row scales,
/// outlier bitmask).
/// Grid (N / 64, splits), 32 · warps threads, dynamic shared memory stream8::kernel_smem(M, warps); with
/// splits > 1 launched in clusters of (1, splits, 1).
/// @tparam T __half or __nv_bfloat16 (activations and output)
/// @tparam MT 8-row blocks of A (1: M <= 8, 2: M <= 16)
/// @tparam kFused the activation pass inside the kernel (M <= stream8::kFusedMaxM; no activation kernel):
/// every CTA reads all of A from L2 for the row scales and the outlier bits while its first tiles' weights
/// land, each warp quantizes its own K range into shared memory and keeps the values of its first outlier
/// columns beside the codes (stream8::fused_outlier_slots), CTA (0, 0) writes the statistics; shared
/// memory stream8::fused_kernel_smem(M, warps, kt_per_warp, K)
/// @tparam kRegRows kFused: rows up to which a warp may keep its range of A in registers
/// (stream8::fused_reg_rows(M); the host launches the instantiation for M)
/// @param fa kFused: threshold and statistics outputs (unused otherwise)
/// @param p Wq, w_absmax, bias, side copy; Aq, row_absmax, outlier_mask (activation kernels); A, Y
/// @param M rows (1..16)
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64)
/// @param kt_per_split 64-byte K tiles of one CTA's run (the cluster's CTAs take consecutive runs)
/// @param kt_per_warp K tiles of one warp's part of the run (the last warps may have fewer or none)
template <class T, int MT, bool kFused = false, int kRegRows = stream8::kFusedRegRows>
__global__ void __launch_bounds__(stream8::kMaxThreads, 1)
    gemv_stream_kernel(const Int8EpilogueParams p, RingFusedAct fa, int M, int N, int K, int kt_per_split,
                       int kt_per_warp) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace S8 = stream8;
  static_assert(!kFused || MT == 1, "the fused activation pass serves M <= 4");
  constexpr int S = S8::kStages;
  extern __shared__ __align__(128) unsigned char smem[];  // (the alignment of the other int8 kernels' declaration)
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int nwarps = static_cast<int>(blockDim.x) >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int n0 = static_cast<int>(blockIdx.x) * S8::kRows;
  const int splits = static_cast<int>(gridDim.y), rank = static_cast<int>(blockIdx.y);
  const int KT = K / S8::kTileK;
  const int c_lo = min(KT, rank * kt_per_split), c_hi = min(KT, c_lo + kt_per_split);
  const int kt0 = min(c_hi, c_lo + warp * kt_per_warp), kt1 = min(c_hi, kt0 + kt_per_warp);
  const int ntiles = kt1 - kt0;
  const int slot_bytes = kFused ? S8::kWBytes : S8::slot_bytes(M);
  // fused: each warp's activation codes [M][code_stride], the outlier bits of all of K, the pass's scratch
  const int code_stride = S8::fused_code_stride(kt_per_warp);
  unsigned char* s_codes = smem + S8::fused_ring_region(M, nwarps) + static_cast<std::size_t>(warp) * M * code_stride;
  std::uint8_t* s_b8 = smem + S8::fused_ring_region(M, nwarps) + static_cast<std::size_t>(nwarps) * M * code_stride;
  float* s_red = reinterpret_cast<float*>(s_b8 + S8::fused_bits_bytes(K));  // [kMaxWarps][kFusedMaxM]
  float* s_amax = s_red + S8::kMaxWarps * S8::kFusedMaxM;                   // [kFusedMaxM]
  int* s_nf = reinterpret_cast<int*>(s_amax + S8::kFusedMaxM);              // [kMaxWarps]
  float* s_wabs = reinterpret_cast<float*>(s_nf + S8::kMaxWarps);           // [kRows]: w_absmax of the slab
  // fused: the warp's outlier values of row m, in column order (the code row's padding)
  const int oslots = S8::fused_outlier_slots(kt_per_warp);
  auto oval_row = [&](int m) { return reinterpret_cast<T*>(s_codes + m * code_stride + kt_per_warp * S8::kTileK); };
  unsigned char* ring_p = smem + static_cast<std::size_t>(warp) * S * slot_bytes;
  const std::uint32_t ring = ptx::smem_addr(ring_p);
  const std::size_t Ks = static_cast<std::size_t>(K);

  // Copy roles, as running sources (the issue path is pointer arithmetic): weight chunk lane + 32v is
  // row lane/4 + 8v, 16-byte part lane % 4 (a warp instruction copies 8 rows x 64 bytes); activation
  // chunk lane + 32r is row lane/4 + 8r (rows < M only); lane 0 copies the mask chunk.
  const unsigned char* w_run = reinterpret_cast<const unsigned char*>(p.Wq) +
                               static_cast<std::size_t>(n0 + lane / 4) * Ks + static_cast<std::size_t>(kt0) * S8::kTileK +
                               16 * (lane % 4);
  const unsigned char* a_run = reinterpret_cast<const unsigned char*>(p.Aq) + static_cast<std::size_t>(lane / 4) * Ks +
                               static_cast<std::size_t>(kt0) * S8::kTileK + 16 * (lane % 4);
  const bool a_row0 = lane / 4 < M, a_row1 = MT == 2 && lane / 4 + 8 < M;
  int mask_tile = kt0;  // tile whose mask chunk the next activation issue copies
  const std::uint32_t w_dst = 16u * static_cast<unsigned>(lane), a_dst = S8::kActOff + 16u * static_cast<unsigned>(lane);

  // Issues tile i's weights and/or activation part into slot si; `acts` also closes the copy group.
  auto issue = [&](int i, int si, bool weights, bool acts) {
    if (i < ntiles) {
      const std::uint32_t slot = ring + static_cast<std::uint32_t>(si * slot_bytes);
      if (weights) {
#pragma unroll
        for (int v = 0; v < S8::kWBytes / S8::kWarpCopyBytes; ++v)
          ptx::cp_async_16_s_prefetch<S8::kPrefetch>(slot + w_dst + S8::kWarpCopyBytes * v,
                                                     w_run + static_cast<std::size_t>(S8::kWarpCopyRows * v) * Ks);
        w_run += S8::kTileK;
      }
      if (acts && !kFused) {
        if (a_row0) ptx::cp_async_16_s(slot + a_dst, a_run);
        if (a_row1) ptx::cp_async_16_s(slot + a_dst + S8::kWarpCopyBytes, a_run + S8::kWarpCopyRows * Ks);
        if (lane == 0)  // the 16-byte aligned chunk holding the tile's mask words
          ptx::cp_async_16_s(slot + S8::kMaskOff, p.outlier_mask + (mask_tile / S8::kTilesPerMaskChunk) *
                                                                       S8::kMaskWordsPerChunk);
        a_run += S8::kTileK;
        ++mask_tile;
      }
    }
    if (acts) ptx::cp_async_commit();  // one group per tile and lane, maybe empty
  };

  // Accumulators (transposed MMA, as the decode kernel's: weight rows are the m16n8k32 A operand, rows of
  // A the n8 B operand): acc[i][mt][2r + e] is slab row 16i + g + 8r, activation row 8mt + 2t + e.
  int acc[4][MT][4];
  float yo[4][MT][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        acc[i][mt][r] = 0;
        yo[i][mt][r] = 0.f;
      }
  const T* Aval = static_cast<const T*>(p.A);

  // The fp32 product of the outlier columns of a resident tile (bits: its 64 columns' mask bits; warp
  // uniform), four columns per round of activation loads. Fused: the values of the warp's first
  // `oslots` outlier columns and the weight row scales come from shared memory (oj: the warp's outlier
  // columns done so far, warp uniform), the rest from A in L2.
  int oj = 0;
  auto outliers = [&](const unsigned char* slot_p, int k0, unsigned long long bits) {
    while (bits) {
      const int nround = min(4, __popcll(bits));  // columns of this round
      int cs[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        cs[q] = bits ? __ffsll(static_cast<long long>(bits)) - 1 : -1;
        bits &= bits - 1;  // (0 stays 0)
      }
      float av[4][MT][2];
#pragma unroll
      for (int q = 0; q < 4; ++q)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int m = 8 * mt + 2 * t + e;
            if (cs[q] < 0 || m >= M) av[q][mt][e] = 0.f;
            else if (kFused && oj + q < oslots) av[q][mt][e] = detail::Elem<T>::to(oval_row(m)[oj + q]);
            else av[q][mt][e] = detail::load_act_value(Aval, static_cast<std::size_t>(m) * Ks + k0 + cs[q]);
          }
      oj += nround;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (cs[q] < 0) break;  // warp uniform
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int nl = 16 * i + g + 8 * r;
            const float wq = static_cast<float>(static_cast<std::int8_t>(slot_p[nl * S8::kTileK + cs[q]]));
            const float wo = detail::outlier_weight_with(p, n0 + nl, k0 + cs[q], N, wq, [&](int n) {
              if constexpr (kFused) return s_wabs[n - n0];
              else return __ldg(p.w_absmax + n);
            });
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
              for (int e = 0; e < 2; ++e) yo[i][mt][2 * r + e] = fmaf(av[q][mt][e], wo, yo[i][mt][2 * r + e]);
          }
      }
    }
  };

  // One resident tile: its MMAs, then its outlier columns. Each lane reads 16 contiguous bytes of each of
  // its rows (a k permutation applied to both operands alike: bytes 16t + 8h + 0..3 are the k32 step h's
  // k = 4t..4t+3, bytes 16t + 8h + 4..7 its k = 16 + 4t..).
  const std::uint32_t codes_s = ptx::smem_addr(s_codes);
  auto consume = [&](int si, int kt) {
    const std::uint32_t slot = ring + static_cast<std::uint32_t>(si * slot_bytes);
    // activation code rows: the slot's, or (fused) the warp's own codes at the tile's offset
    const std::uint32_t arow = kFused ? codes_s + static_cast<std::uint32_t>((kt - kt0) * S8::kTileK) : slot + S8::kActOff;
    const int astride = kFused ? code_stride : S8::kTileK;
    std::uint32_t xb[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const int m = 8 * mt + g;
      const uint4 x = m < M ? ptx::ld_shared_16(arow + static_cast<std::uint32_t>(astride * m) + 16u * t)
                            : make_uint4(0, 0, 0, 0);
      xb[mt][0] = x.x;
      xb[mt][1] = x.y;
      xb[mt][2] = x.z;
      xb[mt][3] = x.w;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 w0 = ptx::ld_shared_16(slot + S8::kTileK * (16 * i + g) + 16u * t);
      const uint4 w1 = ptx::ld_shared_16(slot + S8::kTileK * (16 * i + g + 8) + 16u * t);
      const std::uint32_t wa[4] = {w0.x, w0.y, w0.z, w0.w}, wb[4] = {w1.x, w1.y, w1.z, w1.w};
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // two k32 steps: registers (2h, 2h + 1) of each lane's 16 bytes
        const std::uint32_t af[4] = {wa[2 * h], wb[2 * h], wa[2 * h + 1], wb[2 * h + 1]};
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          const std::uint32_t bf[2] = {xb[mt][2 * h], xb[mt][2 * h + 1]};
          detail::mma_s8_m16n8k32(acc[i][mt], af, bf);
        }
      }
    }
    const uint2 mw = kFused ? *reinterpret_cast<const uint2*>(s_b8 + 8 * kt)  // (fused: K's outlier bits)
                            : ptx::ld_shared_8(slot + S8::kMaskOff +  // the tile's words within the slot's chunk
                                               4u * S8::kMaskWordsPerTile * (kt & (S8::kTilesPerMaskChunk - 1)));
    const unsigned long long bits = (static_cast<unsigned long long>(mw.y) << 32) | mw.x;
    if (bits) outliers(ring_p + si * slot_bytes, kt * S8::kTileK, bits);
  };

  // Prologue: weights of tiles 0 .. S-2 before griddepcontrol.wait, then (after it) their activation
  // parts. Copy group 0 holds those weights and tile 0's activations, group i tile i's activations; the
  // main loop's wait_group<S-2> at tile i covers all of tile i.
  for (int i = 0; i < S - 1; ++i) issue(i, i, true, kFused);  // (fused: one group per tile's weights)
  if constexpr (kFused)  // (a weight: before the wait; a CTA may have a single warp)
    for (int r = tid; r < S8::kRows; r += static_cast<int>(blockDim.x)) s_wabs[r] = __ldg(p.w_absmax + n0 + r);
  detail::pdl_wait();
  detail::pdl_launch_dependents();
  if constexpr (kFused) {
    // The activation pass (the ring's fused pass, act_quant_kernel's rules): row absmax over the in-scale
    // values and the outlier bits of every 8 columns, then each warp quantizes its own K range into its
    // code rows. With one CTA per slab (no K split) whose warps' ranges are at most kFusedRegVecs vectors a
    // lane for at most kRegRows rows, each warp reads only its own range of A, keeps it in registers
    // for the quantization, and the warps' parts make up all of K; otherwise every CTA reads all of A from
    // L2 (scan_act_rows) and each warp reads its range again to quantize it.
    const uint4* A4 = reinterpret_cast<const uint4*>(Aval);
    const int nvec = K / 8, v0 = kt0 * (S8::kTileK / 8), nv = ntiles * (S8::kTileK / 8);
    constexpr int kRQ = S8::kFusedRegVecs, kRM = kRegRows;
    const bool in_regs = gridDim.y == 1 && M <= kRM &&
                         kt_per_warp * (S8::kTileK / 8) <= 32 * kRQ;  // (CTA-uniform)
    // Outlier values: the lane's 8 columns from vector x (bits ob) go to the row's list from index `idx`
    // (the outlier columns of the warp's range before them; rank_base gives it, warp-wide, per 32 vectors)
    auto stash = [&](int m, const uint4& x, std::uint32_t ob, int idx) {
      const T* e = reinterpret_cast<const T*>(&x);
      T* list = oval_row(m);
#pragma unroll
      for (int j = 0; j < 8; ++j)
        if ((ob >> j) & 1u) {
          if (idx < oslots) list[idx] = e[j];
          ++idx;
        }
    };
    auto rank_base = [&](std::uint32_t ob, int& running) {
      const int c = __popc(ob), inc = detail::warp_inclusive_sum(c, lane);
      const int base = running + inc - c;
      running += __shfl_sync(0xffffffffu, inc, 31);
      return base;
    };
    uint4 xv[kRQ][kRM];  // in_regs: vector lane + 32q of row m of the warp's range
    std::uint32_t ob[kRQ];
    int nf = 0;
    if (in_regs) {
#pragma unroll
      for (int q = 0; q < kRQ; ++q)
#pragma unroll
        for (int m = 0; m < kRM; ++m) {
          const int vl = lane + 32 * q;
          xv[q][m] = m < M && vl < nv ? __ldcg(A4 + static_cast<std::size_t>(m) * nvec + v0 + vl) : make_uint4(0, 0, 0, 0);
        }
      float am[kRM];
#pragma unroll
      for (int m = 0; m < kRM; ++m) am[m] = 0.f;
#pragma unroll
      for (int q = 0; q < kRQ; ++q) {
        ob[q] = 0u;
#pragma unroll
        for (int m = 0; m < kRM; ++m) {
          if (m >= M || lane + 32 * q >= nv) continue;
          ob[q] |= detail::scan_vec8<T>(xv[q][m], fa.threshold, nf, am[m]);
        }
        if (lane + 32 * q < nv) s_b8[v0 + lane + 32 * q] = static_cast<std::uint8_t>(ob[q]);
      }
#pragma unroll
      for (int m = 0; m < kRM; ++m) {
#pragma unroll
        for (int off = 16; off; off >>= 1) am[m] = fmaxf(am[m], __shfl_xor_sync(0xffffffffu, am[m], off));
        if (lane == 0 && m < M) s_red[warp * S8::kFusedMaxM + m] = am[m];
      }
    } else {
      nf = detail::scan_act_rows<T, 1, 4>(Aval, M, K, tid, static_cast<int>(blockDim.x), fa.threshold, s_b8,
                                          [&](int m, float a) {
                                            if (lane == 0) s_red[warp * S8::kFusedMaxM + m] = a;
                                          });
    }
#pragma unroll
    for (int off = 16; off; off >>= 1) nf += __shfl_xor_sync(0xffffffffu, nf, off);
    if (lane == 0) s_nf[warp] = nf;
    __syncthreads();
    if (tid < M) {
      float a = 0.f;
      for (int w = 0; w < nwarps; ++w) a = fmaxf(a, s_red[w * S8::kFusedMaxM + tid]);
      s_amax[tid] = a;
    }
    __syncthreads();
    if (in_regs) {
      int base[kRQ], running = 0;
#pragma unroll
      for (int q = 0; q < kRQ; ++q) base[q] = rank_base(ob[q], running);
#pragma unroll
      for (int m = 0; m < kRM; ++m) {
        if (m >= M) continue;
        const float inv = lowbit::int8::detail::inv_scale(s_amax[m]);
#pragma unroll
        for (int q = 0; q < kRQ; ++q) {
          const int vl = lane + 32 * q;
          if (vl < nv) {
            *reinterpret_cast<uint2*>(s_codes + m * code_stride + vl * 8) =
                detail::stream_quantize8<T>(xv[q][m], ob[q], inv, fa.threshold);
            stash(m, xv[q][m], ob[q], base[q]);
          }
        }
      }
    } else {
      for (int m = 0; m < M; ++m) {
        const float inv = lowbit::int8::detail::inv_scale(s_amax[m]);
        int running = 0;
        for (int c0 = 0; c0 < nv; c0 += 32) {  // (warp uniform: rank_base shuffles)
          const int vl = c0 + lane;
          const std::uint32_t obv = vl < nv ? s_b8[v0 + vl] : 0u;
          const int b = rank_base(obv, running);
          if (vl >= nv) continue;
          const uint4 x = __ldcg(A4 + static_cast<std::size_t>(m) * nvec + v0 + vl);
          *reinterpret_cast<uint2*>(s_codes + m * code_stride + vl * 8) =
              detail::stream_quantize8<T>(x, obv, inv, fa.threshold);
          stash(m, x, obv, b);
        }
      }
    }
    __syncwarp();  // the warp's codes are written (only this warp reads them)
    if (blockIdx.x == 0 && blockIdx.y == 0 && warp == 0) {  // the layer's statistics, over all of K
      int oc = 0;
      for (int w = lane; w < K / 32; w += 32) oc += __popc(reinterpret_cast<const std::uint32_t*>(s_b8)[w]);
#pragma unroll
      for (int off = 16; off; off >>= 1) oc += __shfl_xor_sync(0xffffffffu, oc, off);
      if (lane == 0) {
        unsigned long long nft = 0;
        for (int w = 0; w < nwarps; ++w) nft += static_cast<unsigned long long>(s_nf[w]);
        *fa.count = oc;
        *fa.overflow = oc > fa.max_list ? 1 : 0;
        *fa.nonfinite = nft;
      }
    }
  } else {
    for (int i = 0; i < S - 1; ++i) issue(i, i, false, true);
  }
  int rs = 0, ws = S - 1;
#pragma unroll 1
  for (int i = 0; i < ntiles; ++i) {
    ptx::cp_async_wait<S - 2>();
    __syncwarp();  // tile i has landed for every lane; every lane is done with the slot of tile i - 1
    issue(i + S - 1, ws, true, true);
    ws = ws + 1 == S ? 0 : ws + 1;
    consume(rs, kt0 + i);
    rs = rs + 1 == S ? 0 : rs + 1;
  }
  ptx::cp_async_wait_all();
  __syncthreads();  // every warp is done with its ring: the memory becomes the reduction buffer

  // ---- cross-warp reduction: red_i[warp][m][64], red_f after it, summed in warp order ----
  int* red_i = reinterpret_cast<int*>(smem);
  float* red_f = reinterpret_cast<float*>(smem + static_cast<std::size_t>(nwarps) * M * S8::kRows * 4);
  uint4* part = reinterpret_cast<uint4*>(smem + static_cast<std::size_t>(nwarps) * M * S8::kRows * 8);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = 8 * mt + 2 * t + (r & 1), n = 16 * i + g + 8 * (r >> 1);
        if (m >= M) continue;
        red_i[(warp * M + m) * S8::kRows + n] = acc[i][mt][r];
        red_f[(warp * M + m) * S8::kRows + n] = yo[i][mt][r];
      }
  __syncthreads();

  // Y[m, n0 + n .. n + 1] from summed int32 and fp32 parts (the ring kernel's formula)
  auto store = [&](int m, int n, int2 si, float2 sf) {
    const float rs_m = kFused ? s_amax[m] : __ldcg(p.row_absmax + m);
    float y[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int nn = n0 + n + e;
      const float wsc = (kFused ? s_wabs[n + e] : __ldg(p.w_absmax + nn)) * detail::kInvCodeMaxSq;
      y[e] = static_cast<float>(e ? si.y : si.x) * (rs_m * wsc) + (e ? sf.y : sf.x) + (p.bias ? __ldg(p.bias + nn) : 0.f);
    }
    *reinterpret_cast<typename detail::Elem<T>::pair*>(static_cast<T*>(p.Y) + static_cast<std::size_t>(m) * N + n0 + n) =
        detail::Elem<T>::pack(y[0], y[1]);
  };
  for (int i = tid; i < M * (S8::kRows / 2); i += static_cast<int>(blockDim.x)) {
    const int m = i / (S8::kRows / 2), n = 2 * (i % (S8::kRows / 2));
    int2 si = make_int2(0, 0);
    float2 sf = make_float2(0.f, 0.f);
    for (int w = 0; w < nwarps; ++w) {
      const int o = (w * M + m) * S8::kRows + n;
      const int2 a = *reinterpret_cast<const int2*>(red_i + o);
      const float2 b = *reinterpret_cast<const float2*>(red_f + o);
      si.x += a.x;
      si.y += a.y;
      sf.x += b.x;
      sf.y += b.y;
    }
    if (splits == 1) store(m, n, si, sf);
    else part[i] = make_uint4(static_cast<unsigned>(si.x), static_cast<unsigned>(si.y), __float_as_uint(sf.x),
                              __float_as_uint(sf.y));
  }
  if (splits == 1) return;
  // ---- split K: output pair i is summed over the cluster's CTAs (rank order) by CTA i % splits; the
  // second barrier keeps every CTA's shared memory alive until all reads are done ----
  detail::cluster_barrier();
  const std::uint32_t part_s = ptx::smem_addr(part);
  for (int i = tid; i < M * (S8::kRows / 2); i += static_cast<int>(blockDim.x)) {
    if (i % splits != rank) continue;
    int2 si = make_int2(0, 0);
    float2 sf = make_float2(0.f, 0.f);
    for (int q = 0; q < splits; ++q) {
      const uint4 v = detail::ld_cluster_16(part_s + 16u * static_cast<unsigned>(i), static_cast<unsigned>(q));
      si.x += static_cast<int>(v.x);
      si.y += static_cast<int>(v.y);
      sf.x += __uint_as_float(v.z);
      sf.y += __uint_as_float(v.w);
    }
    store(i / (S8::kRows / 2), 2 * (i % (S8::kRows / 2)), si, sf);
  }
  detail::cluster_barrier();
#else
  (void)p, (void)fa, (void)M, (void)N, (void)K, (void)kt_per_split, (void)kt_per_warp;
  __trap();  // cp.async needs sm_80
#endif
}

}  // namespace lowbit::kernels
