/// @file int8_wgmma.cuh
/// @brief sm_90a int8 GEMM core on warpgroup MMA: `wgmma.mma_async m64n256k32 s32.s8.s8` with both
/// operands read from 128-byte-swizzled shared memory, filled by a 4-stage cp.async pipeline, and the
/// LLM.int8() epilogue (row ⊗ column dequantization, outlier columns' product, bias) fused — or int32
/// output (plain stores, or red.global.add when split along K).
///
/// Block tile 128 × 256 × 128 (M × N × K bytes), 256 threads = two consumer warpgroups of 64 × 256 each
/// (128 int32 accumulators per thread); every thread also issues the cp.async copies of the next stages.
/// Compiled only where the architecture-specific feature set is available (`sm_90a`,
/// `__CUDA_ARCH_FEAT_SM90_ALL`); elsewhere the kernel body is a trap and the host dispatch in
/// `lowbit/int8/linear.cuh` never selects it unless `LOWBIT_INT8_WGMMA` is defined (set it only when
/// every CUDA architecture of the build is sm_90a). The mma.sync kernels in `int8_gemm.cuh` stay the
/// portable path.
///
/// Shared-memory layout (PTX ISA, "matrix descriptor", K-major with 128-byte swizzling): a tile of R rows
/// × 128 bytes of K is stored row after row; the 16-byte chunk c of row r sits at chunk position
/// c ^ (r % 8) inside its row, and every 8-row group (1024 bytes) is one swizzle atom, so the descriptor
/// has a stride of 1024 bytes between 8-row groups. A k32 step (32 bytes) inside the 128-byte row is
/// selected by advancing the descriptor's start address by 32 bytes.
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda.h>  // CUtensorMap

#include "int8_gemm.cuh"
#include "ptx.cuh"
#include "wgmma_layout.hpp"

