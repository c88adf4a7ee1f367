/// @file gemm.cuh
/// @brief Weight-only GEMM `Y[M,N] = A[M,K] · dequant(W)[K,N] (+ bias)` for 2/3/4/8-bit group-quantized
///        weights in the TiledLayout, fp16 or bf16 activations, fp32 accumulation (mma.sync m16n8k16).
///
/// M <= 16 (decode) runs the per-warp-pipelined kernel of decode.cuh; 16 < M <= 256 the mid-M kernel of
/// midm.cuh (activations and weights through one shared cp.async ring, each dequantized fragment reused
/// for 32-128 rows). Above that (and through gemm_policy for any M), one kernel family:
/// activations go through a cp.async multi-stage shared-memory pipeline
/// (gathered through `perm` for act-order weights), weights stream straight from global memory into
/// registers (each lane's 16-byte loads are exactly its B fragments, prefetched `stages - 1` tiles
/// ahead), are dequantized in registers and fed to the tensor cores. Small M is split along K (inside
/// the CTA across warps, and across CTAs through a workspace whose last-arriving CTA reduces) so that
/// all SMs stream weights.
///
/// Large M (above the mid-M range, 257 rows): on sm_90a builds and sm_90 devices gemm runs the large-M kernel
/// (large_wgmma.cuh: the weights dequantized once per CTA into a shared-memory wgmma operand, 256 x 128 CTAs in 2-CTA
/// clusters sharing the activation loads) where its
/// grid fills the GPU (detail::large_wgmma_preferred; H100, 4-bit g128: 0.64-0.74x of cuBLAS fp16 at M = 1024-4096
/// in short runs, 0.58-0.63x in bench_gemm's sustained ones (session 29, before the clusters),
/// where the tile kernels ran at 0.31-0.40x), else the tile kernels. Dequantizing the weight once and calling cuBLAS
/// (dequant_gemm.cuh) is faster from M = 1024 on most shapes (0.72-1.0x there) and slower below; `WeightOnlyLinear`
/// (linear.cuh) takes it from M = 257 where gemm has no large-M kernel for the shape and from M = 1024 everywhere
/// (`dequant_gemm_preferred`), where its workspace holds a dense slab; gemm does not (it needs a cuBLAS handle and a
/// K x N fp16 buffer).
///
/// @code
/// std::size_t ws = lowbit::kernels::gemm_workspace_size(M, w.meta);       // once, up front
/// // cudaMalloc ws bytes, then lowbit::kernels::gemm_workspace_init(ws_ptr, ws, stream) once
/// lowbit::Status st = lowbit::kernels::gemm<lowbit::half_t>(A, M, w, bias, Y, ws_ptr, ws, stream);
/// // optional last argument GemmOptions: programmatic dependent launch of the M <= 16 kernel (PdlMode)
/// @endcode
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../error.hpp"
#include "../numeric.hpp"
#include "decode.cuh"
#include "dequant.cuh"
#include "large_wgmma.cuh"
#include "layout.hpp"
#include "midm.cuh"
#include "midm_wgmma.cuh"
#include "ptx.cuh"
#include "tensor_map.cuh"
#include "tile.cuh"
#include "tuning.hpp"

namespace lowbit::kernels {

/// A weight in the kernel layout on the device (non-owning). See layout.hpp for the formats.
struct TiledWeightView {
  TiledMeta meta;                        ///< shapes and flags
  const std::uint32_t* qweight = nullptr;///< TiledLayout<bits> words, K*N*bits/32
  const std::uint16_t* scales = nullptr; ///< [G, N] fp16 bits, interleaved (scale_position)
  const std::uint8_t* zeros = nullptr;   ///< [G, N] zero codes, interleaved (may be null when meta.sym)
  const std::int32_t* perm = nullptr;    ///< [K] source column of each kernel row (null unless act_order)
};

/// How gemm launches the decode kernel (M <= 16) and the sm_90a wgmma mid-M kernel (16 < M <= 256)
/// with respect to the kernel before it in the stream.
///
/// Under programmatic dependent launch (PDL, compute capability 9.0+) these kernels may start while
/// the preceding kernel is still running: each warp (decode) or CTA (mid-M) fetches its first weight
/// tiles, scales and zeros, then executes `griddepcontrol.wait` before it reads A or bias or writes Y or
/// the workspace. This hides
/// part of the per-call fixed cost (launch, pipeline fill) behind the previous kernel's tail; the
/// results are the same as with a plain launch. For act-order weights the pre-gather kernel in front of
/// them is launched the same way: it lets the GEMM launch at once and waits before it reads A, so the
/// GEMM's weight prefetch still overlaps the preceding kernel.
///
/// **Contract under PDL:** the weight (`qweight`, `scales`, `zeros`, and `perm` for act-order) must not
/// be written by the kernel launched immediately before gemm in the same stream (one kernel launched
/// without PDL in between, or a stream synchronization, is enough; so is PdlMode::off for that call). Weights uploaded or
/// converted once at load time (upload, convert_from_gptq, which synchronize) are unaffected. A, bias,
/// Y and the workspace have no such restriction: chaining GEMMs whose activations come from the
/// previous call's output is safe. Both kernels also let the *next* kernel launch early (right
/// after their own wait): a kernel launched with PDL after gemm must execute `griddepcontrol.wait`
/// (cudaGridDependencySynchronize) before it reads Y or the workspace or writes anything gemm reads
/// (A, bias, the weight), as PDL requires of any dependent anyway (lowbit's own PDL-launched kernels
/// only ever follow a kernel of their own layer).
enum class PdlMode {
  off,        ///< plain launch: starts after the preceding kernel has finished (the sm_80 behaviour)
  automatic,  ///< PDL where available (sm_90+ device and kernels compiled for sm_90+), else plain (default)
  on,         ///< PDL; gemm returns `unsupported` where it is not available instead of launching plainly
};

/// Run-time options of gemm / gemm_bits.
struct GemmOptions {
  /// Programmatic dependent launch of the decode kernel (M <= 16) and of the sm_90a wgmma mid-M kernel
  /// (16 < M <= 256 in LOWBIT_MIDM_WGMMA builds), and of the act-order pre-gather before either. The
  /// other kernels (the mma.sync mid-M and tile kernels, and the pre-gather before them) always launch
  /// plainly, whatever the mode.
  PdlMode pdl = PdlMode::automatic;
  /// Launch shape of the decode kernel for M <= 16 (ignored for larger M); {0, 0} = planned. A shape the
  /// weight cannot run (a split that would be empty, a CTA whose shared memory does not fit an SM, more
  /// than one split on more than kMaxCounters slabs) makes gemm return invalid_argument, as does a
  /// field out of range. gemm_workspace_size must be asked with the same options.
  DecodeChoice decode{};
  /// The decode kernel (M <= 16) copies the packed weights and their scales and zeros with an L2
  /// evict-first policy: read once per call, they then give way before the data that is reused (its own
  /// activation rows, which every CTA re-reads, and a model's activations, residual stream and KV cache
  /// between kernels). false: the normal policy, still given as a policy operand of the copies (bench_gemm
  /// times both). The other kernels copy under the
  /// normal policy: hinted copies in the mid-M kernels raised "illegal instruction" with nvcc 13.0
  /// (bench/kernels/NOTES.md, session 27).
  bool l2_evict_first = true;
};

/// A CTA tile configuration.
/// @tparam MI      m16 tiles per warp (block_m = 16*MI).
/// @tparam WarpsN  warps side by side along N (each owns one 64-column slab).
/// @tparam WarpsK  warps splitting each CTA k-step along K (reduced through shared memory).
/// @tparam Stages  pipeline depth: activations in shared memory and weights in registers are fetched
///                 Stages-1 k-steps ahead.
/// @tparam CtasPerSm CTAs per SM the split-K planner assumes when sizing the grid.
/// @tparam AsyncA  stage activations with cp.async (true) or with plain 16-byte loads (false).
template <int MI, int WarpsN, int WarpsK, int Stages, int CtasPerSm, bool AsyncA = true>
struct TilePolicy {
  static_assert(MI >= 1 && WarpsN >= 1 && WarpsK >= 1 && Stages >= 2, "invalid tile policy");
  static constexpr int mi = MI;                      ///< m16 tiles per warp
  static constexpr int warps_n = WarpsN;             ///< warps along N
  static constexpr int warps_k = WarpsK;             ///< warps along K
  static constexpr int stages = Stages;              ///< pipeline depth
  static constexpr int ctas_per_sm = CtasPerSm;      ///< occupancy assumed by the planner
  static constexpr bool async_a = AsyncA;            ///< cp.async activations
  static constexpr int threads = 32 * WarpsN * WarpsK;  ///< threads per CTA
  static constexpr int block_m = 16 * MI;            ///< CTA rows
  static constexpr int block_n = 64 * WarpsN;        ///< CTA columns
  static constexpr int block_k = 64 * WarpsK;        ///< CTA k-step
  /// Shared memory: the activation stages, reused after the loop for the cross-warp K reduction.
  static constexpr std::size_t smem_bytes =
      std::max<std::size_t>(std::size_t(Stages) * block_m * block_k * 2,
                            std::size_t(WarpsK - 1) * WarpsN * MI * 32 * 32 * sizeof(float));
};

/// Default tile policies (tuning is data: the figure beside each is the H100 SXM measurement of 4-bit
/// g128 asym, fp16, K = N = 8192, vs cuBLAS fp16 in the same run; bench/results/kernels_*.json).
/// @tparam B code width (register budget: weight prefetch holds Stages * 4B words per lane).
template <int B>
struct DefaultPolicies {
  /// M <= 16 with this kernel family (gemm itself runs decode.cuh there; this policy stays reachable
  /// through gemm_policy for comparison): 1 m16 tile, 4 warps split K, deep prefetch; 155-168
  /// registers -> 3 CTAs/SM. Measured: M=1 33.8 us (1.39x, 1040 GB/s), M=16 38.9 us (1.22x).
  using Decode = TilePolicy<1, 1, 4, (B == 8 ? 3 : 4), 3>;
  /// 16 < M <= 32; ~210-230 registers -> 2 CTAs/SM. Measured: M=32 50.1 us (0.96x).
  using Small = TilePolicy<2, 1, 4, (B == 8 ? 2 : 3), 2>;
  /// 32 < M <= 256; ~245-255 registers -> 2 CTAs/SM. Measured: M=64 68.0 us (0.71x), M=128 112.8 us
  /// (0.44x), M=256 187.7 us (0.29x).
  using Medium = TilePolicy<4, 2, 2, (B >= 4 ? 2 : 3), 2>;
  /// M > 256: 64 x 256 CTA tiles, no K split inside the CTA. Measured: M=1024 547 us (0.34x), M=4096
  /// 2137 us (0.36x, 257 TFLOPS).
  using Large = TilePolicy<4, 4, 1, (B >= 4 ? 2 : 3), 2>;
};

namespace detail {

/// Kernel arguments (device pointers; shapes in elements).
struct GemmArgs {
  const void* A;                 ///< [M, K] activations, T, row-major
  void* Y;                       ///< [M, N] outputs, T, row-major
  const void* bias;              ///< [N] T or null
  const std::uint32_t* qweight;  ///< TiledLayout<B> words
  const std::uint16_t* scales;   ///< [G, N] fp16 bits, interleaved
  const std::uint8_t* zeros;     ///< [G, N] zero codes, interleaved
  const std::int32_t* perm;      ///< [K] or null
  int M, N, K;                   ///< problem shape
  int group_size;                ///< rows per group (K for per-channel)
  int sym;                       ///< zeros are all 2^(B-1)
  float* partials;               ///< [splits, M, N] fp32 split-K partials (splits > 1)
  unsigned* counters;            ///< [grid.x * grid.y] arrival counters, zero between launches
  int splits;                    ///< CTAs along K
  int kt_per_split;              ///< 64-row K tiles per split
};

/// The weight-only GEMM kernel. Grid: (ceil(M/block_m), ceil(N/block_n), splits).
/// @tparam B code width.  @tparam T element type.  @tparam P TilePolicy.
/// @tparam GroupsPerTile 2 for group size 32, else 1 (groups of >= 64 rows cover whole K tiles).
template <int B, class T, class P, int GroupsPerTile>
__global__ void __launch_bounds__(P::threads) wo_gemm_kernel(const GemmArgs args) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int is_last_cta;
  using Tile = ATile<P::block_m, P::block_k>;
  using Ops = ElementOps<T>;
  constexpr int S = P::stages, WK = P::warps_k, MI = P::mi;
  constexpr int ks_per_group = TileGeometry::k_steps / GroupsPerTile;
  std::uint16_t* a_smem = reinterpret_cast<std::uint16_t*>(smem_raw);
  const std::uint16_t* A = static_cast<const std::uint16_t*>(args.A);

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wn = warp % P::warps_n, wk = warp / P::warps_n;
  const int m0 = blockIdx.x * P::block_m;
  const int slab = blockIdx.y * P::warps_n + wn;
  const bool slab_ok = slab < args.N / TileGeometry::tile_n;  // the last CTA column may be partial (warp-uniform)
  const int KT = args.K / TileGeometry::tile_k;
  const int kt_begin = blockIdx.z * args.kt_per_split;
  const int kt_end = min(KT, kt_begin + args.kt_per_split);
  const int steps = (kt_end - kt_begin + WK - 1) / WK;
  const int rows_valid = min(P::block_m, args.M - m0);
  const bool gather = args.perm != nullptr;

