/// @file dequant_gemm.cuh
/// @brief Large-M path of the weight-only GEMM: dequantize the TiledLayout weight (in column slabs) to a
///        dense fp16/bf16 matrix in the workspace, then multiply with cuBLAS; plus the dequantization on
///        its own (`dequantize_tiled`), for engines that want dense weights of a quantized layer.
///
/// Why: for M in the hundreds and above the GEMM is compute-bound, and Hopper's full tensor-core rate
/// needs wgmma, which the mma.sync kernels of gemm.cuh do not use. Dequantizing once per call costs one
/// pass over the packed weight plus one write and one read of the dense slab (a few tens of µs for an
/// 8192 x 8192 layer), which is small next to the GEMM at large M; below that the fused kernels of
/// gemm.cuh win. bench/dequant_gemm measures the crossover on the device.
///
/// The workspace holds one slab `[K, slab]` of dense weights (`slab` = the largest multiple of 64
/// columns that fits, capped at N): gemm_dequant_workspace_size gives the one-pass size `K * N`
/// elements, but any workspace of at least `K * 64` elements works, in more passes. Act-order weights
/// are written back in original row order, so A needs no gather.
///
/// @code
/// std::size_t ws = lowbit::kernels::gemm_dequant_workspace_size<lowbit::half_t>(w.meta);  // once
/// lowbit::Status st = lowbit::kernels::gemm_dequant<lowbit::half_t>(cublas, A, M, w, bias, Y, ws_ptr, ws, stream);
/// @endcode
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../error.hpp"
#include "dequant.cuh"
#include "gemm.cuh"
#include "layout.hpp"
#include "tile.cuh"