namespace lowbit::kernels {

/// Tile shape of gemm_s8_wgmma_kernel.
struct WgmmaShape {
  static constexpr int BM = 128;                     ///< block rows (two warpgroups × 64)
  static constexpr int BN = 256;                     ///< block columns (wgmma N)
  static constexpr int BK = 128;                     ///< K bytes per stage (one 128-byte swizzle row)
  static constexpr int kStages = 4;                  ///< shared-memory stages
  static constexpr int kPrefetch = kStages - 2;      ///< stages loaded ahead (one more is being read by wgmma)
  static constexpr int kThreads = 256;               ///< two warpgroups
  static constexpr int kChunksPerRow = BK / 16;      ///< 16-byte cp.async chunks per tile row
  static constexpr int kStageA = BM * BK;            ///< bytes of A per stage
  static constexpr int kStageBytes = (BM + BN) * BK; ///< bytes per stage
  static constexpr int kAlign = detail::kSw128AtomBytes;  ///< swizzle-atom alignment of every stage
  static constexpr int kSmemBytes = kStages * kStageBytes + kAlign;  ///< dynamic shared memory (+ alignment slack)
  static constexpr int kAcc = BN / 2;                ///< int32 accumulators per thread (64 × 256 / 128)
  static constexpr int kPad = detail::kOutlierChunk + 1;  ///< epilogue staging row stride (odd: no bank conflicts)
  static constexpr int kWgRows = BM / 2;             ///< rows of one consumer warpgroup (its m64 wgmma tile)
  /// Bytes of one tensor-store chunk (the TMA kernel's epilogue): the warpgroup's rows, one 128-byte swizzle
  /// row each (32 int32 or 64 16-bit columns).
  static constexpr int kStoreChunkBytes = kWgRows * detail::kSw128RowBytes;
  static_assert((BM * kPad + BN * kPad) * 4 <= kStages * kStageBytes, "outlier staging fits in the pipeline smem");
  static_assert(BK == detail::kSw128RowBytes, "one 128-byte swizzle row of K per stage (descriptor offsets)");
};

/// Shape of the warp-specialized TMA variant (gemm_s8_wgmma_ws_kernel): WgmmaShape's block tile and two
/// consumer warpgroups, plus a producer warpgroup (one thread of it issues the copies; a whole warpgroup so
/// that `setmaxnreg` can move its registers to the consumers: at 3 warps per SM sub-partition the launch
/// budget is 168 registers a thread, which made the fused epilogue spill); the stages hold the same
/// swizzled tiles.
struct WgmmaWsShape : WgmmaShape {
  static constexpr int kConsumers = WgmmaShape::kThreads;  ///< consumer threads (two warpgroups)
  static constexpr int kThreads = kConsumers + 128;        ///< + the producer warpgroup
  static constexpr int kProducerRegs = 40;                 ///< producer registers after setmaxnreg
  static constexpr int kConsumerRegs = 232;                ///< consumer registers after setmaxnreg
  // setmaxnreg only moves registers inside the CTA's launch allocation (65536 / threads rounded down to a
  // multiple of 8, per thread: 168 x 384): asking for more would block the consumers forever
  static_assert(kProducerRegs * 128 + kConsumerRegs * kConsumers <= (65536 / kThreads) / 8 * 8 * kThreads,
                "setmaxnreg budgets exceed the CTA's launch register allocation");
  /// The tensor stores' buffers (detail::wgmma_store_tma): two chunks per consumer warpgroup.
  static constexpr int kStoreBytes = kConsumers / 128 * 2 * kStoreChunkBytes;
  /// Epilogue staging beside the ring (the producer refills the ring with the next tile's stages while the
  /// consumers run a tile's epilogue): the outlier columns' staging (the larger of the slab path's
  /// WgmmaOutlierStage and the fallback's (BM + BN) x kPad floats), and afterwards the tensor stores' buffers.
  static constexpr int kStagingBytes = std::max((BM + BN) * kPad * 4, kStoreBytes);
  /// Byte offset of the stages' tile indices (one int per stage, written by the producer before it arms
  /// the stage's full barrier) in the (aligned) dynamic shared memory: after the ring and the mbarriers.
  static constexpr int kTileIdOffset = kStages * kStageBytes + 2 * kStages * 8;
  /// Byte offset of the staging area: after the tile indices, on a 1024-byte swizzle atom (the store buffers).
  static constexpr int kStagingOffset = (kTileIdOffset + kStages * 4 + kAlign - 1) / kAlign * kAlign;
  /// Dynamic shared memory: the ring, the mbarriers, the staging area, alignment slack.
  static constexpr int kSmemBytes = kStagingOffset + kStagingBytes + kAlign;
  static_assert(kStagingOffset % kAlign == 0, "staging on a swizzle atom (float4 reads, 128-byte-swizzled stores)");
  static_assert(kSmemBytes <= 227 * 1024, "one block per SM: at most 227 KB of dynamic shared memory");
};

namespace detail {

/// Shared-memory matrix descriptor of a K-major tile with 128-byte swizzling (1024-byte atoms): sw128_desc
/// (wgmma_layout.hpp) of its shared-state-space address. The cp.async kernel stores with swz128, the TMA
/// kernel's boxes arrive in the same layout.
LOWBIT_DEVICE std::uint64_t wgmma_desc_sw128(const void* smem) {
  return sw128_desc(static_cast<std::uint32_t>(__cvta_generic_to_shared(smem)));
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/// D (+)= A·B for a 64 × 256 × 32 int8 tile of one warpgroup (asynchronous; see wgmma_commit/wait).
LOWBIT_DEVICE void wgmma_m64n256k32_s8(int (&d)[128], std::uint64_t desc_a, std::uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p;\n}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]),
        "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]),
        "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]),
        "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]),
        "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]),
        "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]),
        "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]),
        "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]), "+r"(d[64]),
        "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]), "+r"(d[72]),
        "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]), "+r"(d[80]),
        "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]), "+r"(d[88]),
        "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]), "+r"(d[96]),
        "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]),
        "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]),
        "+r"(d[111]), "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]),
        "+r"(d[118]), "+r"(d[119]), "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]),
        "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}
LOWBIT_DEVICE void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
LOWBIT_DEVICE void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
LOWBIT_DEVICE void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/// Makes this thread's generic-proxy shared-memory writes (cp.async) visible to the async proxy (wgmma).
LOWBIT_DEVICE void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/// Keeps the compiler from moving accumulator accesses across wgmma fences.
LOWBIT_DEVICE void reg_fence(int& r) { asm volatile("" : "+r"(r)::"memory"); }
#endif

/// Staging layout of one chunk of outlier columns for the wgmma epilogue, shaped after the accumulator
/// fragment: thread lane holds columns 2·(lane % 4) + 8·t + e (t < 32, e < 2) of rows r and r + 8. The
/// activation values are stored `[J][BM]`; the weights `[J][4][kQuadStride]` with column n at
/// outlier_quad_pos(n), so that the 64 weights a thread needs for one outlier column are contiguous
/// (16 LDS.128) and the four quads of a warp read distinct bank groups (stride 68 words).
struct WgmmaOutlierStage {
  static constexpr int J = kOutlierChunk;                         ///< columns per chunk
  static constexpr int kQuadStride = WgmmaShape::BN / 4 + 4;      ///< floats per lane quad's column block
  static constexpr int kWRow = 4 * kQuadStride;                   ///< floats per outlier column (weights)
  static constexpr int kBytes = J * (WgmmaShape::BM + kWRow) * 4;  ///< shared memory of a chunk
  static_assert(kBytes <= WgmmaShape::kStages * WgmmaShape::kStageBytes, "fits in the ring");
};
/// Position of local output column n (< 256) in a WgmmaOutlierStage weight row.
LOWBIT_HOST_DEVICE constexpr int outlier_quad_pos(int n) {
  return ((n & 7) >> 1) * WgmmaOutlierStage::kQuadStride + (n >> 3) * 2 + (n & 1);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/// The outlier columns' product of a 128 x 256 block from the pre-gathered slabs (use_outlier_slabs),
/// added to the dequantized accumulators `acc` (fp32 bits) by the 256 consumer threads: per chunk of
/// kOutlierChunk columns, every thread copies its 8 activation and 16 weight values into the
/// WgmmaOutlierStage layout (batched_copy: read-only loads in batches), then runs the FMAs from shared
/// memory. `smem` is free (the main loop is done with it, and `sync` was called).
template <class Sync>
LOWBIT_DEVICE void wgmma_outliers_from_slabs(int (&acc)[WgmmaShape::kAcc], std::uint8_t* smem,
                                             const Int8EpilogueParams& p, int count, int M, int N, int bm, int bn,
                                             int tid, Sync sync) {
  using S = WgmmaShape;
  using L = WgmmaOutlierStage;
  constexpr int BM = S::BM, BN = S::BN, J = L::J, T = S::kThreads;
  constexpr int RA = J * BM / T, RW = J * BN / T;  // values a thread stages per chunk
  static_assert(J * BM % T == 0 && BN == T, "staging: whole rounds; one weight column per thread");
  float* s_a = reinterpret_cast<float*>(smem);  // [J][BM]
  float* s_w = s_a + J * BM;                     // [J][kWRow]
  const int lane = tid & 31;
  const int lr0 = (tid >> 7) * 64 + ((tid >> 5) & 3) * 16 + (lane >> 2);  // the thread's first local row
  const float* w_row = s_w + (lane & 3) * L::kQuadStride;
  const int wpos = outlier_quad_pos(tid);
  for (int j0 = 0; j0 < count; j0 += J) {
    const int jn = min(J, count - j0);
    if (j0 > 0) sync();  // every thread is done with the previous chunk
    // row bm + (tid % BM) of outlier columns j0 + tid / BM + 2u (T = 2 BM); column bn + tid of j0 + u
    const float* a_src = p.outlier_aslab + static_cast<std::size_t>(j0 + tid / BM) * p.M + bm + tid % BM;
    const float* w_src = p.outlier_wslab + static_cast<std::size_t>(j0) * N + bn + tid;
    const bool a_row = bm + tid % BM < M, w_col = bn + tid < N;
    const int a_step = (T / BM) * p.M;
    batched_copy<RA, kOutlierStageBatch>(
        [&](int u) { return (tid + u * T) / BM < jn && a_row ? __ldg(a_src + u * a_step) : 0.f; },
        [&](int u, float v) { s_a[tid + u * T] = v; });  // = s_a[j * BM + r]
    batched_copy<RW, kOutlierStageBatch>([&](int u) { return u < jn && w_col ? __ldg(w_src + u * N) : 0.f; },
                                         [&](int u, float v) { s_w[u * L::kWRow + wpos] = v; });
    sync();
#pragma unroll 1
    for (int j = 0; j < jn; ++j) {
      const float a0 = s_a[j * BM + lr0], a1 = s_a[j * BM + lr0 + 8];
      const float4* w4 = reinterpret_cast<const float4*>(w_row + j * L::kWRow);
#pragma unroll
      for (int v = 0; v < BN / 16; ++v) {  // n8 tiles 2v and 2v + 1: accumulators 8v .. 8v + 7
        const float4 w = w4[v];
        int* f = acc + 8 * v;
        auto fma = [](int& x, float a, float b) { x = __float_as_int(fmaf(a, b, __int_as_float(x))); };
        fma(f[0], a0, w.x);
        fma(f[1], a0, w.y);
        fma(f[2], a1, w.x);
        fma(f[3], a1, w.y);
        fma(f[4], a0, w.z);
        fma(f[5], a0, w.w);
        fma(f[6], a1, w.z);
        fma(f[7], a1, w.w);
      }
    }
  }
}

/// The stores of a 128 x 256 block's results through tensor stores (TMA), each consumer warpgroup its 64 rows:
/// per chunk of 128-byte row pieces (`Cols` columns of 4 bytes (int32) or 2 bytes (pairs packed by `pack`)),
/// the warpgroup writes its accumulators into one of its two `stage` buffers (WgmmaShape::kStoreChunkBytes each,
/// 1024-byte aligned, 128-byte swizzled as the map `map` says), and its thread 0 issues the tensor store (or,
/// `Add`, the tensor reduce-add) and commits it as a bulk async-group. A buffer is rewritten only after the
/// store two chunks back has read it (`cp.async.bulk.wait_group.read 1`): the warpgroup goes on to its next
/// chunk, and then to the next tile's main loop, while the stores drain. Rows past M are not written (the map's
/// bounds). Named barriers 2 and 3 (one per warpgroup).
template <int Cols, bool Add, class Pack>
LOWBIT_DEVICE void wgmma_store_tma(const int (&acc)[WgmmaShape::kAcc], std::uint8_t* stage, const CUtensorMap* map,
                                   int bm, int bn, int tid, Pack pack) {
  constexpr int kRowBytes = kSw128RowBytes, kElemBytes = kRowBytes / Cols;
  static_assert(kElemBytes == 4 || kElemBytes == 2, "128-byte rows of int32 or of 16-bit values");
  constexpr int kChunks = WgmmaShape::BN / Cols, kTiles = Cols / 8;  // n8 tiles per chunk
  constexpr int kChunk = WgmmaShape::kStoreChunkBytes;
  const int wg = tid >> 7, wt = tid & 127, lane = tid & 31;
  const int r0 = ((tid >> 5) & 3) * 16 + (lane >> 2);  // the thread's rows r0, r0 + 8 of the warpgroup's 64
  std::uint8_t* own = stage + wg * 2 * kChunk;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    std::uint8_t* buf = own + (c & 1) * kChunk;
    if (wt == 0) ptx::bulk_wait_group<1, true>();  // the store that last read `buf` (two chunks back) is done reading
    ptx::named_barrier_sync(2 + wg, 128);
#pragma unroll
    for (int j = 0; j < kTiles; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = 4 * (c * kTiles + j) + 2 * h, r = r0 + 8 * h;
        const int b = (8 * j + 2 * (lane & 3)) * kElemBytes;  // byte of the pair in the 128-byte row
        std::uint8_t* dst = buf + r * kRowBytes + ((((b >> 4) ^ (r & 7)) << 4) | (b & 15));
        if constexpr (kElemBytes == 4)
          *reinterpret_cast<int2*>(dst) = make_int2(acc[i], acc[i + 1]);
        else
          *reinterpret_cast<std::uint32_t*>(dst) = pack(acc[i], acc[i + 1]);
      }
    fence_proxy_async();  // the writes, visible to the tensor store (async proxy)
    ptx::named_barrier_sync(2 + wg, 128);
    if (wt == 0) {
      ptx::tma_store_2d<Add>(map, buf, bn + c * Cols, bm + wg * WgmmaShape::kWgRows);
      ptx::bulk_commit_group();
    }
  }
}

/// The epilogue of the wgmma int8 kernels for a 128 x 256 block at (bm, bn), run by its 256 consumer
/// threads (`tid` 0..255; the two warpgroups' accumulators `acc`): int32 stores (or red.global.add when
/// split along K), or the fused LLM.int8() epilogue (row ⊗ column dequantization, bias, the outlier
/// columns' product staged through `smem`, which the main loop must be done with). `sync` synchronises
/// the 256 threads (`__syncthreads`, or a named barrier where a producer warp has left).
/// With `Tma` (the warp-specialized kernel) the results leave through wgmma_store_tma into `smem` (its store
/// buffers) and the map `tm_out` (int32 C, or Y); every consumer warpgroup's thread 0 must wait for its bulk
/// async-groups before the block exits.
template <TiledOut Out, class T, bool Tma = false, class Sync>
LOWBIT_DEVICE void wgmma_s8_epilogue(int (&acc)[WgmmaShape::kAcc], std::uint8_t* smem, int* __restrict__ C,
                                     const Int8EpilogueParams& p, int M, int N, int K, int bm, int bn, int tid,
                                     Sync sync, const CUtensorMap* tm_out = nullptr) {
  using S = WgmmaShape;
  constexpr int BM = S::BM, BN = S::BN;
  const int wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  // accumulator i: n8 tile i / 4, rows (lane / 4) + 8·((i / 2) % 2), columns 2·(lane % 4) + i % 2
  const int row0 = bm + wg * 64 + warp * 16 + (lane >> 2);
  const int col0 = bn + 2 * (lane & 3);
  if constexpr (Out == TiledOut::i32 && Tma) {
    (void)C, (void)p, (void)M, (void)N, (void)K, (void)sync;
    if (gridDim.y > 1)  // split along K: add into the zeroed C (exact)
      wgmma_store_tma<kSw128RowBytes / 4, true>(acc, smem, tm_out, bm, bn, tid, [](int, int) { return 0u; });
    else
      wgmma_store_tma<kSw128RowBytes / 4, false>(acc, smem, tm_out, bm, bn, tid, [](int, int) { return 0u; });
  } else if constexpr (Out == TiledOut::i32) {
    const bool split = gridDim.y > 1;
#pragma unroll
    for (int i = 0; i < S::kAcc; i += 2) {
      const int m = row0 + ((i >> 1) & 1) * 8, n = col0 + (i >> 2) * 8;
      if (m < M && n < N) {
        int* dst = C + static_cast<std::size_t>(m) * N + n;
        if (split) {
          atomicAdd(dst, acc[i]);
          atomicAdd(dst + 1, acc[i + 1]);
        } else {
          *reinterpret_cast<int2*>(dst) = make_int2(acc[i], acc[i + 1]);
        }
      }
    }
  } else {
    // ---- fused LLM.int8() epilogue; the float results replace the accumulators in place ----
    float rs[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) rs[h] = p.row_absmax[min(row0 + 8 * h, M - 1)] * detail::kInvCodeMaxSq;
#pragma unroll
    for (int i = 0; i < S::kAcc; i += 2) {
      const int n = min(col0 + (i >> 2) * 8, N - 2);  // N % 64 == 0: n and n + 1 in range
      const float r = rs[(i >> 1) & 1];
      const float b0 = p.bias ? p.bias[n] : 0.f, b1 = p.bias ? p.bias[n + 1] : 0.f;
      acc[i] = __float_as_int(static_cast<float>(acc[i]) * (r * p.w_absmax[n]) + b0);
      acc[i + 1] = __float_as_int(static_cast<float>(acc[i + 1]) * (r * p.w_absmax[n + 1]) + b1);
    }
    const int count = *p.outlier_count;
    // each branch first waits until no thread still reads the staging memory `smem` (the cp.async
    // kernel's ring, or the TMA kernel's staging area from the block's previous tile)
    // the staging memory is also the tensor stores' buffers: the previous tile's stores must have read them
    if (Tma && count > 0 && (tid & 127) == 0) ptx::bulk_wait_group<0, true>();
    if (count > 0 && use_outlier_slabs(p, count)) {
      sync();
      wgmma_outliers_from_slabs(acc, smem, p, count, M, N, bm, bn, tid, sync);
    } else if (count > 0) {  // more outlier columns than the slabs hold: list / mask walk, gathers
      sync();
      constexpr int J = detail::kOutlierChunk, P = S::kPad;
      float* s_a = reinterpret_cast<float*>(smem);  // (BM, P) activation values
      float* s_wo = s_a + BM * P;                    // (BN, P) outlier weight values
      __shared__ int s_cols[J];
      __shared__ int s_n;
      detail::OutlierCursor cur;
      const int lr0 = wg * 64 + warp * 16 + (lane >> 2), lc0 = 2 * (lane & 3);  // local row / column
      for (int j0 = 0; j0 < count; j0 += J) {
        const int jn = detail::gather_outlier_chunk<T, BM, BN, J, P>(s_a, s_wo, p, count, j0, cur, s_cols, &s_n, bm,
                                                                     bn, M, N, K, tid, S::kThreads, sync);
        sync();
        for (int j = 0; j < jn; ++j) {
          const float a0 = s_a[lr0 * P + j], a1 = s_a[(lr0 + 8) * P + j];
#pragma unroll
          for (int i = 0; i < S::kAcc; ++i) {
            const float w = s_wo[(lc0 + (i >> 2) * 8 + (i & 1)) * P + j];
            acc[i] = __float_as_int(fmaf((i >> 1) & 1 ? a1 : a0, w, __int_as_float(acc[i])));
          }
        }
        sync();
      }
    }
    if constexpr (Tma) {
      if (count > 0) sync();  // every thread is done reading the outlier staging (the store buffers)
      wgmma_store_tma<kSw128RowBytes / 2, false>(acc, smem, tm_out, bm, bn, tid, [](int a, int b) {
        const auto v = detail::Elem<T>::pack(__int_as_float(a), __int_as_float(b));
        return *reinterpret_cast<const std::uint32_t*>(&v);
      });
    } else {
      T* Y = static_cast<T*>(p.Y);
#pragma unroll
      for (int i = 0; i < S::kAcc; i += 2) {
        const int m = row0 + ((i >> 1) & 1) * 8, n = col0 + (i >> 2) * 8;
        if (m < M && n < N)
          *reinterpret_cast<typename detail::Elem<T>::pair*>(Y + static_cast<std::size_t>(m) * N + n) =
              detail::Elem<T>::pack(__int_as_float(acc[i]), __int_as_float(acc[i + 1]));
      }
    }
  }
}
#endif

}  // namespace detail