  // Rows past M are zero in every stage, written once (the pipeline only ever fills valid rows).
  {
    const int pad_chunks = (P::block_m - rows_valid) * Tile::chunks_per_row;
    for (int i = tid; i < S * pad_chunks; i += P::threads) {
      const int st = i / pad_chunks, r = rows_valid + (i % pad_chunks) / Tile::chunks_per_row;
      const int c = i % Tile::chunks_per_row;
      *reinterpret_cast<uint4*>(a_smem + st * Tile::elems + Tile::chunk_offset(r, c)) = make_uint4(0, 0, 0, 0);
    }
  }

  // Activations of CTA k-step `step` into shared-memory stage `st` (16-byte cp.async, or a gather).
  auto issue_a = [&](int step, int st) {
    if (step >= steps) return;
    const int k0 = (kt_begin + step * WK) * TileGeometry::tile_k, k_lim = kt_end * TileGeometry::tile_k;
    std::uint16_t* dst_tile = a_smem + st * Tile::elems;
    for (int i = tid; i < rows_valid * Tile::chunks_per_row; i += P::threads) {
      const int r = i / Tile::chunks_per_row, c = i % Tile::chunks_per_row, k = k0 + 8 * c;
      std::uint16_t* dst = dst_tile + Tile::chunk_offset(r, c);
      const std::uint16_t* row = A + static_cast<std::size_t>(m0 + r) * args.K;
      if (k >= k_lim) continue;  // past this split's K range: the owning warp skips it
      if (!gather) {
        if constexpr (P::async_a) {
          ptx::cp_async_16(dst, row + k);
        } else {
          *reinterpret_cast<uint4*>(dst) = __ldg(reinterpret_cast<const uint4*>(row + k));
        }
      } else {
        alignas(16) std::uint16_t v[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = __ldg(row + __ldg(args.perm + k + e));
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(v);
      }
    }
  };

  WeightTile<B> wt[S];
  GroupRaw graw[S][GroupsPerTile];
  // Weights + group parameters of k-step `step` for this warp into register buffer `buf`.
  auto load_b = [&](int step, WeightTile<B>& w, GroupRaw (&g)[GroupsPerTile]) {
    const int kt = kt_begin + step * WK + wk;
    if (step >= steps || kt >= kt_end || !slab_ok) return;
    w.load(args.qweight, static_cast<std::size_t>(args.K), kt, slab, lane);
#pragma unroll
    for (int gi = 0; gi < GroupsPerTile; ++gi) {
      const int grp = GroupsPerTile == 2 ? 2 * kt + gi : kt * TileGeometry::tile_k / args.group_size;
      g[gi] = load_group_raw(args.scales, args.zeros, static_cast<std::size_t>(args.N), grp, slab, lane, args.sym);
    }
  };

  float acc[MI][8][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][j][e] = 0.f;

  // Prologue: stages 0 .. S-2 in flight.
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    issue_a(s, s);
    ptx::cp_async_commit();
    load_b(s, wt[s], graw[s]);
  }

  for (int i = 0; i < steps; i += S) {
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const int step = i + s;
      if (step < steps) {
        ptx::cp_async_wait<S - 2>();  // this step's activations have landed (for this thread) ...
        __syncthreads();              // ... and for all threads; stage (s-1) is free again
        const int nb = (s + S - 1) % S;
        issue_a(step + S - 1, nb);
        ptx::cp_async_commit();
        load_b(step + S - 1, wt[nb], graw[nb]);

        const int kt = kt_begin + step * WK + wk;
        if (kt < kt_end && slab_ok) {  // warp-uniform
          const std::uint16_t* a_tile = a_smem + s * Tile::elems;
          GroupParams<T> gp;
#pragma unroll
          for (int ks = 0; ks < TileGeometry::k_steps; ++ks) {
            if (ks % ks_per_group == 0) {
              const GroupRaw& g = graw[s][ks / ks_per_group];
              gp.template prepare<B>(g.scales, g.zeros, args.sym);
            }
            std::uint32_t a[MI][4];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
              Tile::load_fragment(a[mi], a_tile, 16 * mi, TileGeometry::tile_k * wk + TileGeometry::mma_k * ks, lane);
            warp_tile_mma<B, T, MI>(acc, a, wt[s], gp, ks);
          }
        }
      }
    }
  }
  ptx::cp_async_wait_all();
  __syncthreads();

  // Cross-warp K reduction through shared memory (layout [warp][register][lane]: conflict-free).
  if constexpr (WK > 1) {
    float* red = reinterpret_cast<float*>(smem_raw);
    constexpr int regs = MI * 8 * 4;
    if (wk > 0) {
      float* dst = red + ((wk - 1) * P::warps_n + wn) * regs * 32 + lane;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) dst[((mi * 8 + j) * 4 + e) * 32] = acc[mi][j][e];
    }
    __syncthreads();
    if (wk == 0) {
      for (int w2 = 1; w2 < WK; ++w2) {
        const float* src = red + ((w2 - 1) * P::warps_n + wn) * regs * 32 + lane;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][j][e] += src[((mi * 8 + j) * 4 + e) * 32];
      }
    }
  }

  const std::uint16_t* bias = static_cast<const std::uint16_t*>(args.bias);
  std::uint32_t* Y = static_cast<std::uint32_t*>(args.Y);  // pairs of T
  if (wk == 0 && slab_ok) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int row = m0 + 16 * mi + lane / 4 + 8 * hh;
          const int col = slab * TileGeometry::tile_n + 8 * j + 2 * (lane % 4);
          if (row >= args.M) continue;
          float v0 = acc[mi][j][2 * hh], v1 = acc[mi][j][2 * hh + 1];
          const std::size_t o = static_cast<std::size_t>(row) * args.N + col;
          if (args.splits == 1) {
            if (bias) {
              v0 += Ops::to_float(bias[col]);
              v1 += Ops::to_float(bias[col + 1]);
            }
            Y[o / 2] = Ops::pack2(v0, v1);
          } else {
            __stcg(reinterpret_cast<float2*>(args.partials + blockIdx.z * static_cast<std::size_t>(args.M) * args.N + o),
                   make_float2(v0, v1));
          }
        }
  }
  if (args.splits == 1) return;

  // Split-K: the last CTA of this output tile to arrive sums the partials in split order (deterministic).
  if (!split_k_last_arrival(args.counters, blockIdx.y * gridDim.x + blockIdx.x, args.splits, tid, is_last_cta)) return;
  constexpr int half_cols = P::block_n / 2;
  const int n0 = blockIdx.y * P::block_n;
  for (int i = tid; i < rows_valid * half_cols; i += P::threads) {
    const int row = m0 + i / half_cols, col = n0 + 2 * (i % half_cols);
    if (col >= args.N) continue;
    const std::size_t o = static_cast<std::size_t>(row) * args.N + col;
    float2 sum = make_float2(0.f, 0.f);
    for (int z = 0; z < args.splits; ++z) {
      const float2 p = __ldcg(reinterpret_cast<const float2*>(args.partials + z * static_cast<std::size_t>(args.M) * args.N + o));
      sum.x += p.x;
      sum.y += p.y;
    }
    if (bias) {
      sum.x += Ops::to_float(bias[col]);
      sum.y += Ops::to_float(bias[col + 1]);
    }
    Y[o / 2] = Ops::pack2(sum.x, sum.y);
  }
}