namespace lowbit::kernels {

namespace detail {

/// Warps per CTA of the dequantization kernel (one 64x64 tile per warp).
inline constexpr int kDequantWarps = 4;
/// Padding (elements) of each shared-memory tile row: keeps rows 16-byte aligned and spreads the
/// 2-byte fragment stores of the 4 lanes of a quad over different banks.
inline constexpr int kDequantPad = 8;

/// Dequantizes tiles (kt, slab0 + s) of `w`, s < slabs, into `out` (row-major, leading dimension ld):
/// row perm[k'] (or k') and columns [64 s, 64 s + 64) receive kernel row k' of slab slab0 + s.
/// Each warp dequantizes its tile into shared memory with the GEMM's own primitives (identical values),
/// then writes 64 rows of 128 contiguous bytes.
template <int B, class T>
__global__ void __launch_bounds__(kDequantWarps * 32)
    dequantize_tiled_kernel(const TiledWeightView w, int slab0, int slabs, T* __restrict__ out, std::size_t ld) {
  constexpr int kRow = TileGeometry::tile_n + kDequantPad;
  __shared__ __align__(16) std::uint16_t tiles[kDequantWarps][TileGeometry::tile_k][kRow];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int kts = static_cast<int>(w.meta.K / TileGeometry::tile_k);
  const long long tile = static_cast<long long>(blockIdx.x) * kDequantWarps + warp;
  if (tile >= static_cast<long long>(kts) * slabs) return;  // whole warp leaves together (no CTA barrier below)
  const int kt = static_cast<int>(tile % kts), s = static_cast<int>(tile / kts), slab = slab0 + s;

  WeightTile<B> wt;
  wt.load(w.qweight, w.meta.K, kt, slab, lane);
  std::uint16_t(&t)[TileGeometry::tile_k][kRow] = tiles[warp];
  const int g = lane / 4, q = lane % 4;  // mma fragment coordinates: column 8j + g, rows 2q (+1), 2q + 8 (+1)
  const int group_size = static_cast<int>(w.meta.group_size);
  GroupParams<T> params;
  int loaded = -1;
#pragma unroll
  for (int ks = 0; ks < TileGeometry::k_steps; ++ks) {
    const int grp = (kt * TileGeometry::tile_k + ks * TileGeometry::mma_k) / group_size;
    if (grp != loaded) {  // group 32 changes inside a tile; larger groups load once
      const GroupRaw raw = load_group_raw(w.scales, w.zeros, w.meta.N, grp, slab, lane, w.meta.sym);
      params.template prepare<B>(raw.scales, raw.zeros, w.meta.sym);
      loaded = grp;
    }
#pragma unroll
    for (int j = 0; j < TileGeometry::n_tiles; ++j) {
      std::uint32_t b[2];
      dequant_b_fragment<B, T>(b, wt.w, params, ks, j);
      const int r = ks * TileGeometry::mma_k + 2 * q, c = j * TileGeometry::mma_n + g;
      t[r][c] = static_cast<std::uint16_t>(b[0]);
      t[r + 1][c] = static_cast<std::uint16_t>(b[0] >> 16);
      t[r + 8][c] = static_cast<std::uint16_t>(b[1]);
      t[r + 9][c] = static_cast<std::uint16_t>(b[1] >> 16);
    }
  }
  __syncwarp();
  constexpr int kChunks = TileGeometry::tile_n / 8;  // 16-byte chunks per tile row
  constexpr int kRowsPerPass = 32 / kChunks;
#pragma unroll 4
  for (int r = lane / kChunks; r < TileGeometry::tile_k; r += kRowsPerPass) {
    const int kr = kt * TileGeometry::tile_k + r;
    const std::size_t row = w.meta.act_order ? static_cast<std::size_t>(w.perm[kr]) : static_cast<std::size_t>(kr);
    const int c = (lane % kChunks) * 8;
    *reinterpret_cast<uint4*>(out + row * ld + static_cast<std::size_t>(s) * TileGeometry::tile_n + c) =
        *reinterpret_cast<const uint4*>(&t[r][c]);
  }
}

/// Y[m, :] = bias for every row (the GEMM then accumulates with beta = 1).
template <class T>
__global__ void broadcast_rows_kernel(const T* __restrict__ bias, std::size_t M, std::size_t N, T* __restrict__ Y) {
  const std::size_t total = M * N;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    Y[i] = bias[i % N];
}

/// cuBLAS data type of T.
template <class T>
inline constexpr cudaDataType_t cublas_type_v = std::is_same_v<T, half_t> ? CUDA_R_16F : CUDA_R_16BF;

/// Restores a cuBLAS handle's stream and pointer mode when it goes out of scope (the caller's handle
/// leaves gemm_dequant as it came in).
class CublasStateGuard {
 public:
  explicit CublasStateGuard(cublasHandle_t h) : h_(h) {
    ok_ = cublasGetStream(h_, &stream_) == CUBLAS_STATUS_SUCCESS &&
          cublasGetPointerMode(h_, &mode_) == CUBLAS_STATUS_SUCCESS;
  }
  CublasStateGuard(const CublasStateGuard&) = delete;
  CublasStateGuard& operator=(const CublasStateGuard&) = delete;
  ~CublasStateGuard() {
    if (ok_) {
      cublasSetStream(h_, stream_);
      cublasSetPointerMode(h_, mode_);
    }
  }
  /// Whether the handle's state could be read (an invalid handle fails here).
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  cublasHandle_t h_;
  cudaStream_t stream_ = nullptr;
  cublasPointerMode_t mode_ = CUBLAS_POINTER_MODE_HOST;
  bool ok_ = false;
};

}  // namespace detail

/// Dequantizes columns [n0, n0 + ncols) of a TiledLayout weight into a dense row-major matrix
/// `out[K, ncols]` (leading dimension `ld`) in original input order (act-order rows un-permuted).
/// Values are bit-identical to what the GEMM kernels feed the tensor cores: `s * (c - z)` rounded once
/// to T (bf16 with widths up to 7 bits rounds the fp16 scale to bf16 first, like the kernels).
///
/// @tparam B code width; must equal `w.meta.bits`.  @tparam T lowbit::half_t or lowbit::bfloat16_t.
/// @param w      the weight (device).
/// @param n0     first column, a multiple of 64.
/// @param ncols  columns, a positive multiple of 64 with n0 + ncols <= N.
/// @param out    destination (device), 16-byte aligned.
/// @param ld     leading dimension of out in elements, >= ncols and a multiple of 8.
/// @param stream CUDA stream.
/// @return ok, or invalid_argument / misaligned / unsupported / cuda_error naming the problem.
template <int B, class T>
Status dequantize_tiled(const TiledWeightView& w, std::size_t n0, std::size_t ncols, T* out, std::size_t ld,
                        cudaStream_t stream) {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");
  const TiledMeta& m = w.meta;
  if (m.bits != B)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "dequantize_tiled: weight has ", m.bits,
                                       " bits, kernel ", B);
  // The GEMM's checks cover the weight view (shapes, group, null tensors, alignment); A/Y are not used.
  if (Status s = detail::check_gemm_args<T>(nullptr, 0, w, nullptr, nullptr); !s.ok()) return s;
  if (n0 % TileGeometry::tile_n || ncols == 0 || ncols % TileGeometry::tile_n || n0 + ncols > m.N)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "dequantize_tiled: columns [", n0, ", ",
                                       n0 + ncols, ") must be a non-empty range of multiples of 64 within N = ", m.N);
  if (!out) return lowbit::detail::make_status(StatusCode::invalid_argument, "dequantize_tiled: out is null");
  if (ld < ncols || ld % 8 || reinterpret_cast<std::uintptr_t>(out) % 16)
    return lowbit::detail::make_status(StatusCode::misaligned, "dequantize_tiled: out must be 16-byte aligned and ld (",
                                       ld, ") a multiple of 8 that is >= ", ncols);
  const int slabs = static_cast<int>(ncols / TileGeometry::tile_n);
  const std::size_t tiles = m.K / TileGeometry::tile_k * static_cast<std::size_t>(slabs);
  const auto blocks = static_cast<unsigned>((tiles + detail::kDequantWarps - 1) / detail::kDequantWarps);
  detail::dequantize_tiled_kernel<B, T><<<blocks, detail::kDequantWarps * 32, 0, stream>>>(
      w, static_cast<int>(n0 / TileGeometry::tile_n), slabs, out, ld);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? Status::success()
                          : lowbit::detail::make_status(StatusCode::cuda_error, "dequantize_tiled: launch failed: ",
                                                        cudaGetErrorString(e));
}