/// int8 GEMM on wgmma (sm_90a): `C = A · Wᵀ` for a 128 × 256 tile per block, K range of split blockIdx.y.
/// Grid: x = ceil(M / 128) · ceil(N / 256) (M tiles fastest: concurrent blocks share weight tiles),
/// y = K splits (> 1 only for TiledOut::i32). Block 256 threads, dynamic smem WgmmaShape::kSmemBytes.
/// In fused mode the outlier columns of A must already be zeroed (prepare_outliers_kernel).
/// @tparam Out output mode (fused epilogue or int32)
/// @tparam T __half or __nv_bfloat16 (fused mode output)
/// @param A activation codes [M, K] int8, K % 64 == 0, 16-byte aligned rows
/// @param W weight codes [N, K] int8
/// @param C int32 [M, N] (TiledOut::i32; zeroed first when split), unused otherwise
/// @param p epilogue inputs and the output (fused mode)
/// @param M rows of A
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64)
/// @param k_per_split K bytes per split (multiple of 64)
template <TiledOut Out, class T>
__global__ void __launch_bounds__(WgmmaShape::kThreads, 1)
    gemm_s8_wgmma_kernel(const std::int8_t* __restrict__ A, const std::int8_t* __restrict__ W, int* __restrict__ C,
                         Int8EpilogueParams p, int M, int N, int K, int k_per_split) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = WgmmaShape;
  constexpr int BM = S::BM, BN = S::BN, BK = S::BK;
  extern __shared__ std::uint8_t smem_raw[];
  std::uint8_t* smem = ptx::align_shared<S::kAlign>(smem_raw);
  const int tid = threadIdx.x, wg = tid >> 7;
  const int tiles_m = (M + BM - 1) / BM;
  const int bm = (blockIdx.x % tiles_m) * BM, bn = (blockIdx.x / tiles_m) * BN;
  const int k_begin = blockIdx.y * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  const int ktiles = max(0, (k_end - k_begin + BK - 1) / BK);

  auto load_stage = [&](int slot, int k0) {
    std::uint8_t* sa = smem + slot * S::kStageBytes;
    std::uint8_t* sb = sa + S::kStageA;
#pragma unroll
    for (int i = tid; i < BM * S::kChunksPerRow; i += S::kThreads) {
      const int r = i / S::kChunksPerRow, c = i % S::kChunksPerRow;
      const bool ok = bm + r < M && k0 + c * 16 < k_end;
      const std::int8_t* src = ok ? A + static_cast<std::size_t>(bm + r) * K + k0 + c * 16 : A;
      detail::cp_async_16(sa + detail::swz128(r, c), src, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = tid; i < BN * S::kChunksPerRow; i += S::kThreads) {
      const int r = i / S::kChunksPerRow, c = i % S::kChunksPerRow;
      const bool ok = bn + r < N && k0 + c * 16 < k_end;
      const std::int8_t* src = ok ? W + static_cast<std::size_t>(bn + r) * K + k0 + c * 16 : W;
      detail::cp_async_16(sb + detail::swz128(r, c), src, ok ? 16 : 0);
    }
  };

  int acc[S::kAcc];
#pragma unroll
  for (int i = 0; i < S::kAcc; ++i) acc[i] = 0;

#pragma unroll
  for (int s = 0; s < S::kPrefetch; ++s) {
    if (s < ktiles) load_stage(s, k_begin + s * BK);
    detail::cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    detail::cp_async_wait<S::kPrefetch - 1>();  // stage kt has landed (this thread's copies)
    detail::fence_proxy_async();                // ... and is visible to wgmma
    __syncthreads();  // everyone's copies landed; wgmma of stage kt-2 finished in both warpgroups
    const int next = kt + S::kPrefetch;
    if (next < ktiles) load_stage(next % S::kStages, k_begin + next * BK);  // slot of stage kt-2
    detail::cp_async_commit();
    const std::uint8_t* st = smem + (kt % S::kStages) * S::kStageBytes;  // A tile [BM, BK], then W tile [BN, BK] at kStageA
#pragma unroll
    for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
    detail::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < BK / detail::kWgmmaKStepBytes; ++ks)  // this warpgroup's 64 rows of A, all 256 of W
      detail::wgmma_m64n256k32_s8(acc, detail::wgmma_desc_sw128(detail::sw128_kstep_at(st, wg * 64, ks)),
                                  detail::wgmma_desc_sw128(detail::sw128_kstep_at(st + S::kStageA, 0, ks)), 1);
    detail::wgmma_commit();
    detail::wgmma_wait<1>();  // stage kt-1 done: its slot may be refilled two iterations later
#pragma unroll
    for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
  }
  detail::wgmma_wait<0>();