/// Whether `kernel` may be launched with programmatic dependent launch on the current device: compute
/// capability 9.0+ and code compiled for a virtual architecture 9.0+ (only then does it contain
/// `griddepcontrol.wait`; code JIT-compiled from older PTX has none and would race with the preceding
/// kernel).
template <class Kernel>
bool pdl_supported(Kernel* kernel) {
  if (current_compute_capability() < 90) return false;
  cudaFuncAttributes fa{};
  if (cudaFuncGetAttributes(&fa, kernel) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return fa.ptxVersion >= 90;
}

/// cudaLaunchKernelEx's configuration of a launch, without attributes.
inline cudaLaunchConfig_t launch_config(dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  return cfg;
}

/// The programmatic-stream-serialization launch attribute (PDL).
inline cudaLaunchAttribute pdl_attribute() {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = 1;
  return a;
}

/// Launches `kernel(args...)` with the programmatic-stream-serialization attribute (PDL: it may start while
/// the preceding kernel in `stream` runs, and waits for it in griddepcontrol.wait).
template <class... KArgs, class... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                       const Args&... args) {
  cudaLaunchConfig_t cfg = launch_config(grid, block, smem, stream);
  cudaLaunchAttribute la[1] = {pdl_attribute()};
  cfg.attrs = la;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

/// Launches `kernel` in thread-block clusters of `cluster` CTAs (the grid a multiple of it), with programmatic
/// dependent launch when `pdl`.
template <class... KArgs, class... Args>
cudaError_t launch_cluster(bool pdl, dim3 cluster, void (*kernel)(KArgs...), dim3 grid, dim3 block, std::size_t smem,
                           cudaStream_t stream, const Args&... args) {
  cudaLaunchConfig_t cfg = launch_config(grid, block, smem, stream);
  cudaLaunchAttribute la[2] = {cudaLaunchAttribute{}, pdl_attribute()};
  la[0].id = cudaLaunchAttributeClusterDimension;
  la[0].val.clusterDim.x = cluster.x;
  la[0].val.clusterDim.y = cluster.y;
  la[0].val.clusterDim.z = cluster.z;
  cfg.attrs = la;
  cfg.numAttrs = pdl ? 2 : 1;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

/// launch_pdl when `pdl`, else a plain launch; returns the launch's error either way.
template <class... KArgs, class... Args>
cudaError_t launch_pdl_or_plain(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, std::size_t smem,
                                cudaStream_t stream, const Args&... args) {
  if (pdl) return launch_pdl(kernel, grid, block, smem, stream, args...);
  kernel<<<grid, block, smem, stream>>>(static_cast<KArgs>(args)...);
  return cudaGetLastError();
}

/// Act-order pre-gather: Ag[m, k'] = A[m, perm[k']] (8 columns per thread and step, one 16-byte store;
/// a grid-stride loop, so the grid may be smaller than the M * K / 8 chunks).
///
/// Under programmatic dependent launch (the GEMM after it launched with PDL too: run_decode, run_midm, run_large_wgmma) it
/// lets that GEMM launch at once, so the GEMM's CTAs fetch their first weight tiles while this grid waits
/// for the kernel before it; it reads the permutation (part of the weight, under PdlMode's contract)
/// before `griddepcontrol.wait`, and A (which that kernel may write) and Ag (which the previous GEMM on
/// the same workspace may still read) only after it. Launched plainly, both instructions are no-ops.
template <class = void>
__global__ void gather_columns_kernel(const std::uint16_t* A, const std::int32_t* perm, int M, int K,
                                      std::uint16_t* Ag) {
  ptx::pdl_launch_dependents();
  const std::size_t kc = static_cast<std::size_t>(K) / 8, chunks = static_cast<std::size_t>(M) * kc;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // chunk of 8 columns
  int4 p0{}, p1{};
  const auto load_perm = [&](std::size_t c) {
    const std::size_t k0 = (c % kc) * 8;
    p0 = __ldg(reinterpret_cast<const int4*>(perm + k0));
    p1 = __ldg(reinterpret_cast<const int4*>(perm + k0 + 4));
  };
  if (i < chunks) load_perm(i);
#if !defined(LOWBIT_TESTING_GATHER_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
  ptx::pdl_wait();
#endif
  for (; i < chunks; i += stride) {
    const std::size_t m = i / kc, k0 = (i % kc) * 8;
    const std::uint16_t* row = A + m * K;
    const int idx[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
    alignas(16) std::uint16_t v[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = row[idx[e]];  // plain loads: A is not read-only over this grid's life under PDL
    if (i + stride < chunks) load_perm(i + stride);
    *reinterpret_cast<uint4*>(Ag + m * K + k0) = *reinterpret_cast<const uint4*>(v);
  }
}

/// Most dynamic shared memory the row-wise pre-gather (gather_rows_kernel) takes: one row of A (2K bytes) and
/// its CTA's share of the permutation (4K / parts bytes), capped further by the device's opt-in limit
/// (gather_rows_smem_limit). Larger K (above ~34000 at one part on an H100) falls back to gather_columns_kernel.
inline constexpr std::size_t kGatherRowsMaxSmem = 200 * 1024;

/// Which act-order pre-gather runs. -1 (the default): the column kernel at M <= kGatherRowsMinM, else the row
/// kernel aiming at kGatherRowsAutoCtas CTAs; 0: the column kernel; n > 0: the row kernel aiming at n CTAs (M rows
/// x parts of K, parts = ceil(n / M), at most kGatherRowsMaxParts). A tuning knob: bench/kernels/bench_gemm.cu sweeps it
/// (`--gather-sweep`) and the tests force both kernels; nothing else should change it.
inline int gather_rows_target_ctas = -1;
/// Largest M the automatic choice gives the column kernel, and the row kernel's CTA target above it. H100,
/// 4-bit g128, PDL (bench/results/gather_sweep_*_s27b.log), us, column kernel against the row kernel at 128 CTAs:
/// 8192^2 M = 1 13.99 against 15.00, M = 16 24.48 against 22.36, M = 64 36.08 against 35.97; 28672 x 8192 M = 1
/// 46.74 against 48.13, M = 16 59.98 against 60.21, M = 64 121.61 against 99.59.
inline constexpr std::size_t kGatherRowsMinM = 8;
/// Most parts the row-wise pre-gather splits K into (each part's CTAs copy the whole row; 16 parts, a 256-CTA target
/// at M = 16, were no faster: bench/results/gather_sweep_*_s27e.log).
inline constexpr std::size_t kGatherRowsMaxParts = 8;
inline constexpr int kGatherRowsAutoCtas = 128;  ///< the row kernel's CTA target in the automatic choice (M > kGatherRowsMinM)

/// Act-order pre-gather through shared memory, Ag[m, k'] = A[m, perm[k']]. CTA b takes part b % parts of the
/// kernel columns (16-byte chunks [c0, c1) of K / 8) and rows b / parts, b / parts + gridDim.x / parts, ...
/// (gridDim.x is a multiple of parts). It copies its share of the permutation into shared memory before
/// `griddepcontrol.wait` (part of the weight, PdlMode's contract), then for each row copies the row of A whole
/// into shared memory with 16-byte loads and writes its chunks of Ag with 16-byte stores: the random reads go to
/// shared memory instead of costing one L2 sector each, as gather_columns_kernel's do. PDL as in
/// gather_columns_kernel: dependents launched at once, A and Ag touched only after the wait.
template <class = void>
__global__ void gather_rows_kernel(const std::uint16_t* A, const std::int32_t* perm, int M, int K, int parts,
                                   std::uint16_t* Ag) {
  extern __shared__ __align__(16) unsigned char gather_smem[];
  ptx::pdl_launch_dependents();
  const int kc = K / 8, part = static_cast<int>(blockIdx.x) % parts;
  const int c0 = static_cast<int>(static_cast<long long>(part) * kc / parts);
  const int c1 = static_cast<int>(static_cast<long long>(part + 1) * kc / parts);
  auto* srow = reinterpret_cast<uint4*>(gather_smem);            // the row: K values
  auto* sperm = reinterpret_cast<int4*>(gather_smem + 2 * K);    // perm[8 c0 .. 8 c1)
  const auto* s16 = reinterpret_cast<const std::uint16_t*>(gather_smem);
  const auto* p4 = reinterpret_cast<const int4*>(perm) + 2 * c0;
  for (int i = threadIdx.x; i < 2 * (c1 - c0); i += blockDim.x) sperm[i] = __ldg(p4 + i);
#if !defined(LOWBIT_TESTING_GATHER_SKIP_PDL_WAIT)  // defined only by the PDL tests' negative control
  ptx::pdl_wait();
#endif
  const auto* a4 = reinterpret_cast<const uint4*>(A);
  for (int m = static_cast<int>(blockIdx.x) / parts; m < M; m += static_cast<int>(gridDim.x) / parts) {
    __syncthreads();  // the previous row's reads are done (the first time: the permutation is in place)
    const uint4* row = a4 + static_cast<std::size_t>(m) * kc;
    for (int i = threadIdx.x; i < kc; i += blockDim.x) srow[i] = row[i];  // plain loads: A may be written under PDL
    __syncthreads();
    std::uint16_t* out = Ag + static_cast<std::size_t>(m) * K;
    for (int c = c0 + static_cast<int>(threadIdx.x); c < c1; c += blockDim.x) {
      const int4 q0 = sperm[2 * (c - c0)], q1 = sperm[2 * (c - c0) + 1];
      const int idx[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
      alignas(16) std::uint16_t v[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = s16[idx[e]];
      *reinterpret_cast<uint4*>(out + 8 * c) = *reinterpret_cast<const uint4*>(v);
    }
  }
}

/// Dynamic shared memory of gather_rows_kernel for rows of K values split into `parts`: the row, then the
/// largest part's share of the permutation (8 int32 per 16-byte chunk of the row).
constexpr std::size_t gather_rows_smem_bytes(std::size_t K, std::size_t parts) {
  return 2 * K + (K / 8 + parts - 1) / parts * 32;
}

/// Dynamic shared memory gather_rows_kernel may use on the current device: kGatherRowsMaxSmem or the device's
/// opt-in limit per CTA, whichever is smaller, raised once per process (48 KB, which needs no opt-in, where the
/// query or the attribute fails; a failed call's error is cleared so it cannot surface later).
inline std::size_t gather_rows_smem_limit() {
  static const std::size_t limit = [] {
    constexpr std::size_t kDefault = 48 * 1024;
    const int optin = current_smem_optin();
    if (optin <= 0) return kDefault;
    const std::size_t lim = std::min(kGatherRowsMaxSmem, static_cast<std::size_t>(optin));
    if (lim <= kDefault) return lim;
    if (cudaFuncSetAttribute(gather_rows_kernel<>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(lim)) !=
        cudaSuccess) {
      (void)cudaGetLastError();
      return kDefault;
    }
    return lim;
  }();
  return limit;
}

/// Largest M for which the tile kernels (gemm_policy) gather act-order A inside the GEMM; above it a
/// pre-pass gathers into the workspace. H100, 4-bit g128, K = N = 8192: in-kernel gather 29.7 us at
/// M = 1 (plain 33.8 us) but 106 us at M = 16 (plain 35 us). The decode kernel always pre-gathers.
inline constexpr std::size_t kInKernelGatherMaxM = 4;

/// Which default policy serves M rows (large_wgmma: the sm_90a large-M kernel, large_wgmma.cuh).
enum class PolicyKind { decode, small, medium, large, custom, midm, large_wgmma };

/// A launch plan: policy, grid and split-K.
struct GemmPlan {
  PolicyKind kind;          ///< which policy
  int block_m, block_n, warps_k, ctas_per_sm;  ///< its shape
  int splits = 1;           ///< CTAs along K
  int kt_per_split = 0;     ///< 64-row K tiles per split
  dim3 grid;                ///< launch grid
  std::size_t workspace_bytes = 0;  ///< partials + counters
  int kt_per_warp = 0;      ///< decode kernel: 64-row K tiles per warp
  int slabs = 1;            ///< decode kernel: 64-column slabs per CTA (2: the two-slab variant)
  bool persist = false;     ///< decode kernel: persistent CTAs (grid.y <= slabs, each CTA loops over slabs)
  bool wgmma = false;       ///< mid-M kernel: the sm_90a wgmma variant (midm_wgmma.cuh)
  bool midm_ws = false;     ///< wgmma mid-M kernel: the warp-specialized variant (midm_wgmma_ws_kernel)
};

/// Split-K arrival counters live at the start of the workspace in a region of fixed size, so they stay
/// zero from one call to the next whatever M is (the rest of the workspace is scratch).
inline constexpr std::size_t kMaxCounters = 8192;
/// Bytes of the counter region (also the alignment of what follows).
inline constexpr std::size_t kCounterBytes = kMaxCounters * sizeof(unsigned);

template <class P>
GemmPlan make_plan(PolicyKind kind, std::size_t M, std::size_t N, std::size_t K, int sm_count) {
  GemmPlan p{kind, P::block_m, P::block_n, P::warps_k, P::ctas_per_sm};
  const std::size_t mt = (M + P::block_m - 1) / P::block_m, nt = (N + P::block_n - 1) / P::block_n;
  const std::size_t KT = K / TileGeometry::tile_k;
  const std::size_t tiles = mt * nt;
  // Split K so that the grid fills whole waves of resident CTAs: the smallest split count whose last
  // wave is >= 90% full (else the best one). Partials cost splits*M*N*4 bytes: small next to the
  // weights when M is small, which is when splits are needed.
  const std::size_t slots = static_cast<std::size_t>(sm_count) * P::ctas_per_sm;
  // each split keeps at least 2 CTA k-steps so the pipeline has something to overlap
  const std::size_t max_splits = std::max<std::size_t>(1, std::min<std::size_t>(32, KT / (2 * P::warps_k)));
  std::size_t splits = 1;
  double best = 0;
  for (std::size_t s = 1; s <= (tiles <= kMaxCounters ? max_splits : 1); ++s) {
    const std::size_t ctas = tiles * s, waves = (ctas + slots - 1) / slots;
    const double eff = static_cast<double>(ctas) / static_cast<double>(waves * slots);
    if (eff > best + 1e-9) {
      best = eff;
      splits = s;
    }
    if (eff >= 0.9) break;
  }
  std::size_t per = (KT + splits - 1) / splits;
  per = (per + P::warps_k - 1) / P::warps_k * P::warps_k;
  splits = (KT + per - 1) / per;
  p.splits = static_cast<int>(splits);
  p.kt_per_split = static_cast<int>(per);
  p.grid = dim3(static_cast<unsigned>(mt), static_cast<unsigned>(nt), static_cast<unsigned>(splits));
  if (splits > 1) p.workspace_bytes = kCounterBytes + (splits * M * N * sizeof(float) + 255) / 256 * 256;
  return p;
}

/// Weight tiles (64 x 64) from which the planner gives M > 8 rows two slabs per CTA (width <= 4 bits).
inline constexpr std::size_t kTwoSlabMinTiles = 20480;

/// Whether width B's 64 x 64 weight tile is no more bytes than the tile's activation rows at M = 16 (2-4
/// bits; not 8). Such widths are bound by instructions per tile; a wider tile makes the decode kernel
/// memory-bound. Both the two-slab rule and the planner's constants split on it.
template <int B>
constexpr bool decode_tile_within_rows() {
  return static_cast<std::size_t>(DecodeConfig<B>::tile_bytes) <= kDecodeMaxM * TileGeometry::tile_k * sizeof(std::uint16_t);
}

/// Whether the decode planner runs the two-slab variant (each warp streams two adjacent slabs and copies
/// the activation rows once for both) when the slabs per CTA are left to it. At M = 16 a 4-bit tile's
/// activation rows are as many bytes as the tile, so one copy for two slabs cuts the L2-to-SM traffic
/// from 2x to 1.5x the weight bytes; the price is 8 warps per SM (225 registers) and half the CTAs,
/// which only long streams amortise. The rule is read off tune_decode on an H100 (session 11, bench/results/
/// kernels_tune_NVIDIA_H100_80GB_HBM3_2026-12-06_s11.json: 4 widths x 6 shapes x M = 1, 4, 8, 16; K x N): at M = 16,
/// 2-4 bits, the best one-slab plan took 1.12-1.24x the best two-slab plan's time on 8192 x 28672 and
/// 8192 x 10240 and 1.05-1.07x on 28672 x 8192 (the shapes of >= 20480 tiles), but 0.82-0.95x on 8192^2,
/// 0.82-0.86x on 4096^2 and 0.97-1.05x on 3584 x 18944; 8-bit tiles are twice the activation bytes and
/// two slabs tied or lost on every shape; at M = 8 (the one-row-block kernel) results were mixed
/// (0.81-1.07x).
template <int B>
constexpr bool decode_prefers_two_slabs(std::size_t M, std::size_t N, std::size_t K) {
  const std::size_t slabs = N / TileGeometry::tile_n, KT = K / TileGeometry::tile_k;
  return decode_tile_within_rows<B>() && M > 8 && slabs % 2 == 0 && slabs * KT >= kTwoSlabMinTiles;
}

/// Plans the decode kernel (M <= 16): CTAs of 4, 8 or 16 warps on one slab (or two), K split across the warps
/// (reduced in shared memory) and, if that does not fill the GPU, across `splits` CTAs (fp32 partials
/// in the workspace). Warps and splits minimise a byte-cost model: the busiest SM streams the tiles of
/// the ceil(CTAs / SMs) CTAs it runs (CTAs of equal work go to SMs as slots free up), each warp as
/// many tiles as the longest warp (ragged K ranges are paid in full), and an SM holding fewer than
/// its resident-CTA capacity is charged for the empty slots as if they streamed (few warps cannot hide
/// the copy latency); plus the partials written and read back and a fixed tail for the cross-CTA
/// reduction (a fence, an atomic and a dependent read after the last tile: about 2 us, measured as the
/// difference between 4 x 4-warp splits and 1 x 16-warp CTAs), plus a fixed cost per wave of resident
/// CTAs (pipeline fill), plus, on one-slab plans, a per-CTA overhead charged as kCtaWarps extra warps of
/// streaming (it ends a preference for many 4-warp CTAs that measured slower than 8- and 16-warp ones).
/// H100 (4-bit g128, M = 1): 8192 x 8192 19.3 us with 16 warps x 1 split vs 20.8 us with 4 warps x 4
/// splits; 28672 x 8192 53.0 us vs 59.4 us.
/// `legacy_waves` (benchmark A/B only): the model before the busiest-SM term (and without the per-CTA
/// term), which charged every warp slot of every wave (CTAs per SM rounded up to a multiple of the
/// resident capacity). With 4-warp
/// CTAs on 8192 x 28672 that kept 448 CTAs on 528 slots (52 SMs with 16 warps, 80 with 12: the busiest
/// SM streams 512 tiles against 434 on average), measured 15 % slower (H200, M = 1: 44.3 us) than the
/// transposed 28672 x 8192 with the same bytes (38.6 us, 16-warp CTAs, 448 tiles per busy SM).
/// Planned for the cp.async ring that gemm launches. `force_warps` / `force_splits` / `force_slabs`
/// (GemmOptions::decode, tune_decode, benchmark sweeps; 0 = free) restrict the search to that warp count /
/// split count / slabs per CTA; when no valid plan has them the result has kt_per_warp == 0. Slabs per
/// CTA, when free, follow decode_prefers_two_slabs (then the model picks warps and splits among two-slab
/// plans, falling back to one slab when the forced fields leave none). `force_persist` (DecodeChoice::persist):
/// 2 plans persistent CTAs only (grid.y = min(slabs, SMs x the CTAs per SM that group 32's shared memory
/// allows): for larger groups the grid may be one CTA per SM where two would fit), 0 and 1 never.
template <int B>
GemmPlan make_decode_plan(std::size_t M, std::size_t N, std::size_t K, int sm_count, bool legacy_waves = false,
                          int force_warps = 0, int force_splits = 0, int force_slabs = 0, int force_persist = 0) {
  using C = DecodeConfig<B>;
  GemmPlan p{PolicyKind::decode, C::max_m, TileGeometry::tile_n, 4, 1};
  const std::size_t slabs = N / TileGeometry::tile_n, KT = K / TileGeometry::tile_k;
  const std::size_t m = std::max<std::size_t>(M, 1);
  // fill of a wave: every warp waits one memory latency (~1.5 us loaded, ~4.5 MB at 3 TB/s) for its first
  // tile; at 1 MB the model chose 7 waves of 4-tile warps on 8192 x 28672 (72 us) over one wave of
  // 32-tile warps (60 us, H100)
  constexpr double kWaveBytes = 4.0e6;
  // split tail: ~2 us measured, charged as ~3 us; and the busiest SM counted as the average CTAs per SM
  // plus 3/4 of the rounding up (memory-bound CTAs on the less loaded SMs stream faster than an even
  // share). Session 9 sweep of every plan (warps x splits <= 16) with PDL, 2/3/4/8 bits x 12 shapes x
  // M = 1, 4, 8, 16 on an H100 (bench/results/decode_sweep_*_s9.json): the chosen plan's time over the
  // best plan's went from 1.046 (mean) / 1.41 (worst) with 6 MB and the plain busiest SM to 1.026 / 1.34;
  // 31 of 192 choices changed, 25 faster, e.g. 4-bit 4096^2 M = 1 7.05 -> 5.13 us, 8192 x 28672
  // (N = 28672) M = 16 73.0 -> 64.5 us; the worst of 6 slower ones 2-bit 8192 x 10240 M = 16 +14 %.
  constexpr double kSplitTailBytes = 10.0e6;
  // The memory-bound width (8 bits: a tile of more bytes than 16 activation rows, !decode_tile_within_rows)
  // streams at 2.6-2.9 TB/s on the large shapes, where lightly loaded SMs take more of the bandwidth, so
  // an uneven load costs it less (weight 0.4), and 4-warp CTAs lose more often (kCtaWarps 0.6 below).
  // Fitted offline on the session-9 sweep (session 14, fit_decode_planner.py --mem-bound): 8-bit
  // chosen/best 1.0218 -> 1.0075 (1.0091 leave-one-shape-out), a plateau over 0.35-0.4 x 0.45-0.8; 12 of
  // 48 8-bit sweep cases > 1 % faster (8192 x 28672 M = 1 / 4 / 8 / 16: 4 x 2 87.1 / 94.3 / 98.3 / 103.8 us
  // -> 16 x 1 84.5, 8 x 1 87.9 / 90.0 / 96.3; 3584 x 18944 M = 4 / 8: 8 % faster), one 3.9 % slower
  // (13824 x 5120 M = 16: 4 x 3 -> 8 x 3). For 2-4 bits no change of these constants or added term held
  // up under leave-one-shape-out cross-validation.
  constexpr bool kMemBound = !decode_tile_within_rows<B>();
  constexpr double kBusiestWeight = kMemBound ? 0.4 : 0.75;
  // per-CTA overhead: a CTA streams as if it had kCtaWarps more warps (its busiest-SM bytes are charged
  // for W + kCtaWarps warps), so 4-warp CTAs pay 5 %, 8-warp 2.5 %, 16-warp 1.25 % (8 bits, 0.6: 15 / 7.5 /
  // 3.75 %). Fitted offline on the
  // session-9 sweep (0.18-0.22 give the same choices): chosen/best 1.026 -> 1.021 mean, 1.34 -> 1.25
  // worst, 8 of 192 choices faster (4-bit 3584 x 18944 M = 8: 4 x 1 25.1 us -> 8 x 1 18.7 us; 4-bit
  // 8192 x 28672 M = 4: 4 x 2 53.9 -> 8 x 1 49.5 us), none more than 1 % slower; on the session-11
  // two-slab sweep 1.013 -> 1.009 mean. One-slab plans only: charged on two-slab CTAs (M > 8, twice the
  // bytes per CTA) it moved 2-bit 8192 x 28672 M = 12 / 16 from 4 x 1 to 8 x 1, measured 14 % / 11 %
  // slower (session-13 tune, H100: bench/results/kernels_tune_*_s13*). Tuned over planned on that run's
  // 120 cases: 1.036 -> 1.031 mean; the one measured loss left is 8-bit 3584 x 18944 M = 12 (4 x 1 ->
  // 4 x 2, +9 %; a three-way tie within 0.3 % in the model).
  constexpr double kCtaWarps = kMemBound ? 0.6 : 0.2;
  double best = -1;
  // slabs per CTA: the forced count, else the rule's, else (no two-slab plan with the forced fields) one
  const int want_slabs = force_slabs ? force_slabs : decode_prefers_two_slabs<B>(M, N, K) ? 2 : 1;
  const int tries = force_slabs == 0 && want_slabs == 2 ? 2 : 1;
  for (int i = 0; i < tries && best < 0; ++i) {
    const int ns = i == 0 ? want_slabs : 1;
    const double cta_warps = legacy_waves || ns != 1 ? 0.0 : kCtaWarps;
    if (slabs % static_cast<std::size_t>(ns)) continue;
    const std::size_t ctas_n = slabs / static_cast<std::size_t>(ns);  // CTAs along N
    for (int W : {16, 8, 4}) {
      if (force_warps && W != force_warps) continue;
      // occupancy: registers (16 warps/SM at the 128-register cap; two slabs: 8 at 255), shared memory
      // (worst case: group 32)
      const int warps_per_sm = ns == 1 ? C::warps_per_sm : C::max_warps_two_slabs;
      if (W > warps_per_sm) continue;
      const std::size_t smem = decode_smem_bytes<B>(false, 2, m, W, ns) + kSmemReservedPerCta;
      const std::size_t per_sm = std::min<std::size_t>(static_cast<std::size_t>(warps_per_sm / W), kSmemPerSm / smem);
      if (per_sm == 0) continue;
      const std::size_t sms = static_cast<std::size_t>(std::max(sm_count, 1));
      const std::size_t w = static_cast<std::size_t>(W);
      const std::size_t max_splits =
          slabs <= kMaxCounters ? std::min<std::size_t>(kMaxDecodeSplits, (KT + w - 1) / w) : 1;
      for (std::size_t sp = 1; sp <= max_splits; ++sp) {
        if (force_splits && sp != static_cast<std::size_t>(force_splits)) continue;
        const std::size_t kpw = (KT + w * sp - 1) / (w * sp);
        if ((KT + w * kpw - 1) / (w * kpw) != sp) continue;  // no empty split
        for (const bool pe : {false, true}) {
          // persistent CTAs (DecodeChoice::persist): M <= 8, one slab and one split per CTA, every warp the
          // same tiles (they meet at two barriers per slab), the reduction buffer beside the rings; one
          // generation of resident CTAs, so one wave's fill. Never planned by itself: measured on an H100
          // (session 14, bench/results/kernels_tune_*_s14.json: 2/3/4/8 bits x 6 shapes x M = 1, 4, 8)
          // the best persistent shape beat the best other one in 12 of 72 cases, by 3-8 % on 3584 x 18944
          // (296 slabs on 264 resident CTAs) and at 2-8 bits lost up to 27 % elsewhere (1.07x for 8-bit on
          // that same shape at M = 1); tune_decode measures it.
          if (pe != (force_persist == 2)) continue;
          if (pe && (ns != 1 || sp != 1 || kpw * w != KT || M > 8)) continue;
          const std::size_t pcta =
              pe ? std::min<std::size_t>(static_cast<std::size_t>(warps_per_sm / W),
                                         kSmemPerSm / (decode_smem_bytes<B>(false, 2, m, W, 1, true) + kSmemReservedPerCta))
                 : per_sm;
          if (pcta == 0) continue;
          const std::size_t ctas = ctas_n * sp, waves = pe ? 1 : (ctas + sms * pcta - 1) / (sms * pcta);
          // CTAs of the busiest SM (at least its resident capacity: idle slots are paid)
          const double avg = static_cast<double>(ctas) / static_cast<double>(sms);
          const double busiest = static_cast<double>((ctas + sms - 1) / sms);
          const double sm_ctas = legacy_waves ? static_cast<double>(waves * pcta)
                                              : std::max(avg + kBusiestWeight * (busiest - avg), static_cast<double>(pcta));
          const double cost = sm_ctas * static_cast<double>(sms * kpw) * (static_cast<double>(w) + cta_warps) *
                                  C::tile_bytes * ns +
                              (sp > 1 ? 2.0 * static_cast<double>(sp * M * N) * sizeof(float) + kSplitTailBytes : 0.0) +
                              kWaveBytes * static_cast<double>(waves);
          if (best < 0 || cost < best * 0.999) {
            best = cost;
            p.warps_k = W;
            p.ctas_per_sm = static_cast<int>(pcta);
            p.splits = static_cast<int>(sp);
            p.kt_per_warp = static_cast<int>(kpw);
            p.slabs = ns;
            p.persist = pe;
          }
        }
      }
    }
  }
  p.kt_per_split = p.kt_per_warp * p.warps_k;
  p.block_n = TileGeometry::tile_n * p.slabs;
  const std::size_t ctas_y = slabs / static_cast<std::size_t>(p.slabs);
  const std::size_t resident = static_cast<std::size_t>(std::max(sm_count, 1)) * static_cast<std::size_t>(p.ctas_per_sm);
  p.grid = dim3(1u, static_cast<unsigned>(p.persist ? std::min(ctas_y, resident) : ctas_y), static_cast<unsigned>(p.splits));
  if (p.splits > 1)
    p.workspace_bytes = kCounterBytes + (static_cast<std::size_t>(p.splits) * M * N * sizeof(float) + 255) / 256 * 256;
  return p;
}

/// Largest M served by the mid-M kernel (midm.cuh); above it the Large tile policy runs.
inline constexpr std::size_t kMidmMaxM = 256;

/// CTAs of mid-M policy P (width B, GPT groups per k-tile) resident per SM: the policy's register
/// assumption, capped by shared memory.
template <int B, class P>
constexpr int midm_ctas_per_sm(int gpt) {
  const std::size_t smem = P::template smem_bytes<B>(gpt) + kSmemReservedPerCta;
  const std::size_t by_smem = kSmemPerSm / smem;
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(P::ctas_per_sm, by_smem)));
}

/// Plans the mid-M kernel with policy P: grid (M tiles, N blocks, splits), splits from
/// midm_choose_splits (wave quantisation vs partial traffic).
template <int B, class P>
GemmPlan make_midm_plan(std::size_t M, std::size_t N, std::size_t K, int sm_count) {
  const int per_sm = midm_ctas_per_sm<B, P>(2);  // worst case (group 32) for the shared memory
  GemmPlan p{PolicyKind::midm, P::block_m, P::block_n, P::warps_k, per_sm};
  p.wgmma = P::wgmma;
  p.midm_ws = P::ws;
  const std::size_t mt = (M + P::block_m - 1) / P::block_m, nt = (N + P::block_n - 1) / P::block_n;
  const std::size_t KT = K / TileGeometry::tile_k;
  const std::size_t slots = static_cast<std::size_t>(std::max(sm_count, 1)) * static_cast<std::size_t>(per_sm);
  const double step_bytes = static_cast<double>(P::warps_n) * TiledLayout<B>::words_per_tile * 4 + P::block_m * 128.0;
  midm_choose_splits(M, N, KT, mt * nt, slots, P::warps_k, step_bytes, p.splits, p.kt_per_split, kMaxCounters);
  p.grid = dim3(static_cast<unsigned>(mt), static_cast<unsigned>(nt), static_cast<unsigned>(p.splits));
  if (p.splits > 1)
    p.workspace_bytes = kCounterBytes + (static_cast<std::size_t>(p.splits) * M * N * sizeof(float) + 255) / 256 * 256;
  return p;
}

/// k-tiles per CTA (plan.kt_per_split) from which M <= 64 runs the warp-specialized W64 instead of the lock-step
/// W64ls (same grid). H100, g128, same run (bench/results/large_probe_*_2026-12-07_s25_ws_wg.log): 32-128
/// k-tiles a CTA (8192^2, 8192 x 28672, 28672 x 8192) 4-11 % faster at 2, 4 and 8 bits and M = 32, 64; 8 (4096^2)
/// 3-7 % slower, the producer's fill and the barrier setup no longer hidden.
inline constexpr int kMidmWsMinKTiles = 16;

/// Weight tiles (64 x 64) from which the wgmma mid-M kernel serves 128 < M <= 256 rows of 2-4-bit weights
/// with one 256-row block (MidmWgmmaPolicies::W256) instead of two 128-row blocks.
inline constexpr std::size_t kMidmW256MinTiles = 16384;

/// Whether the wgmma mid-M kernel takes the 256-row policy (MidmWgmmaPolicies::W256) for M rows of a K x N
/// weight of width B: 128 < M <= 256, and 8 bits or at least kMidmW256MinTiles tiles. H100, g128, M = 192 and
/// 256, same run against W128 (bench/results/large_probe_*_s16*.log): 3-9 % faster at 2-4 bits on 8192^2
/// (16384 tiles), 8192 x 28672 and 28672 x 8192 (57344), 0-8 % slower on 4096^2 (4096 tiles: 16 k-steps per
/// CTA, where the two-warpgroup CTA's fill shows); 8 bits (its dequantization the costliest, now done once
/// per 256 rows) 16-20 % faster on the large shapes and 7-12 % on 4096^2.
template <int B>
constexpr bool midm_prefers_w256(std::size_t M, std::size_t N, std::size_t K) {
  return M > 128 && M <= kMidmMaxM &&
         (B == 8 || (N / TileGeometry::tile_n) * (K / TileGeometry::tile_k) >= kMidmW256MinTiles);
}

/// Plans the wgmma mid-M kernel (16 < M <= kMidmMaxM on sm_90a): 64-row CTAs to M = 64, warp-specialized (W64)
/// where a CTA streams at least kMidmWsMinKTiles k-tiles, else lock-step (W64ls, same grid); 256-row ones where
/// midm_prefers_w256; else 128-row ones, warp-specialized (W128, block_n 192) unless that plan splits K more than
/// the lock-step W128ls (block_n 256) does: the split-K partials then cost more than the faster CTAs save.
/// `tma`: the driver's tensor-map encoder is available (W128 copies its activation tiles by TMA); without it
/// the 128-row CTAs are W128ls.
template <int B>
GemmPlan plan_midm_wgmma(std::size_t M, std::size_t N, std::size_t K, int sm_count, bool tma = true) {
  using QW = MidmWgmmaPolicies<B>;
  if (M <= 64) {
    const GemmPlan ws = make_midm_plan<B, typename QW::W64>(M, N, K, sm_count);
    return ws.kt_per_split >= kMidmWsMinKTiles ? ws : make_midm_plan<B, typename QW::W64ls>(M, N, K, sm_count);
  }
  if (midm_prefers_w256<B>(M, N, K)) return make_midm_plan<B, typename QW::W256>(M, N, K, sm_count);
  static_assert(!QW::W128::ws_tma_acts || QW::W128::ws, "a TMA-fed W128 is warp-specialized");
  const GemmPlan ls = make_midm_plan<B, typename QW::W128ls>(M, N, K, sm_count);
  if (QW::W128::ws_tma_acts && !tma) return ls;
  const GemmPlan ws = make_midm_plan<B, typename QW::W128>(M, N, K, sm_count);
  return ws.splits <= ls.splits ? ws : ls;
}

/// Grid of the large-M kernel for M x N with BM-row CTAs in clusters of CN along N: ceil(M / block_m) x the column
/// blocks rounded up to a multiple of CN (a cluster's CTA past N still loads its share of the activations).
template <int BM, int CN>
dim3 large_wgmma_grid(std::size_t M, std::size_t N) {
  using C = LargeWgmmaConfig<4, 1, BM, CN>;  // every width's CTA covers the same block
  const std::size_t cols = (N + C::block_n - 1) / C::block_n, cn = static_cast<std::size_t>(CN);
  return dim3(static_cast<unsigned>((M + C::block_m - 1) / C::block_m), static_cast<unsigned>((cols + cn - 1) / cn * cn), 1u);
}

/// Plan of the sm_90a large-M kernel (large_wgmma.cuh) for width B: one CTA per BM rows x 32768 / BM columns
/// (LargeWgmmaConfig; gemm's is kLargeWgmmaBlockM) in clusters of kLargeWgmmaClusterN along N, K not split, no
/// split-K workspace (act-order weights need the pre-gather's M x K activations: workspace_total).
template <int B, int BM = kLargeWgmmaBlockM>
GemmPlan make_large_wgmma_plan(std::size_t M, std::size_t N, std::size_t K) {
  using C = LargeWgmmaConfig<B, 1, BM>;
  GemmPlan p{PolicyKind::large_wgmma, C::block_m, C::block_n, 1, 1};
  p.splits = 1;
  p.kt_per_split = static_cast<int>(K / TileGeometry::tile_k);
  p.grid = large_wgmma_grid<BM, kLargeWgmmaClusterN>(M, N);  // the launch's grid in gemm's clusters
  return p;
}

/// Smallest M that gemm gives the large-M kernel (large_wgmma.cuh) where it exists (large_wgmma_available): above
/// the mid-M kernels' range. Measured: bench/kernels/NOTES.md, session 28.
inline constexpr std::size_t kLargeWgmmaMinM = kMidmMaxM + 1;

/// Whether this build and device run the large-M kernel: an sm_90a build with the wgmma kernels on a compute
/// capability 9.0 device (midm_wgmma_available) whose driver encodes tensor maps (its activation boxes).
inline bool large_wgmma_available() { return midm_wgmma_available() && tensor_map_encoder() != nullptr; }


/// The shape part of large_wgmma_preferred (below): M >= kLargeWgmmaMinM and a grid of ceil(M / block_m) x
/// ceil(N / block_n) CTAs (gemm's LargeWgmmaConfig) that is at least 90 % of `sm_count` (host-testable without a device).
inline bool large_wgmma_fills(std::size_t M, std::size_t N, int sm_count) {
  using C = LargeWgmmaConfig<4, 1>;  // every width's CTA covers the same block
  const std::size_t ctas = ((M + C::block_m - 1) / C::block_m) * ((N + C::block_n - 1) / C::block_n);
  return M >= kLargeWgmmaMinM && ctas * 10 >= static_cast<std::size_t>(std::max(sm_count, 1)) * 9;
}

/// Whether gemm gives M x N to the large-M kernel: from kLargeWgmmaMinM rows where the kernel exists
/// (large_wgmma_available) and its grid, one CTA per output block and SM, fills at least 90 % of the
/// `sm_count` SMs. It does not split K, so a smaller grid would leave SMs idle (M = 300 on N = 4096: 48 CTAs);
/// those shapes keep the other paths (dequantize + cuBLAS in WeightOnlyLinear, the tile kernels in gemm).
inline bool large_wgmma_preferred(std::size_t M, std::size_t N, int sm_count) {
  return large_wgmma_fills(M, N, sm_count) && large_wgmma_available();
}

/// Plans a launch for width B (policy by M, split-K by SM count). `decode` restricts the decode plan
/// (M <= 16) to that launch shape; when the weight cannot run it, the plan has kt_per_warp == 0.
template <int B>
GemmPlan plan_gemm(std::size_t M, std::size_t N, std::size_t K, int sm_count, const DecodeChoice& decode = {}) {
  using D = DefaultPolicies<B>;
  using Q = MidmPolicies<B>;
  if (M <= DecodeConfig<B>::max_m)
    return make_decode_plan<B>(M, N, K, sm_count, false, decode.warps, decode.splits, decode.slabs, decode.persist);
  // sm_90a build on an sm_90 device: the wgmma variant from M = 17 (H100, 4-bit g128: W64 at M = 32 was
  // 1.2-1.45x faster than M32 on all four benchmark shapes); plan_midm_wgmma picks its policy
  if (M <= kMidmMaxM && midm_wgmma_available())
    return plan_midm_wgmma<B>(M, N, K, sm_count, tensor_map_encoder() != nullptr);
  if (M <= 32) return make_midm_plan<B, typename Q::M32>(M, N, K, sm_count);
  // mma.sync: 64-row CTAs up to M = 256 (H200: faster than the tile kernels on all four benchmark
  // shapes at M = 64-256; the 128-row M128 policy was slower than them on 4096^2 at M = 128 and 256)
  if (M <= kMidmMaxM) return make_midm_plan<B, typename Q::M64>(M, N, K, sm_count);
  if (large_wgmma_preferred(M, N, sm_count)) return make_large_wgmma_plan<B>(M, N, K);
  return make_plan<typename D::Large>(PolicyKind::large, M, N, K, sm_count);
}

/// Offset of the pre-gathered activations: never inside the counter region, even without split-K.
inline std::size_t gather_offset(const GemmPlan& plan) { return std::max(plan.workspace_bytes, kCounterBytes); }

/// Total workspace: the plan's split-K part, then the pre-gathered activations for act-order.
inline std::size_t workspace_total(const GemmPlan& plan, std::size_t M, const TiledMeta& meta) {
  const bool pregather =
      meta.act_order && (plan.kind == PolicyKind::decode || plan.kind == PolicyKind::large_wgmma || M > kInKernelGatherMaxM);
  return pregather ? gather_offset(plan) + M * meta.K * 2 : plan.workspace_bytes;
}

/// What every run_* checks before launching: the workspace holds what `plan` needs for M rows of
/// `meta` (gemm_workspace_size) and is 16-byte aligned.
inline Status check_workspace(const GemmPlan& plan, std::size_t M, const TiledMeta& meta, const void* workspace,
                              std::size_t workspace_bytes) {
  const std::size_t need = workspace_total(plan, M, meta);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need))
    return lowbit::detail::make_status(StatusCode::workspace_too_small, "gemm: workspace of ", workspace_bytes,
                                       " bytes, need ", need, " (gemm_workspace_size)");
  if (reinterpret_cast<std::uintptr_t>(workspace) % 16)
    return lowbit::detail::make_status(StatusCode::misaligned, "gemm: workspace must be 16-byte aligned");
  return Status::success();
}

/// Launches the act-order pre-gather of A `[M, K]` into the gather area of `plan`'s workspace `ws` and
/// points `Ag` at the gathered activations (row m, kernel column k' = A[m, perm[k']]). `pdl`: with the
/// programmatic-stream-serialization attribute (the GEMM after it is launched so too; see
/// gather_columns_kernel) where the gather kernel's code supports it, else plainly.
/// @return the launch's error (cudaSuccess when it went out).
template <class T>
cudaError_t gather_act_order(const T* A, const std::int32_t* perm, std::size_t M, std::size_t K, unsigned char* ws,
                             const GemmPlan& plan, cudaStream_t stream, const std::uint16_t*& Ag, bool pdl = false) {
  auto* out = reinterpret_cast<std::uint16_t*>(ws + gather_offset(plan));
  Ag = out;
  const auto* a16 = reinterpret_cast<const std::uint16_t*>(A);
  const int m = static_cast<int>(M), k = static_cast<int>(K);
  const int sms = std::max(current_sm_count(), 1);
  // Row-wise through shared memory above M = 8 where the row and the permutation share fit (the column
  // kernel's random 2-byte loads, one L2 sector each, cost most there: bench/kernels/NOTES.md, session 27)
  const int target = gather_rows_target_ctas < 0 ? (M <= kGatherRowsMinM ? 0 : kGatherRowsAutoCtas) : gather_rows_target_ctas;
  if (target > 0) {
    const int parts = static_cast<int>(std::clamp<std::size_t>((static_cast<std::size_t>(target) + M - 1) / M, 1, kGatherRowsMaxParts));
    const std::size_t smem = gather_rows_smem_bytes(K, static_cast<std::size_t>(parts));
    if (smem <= gather_rows_smem_limit()) {  // else the column kernel below
      auto rk = gather_rows_kernel<>;
      // rows per wave: at most 2 CTAs per SM in all
      const std::size_t rows = std::min<std::size_t>(M, std::max<std::size_t>(1, 2 * static_cast<std::size_t>(sms) / parts));
      const unsigned grid = static_cast<unsigned>(rows * parts);
      const bool use_pdl = pdl && [&] {
        static const bool ok = pdl_supported(rk);  // asked only where PDL was requested
        return ok;
      }();
      return launch_pdl_or_plain(use_pdl, rk, dim3(grid), dim3(256u), smem, stream, a16, perm, m, k, parts, out);
    }
  }
  auto kernel = gather_columns_kernel<>;
  const std::size_t chunks = M * K / 8;
  // At most 2 CTAs of 256 threads per SM, looping beyond (at M <= 16 on the benchmark shapes every chunk
  // still has its own thread). Under PDL the GEMM behind the gather launches only once every gather CTA
  // has started, and while the previous GEMM fills the SMs only its idle SMs take them: 64 CTAs at M = 16,
  // K = 8192 did not fit on the 4 SMs an 8192^2 decode grid leaves idle, and the overlap was lost there
  // (bench/kernels/NOTES.md, session 26). A grid above 2 CTAs per SM would hold the GEMM's CTAs out longer.
  const std::size_t cap = 2 * static_cast<std::size_t>(sms);
  const unsigned grid = static_cast<unsigned>(std::min<std::size_t>((chunks + 255) / 256, cap));
  const bool use_pdl = pdl && [&] {
    static const bool ok = pdl_supported(kernel);  // asked only where PDL was requested
    return ok;
  }();
  return launch_pdl_or_plain(use_pdl, kernel, dim3(grid), dim3(256u), 0, stream, a16, perm, m, k, out);
}

/// The fields GemmArgs (tile kernels) and StreamGemmArgs (decode, mid-M, large-M) share: the weight tensors,
/// the problem shape, the split-K plan and, with splits, the counters and partials in the workspace.
template <class Args>
void fill_common_args(Args& a, std::size_t M, const TiledWeightView& w, void* workspace, const GemmPlan& plan) {
  a.qweight = w.qweight;
  a.scales = w.scales;
  a.zeros = w.zeros;
  a.M = static_cast<int>(M);
  a.N = static_cast<int>(w.meta.N);
  a.K = static_cast<int>(w.meta.K);
  a.group_size = static_cast<int>(w.meta.group_size);
  a.sym = w.meta.sym ? 1 : 0;
  a.splits = plan.splits;
  a.kt_per_split = plan.kt_per_split;
  auto* ws = static_cast<unsigned char*>(workspace);
  if (plan.splits > 1) {
    a.counters = reinterpret_cast<unsigned*>(ws);
    a.partials = reinterpret_cast<float*>(ws + kCounterBytes);
  }
}

/// Fills the arguments every streaming kernel (decode, mid-M, large-M) shares from the public call, points the
/// split-K counters/partials into the workspace, and pre-gathers act-order activations into it (with
/// PDL when `pdl`: the kernel launched next must be launched with PDL too).
/// @return the pre-gather's launch error (cudaSuccess without act-order).
template <class T>
cudaError_t fill_stream_args(StreamGemmArgs& a, const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y,
                             void* workspace, const GemmPlan& plan, cudaStream_t stream, bool pdl = false) {
  a.A = reinterpret_cast<const std::uint16_t*>(A);
  a.Y = reinterpret_cast<std::uint32_t*>(Y);
  a.bias = reinterpret_cast<const std::uint16_t*>(bias);
  fill_common_args(a, M, w, workspace, plan);
  if (!w.meta.act_order) return cudaSuccess;
  return gather_act_order(A, w.perm, M, w.meta.K, static_cast<unsigned char*>(workspace), plan, stream, a.A, pdl);
}

/// The status gemm returns when the act-order pre-gather could not be launched.
inline Status gather_failed(cudaError_t e) {
  return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: act-order pre-gather launch failed: ", cudaGetErrorString(e));
}

template <int B, class T, class P, int GPT>
cudaError_t launch_policy(const GemmArgs& a, const GemmPlan& plan, cudaStream_t stream) {
  auto kernel = wo_gemm_kernel<B, T, P, GPT>;
  // Always raise the dynamic limit: dynamic + static shared memory above 48 KB needs it (once per kernel).
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(P::smem_bytes));
  if (attr != cudaSuccess) return attr;
  kernel<<<plan.grid, P::threads, P::smem_bytes, stream>>>(a);
  return cudaGetLastError();
}

template <int B, class T, class P>
cudaError_t launch_groups(const GemmArgs& a, const GemmPlan& plan, cudaStream_t stream) {
  return a.group_size == 32 ? launch_policy<B, T, P, 2>(a, plan, stream) : launch_policy<B, T, P, 1>(a, plan, stream);
}

/// Checks the options (an out-of-range PdlMode, e.g. from a cast, is an invalid argument).
inline Status check_gemm_options(const GemmOptions& opt) {
  if (opt.pdl != PdlMode::off && opt.pdl != PdlMode::automatic && opt.pdl != PdlMode::on)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: GemmOptions::pdl has the invalid value ",
                                       static_cast<int>(opt.pdl), " (off, automatic or on)");
  if (!decode_choice_in_range(opt.decode))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: GemmOptions::decode = {", opt.decode.warps,
                                       " warps, ", opt.decode.splits, " splits, ", opt.decode.slabs, " slabs, persist ",
                                       opt.decode.persist, "} (warps 4, 8, 16, splits 1 .. ", kMaxDecodeSplits,
                                       ", slabs 1 or 2, persist 1 (off) or 2 (on); 0 for the planner's)");
  return Status::success();
}