/// Smallest M from which gemm_dequant beats the fused kernels of gemm.cuh: the first M above the mid-M
/// kernels' range (detail::kMidmMaxM = 256). H100 SXM, 4-bit g128, fp16, each ratio against cuBLAS fp16 of its
/// own run: at M = 256 the wgmma mid-M kernel runs at 0.67-0.70x on the three large shapes (0.59x on
/// 4096^2; bench/results/kernels_NVIDIA_H100_80GB_HBM3_2026-12-05_s8.json) against 0.43-0.44x (0.60x)
/// for dequantize + cuBLAS (dequant_gemm_NVIDIA_H100_80GB_HBM3_2026-11-22.json); above it dequantize +
/// cuBLAS beats the tile kernels everywhere (M = 1024: 0.75-0.77x vs 0.31-0.38x; M = 4096: 0.92-0.94x vs
/// 0.34-0.40x). Except below kDequantGemmOverLargeM where the sm_90a large-M kernel runs (dequant_gemm_preferred).
inline constexpr std::size_t kDequantGemmMinM = detail::kMidmMaxM + 1;

/// Smallest M from which gemm_dequant beats the sm_90a large-M kernel (large_wgmma.cuh) where gemm runs that
/// kernel (detail::large_wgmma_preferred). H100 SXM, 4-bit g128, 256 x 128 CTAs, against dequantize + cuBLAS of the
/// same run (bench/results/large_probe_NVIDIA_H100_80GB_HBM3_2026-12-07_s29b.json): 1.09-1.25x as fast at M = 512,
/// 0.93-1.04x at M = 1024 (0.86-0.88x on 4096^2), 0.80-0.91x at M = 2048 (0.74x), 0.66-0.74x at M = 4096.
inline constexpr std::size_t kDequantGemmOverLargeM = 1024;

/// Whether gemm_dequant is the faster path for M rows of an N-column weight on `sm_count` SMs: from
/// kDequantGemmMinM rows, except below kDequantGemmOverLargeM where gemm runs the large-M kernel.
inline bool dequant_gemm_preferred(std::size_t M, std::size_t N, int sm_count) {
  if (M < kDequantGemmMinM) return false;
  return M >= kDequantGemmOverLargeM || !detail::large_wgmma_preferred(M, N, sm_count);
}

/// Workspace bytes for gemm_dequant to dequantize the whole weight at once (one cuBLAS call). Any
/// workspace of at least gemm_dequant_min_workspace_size bytes also works, in column slabs.
/// @tparam T element type.
template <class T>
std::size_t gemm_dequant_workspace_size(const TiledMeta& meta) {
  return meta.K * meta.N * sizeof(T);
}

/// Smallest workspace gemm_dequant accepts (one 64-column slab).
/// @tparam T element type.
template <class T>
std::size_t gemm_dequant_min_workspace_size(const TiledMeta& meta) {
  return meta.K * TileGeometry::tile_n * sizeof(T);
}