#pragma unroll
  for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
  detail::cp_async_wait<0>();

  detail::wgmma_s8_epilogue<Out, T>(acc, smem, C, p, M, N, K, bm, bn, tid, [] { __syncthreads(); });
#else
  __trap();  // wgmma needs sm_90a; the host dispatch only selects this kernel when LOWBIT_INT8_WGMMA is set
#endif
}

/// int8 GEMM on wgmma (sm_90a), warp-specialized: the same block tile, grid, K splits and epilogue as
/// gemm_s8_wgmma_kernel, but one producer thread (of a third warpgroup) fills a WgmmaWsShape::kStages-deep ring with two
/// 2-D tensor TMA copies per stage (the A box `[128 rows, 128 k]` and the W box `[256 rows, 128 k]`, both
/// stored in the 128-byte swizzle the wgmma descriptors read; rows and k past M, N, K zero-filled) on a
/// `full` mbarrier, and the two consumer warpgroups wait only on that barrier, keep one wgmma group in
/// flight, and release each stage on an `empty` mbarrier (one arrival per warp) — no `__syncthreads`,
/// no proxy fence, no copy instructions in the consumers' main loop.
/// Persistent: a block loops over output tiles (grid.x may be smaller than the tile count, one block per
/// SM), and the ring runs on across its tiles: the producer loads the next tile's first stages while the
/// consumers run the epilogue of the current one, whose outlier staging has its own shared memory
/// (WgmmaWsShape::kStagingBytes). The producer picks the tiles — from `tile_counter` (atomicAdd: tiles
/// in launch order, whichever block is free; zeroed before the launch, only with one K split), else
/// b, b + gridDim.x, ... — and tells the consumers through the tile index it stores with each stage; -1
/// (on a stage armed without bytes) ends the block. With grid.x = the tile count and no counter it is one
/// tile per block. The results leave through tensor stores (detail::wgmma_store_tma; a reduce-add into the
/// zeroed C when split), which drain while the consumers run the next tile: plain stores from the
/// accumulators held the tensor cores idle for 4-14 % of the kernel at M = 1024-4096 (H100, session 17).
/// @tparam Out output mode (fused epilogue or int32)
/// @tparam T __half or __nv_bfloat16 (fused mode output)
/// @param tmA tensor map of the activation codes [M, K] int8 (encode_2d, box 128 x 128, 128-byte swizzle)
/// @param tmW tensor map of the weight codes [N, K] int8 (box 256 x 128, 128-byte swizzle)
/// @param tmOut tensor map of the output the epilogue stores through (int32 C: INT32 elements, box 64 x 32; fused:
///        Y, box 64 x 64 of T; 128-byte swizzle): detail::wgmma_store_tma
/// @param C int32 [M, N] (TiledOut::i32; zeroed first when split; written through tmOut), unused otherwise
/// @param p epilogue inputs and the output (fused mode)
/// @param M rows of A
/// @param N output features (multiple of 64)
/// @param K input features (multiple of 64)
/// @param k_per_split K bytes per split (a multiple of 128 when there are several splits)
/// @param tile_counter zeroed int the blocks take tiles from (gridDim.y == 1 only), or null
template <TiledOut Out, class T>
__global__ void __launch_bounds__(WgmmaWsShape::kThreads, 1)
    gemm_s8_wgmma_ws_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmW,
                            const __grid_constant__ CUtensorMap tmOut, int* __restrict__ C, Int8EpilogueParams p, int M,
                            int N, int K, int k_per_split, int* tile_counter) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = WgmmaWsShape;
  constexpr int BM = S::BM, BN = S::BN, BK = S::BK, NS = S::kStages;
  static_assert(detail::WgmmaOutlierStage::kBytes <= S::kStagingBytes, "the slab staging fits the staging area");
  extern __shared__ std::uint8_t smem_raw[];
  std::uint8_t* smem = ptx::align_shared<S::kAlign>(smem_raw);
  std::uint64_t* full = reinterpret_cast<std::uint64_t*>(smem + NS * S::kStageBytes);
  std::uint64_t* empty = full + NS;
  volatile int* stage_tile = reinterpret_cast<int*>(smem + S::kTileIdOffset);
  const int tid = threadIdx.x, lane = tid & 31;
  const int tiles_m = (M + BM - 1) / BM, tiles = tiles_m * ((N + BN - 1) / BN);
  const int k_begin = blockIdx.y * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  const int ktiles = max(0, (k_end - k_begin + BK - 1) / BK);
  if (tid == 0) {
    for (int s = 0; s < NS; ++s) {
      ptx::mbarrier_init(full + s, 1);                // the producer's arrive.expect_tx (+ the boxes' bytes)
      ptx::mbarrier_init(empty + s, S::kConsumers / 32);  // one arrival per consumer warp
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();

  // g counts this block's stages over all of its tiles: stage g % NS, phase (g / NS) & 1
  if (tid >= S::kConsumers) {  // ----------------------- producer warpgroup -----------------------
    ptx::setmaxnreg<false, S::kProducerRegs>();
    if (tid == S::kConsumers) {
      int g = 0;
      int t = tile_counter ? atomicAdd(tile_counter, 1) : static_cast<int>(blockIdx.x);
      for (;;) {
        const bool done = t >= tiles || ktiles == 0;
        const int bm = (t % tiles_m) * BM, bn = (t / tiles_m) * BN;
        for (int kt = 0; kt < (done ? 1 : ktiles); ++kt, ++g) {
          const int s = g % NS;
          if (g >= NS) ptx::mbarrier_wait_parity(empty + s, static_cast<std::uint32_t>(((g / NS) - 1) & 1));
          stage_tile[s] = done ? -1 : t;  // published by the arrive below (release), read after the wait
          if (done) {
            ptx::mbarrier_arrive(full + s);  // completes the phase without bytes: the consumers stop
            break;
          }
          std::uint8_t* sa = smem + s * S::kStageBytes;
          const int k0 = k_begin + kt * BK;
          ptx::mbarrier_arrive_expect_tx(full + s, S::kStageBytes);  // both boxes, zero-filled parts included
          ptx::tma_load_2d(sa, &tmA, k0, bm, full + s);
          ptx::tma_load_2d(sa + S::kStageA, &tmW, k0, bn, full + s);
        }
        if (done) break;
        t = tile_counter ? atomicAdd(tile_counter, 1) : t + static_cast<int>(gridDim.x);
      }
    }
    return;
  }

  // ------------------------------- two consumer warpgroups -------------------------------
  ptx::setmaxnreg<true, S::kConsumerRegs>();
  const int wg = tid >> 7;
  std::uint8_t* staging = smem + S::kStagingOffset;
  auto release = [&](int g) {  // this warp is done with stage g % NS
    __syncwarp();
    if (lane == 0) ptx::mbarrier_arrive(empty + g % NS);
  };
  for (int g = 0;;) {
    ptx::mbarrier_wait_parity(full + g % NS, static_cast<std::uint32_t>((g / NS) & 1));
    // the tile of this stage (the first of its k-tiles), or -1: done. Lane 0 reads it and is also the
    // lane that releases the stage, so the read is ordered before the producer's next write of the slot
    // (racecheck flagged the reads of the other lanes, ordered only through __syncwarp).
    int t = 0;
    if (lane == 0) t = stage_tile[g % NS];
    t = __shfl_sync(0xffffffffu, t, 0);
    if (t < 0) break;
    const int bm = (t % tiles_m) * BM, bn = (t / tiles_m) * BN;
    int acc[S::kAcc];
#pragma unroll
    for (int i = 0; i < S::kAcc; ++i) acc[i] = 0;
    for (int kt = 0; kt < ktiles; ++kt, ++g) {
      const int s = g % NS;
      if (kt > 0) ptx::mbarrier_wait_parity(full + s, static_cast<std::uint32_t>((g / NS) & 1));
      const std::uint8_t* st = smem + s * S::kStageBytes;  // A tile [BM, BK], then W tile [BN, BK] at kStageA
#pragma unroll
      for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
      detail::wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < BK / detail::kWgmmaKStepBytes; ++ks)  // this warpgroup's 64 rows of A, all 256 of W
        detail::wgmma_m64n256k32_s8(acc, detail::wgmma_desc_sw128(detail::sw128_kstep_at(st, wg * 64, ks)),
                                    detail::wgmma_desc_sw128(detail::sw128_kstep_at(st + S::kStageA, 0, ks)), 1);
      detail::wgmma_commit();
      detail::wgmma_wait<1>();  // k-tile kt - 1's group is done: release its stage
#pragma unroll
      for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
      if (kt > 0) release(g - 1);
    }
    detail::wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < S::kAcc; ++i) detail::reg_fence(acc[i]);
    release(g - 1);  // the tile's last stage: the producer may refill it during the epilogue
    detail::wgmma_s8_epilogue<Out, T, true>(acc, staging, C, p, M, N, K, bm, bn, tid,
                                            [] { ptx::named_barrier_sync(1, S::kConsumers); }, &tmOut);
  }
  // the tensor stores of the last tile: complete before the block's shared memory goes
  if ((tid & 127) == 0) ptx::bulk_wait_group<0, false>();
#else
  (void)tmA, (void)tmW, (void)tmOut, (void)C, (void)p, (void)M, (void)N, (void)K, (void)k_per_split, (void)tile_counter;
  __trap();  // wgmma and TMA need sm_90a; the host dispatch only selects this kernel when LOWBIT_INT8_WGMMA is set
#endif
}

}  // namespace lowbit::kernels