/// Checks a weight view and the call's pointers; returns ok or the first problem.
template <class T>
Status check_gemm_args(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, const T* Y) {
  const TiledMeta& m = w.meta;
  if (!is_supported_bits(m.bits))
    return lowbit::detail::make_status(StatusCode::unsupported, "gemm: bit width ", m.bits, " (supported: 2, 3, 4, 8)");
  if (m.K == 0 || m.N == 0 || m.K % 64 || m.N % 64)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: K (", m.K, ") and N (", m.N,
                               ") must be positive multiples of 64");
  if (m.K > (1u << 30) || m.N > (1u << 30) || M > (1u << 30))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: shape too large (M, N, K must be < 2^30)");
  if (m.group_size == 0 || m.K % m.group_size || (m.group_size != 32 && m.group_size % 64))
    return lowbit::detail::make_status(StatusCode::unsupported, "gemm: group size ", m.group_size,
                               " (need 32 or a multiple of 64 dividing K)");
  if (!w.qweight || !w.scales || (!m.sym && !w.zeros) || (m.act_order && !w.perm))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: weight view has a null tensor");
  if (M > 0 && (!A || !Y)) return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: A or Y is null");
  auto misaligned = [](const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a != 0; };
  // zeros: 16 bytes since the mid-M and large-M kernels copy them in 16-byte chunks (cp.async, bulk copies)
  if (misaligned(A, 16) || misaligned(w.qweight, 16) || misaligned(w.scales, 16) || misaligned(w.zeros, 16))
    return lowbit::detail::make_status(StatusCode::misaligned, "gemm: A, qweight, scales and zeros must be 16-byte aligned");
  if (m.act_order && misaligned(w.perm, 16))
    return lowbit::detail::make_status(StatusCode::misaligned, "gemm: perm must be 16-byte aligned");
  if (misaligned(Y, 4) || misaligned(bias, 4))
    return lowbit::detail::make_status(StatusCode::misaligned, "gemm: Y and bias must be 4-byte aligned");
  return Status::success();
}