/// Weight-only GEMM through dense dequantization + cuBLAS: `Y = A · dequant(W) (+ bias)`, for large M.
/// The handle's stream and pointer mode are set for the call and restored afterwards; math runs in
/// fp32 (CUBLAS_COMPUTE_32F) on the tensor cores.
///
/// @tparam B code width; must equal `w.meta.bits`.  @tparam T lowbit::half_t or lowbit::bfloat16_t.
/// @param handle     cuBLAS handle (the caller's; not used concurrently from another thread).
/// @param A          [M, K] activations, row-major, 16-byte aligned (device).
/// @param M          rows (0 is a no-op).
/// @param w          the weight in the kernel layout (device).
/// @param bias       [N] bias or nullptr (device).
/// @param Y          [M, N] output (device), overwritten.
/// @param workspace  at least gemm_dequant_min_workspace_size bytes (device, 16-byte aligned); its size
///                   sets the slab width (gemm_dequant_workspace_size: one pass).
/// @param workspace_bytes its size.
/// @param stream     CUDA stream.
/// @return ok, or invalid_argument / misaligned / unsupported / workspace_too_small / cuda_error.
template <int B, class T>
Status gemm_dequant_bits(cublasHandle_t handle, const T* A, std::size_t M, const TiledWeightView& w, const T* bias,
                         T* Y, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");
  if (w.meta.bits != B)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm_dequant: weight has ", w.meta.bits,
                                       " bits, kernel ", B);
  if (Status s = detail::check_gemm_args(A, M, w, bias, Y); !s.ok()) return s;
  if (!handle) return lowbit::detail::make_status(StatusCode::invalid_argument, "gemm_dequant: cuBLAS handle is null");
  if (M == 0) return Status::success();
  const std::size_t K = w.meta.K, N = w.meta.N;
  const std::size_t slab = std::min(N, workspace_bytes / (K * sizeof(T)) / TileGeometry::tile_n * TileGeometry::tile_n);
  if (!workspace || slab == 0)
    return lowbit::detail::make_status(StatusCode::workspace_too_small, "gemm_dequant: workspace of ", workspace_bytes,
                                       " bytes, need at least ", gemm_dequant_min_workspace_size<T>(w.meta),
                                       " (", gemm_dequant_workspace_size<T>(w.meta), " for one pass)");
  if (reinterpret_cast<std::uintptr_t>(workspace) % 16)
    return lowbit::detail::make_status(StatusCode::misaligned, "gemm_dequant: workspace must be 16-byte aligned");

  detail::CublasStateGuard guard(handle);
  if (!guard.ok() || cublasSetStream(handle, stream) != CUBLAS_STATUS_SUCCESS ||
      cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST) != CUBLAS_STATUS_SUCCESS)
    return lowbit::detail::make_status(StatusCode::cuda_error, "gemm_dequant: cannot use the cuBLAS handle");
  const float alpha = 1.f, beta = bias ? 1.f : 0.f;
  if (bias) {
    constexpr unsigned kThreads = 256, kMaxBlocks = 4096;
    const auto blocks = static_cast<unsigned>(std::min<std::size_t>(kMaxBlocks, (M * N + kThreads - 1) / kThreads));
    detail::broadcast_rows_kernel<T><<<blocks, kThreads, 0, stream>>>(bias, M, N, Y);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess)
      return lowbit::detail::make_status(StatusCode::cuda_error, "gemm_dequant: bias launch failed: ", cudaGetErrorString(e));
  }
  T* dense = static_cast<T*>(workspace);
  constexpr cudaDataType_t type = detail::cublas_type_v<T>;
  for (std::size_t n0 = 0; n0 < N; n0 += slab) {
    const std::size_t ns = std::min(slab, N - n0);
    if (Status s = dequantize_tiled<B, T>(w, n0, ns, dense, ns, stream); !s.ok()) return s;
    // Column-major view: Y^T[n0:n0+ns, :] (ld N) = dense^T (ns x K, ld ns) * A^T (K x M, ld K).
    const cublasStatus_t cs =
        cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(ns), static_cast<int>(M), static_cast<int>(K),
                     &alpha, dense, type, static_cast<int>(ns), A, type, static_cast<int>(K), &beta, Y + n0, type,
                     static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (cs != CUBLAS_STATUS_SUCCESS)
      return lowbit::detail::make_status(StatusCode::cuda_error, "gemm_dequant: cublasGemmEx failed (status ",
                                         static_cast<int>(cs), ")");
  }
  return Status::success();
}

/// gemm_dequant_bits with the width dispatched at run time (instantiates all four widths).
/// @tparam T element type: lowbit::half_t or lowbit::bfloat16_t. Parameters as gemm_dequant_bits.
template <class T>
Status gemm_dequant(cublasHandle_t handle, const T* A, std::size_t M, const TiledWeightView& w, const T* bias, T* Y,
                    void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  if (!is_supported_bits(w.meta.bits))
    return lowbit::detail::make_status(StatusCode::unsupported, "gemm_dequant: bit width ", w.meta.bits,
                                       " (supported: 2, 3, 4, 8)");
  return dispatch_bits(w.meta.bits, [&](auto Bc) {
    return gemm_dequant_bits<decltype(Bc)::value, T>(handle, A, M, w, bias, Y, workspace, workspace_bytes, stream);
  });
}

}  // namespace lowbit::kernels