/// Checks the workspace, pre-gathers act-order activations when M is large, and launches policy P.
template <int B, class T, class P>
Status run_plan(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                std::size_t workspace_bytes, const GemmPlan& plan, cudaStream_t stream) {
  if (Status ws_ok = check_workspace(plan, M, w.meta, workspace, workspace_bytes); !ws_ok.ok()) return ws_ok;
  GemmArgs a{};
  a.A = A;
  a.Y = Y;
  a.bias = bias;
  a.perm = w.meta.act_order ? w.perm : nullptr;
  fill_common_args(a, M, w, workspace, plan);
  auto* ws = static_cast<unsigned char*>(workspace);
  if (a.perm && M > kInKernelGatherMaxM) {
    const std::uint16_t* Ag = nullptr;
    if (const cudaError_t g = gather_act_order(A, a.perm, M, w.meta.K, ws, plan, stream, Ag); g != cudaSuccess)
      return gather_failed(g);
    a.A = Ag;
    a.perm = nullptr;
  }
  const cudaError_t e = launch_groups<B, T, P>(a, plan, stream);
  if (e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: launch failed: ", cudaGetErrorString(e));
  return Status::success();
}

/// Whether decode_gemm_kernel<B, T, MT, GPT, Bulk> may be launched with PDL here (pdl_supported, asked
/// once per instantiation and process: the first device decides).
template <int B, class T, int MT, int GPT, bool Bulk>
bool decode_pdl_supported() {
  static const bool ok = pdl_supported(decode_gemm_kernel<B, T, MT, GPT, Bulk, 1>);
  return ok;
}

/// Launches the decode kernel for `plan`: with the programmatic-stream-serialization attribute when
/// `pdl` (resolved by run_decode: requested and supported), else exactly as before PDL existed.
template <int B, class T, int MT, int GPT, bool Bulk, int NS = 1, bool Persist = false>
Status launch_decode(DecodeArgs a, const GemmPlan& plan, bool pdl, cudaStream_t stream) {
  auto kernel = decode_gemm_kernel<B, T, MT, GPT, Bulk, NS, Persist>;
  auto failed = [](cudaError_t e) {
    return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: launch failed: ", cudaGetErrorString(e));
  };
  // raise the dynamic limit once to the most any plan of this instantiation can use
  static const std::size_t most = [] {
    std::size_t r = 0;
    for (int m = 1; m <= 8 * MT; ++m)
      for (int w : {4, 8, 16}) {
        if (NS == 2 && w > DecodeConfig<B>::max_warps_two_slabs) continue;
        const std::size_t b = decode_smem_bytes<B>(Bulk, GPT, static_cast<std::size_t>(m), w, NS, Persist);
        if (b + kSmemReservedPerCta <= kSmemPerSm) r = std::max(r, b);
      }
    return r;
  }();
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(most));
  if (attr != cudaSuccess) return failed(attr);
  const std::size_t M = static_cast<std::size_t>(a.M);
  const std::size_t smem = decode_smem_bytes<B>(Bulk, GPT, M, plan.warps_k, NS, Persist);
  // a plan for another variant: refuse, never overrun (a persistent plan whose warps had unequal K
  // ranges would never meet at the per-slab barriers: one split, the CTA's range the warps' ranges, K)
  if (plan.slabs != NS || plan.persist != Persist || smem > most ||
      (Persist && (plan.splits != 1 || plan.grid.z != 1u || plan.kt_per_split != plan.kt_per_warp * plan.warps_k ||
                   plan.kt_per_split * TileGeometry::tile_k != a.K)))
    return failed(cudaErrorInvalidConfiguration);
  a.stages = decode_stages<B>(Bulk, GPT, M);
  if (!pdl) {  // exactly the launch of builds before PDL (sm_80, or pdl = off)
    kernel<<<plan.grid, 32 * plan.warps_k, smem, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? Status::success() : failed(e);
  }
  const cudaError_t e = launch_pdl(kernel, plan.grid, dim3(32u * static_cast<unsigned>(plan.warps_k)), smem, stream, a);
  return e == cudaSuccess ? Status::success() : failed(e);
}

/// The mid-M kernel of policy P: mma.sync (midm.cuh), wgmma lock-step or warp-specialized (midm_wgmma.cuh).
template <int B, class T, class P, int GPT>
constexpr auto midm_kernel() {
  if constexpr (P::wgmma && P::ws) return midm_wgmma_ws_kernel<B, T, P, GPT>;
  else if constexpr (P::wgmma) return midm_wgmma_kernel<B, T, P, GPT>;
  else return midm_gemm_kernel<B, T, P, GPT>;
}

template <int B, class T, class P, int GPT>
cudaError_t launch_midm(const MidmArgs& a, const GemmPlan& plan, cudaStream_t stream, bool pdl = false) {
  auto kernel = midm_kernel<B, T, P, GPT>();
  constexpr std::size_t smem = P::template smem_bytes<B>(GPT);
  // A deeper ring than one CTA may hold on sm_90 is a policy error, caught here at compile time (sm_80
  // allows 163 KB, which the portable mma.sync policies stay under).
  static_assert(smem <= kSm90SmemPerCta, "mid-M policy: stages x stage bytes exceed the shared memory of one CTA");
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (attr != cudaSuccess) return attr;
  auto launch = [&](const auto& arg) {
    if (!pdl) {
      kernel<<<plan.grid, P::threads, smem, stream>>>(arg);
      return cudaGetLastError();
    }
    return launch_pdl(kernel, plan.grid, dim3(static_cast<unsigned>(P::threads)), smem, stream, arg);
  };
  if constexpr (P::ws) {
    MidmWsArgs wa{};
    wa.a = a;
    if constexpr (P::ws_tma_acts) {  // [M, K] activations, boxes of NT rows x 64 k, 128-byte swizzled
      const cudaError_t e = encode_2d(wa.amap, 2, a.A, static_cast<std::size_t>(a.M), static_cast<std::size_t>(a.K),
                                      P::n_tile, TileGeometry::tile_k, true);
      if (e != cudaSuccess) return e;
    }
    return launch(wa);
  } else {
    return launch(a);
  }
}

/// Launches large_wgmma_kernel with BM-row CTAs in clusters of CN along N (LargeWgmmaConfig; the column blocks rounded
/// up to a multiple of CN) for the arguments `a` (a.splits must be 1), with programmatic dependent launch when `pdl`.
/// Returns cudaErrorNotSupported without the driver's tensor-map encoder.
template <int B, class T, int BM = kLargeWgmmaBlockM, int CN = kLargeWgmmaClusterN>
cudaError_t launch_large_wgmma(const MidmArgs& a, cudaStream_t stream, bool pdl) {
  if (a.splits != 1) return cudaErrorInvalidValue;
  auto go = [&](auto gpt) -> cudaError_t {
    constexpr int GPT = decltype(gpt)::value;
    using C = LargeWgmmaConfig<B, GPT, BM, CN>;
    auto kernel = large_wgmma_kernel<B, T, GPT, BM, CN>;
    static_assert(C::smem_bytes <= kSm90SmemPerCta, "large-M kernel: shared memory of one CTA exceeded");
    static const cudaError_t attr =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(C::smem_bytes));
    if (attr != cudaSuccess) return attr;
    static const cudaError_t regs =
        check_setmaxnreg_regs(kernel, setmaxnreg_launch_regs(C::producer_regs, C::consumer_regs, C::consumer_threads));
    if (regs != cudaSuccess) return regs;
    MidmWsArgs wa{};
    wa.a = a;
    if (const cudaError_t e = encode_2d(wa.amap, 2, a.A, static_cast<std::size_t>(a.M), static_cast<std::size_t>(a.K),
                                        C::box_rows, TileGeometry::tile_k, true);
        e != cudaSuccess)
      return e;
    const dim3 grid = large_wgmma_grid<BM, CN>(static_cast<std::size_t>(a.M), static_cast<std::size_t>(a.N));
    if constexpr (CN > 1) return launch_cluster(pdl, dim3(1u, CN, 1u), kernel, grid, dim3(C::threads), C::smem_bytes, stream, wa);
    else return launch_pdl_or_plain(pdl, kernel, grid, dim3(C::threads), C::smem_bytes, stream, wa);
  };
  return a.group_size == 32 ? go(std::integral_constant<int, 2>{}) : go(std::integral_constant<int, 1>{});
}

/// Checks the workspace, pre-gathers act-order activations, and launches the mid-M kernel with
/// policy P (plan from make_midm_plan<B, P>).
/// The launch follows `opt.pdl` for the wgmma kernel (PdlMode; PDL needs no check beyond the policy: that
/// kernel exists only in sm_90a code), as does the act-order pre-gather before it; the mma.sync kernel and
/// the pre-gather before it launch plainly.
template <int B, class T, class P>
Status run_midm(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                std::size_t workspace_bytes, const GemmPlan& plan, cudaStream_t stream, const GemmOptions& opt = {}) {
  if (Status o = check_gemm_options(opt); !o.ok()) return o;
  if (Status ws_ok = check_workspace(plan, M, w.meta, workspace, workspace_bytes); !ws_ok.ok()) return ws_ok;
  if (plan.kind != PolicyKind::midm || plan.wgmma != P::wgmma || plan.midm_ws != P::ws || plan.block_m != P::block_m ||
      plan.block_n != P::block_n || plan.warps_k != P::warps_k || plan.kt_per_split % P::warps_k != 0)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: plan does not match the mid-M policy");
  const bool pdl = P::wgmma && opt.pdl != PdlMode::off;
  MidmArgs a{};
  if (const cudaError_t g = fill_stream_args(a, A, M, w, bias, Y, workspace, plan, stream, pdl); g != cudaSuccess)
    return gather_failed(g);
  const cudaError_t e = a.group_size == 32 ? launch_midm<B, T, P, 2>(a, plan, stream, pdl) : launch_midm<B, T, P, 1>(a, plan, stream, pdl);
  if (e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: launch failed: ", cudaGetErrorString(e));
  return Status::success();
}

/// Checks the workspace, pre-gathers act-order activations, and launches the large-M kernel with BM-row CTAs (plan
/// from make_large_wgmma_plan<B, BM>). The launch follows `opt.pdl` (PdlMode), as does the pre-gather before it.
/// Returns unsupported where large_wgmma_available() is false (the kernel exists only in sm_90a code).
/// @tparam CN CTAs of a cluster along N that share the activation loads (LargeWgmmaConfig).
template <int B, class T, int BM = kLargeWgmmaBlockM, int CN = kLargeWgmmaClusterN>
Status run_large_wgmma(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                       std::size_t workspace_bytes, const GemmPlan& plan, cudaStream_t stream, const GemmOptions& opt = {}) {
  if (Status o = check_gemm_options(opt); !o.ok()) return o;
  if (Status ws_ok = check_workspace(plan, M, w.meta, workspace, workspace_bytes); !ws_ok.ok()) return ws_ok;
  if (plan.kind != PolicyKind::large_wgmma || plan.splits != 1 || plan.block_m != BM)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: plan is not the large-M kernel's");
  if (M == 0) return Status::success();
  if (!large_wgmma_available())  // its body traps elsewhere: refuse instead of poisoning the context
    return lowbit::detail::make_status(StatusCode::unsupported, "gemm: the large-M kernel needs an sm_90a build on a "
                                       "compute capability 9.0 device with the driver's tensor-map encoder");
  const bool pdl = opt.pdl != PdlMode::off;
  MidmArgs a{};
  if (const cudaError_t g = fill_stream_args(a, A, M, w, bias, Y, workspace, plan, stream, pdl); g != cudaSuccess)
    return gather_failed(g);
  const cudaError_t e = launch_large_wgmma<B, T, BM, CN>(a, stream, pdl);
  if (e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: launch failed: ", cudaGetErrorString(e));
  return Status::success();
}

/// Checks the workspace, pre-gathers act-order activations, and launches the decode kernel (M <= 16).
/// @tparam Bulk bulk-copy (sm_90 only) or cp.async (sm_80+) ring; gemm uses cp.async.
/// The launch follows `opt.pdl` (PdlMode), and so does the act-order pre-gather's before it.
template <int B, class T, bool Bulk>
Status run_decode(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                  std::size_t workspace_bytes, const GemmPlan& plan, cudaStream_t stream, const GemmOptions& opt = {}) {
  if (Status o = check_gemm_options(opt); !o.ok()) return o;
  if (Status ws_ok = check_workspace(plan, M, w.meta, workspace, workspace_bytes); !ws_ok.ok()) return ws_ok;
  const bool g32 = w.meta.group_size == 32;
  // PDL: requested and available for the kernel this call runs (decided before anything is launched)
  bool pdl = false;
  if (opt.pdl != PdlMode::off) {
    pdl = M <= 8 ? (g32 ? decode_pdl_supported<B, T, 1, 2, Bulk>() : decode_pdl_supported<B, T, 1, 1, Bulk>())
                 : (g32 ? decode_pdl_supported<B, T, 2, 2, Bulk>() : decode_pdl_supported<B, T, 2, 1, Bulk>());
    if (!pdl && opt.pdl == PdlMode::on)
      return lowbit::detail::make_status(StatusCode::unsupported,
                                         "gemm: programmatic dependent launch (GemmOptions::pdl = on) needs a device of "
                                         "compute capability 9.0+ and kernels compiled for sm_90 or newer; use automatic or off");
  }
  // the plan's own refusals come before anything is launched (the act-order pre-gather included)
  if constexpr (Bulk) {
    if (plan.slabs != 1 || plan.persist)
      return lowbit::detail::make_status(StatusCode::invalid_argument,
                                         "gemm: the bulk-copy decode ring has one slab per CTA and no persistent variant; plan "
                                         "it with DecodeChoice::slabs = 1, persist = 1 (this plan has ", plan.slabs, " slabs",
                                         plan.persist ? ", persistent" : "", ")");
  } else if (plan.persist && M > 8) {  // M <= 8 only (at M > 8 the variant spilled registers)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: persistent decode CTAs serve M <= 8 (M = ", M, ")");
  }
  DecodeArgs a{};
  if (const cudaError_t g = fill_stream_args(a, A, M, w, bias, Y, workspace, plan, stream, pdl); g != cudaSuccess)
    return gather_failed(g);
  a.weight_evict_first = opt.l2_evict_first ? 1 : 0;
  a.kt_per_warp = plan.kt_per_warp;
  if constexpr (!Bulk) {  // the two-slab and persistent variants (cp.async ring only)
    if (plan.persist) {
      return g32 ? launch_decode<B, T, 1, 2, false, 1, true>(a, plan, pdl, stream)
                 : launch_decode<B, T, 1, 1, false, 1, true>(a, plan, pdl, stream);
    }
    if (plan.slabs == 2)
      return M <= 8 ? (g32 ? launch_decode<B, T, 1, 2, false, 2>(a, plan, pdl, stream)
                           : launch_decode<B, T, 1, 1, false, 2>(a, plan, pdl, stream))
                    : (g32 ? launch_decode<B, T, 2, 2, false, 2>(a, plan, pdl, stream)
                           : launch_decode<B, T, 2, 1, false, 2>(a, plan, pdl, stream));
  }
  return M <= 8 ? (g32 ? launch_decode<B, T, 1, 2, Bulk>(a, plan, pdl, stream) : launch_decode<B, T, 1, 1, Bulk>(a, plan, pdl, stream))
                : (g32 ? launch_decode<B, T, 2, 2, Bulk>(a, plan, pdl, stream) : launch_decode<B, T, 2, 1, Bulk>(a, plan, pdl, stream));
}

}  // namespace detail

/// Workspace bytes `gemm` needs for M rows of `meta` on the current device (0 when no split-K), with
/// the decode launch shape of `opt` (a shape the weight cannot run needs none: gemm rejects it).
/// Allocate once, zero it once with gemm_workspace_init; gemm leaves it ready for the next call.
inline std::size_t gemm_workspace_size(std::size_t M, const TiledMeta& meta, const GemmOptions& opt = {}) {
  if (!is_supported_bits(meta.bits) || M == 0 || meta.K % 64 || meta.N % 64) return 0;
  const int sms = detail::current_sm_count();
  return dispatch_bits(meta.bits, [&](auto Bc) {
    return detail::workspace_total(
        detail::plan_gemm<decltype(Bc)::value>(M, meta.N, meta.K, sms > 0 ? sms : 1, opt.decode), M, meta);
  });
}

/// Zero-fills a freshly allocated workspace (once; gemm restores the zeros it relies on).
inline Status gemm_workspace_init(void* workspace, std::size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return Status::success();
  const cudaError_t e = cudaMemsetAsync(workspace, 0, bytes, stream);
  return e == cudaSuccess ? Status::success()
                          : lowbit::detail::make_status(StatusCode::cuda_error, "gemm_workspace_init: ", cudaGetErrorString(e));
}

/// Weight-only GEMM for a compile-time width (instantiates only that width's kernels).
///
/// @tparam B  code width; must equal `w.meta.bits`.
/// @tparam T  element type of A, bias and Y: lowbit::half_t or lowbit::bfloat16_t.
/// @param A          [M, K] activations, row-major, 16-byte aligned (device).
/// @param M          rows (any; 0 is a no-op).
/// @param w          the weight in the kernel layout (device).
/// @param bias       [N] bias or nullptr (device).
/// @param Y          [M, N] output, row-major (device); fully overwritten.
/// @param workspace  at least gemm_workspace_size(M, w.meta) bytes, zeroed once (device).
/// @param workspace_bytes its size.
/// @param stream     CUDA stream.
/// @param opt        options: programmatic dependent launch of the decode, wgmma mid-M and large-M kernels (GemmOptions, PdlMode;
///                   by default on where the device and build support it — read PdlMode's contract on
///                   weights written by the immediately preceding kernel).
/// @return ok, or the first problem (invalid_argument, misaligned, unsupported, workspace_too_small, cuda_error;
///         unsupported also for PdlMode::on where PDL is not available and M <= 16).
template <int B, class T>
Status gemm_bits(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                 std::size_t workspace_bytes, cudaStream_t stream, const GemmOptions& opt = {}) {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");
  if (w.meta.bits != B)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: weight has ", w.meta.bits, " bits, kernel ", B);
  if (Status s = detail::check_gemm_options(opt); !s.ok()) return s;
  if (Status s = detail::check_gemm_args(A, M, w, bias, Y); !s.ok()) return s;
  if (M == 0) return Status::success();
  const int sms = detail::current_sm_count();
  if (sms <= 0) return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: no CUDA device");
  const detail::GemmPlan plan = detail::plan_gemm<B>(M, w.meta.N, w.meta.K, sms, opt.decode);
  if (plan.kind == detail::PolicyKind::decode && plan.kt_per_warp == 0)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: GemmOptions::decode = {", opt.decode.warps,
                                       " warps, ", opt.decode.splits, " splits, ", opt.decode.slabs,
                                       " slabs, persist ", opt.decode.persist, "} is no launch for K = ", w.meta.K, ", N = ", w.meta.N, ", M = ", M, " on ",
                                       sms, " SMs (an empty split, too much shared memory, an odd number of slabs for two "
                                       "per CTA, a split of more than ", detail::kMaxCounters, " slabs, or persistent CTAs "
                                       "with more than one slab or split, or with warps that do not divide K/64)");
  using D = DefaultPolicies<B>;
  switch (plan.kind) {
    case detail::PolicyKind::large_wgmma:  // plans ask for it only in builds that have it (large_wgmma_available)
#if defined(LOWBIT_MIDM_WGMMA)
      return detail::run_large_wgmma<B, T>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream, opt);
#else
      return lowbit::detail::make_status(StatusCode::unsupported, "gemm: the large-M kernel is not in this build");
#endif
    case detail::PolicyKind::decode:  // the cp.async ring: measured faster than the bulk-copy one (NOTES.md)
      return detail::run_decode<B, T, false>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream, opt);
    case detail::PolicyKind::midm: {  // 16 < M <= kMidmMaxM: midm.cuh, policy by the plan's row block
      using Q = MidmPolicies<B>;
      using QW = MidmWgmmaPolicies<B>;
#if defined(LOWBIT_MIDM_WGMMA)  // plans ask for wgmma only in such builds (midm_wgmma_available)
      if (plan.wgmma) {  // the policy by the plan's row block and kernel kind (plan_midm_wgmma)
        const auto run = [&](auto policy) {
          return detail::run_midm<B, T, decltype(policy)>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream, opt);
        };
        if (plan.block_m == QW::W64::block_m)
          return plan.midm_ws ? run(typename QW::W64{}) : run(typename QW::W64ls{});
        if (plan.block_m == QW::W256::block_m) return run(typename QW::W256{});
        return plan.midm_ws ? run(typename QW::W128{}) : run(typename QW::W128ls{});
      }
#else
      (void)sizeof(QW);
#endif
      if (plan.block_m == Q::M32::block_m)
        return detail::run_midm<B, T, typename Q::M32>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream, opt);
      return detail::run_midm<B, T, typename Q::M64>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream, opt);
    }
    case detail::PolicyKind::small: return detail::run_plan<B, T, typename D::Small>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream);
    case detail::PolicyKind::medium: return detail::run_plan<B, T, typename D::Medium>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream);
    default: return detail::run_plan<B, T, typename D::Large>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream);
  }
}

/// Workspace bytes for gemm_policy<B, T, P> (allocate once, zero once with gemm_workspace_init).
/// @tparam P a TilePolicy.
template <class P>
std::size_t gemm_policy_workspace_size(std::size_t M, const TiledMeta& meta) {
  const int sms = detail::current_sm_count();
  if (M == 0 || meta.K % 64 || meta.N % 64) return 0;
  return detail::workspace_total(detail::make_plan<P>(detail::PolicyKind::custom, M, meta.N, meta.K, sms > 0 ? sms : 1),
                                 M, meta);
}

/// Weight-only GEMM with an explicit tile policy for every M (for tuning and benchmarks; parameters as
/// gemm_bits, workspace from gemm_policy_workspace_size<P>).
/// @tparam B code width.  @tparam T element type.  @tparam P a TilePolicy.
template <int B, class T, class P>
Status gemm_policy(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
                   std::size_t workspace_bytes, cudaStream_t stream) {
  if (w.meta.bits != B)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm: weight has ", w.meta.bits, " bits, kernel ", B);
  if (Status s = detail::check_gemm_args(A, M, w, bias, Y); !s.ok()) return s;
  if (M == 0) return Status::success();
  const int sms = detail::current_sm_count();
  if (sms <= 0) return lowbit::detail::make_status(StatusCode::cuda_error, "gemm: no CUDA device");
  const detail::GemmPlan plan = detail::make_plan<P>(detail::PolicyKind::custom, M, w.meta.N, w.meta.K, sms);
  return detail::run_plan<B, T, P>(A, M, w, bias, Y, workspace, workspace_bytes, plan, stream);
}

/// Weight-only GEMM, width dispatched at run time (instantiates all four widths' kernels; use
/// gemm_bits<B, T> to compile only one). Parameters as gemm_bits.
/// @tparam T element type: lowbit::half_t or lowbit::bfloat16_t.
template <class T>
Status gemm(const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y, void* workspace,
            std::size_t workspace_bytes, cudaStream_t stream, const GemmOptions& opt = {}) {
  switch (w.meta.bits) {
    case 2: return gemm_bits<2, T>(A, M, w, bias, Y, workspace, workspace_bytes, stream, opt);
    case 3: return gemm_bits<3, T>(A, M, w, bias, Y, workspace, workspace_bytes, stream, opt);
    case 4: return gemm_bits<4, T>(A, M, w, bias, Y, workspace, workspace_bytes, stream, opt);
    case 8: return gemm_bits<8, T>(A, M, w, bias, Y, workspace, workspace_bytes, stream, opt);
    default:
      return lowbit::detail::make_status(StatusCode::unsupported, "gemm: bit width ", w.meta.bits, " (supported: 2, 3, 4, 8)");
  }
}

}  // namespace lowbit::kernels
