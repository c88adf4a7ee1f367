/// @file solver_gpu.cuh
/// @brief The GPTQ solver on the GPU: cuSOLVER for `U = chol_upper((H + λI)⁻¹)`, one kernel per block of
///        `block` columns (rows split across thread blocks, a warp per row, the column loop inside the
///        kernel), cuBLAS for the lazy trailing update. Same algorithm and results as solver.hpp.
///
/// Flow on one stream (no per-column launches):
///  1. diag / dead columns / act-order permutation (CUB radix sort, stable, descending) / mean diag;
///  2. `A = J P (H + λI) Pᵀ J` gathered into the workspace (`J` reverses the order, `P` permutes);
///     `cusolverDnXpotrf` gives `A = L Lᵀ`, the recursive triangular inverse of triangular_gpu.cuh
///     (cuBLAS trsm/GEMM, GptqGpuOptions::inverse; cuSOLVER's trtri on request) gives `L⁻¹`, and
///     reflecting across the anti-diagonal turns it into `U = J L⁻¹ J` stored row-major (upper) — the
///     upper Cholesky factor of `H⁻¹`, found with one factorization and one triangular inverse;
///  3. per block: `gptq_block_kernel` (quantize, error feedback inside the block), then
///     `cublasSgemm` for `W[:, end:] −= Err · U[block, end:]`.
///
/// Synchronization: the call reads cuSOLVER's `info` after each factorization (damping escalation
/// needs it) and the flags/loss at the end: two `cudaStreamSynchronize` on `stream` per call, both
/// documented here; nothing else blocks. Peak memory: the workspace holds one `[K, K]` fp32 matrix,
/// the fp32 working weight `[N, K]` (before the column loop: the GEMM inverse's scratch), `[N, super_block]`
/// errors and small vectors (see gptq_gpu_workspace_size); no allocation inside the call. Measured on an
/// H100 at N = 8192, K = 53248 (H of 11 GiB): 27.4 GB in use at the peak, inputs and outputs included.
///
/// @code
/// lowbit::gptq::GptqGpuOutputs out(N, K, spec);          // or point a GptqGpuProblem at your own buffers
/// const auto problem = out.problem(d_W, d_H);             // device W [N, K] and H [K, K], fp32
/// std::size_t ws = 0;
/// lowbit::gptq::gptq_gpu_workspace_size(N, K, spec, opt, solver, &ws);
/// // allocate ws bytes, then:
/// lowbit::gptq::GptqGpuReport rep;
/// lowbit::gptq::gptq_solve_gpu(problem, spec, opt, d_ws, ws, cublas, solver, stream, &rep);
/// @endcode
#pragma once

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../bits.hpp"
#include "../error.hpp"
#include "../numeric.hpp"
#include "../quant.hpp"
#include "../quant_types.hpp"
#include "solver.hpp"
#include "triangular_gpu.cuh"

namespace lowbit::gptq {

/// Options of the GPU solver (defaults as published).
struct GptqGpuOptions {
  int block = 128;             ///< columns per block, 1..kMaxGpuBlock
  double damp = 0.01;          ///< relative damping
  double damp_factor = 10.0;   ///< escalation factor
  double max_damp = 10.0;      ///< escalation cap
  bool act_order = false;      ///< desc_act
  bool static_groups = false;  ///< group parameters before error feedback
  /// Columns per far update: inside a super-block the lazy update after each block only touches the
  /// rest of the super-block; the columns beyond it get one GEMM with depth `super_block` at its end
  /// (same products, fewer and deeper GEMMs). <= block: the single-level published schedule.
  int super_block = 1024;
  bool tf32_update = false;    ///< opt-in: TF32 tensor cores for the lazy updates (fp32 by default)
  /// Opt-in: skip the triangular inverse. With `H = Ũ Ũᵀ` (Ũ = U⁻¹ upper) the GPTQ recurrence reads
  /// `w̃_j = w_j + (Σ_{c<j} (w_c − q_c) Ũ[c,j]) / Ũ[j,j]` (from `W − Q = E·U`), so only the Cholesky
  /// factor is needed. Same algorithm in exact arithmetic, but it rounds worse in fp32. Measured on an
  /// H100 (bench/results/gptq_h100_2026-11-22.json): 1.07-1.4x faster solves than the default path
  /// with the recursive inverse (it was 1.9x against cuSOLVER's trtri), output error −0.3 % to +1.5 %
  /// against the published recurrence; hence off.
  bool inverse_free = false;
  /// How `L⁻¹` is formed (all exact, fp32): default the recursive GEMM-panel inverse of
  /// triangular_gpu.cuh (H100, bench/results/gptq_h100_2026-11-22.json: 2-4x faster than cuSOLVER's
  /// trtri, which remains as TriInverse::cusolver); TriInverse::recursive_trsm is the trsm-based one.
  TriInverse inverse = TriInverse::recursive_gemm;
  bool profile = false;        ///< time the phases with events (GptqGpuReport::phase_seconds)
};

/// Device buffers of one layer (all device pointers; outputs in original column order).
struct GptqGpuProblem {
  const float* W = nullptr;     ///< [N, K] fp32 weight, row-major (not modified)
  const float* H = nullptr;     ///< [K, K] fp32 Hessian, row-major symmetric (not modified)
  std::size_t N = 0;            ///< output features
  std::size_t K = 0;            ///< input features
  std::uint8_t* codes = nullptr;   ///< out: [K, N] codes
  float* scales = nullptr;         ///< out: [G, N] fp16-exact scales
  std::uint8_t* zeros = nullptr;   ///< out: [G, N] zero codes
  std::int32_t* g_idx = nullptr;   ///< out: [K] group of each column
};

/// What the GPU solve did.
struct GptqGpuReport {
  double loss = 0.0;            ///< Σ (w − q)² / U[i,i]² / 2
  double damp_used = 0.0;       ///< relative damping that factorized
  int damp_attempts = 0;        ///< factorizations tried
  std::size_t dead_columns = 0; ///< columns with H[i,i] = 0
  /// With GptqGpuOptions::profile: seconds in {factorization (gather + potrf, all attempts), inverse
  /// (triangular inverse, GptqGpuOptions::inverse), setup (weight gather, fixed parameters), column
  /// kernels, near updates, far updates, reflection (anti-transpose)}; zeros otherwise.
  double phase_seconds[7] = {0, 0, 0, 0, 0, 0, 0};
};

/// Largest block size of the GPU kernel (a warp holds kMaxGpuBlock / 32 values per lane).
inline constexpr int kMaxGpuBlock = 128;

}  // namespace lowbit::gptq

namespace lowbit::detail {

/// Warps per thread block of the column-loop kernel (one row per warp at a time).
inline constexpr int kGptqWarps = 8;
/// Values of the block each lane keeps in registers.
inline constexpr int kGptqPerLane = gptq::kMaxGpuBlock / 32;
/// Threads of the simple element-wise kernels.
inline constexpr int kGptqThreads = 256;
/// Bits of the device status flags.
inline constexpr int kFlagNonFiniteW = 1;      ///< weight not finite
inline constexpr int kFlagNonFiniteH = 2;      ///< Hessian not finite
inline constexpr int kFlagScaleRange = 4;      ///< a group scale beyond fp16
inline constexpr int kFlagBadMeanDiag = 8;     ///< mean diag(H) not positive

/// Byte offsets of the workspace pieces.
struct GptqGpuLayout {
  std::size_t A, Wk, Err, stage, perm, keys_in, keys_out, vals_in, loss, flags, info, mean, sort_tmp, sort_tmp_bytes,
      potrf, potrf_bytes, trtri, trtri_bytes, total;
  std::size_t potrf_host_bytes = 0, trtri_host_bytes = 0;
};

/// Largest gridDim.y used by the 2-D element-wise kernels (they loop over the rest).
inline constexpr std::size_t kMaxGridY = 65535;
/// gridDim.y for `rows` rows.
inline unsigned grid_y(std::size_t rows) { return static_cast<unsigned>(rows < kMaxGridY ? rows : kMaxGridY); }

/// Rounds up to 256 bytes.
inline std::size_t align256(std::size_t b) { return (b + 255) / 256 * 256; }

// ---- device quantizer (mirror of lowbit::detail::search_scale_zero + find_scale_zero) ----

/// Base scale/zero from a range, as published (symmetric widening, all-zero fallback).
template <int B>
__device__ __forceinline__ void range_params(float& xmin, float& xmax, bool sym, float& scale, float& zero) {
  constexpr float maxq = static_cast<float>(Bits<B>::max_code);
  constexpr float sym_zero = static_cast<float>((Bits<B>::max_code + 1) / 2);
  if (sym) {
    xmax = fabsf(xmin) > xmax ? fabsf(xmin) : xmax;
    if (xmin < 0.f) xmin = -xmax;
  }
  if (xmin == 0.f && xmax == 0.f) {
    xmin = -1.f;
    xmax = 1.f;
  }
  scale = (xmax - xmin) / maxq;
  zero = sym ? sym_zero : rintf(-xmin / scale);
}

/// The fp16 storage step of find_scale_zero; flags a scale beyond fp16.
template <int B>
__device__ __forceinline__ ScaleZero finish_params(float scale, float zero, int* flags) {
  if (!(scale <= kMaxHalf)) atomicOr(flags, kFlagScaleRange);
  ScaleZero sz{round_to_half(scale), zero};
  if (sz.scale == 0.f) sz.scale = kMinPositiveHalf;
  sz.zero = fminf(fmaxf(sz.zero, 0.f), static_cast<float>(Bits<B>::max_code));
  return sz;
}

/// The MSE grid search shared by the serial and the warp-wide scale/zero: starting from the range
/// parameters in (scale, zero), tries the shrunk ranges p·[xmin, xmax] and keeps the pair whose total
/// error `total_err(sc, z)` (Σ |fake_quantize(v) − v|^norm over the group) is lowest.
template <int B, class TotalErr>
__device__ __forceinline__ void mse_search(float xmin, float xmax, const QuantSpec& spec, float& scale, float& zero,
                                           TotalErr&& total_err) {
  constexpr float maxq = static_cast<float>(Bits<B>::max_code);
  constexpr float sym_zero = static_cast<float>((Bits<B>::max_code + 1) / 2);
  double best = INFINITY;
  const int steps = static_cast<int>(static_cast<double>(spec.mse_max_shrink) * spec.mse_grid);
  for (int s = 0; s < steps; ++s) {
    const float p = static_cast<float>(1.0 - static_cast<double>(s) / spec.mse_grid);
    const float lo = p * xmin, hi = p * xmax;
    const float sc = (hi - lo) / maxq;
    const float z = spec.sym ? sym_zero : rintf(-lo / sc);
    const double err = total_err(sc, z);
    if (err < best) {
      best = err;
      scale = sc;
      zero = z;
    }
  }
}

/// Serial scale/zero of `n` values `get(0..n-1)` (one thread).
template <int B, class Get>
__device__ ScaleZero device_find_scale_zero(Get&& get, std::size_t n, const QuantSpec& spec, int* flags) {
  float xmin = 0.f, xmax = 0.f;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = get(i);
    xmin = v < xmin ? v : xmin;
    xmax = v > xmax ? v : xmax;
  }
  float scale, zero;
  range_params<B>(xmin, xmax, spec.sym, scale, zero);
  if (spec.mse)
    mse_search<B>(xmin, xmax, spec, scale, zero, [&](float sc, float z) {
      double err = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const float v = get(i);
        err += static_cast<double>(powf(fabsf(fake_quantize<B>(v, sc, z) - v), spec.mse_norm));
      }
      return err;
    });
  return finish_params<B>(scale, zero, flags);
}

/// Warp-wide scale/zero: `each(f)` calls `f(v)` for this lane's share of the group's values.
template <int B, class Each>
__device__ __forceinline__ ScaleZero warp_find_scale_zero(Each&& each, const QuantSpec& spec, int* flags) {
  float xmin = 0.f, xmax = 0.f;
  each([&](float v) {
    xmin = v < xmin ? v : xmin;
    xmax = v > xmax ? v : xmax;
  });
  for (int o = 16; o > 0; o >>= 1) {
    xmin = fminf(xmin, __shfl_xor_sync(0xffffffffu, xmin, o));
    xmax = fmaxf(xmax, __shfl_xor_sync(0xffffffffu, xmax, o));
  }
  float scale, zero;
  range_params<B>(xmin, xmax, spec.sym, scale, zero);
  if (spec.mse)
    mse_search<B>(xmin, xmax, spec, scale, zero, [&](float sc, float z) {
      double err = 0.0;
      each([&](float v) { err += static_cast<double>(powf(fabsf(fake_quantize<B>(v, sc, z) - v), spec.mse_norm)); });
      for (int o = 16; o > 0; o >>= 1) err += __shfl_xor_sync(0xffffffffu, err, o);
      return err;
    });
  return finish_params<B>(scale, zero, flags);
}

// ---- preparation kernels ----

/// diag (dead → 1) as sort keys, iota values, and the non-finite check of H's diagonal.
static __global__ void gptq_diag_kernel(const float* __restrict__ H, std::size_t K, float* __restrict__ keys,
                                 int* __restrict__ vals, int* __restrict__ dead) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= K) return;
  const float d = H[i * K + i];
  if (d == 0.f) atomicAdd(dead, 1);
  keys[i] = d == 0.f ? 1.f : d;
  vals[i] = static_cast<int>(i);
}

/// mean of the (dead-fixed) diagonal into *mean (one block); flags a non-positive mean.
static __global__ void gptq_mean_diag_kernel(const float* __restrict__ keys, std::size_t K, float* __restrict__ mean,
                                      int* __restrict__ flags) {
  __shared__ double part[kGptqThreads];
  double s = 0.0;
  for (std::size_t i = threadIdx.x; i < K; i += blockDim.x) s += keys[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = kGptqThreads / 2; o > 0; o >>= 1) {
    if (static_cast<int>(threadIdx.x) < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double m = part[0] / static_cast<double>(K);
    *mean = static_cast<float>(m);
    if (!(m > 0.0)) atomicOr(flags, kFlagBadMeanDiag);
  }
}

/// A[a, b] = Hd[p(K-1-a), p(K-1-b)] + λ δ_ab (dead diagonal → 1), λ = damp · mean. Flags non-finite H.
static __global__ void gptq_gather_h_kernel(const float* __restrict__ H, std::size_t K, const int* __restrict__ perm,
                                     const float* __restrict__ mean, float damp, float* __restrict__ A,
                                     int* __restrict__ flags) {
  const std::size_t b = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (b >= K) return;
  for (std::size_t a = blockIdx.y; a < K; a += gridDim.y) {
  const std::size_t pa = static_cast<std::size_t>(perm[K - 1 - a]);
  const std::size_t pb = static_cast<std::size_t>(perm[K - 1 - b]);
  float v = H[pa * K + pb];
  if (!isfinite(v)) atomicOr(flags, kFlagNonFiniteH);
  if (a == b) v = (v == 0.f ? 1.f : v) + damp * *mean;
  A[a * K + b] = v;
  }
}

/// In place: column-major lower `M = L⁻¹` → row-major upper `U[a][b] = M(K-1-a, K-1-b)` (reflection
/// across the anti-diagonal, an involution; pairs with a + b < K - 1 swap, the anti-diagonal stays).
static __global__ void gptq_antitranspose_kernel(float* __restrict__ A, std::size_t K) {
  const std::size_t b = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (b >= K) return;
  for (std::size_t a = blockIdx.y; a + b < K - 1; a += gridDim.y) {
    const std::size_t x = a * K + b;
    const std::size_t y = (K - 1 - b) * K + (K - 1 - a);
    const float t = A[x];
    A[x] = A[y];
    A[y] = t;
  }
}

/// Tile edge of the shared-memory anti-transpose.
inline constexpr int kAntiTile = 32;
/// Rows of threads per tile (each thread moves kAntiTile / kAntiRows elements).
inline constexpr int kAntiRows = 8;

/// Same reflection as gptq_antitranspose_kernel for K % kAntiTile == 0, through shared memory so both
/// sides are coalesced: tile (ta, tb) and its image (T-1-tb, T-1-ta) swap contents (self-images, on the
/// tile anti-diagonal, are reflected in place). Grid: (T, T) tiles, blocks of kAntiTile x kAntiRows.
static __global__ void gptq_antitranspose_tiled_kernel(float* __restrict__ A, std::size_t K) {
  __shared__ float s1[kAntiTile][kAntiTile + 1];
  __shared__ float s2[kAntiTile][kAntiTile + 1];
  const std::size_t T = K / kAntiTile;
  const std::size_t ta = blockIdx.y, tb = blockIdx.x;
  if (ta + tb > T - 1) return;
  const bool self = ta + tb == T - 1;
  const std::size_t r1 = ta * kAntiTile, c1 = tb * kAntiTile;                      // tile 1 origin
  const std::size_t r2 = (T - 1 - tb) * kAntiTile, c2 = (T - 1 - ta) * kAntiTile;  // its image
  const int x = threadIdx.x;
  for (int y = threadIdx.y; y < kAntiTile; y += kAntiRows) {
    s1[y][x] = A[(r1 + y) * K + c1 + x];
    if (!self) s2[y][x] = A[(r2 + y) * K + c2 + x];
  }
  __syncthreads();
  // element (y, x) of tile 1 goes to (K-1-(c1+x), K-1-(r1+y)) = image-local (31-x, 31-y)
  for (int y = threadIdx.y; y < kAntiTile; y += kAntiRows) {
    A[(r2 + y) * K + c2 + x] = s1[kAntiTile - 1 - x][kAntiTile - 1 - y];
    if (!self) A[(r1 + y) * K + c1 + x] = s2[kAntiTile - 1 - x][kAntiTile - 1 - y];
  }
}

/// Wk[r, i] = dead(perm[i]) ? 0 : W[r, perm[i]]; flags non-finite weights.
static __global__ void gptq_gather_w_kernel(const float* __restrict__ W, const float* __restrict__ H, std::size_t N,
                                     std::size_t K, const int* __restrict__ perm, float* __restrict__ Wk,
                                     int* __restrict__ flags, bool zero_out) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= K) return;
  const std::size_t k = static_cast<std::size_t>(perm[i]);
  const bool dead = H[k * K + k] == 0.f;
  for (std::size_t r = blockIdx.y; r < N; r += gridDim.y) {
    const float w = W[r * K + k];
    if (!isfinite(w)) atomicOr(flags, kFlagNonFiniteW);
    Wk[r * K + i] = (dead || zero_out) ? 0.f : w;  // zero_out: inverse-free S starts at 0
  }
}

/// Per-channel (original W, as published) or static-group parameters (dead columns zeroed), one thread
/// per (row, group), original column order.
template <int B>
static __global__ void gptq_static_params_kernel(const float* __restrict__ W, const float* __restrict__ H, std::size_t N,
                                          std::size_t K, std::size_t gs, bool per_channel, QuantSpec spec,
                                          float* __restrict__ scales, std::uint8_t* __restrict__ zeros,
                                          int* __restrict__ flags) {
  const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t G = K / gs;
  if (t >= N * G) return;
  const std::size_t r = t % N, g = t / N;
  const float* src = W + r * K + g * gs;
  const ScaleZero sz = device_find_scale_zero<B>(
      [&](std::size_t j) {
        const std::size_t k = g * gs + j;
        return (!per_channel && H[k * K + k] == 0.f) ? 0.f : src[j];  // dead columns count as zeros
      },
      gs, spec, flags);
  scales[g * N + r] = sz.scale;
  zeros[g * N + r] = static_cast<std::uint8_t>(sz.zero);
}

/// colmask[i] = 0 for a dead column perm[i], else 1 (inverse-free path).
static __global__ void gptq_colmask_kernel(const float* __restrict__ H, std::size_t K, const int* __restrict__ perm,
                                    float* __restrict__ colmask) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= K) return;
  const std::size_t k = static_cast<std::size_t>(perm[i]);
  colmask[i] = H[k * K + k] == 0.f ? 0.f : 1.f;
}

/// g_idx[perm[i]] = (dynamic groups ? i : perm[i]) / gs (0 per-channel).
static __global__ void gptq_gidx_kernel(const int* __restrict__ perm, std::size_t K, std::size_t gs, bool dynamic_groups,
                                 std::int32_t* __restrict__ g_idx) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= K) return;
  const std::size_t k = static_cast<std::size_t>(perm[i]);
  g_idx[k] = static_cast<std::int32_t>((dynamic_groups ? i : k) / gs);
}

/// Σ loss_row into *out (one block).
static __global__ void gptq_sum_kernel(const double* __restrict__ v, std::size_t n, double* __restrict__ out) {
  __shared__ double part[kGptqThreads];
  double s = 0.0;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = kGptqThreads / 2; o > 0; o >>= 1) {
    if (static_cast<int>(threadIdx.x) < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

// ---- the column loop of one block ----

/// Arguments of gptq_block_kernel.
struct GptqBlockArgs {
  float* Wk;                 ///< [N, K] working weights, permuted order (row-major)
  const float* U;            ///< [K, K] row-major upper factor
  float* Err;                ///< [N, ld_err] scaled errors of this block
  std::uint8_t* codes;       ///< [K, N] output codes, original order
  float* scales;             ///< [G, N]
  std::uint8_t* zeros;       ///< [G, N]
  double* loss;              ///< [N] per-row loss accumulators
  const int* perm;           ///< [K] solve position -> original column
  float* gbuf;               ///< [grid warps, gs] staging for groups that leave the block
  const float* W0;           ///< inverse-free: [N, K] user weights (original order; Wk then holds S)
  const float* colmask;      ///< inverse-free: [K] 0 for dead columns, 1 otherwise (solve order)
  int* flags;                ///< status flags
  std::size_t N, K, gs, ld_err;
  std::size_t i1;            ///< first column of the block
  std::size_t s1, s2;        ///< the super-block [s1, s2) holding this block (Err column = col - s1)
  int nb;                    ///< columns in the block (<= kMaxGpuBlock)
  int group_mode;            ///< 0 per-channel, 1 static groups, 2 dynamic groups
  QuantSpec spec;
};

/// A lane's share of a group held in registers (passed by value so the row never leaves registers).
struct LaneValues {
  float v[kGptqPerLane];  ///< values (only the `mask` bits are part of the group)
  unsigned mask;          ///< bit k set: v[k] belongs to the group
};

/// One block of GPTQ columns: warp per row (rows strided over the grid), the block's values in registers
/// (lane l holds columns l + 32 v), U's diagonal block in shared memory.
/// kInvFree: `a.U` holds Ũ (not U), Wk holds the accumulated S, errors are residuals w − q (see
/// GptqGpuOptions::inverse_free).
template <int B, bool kInvFree>
__global__ void __launch_bounds__(kGptqWarps * 32) gptq_block_kernel(GptqBlockArgs a) {
  extern __shared__ float smem[];
  float* Ub = smem;                                            // [nb, nb]: Ub[x][y] = U[i1 + x, i1 + y]
  float* errs = smem + static_cast<std::size_t>(a.nb) * a.nb;  // [kGptqWarps, kMaxGpuBlock]
  const int nb = a.nb;
  const std::size_t K = a.K, N = a.N, i1 = a.i1;
  for (int t = threadIdx.x; t < nb * nb; t += blockDim.x) {
    const int x = t / nb, y = t % nb;
    Ub[t] = y >= x ? a.U[(i1 + x) * K + i1 + y] : 0.f;
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* my_err = errs + warp * gptq::kMaxGpuBlock;
  const std::size_t gwarp = static_cast<std::size_t>(blockIdx.x) * kGptqWarps + warp;
  float* my_gbuf = a.gbuf ? a.gbuf + gwarp * a.gs : nullptr;
  const std::size_t i2 = i1 + static_cast<std::size_t>(nb);
  // 32-bit column arithmetic (K < 2^31 is checked by the launcher): 64-bit modulo is slow on the GPU
  const int gs = static_cast<int>(a.gs);
  const int c1 = static_cast<int>(i1);
  const bool dynamic = a.group_mode == 2;
  // column i of the block starts a group when (c1 + i) % gs == 0: the first such i, then every gs
  const int first_start = dynamic ? (c1 % gs == 0 ? 0 : gs - c1 % gs) : nb;
  for (std::size_t r = gwarp; r < N; r += static_cast<std::size_t>(gridDim.x) * kGptqWarps) {
    float* row = a.Wk + r * K;
    float w[kGptqPerLane];   // current weights (kInvFree: accumulated S)
    float w0[kGptqPerLane];  // kInvFree: original weights
#pragma unroll
    for (int v = 0; v < kGptqPerLane; ++v) {
      const int c = lane + 32 * v;
      w[v] = c < nb ? row[i1 + c] : 0.f;
      if constexpr (kInvFree)
        w0[v] = c < nb ? a.W0[r * K + static_cast<std::size_t>(a.perm[i1 + c])] * a.colmask[i1 + c] : 0.f;
      else
        w0[v] = 0.f;
    }
    // current value of block column c held in register v
    auto current = [&](int v, int c) { return kInvFree ? w0[v] + w[v] / Ub[c * nb + c] : w[v]; };
    float loss = 0.f;
    float scale = 0.f, zero = 0.f;
    if (dynamic && first_start != 0) {  // group started in an earlier block
      const std::size_t g = static_cast<std::size_t>(c1 / gs);
      scale = a.scales[g * N + r];
      zero = static_cast<float>(a.zeros[g * N + r]);
    }
    int next_start = first_start;
    for (int i = 0; i < nb; ++i) {
      const int col = c1 + i;
      if (dynamic) {
        if (i == next_start) {
          next_start += gs;
          const std::size_t g = static_cast<std::size_t>(col / gs);
          ScaleZero sz;
          if (i + gs <= nb) {  // the group's values are this warp's registers
            LaneValues lv;
            lv.mask = 0u;
#pragma unroll
            for (int v = 0; v < kGptqPerLane; ++v) {
              const int c = lane + 32 * v;
              lv.v[v] = c < nb ? current(v, c) : 0.f;
              if (c >= i && c < i + gs) lv.mask |= 1u << v;
            }
            sz = warp_find_scale_zero<B>(
                [lv](auto&& f) {
#pragma unroll
                  for (int v = 0; v < kGptqPerLane; ++v)
                    if (lv.mask & (1u << v)) f(lv.v[v]);
                },
                a.spec, a.flags);
          } else {  // stage the current values (pending lazy updates applied beyond the block)
#pragma unroll
            for (int v = 0; v < kGptqPerLane; ++v) {
              const int c = lane + 32 * v;
              if (c >= i && c < nb) my_gbuf[c - i] = current(v, c);
            }
            // beyond the block: W minus the pending lazy updates (this block's errors so far; beyond the
            // super-block also the errors of its earlier blocks, kept in Err)
            for (std::size_t cj = i2 + lane; cj < static_cast<std::size_t>(col) + a.gs; cj += 32) {
              float val = row[cj];
              if constexpr (kInvFree) {  // S accumulates +r·Ũ
                if (cj >= a.s2)
                  for (std::size_t c = a.s1; c < i1; ++c) val += a.Err[r * a.ld_err + (c - a.s1)] * a.U[c * K + cj];
                for (int c = 0; c < i; ++c) val += my_err[c] * a.U[(i1 + c) * K + cj];
                val = a.W0[r * K + static_cast<std::size_t>(a.perm[cj])] * a.colmask[cj] + val / a.U[cj * K + cj];
              } else {
                if (cj >= a.s2)
                  for (std::size_t c = a.s1; c < i1; ++c) val -= a.Err[r * a.ld_err + (c - a.s1)] * a.U[c * K + cj];
                for (int c = 0; c < i; ++c) val -= my_err[c] * a.U[(i1 + c) * K + cj];
              }
              my_gbuf[cj - col] = val;
            }
            __syncwarp();
            const float* gb = my_gbuf;
            sz = warp_find_scale_zero<B>(
                [gb, lane, gs](auto&& f) {
                  for (int j = lane; j < gs; j += 32) f(gb[j]);
                },
                a.spec, a.flags);
            __syncwarp();
          }
          scale = sz.scale;
          zero = sz.zero;
          if (lane == 0) {
            a.scales[g * N + r] = sz.scale;
            a.zeros[g * N + r] = static_cast<std::uint8_t>(sz.zero);
          }
        }
      } else {
        const std::size_t g = a.group_mode == 1 ? static_cast<std::size_t>(a.perm[col] / gs) : 0;
        scale = a.scales[g * N + r];
        zero = static_cast<float>(a.zeros[g * N + r]);
      }
      float wi = 0.f, w0i = 0.f;
#pragma unroll
      for (int v = 0; v < kGptqPerLane; ++v)
        if ((i >> 5) == v) {
          wi = w[v];
          w0i = w0[v];
        }
      wi = __shfl_sync(0xffffffffu, wi, i & 31);
      const float d = Ub[i * nb + i];
      if constexpr (kInvFree) {
        w0i = __shfl_sync(0xffffffffu, w0i, i & 31);
        wi = w0i + wi / d;  // w̃ = w + S / Ũ[i,i]
      }
      const std::uint32_t code = quantize_code<B>(wi, scale, zero);
      const float q = dequantize_code(code, scale, zero);
      const float diff = wi - q;
      // published path: e = (w̃ − q) / U[i,i] feeds back; inverse-free: the residual w − q does
      const float e = kInvFree ? w0i - q : diff / d;
      if (lane == 0) {
        const float le = kInvFree ? diff * d : e;  // (w̃ − q) / U[i,i] (Ũ[i,i] = 1 / U[i,i])
        loss += le * le;
        my_err[i] = e;
        a.codes[static_cast<std::size_t>(a.perm[col]) * N + r] = static_cast<std::uint8_t>(code);
      }
#pragma unroll
      for (int v = 0; v < kGptqPerLane; ++v) {
        const int c = lane + 32 * v;
        if (c > i && c < nb) w[v] = kInvFree ? w[v] + e * Ub[i * nb + c] : w[v] - e * Ub[i * nb + c];
      }
      __syncwarp();
    }
    for (int c = lane; c < nb; c += 32) a.Err[r * a.ld_err + (i1 - a.s1) + c] = my_err[c];
    if (lane == 0) a.loss[r] += static_cast<double>(loss);
    __syncwarp();
  }
}

/// Optional phase timing: `mark(stream, phase)` records an event; the time until the next mark is
/// charged to `phase`. Disabled: no events, no cost.
struct PhaseProfiler {
  bool on = false;                 ///< record events at all
  std::vector<cudaEvent_t> events; ///< recorded events in order
  std::vector<int> phases;         ///< phase charged from each event to the next
  /// Records an event charging the time from here to the next mark to `phase`.
  void mark(cudaStream_t stream, int phase) {
    if (!on) return;
    cudaEvent_t e;
    cudaEventCreate(&e);
    cudaEventRecord(e, stream);
    events.push_back(e);
    phases.push_back(phase);
  }
  /// Sums the intervals into `out[phase]` (after the stream has been synchronized) and frees the events.
  void collect(double* out) {
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      float ms = 0.f;
      cudaEventElapsedTime(&ms, events[i], events[i + 1]);
      out[phases[i]] += ms / 1e3;
    }
    for (auto e : events) cudaEventDestroy(e);
    events.clear();
  }
  ~PhaseProfiler() {
    for (auto e : events) cudaEventDestroy(e);
  }
};

/// Columns of a super-block: a multiple of the block, at least one block.
inline int super_block_cols(const gptq::GptqGpuOptions& opt) {
  return opt.super_block <= opt.block ? opt.block : opt.super_block / opt.block * opt.block;
}

/// Workspace layout for a problem size (cuSOLVER buffer sizes queried through `solver`).
inline Status gptq_gpu_layout(std::size_t N, std::size_t K, const QuantSpec& spec, const gptq::GptqGpuOptions& opt,
                              cusolverDnHandle_t solver, int grid_warps, GptqGpuLayout& L) {
  std::size_t off = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t at = off;
    off += align256(bytes);
    return at;
  };
  L.A = take(K * K * sizeof(float));
  // the working weights are gathered after the inverse: until then the region is the GEMM inverse's
  // scratch (at least tri_inverse_min_scratch(K) floats, i.e. a few rows more for tiny N)
  L.Wk = take(std::max(N * K, gptq::tri_inverse_min_scratch(K)) * sizeof(float));
  L.Err = take(N * static_cast<std::size_t>(super_block_cols(opt)) * sizeof(float));
  L.perm = take(K * sizeof(int));
  L.keys_in = take(K * sizeof(float));
  L.keys_out = take(K * sizeof(float));
  L.vals_in = take(K * sizeof(int));
  L.loss = take((N + 1) * sizeof(double));
  L.flags = take(sizeof(int));
  L.info = take(3 * sizeof(int));  // potrf info, trtri info, dead-column count
  L.mean = take(sizeof(float));
  std::size_t sort_bytes = 0;
  if (cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, static_cast<const float*>(nullptr),
                                                static_cast<float*>(nullptr), static_cast<const int*>(nullptr),
                                                static_cast<int*>(nullptr), static_cast<int>(K)) != cudaSuccess)
    return make_status(StatusCode::cuda_error, "gptq gpu: CUB sort size query failed");
  L.sort_tmp = take(sort_bytes);
  L.sort_tmp_bytes = sort_bytes;
  cusolverDnParams_t params = nullptr;
  if (cusolverDnCreateParams(&params) != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: cusolverDnCreateParams failed");
  std::size_t dev_bytes = 0, host_bytes = 0;
  cusolverStatus_t st = cusolverDnXpotrf_bufferSize(solver, params, CUBLAS_FILL_MODE_LOWER, static_cast<int64_t>(K),
                                                     CUDA_R_32F, nullptr, static_cast<int64_t>(K), CUDA_R_32F,
                                                     &dev_bytes, &host_bytes);
  cusolverDnDestroyParams(params);
  if (st != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: potrf buffer query failed (", static_cast<int>(st), ")");
  L.potrf = take(dev_bytes);
  L.potrf_bytes = dev_bytes;
  L.potrf_host_bytes = host_bytes;
  dev_bytes = host_bytes = 0;
  if (opt.inverse == gptq::TriInverse::cusolver && !opt.inverse_free)
    st = cusolverDnXtrtri_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, static_cast<int64_t>(K),
                                     CUDA_R_32F, nullptr, static_cast<int64_t>(K), &dev_bytes, &host_bytes);
  if (st != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: trtri buffer query failed (", static_cast<int>(st), ")");
  L.trtri = take(dev_bytes);
  L.trtri_bytes = dev_bytes;
  L.trtri_host_bytes = host_bytes;
  const bool staged = spec.group_size > 0;  // dynamic groups may leave the block: per-warp staging row
  const std::size_t gs = spec.effective_group(K);
  L.stage = take(staged && !opt.static_groups ? static_cast<std::size_t>(grid_warps) * gs * sizeof(float) : 0);
  L.total = off;
  return Status::success();
}

/// Thread blocks of the column kernel: enough to fill the GPU (occupancy-limited by shared memory).
inline int gptq_grid_blocks(std::size_t N) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  constexpr int kBlocksPerSm = 3;  // 64 KiB U block + errors each: three fit in an H100 SM's 228 KiB
  const std::size_t needed = (N + kGptqWarps - 1) / kGptqWarps;
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(needed, static_cast<std::size_t>(sms) *
                                                                                     kBlocksPerSm)));
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Bytes of device workspace gptq_solve_gpu needs for this problem.
/// @param N      output features.
/// @param K      input features.
/// @param spec   quantization spec (validated).
/// @param opt    solver options.
/// @param solver cuSOLVER handle (buffer sizes are queried through it).
/// @param bytes  out: workspace size.
inline Status gptq_gpu_workspace_size(std::size_t N, std::size_t K, const QuantSpec& spec, const GptqGpuOptions& opt,
                                      cusolverDnHandle_t solver, std::size_t* bytes) {
  if (!bytes || N == 0 || K == 0) return ::lowbit::detail::make_status(StatusCode::invalid_argument, "gptq gpu: bad sizes");
  ::lowbit::detail::GptqGpuLayout L{};
  const int grid = ::lowbit::detail::gptq_grid_blocks(N);
  Status s = ::lowbit::detail::gptq_gpu_layout(N, K, spec, opt, solver, grid * ::lowbit::detail::kGptqWarps, L);
  if (!s.ok()) return s;
  *bytes = L.total;
  return Status::success();
}

/// Runs GPTQ for one layer on `stream` (see the file comment for the flow and its two synchronizations).
///
/// @param p      device buffers (W, H inputs; codes, scales, zeros, g_idx outputs).
/// @param spec   bits 2/3/4/8, group (divisor of K, or <= 0 per-channel), sym, MSE.
/// @param opt    block (1..128), damping policy, act-order, static groups.
/// @param workspace device workspace of at least gptq_gpu_workspace_size bytes.
/// @param workspace_bytes its size.
/// @param blas   cuBLAS handle (its stream is set to `stream`).
/// @param solver cuSOLVER handle (its stream is set to `stream`).
/// @param stream the stream.
/// @param report out (optional): loss, damping used, attempts, dead columns.
/// @return ok, or invalid_argument / workspace_too_small / non_finite / not_positive_definite /
///         cuda_error with a message.
inline Status gptq_solve_gpu(const GptqGpuProblem& p, const QuantSpec& spec, const GptqGpuOptions& opt,
                             void* workspace, std::size_t workspace_bytes, cublasHandle_t blas,
                             cusolverDnHandle_t solver, cudaStream_t stream, GptqGpuReport* report) {
  using ::lowbit::detail::make_status;
  const std::size_t N = p.N, K = p.K;
  try {
    spec.validate(K);
  } catch (const Error& e) {
    return make_status(StatusCode::invalid_argument, "gptq gpu: ", e.what());
  }
  if (N == 0 || !p.W || !p.H || !p.codes || !p.scales || !p.zeros || !p.g_idx || !workspace)
    return make_status(StatusCode::invalid_argument, "gptq gpu: null buffer or empty layer");
  if (opt.block < 1 || opt.block > kMaxGpuBlock)
    return make_status(StatusCode::invalid_argument, "gptq gpu: block must be in [1, ", kMaxGpuBlock, "] (got ",
                       opt.block, ")");
  if (!(opt.damp >= 0.0) || !(opt.damp_factor > 1.0) || !(opt.max_damp >= opt.damp))
    return make_status(StatusCode::invalid_argument, "gptq gpu: invalid damping options");
  if (K > static_cast<std::size_t>(INT32_MAX) || N > static_cast<std::size_t>(INT32_MAX))
    return make_status(StatusCode::unsupported, "gptq gpu: N and K must fit in int32");
  const int grid = ::lowbit::detail::gptq_grid_blocks(N);
  ::lowbit::detail::GptqGpuLayout L{};
  Status s = ::lowbit::detail::gptq_gpu_layout(N, K, spec, opt, solver, grid * ::lowbit::detail::kGptqWarps, L);
  if (!s.ok()) return s;
  if (workspace_bytes < L.total)
    return make_status(StatusCode::workspace_too_small, "gptq gpu: workspace ", workspace_bytes, " bytes < ", L.total);

  char* ws = static_cast<char*>(workspace);
  float* A = reinterpret_cast<float*>(ws + L.A);
  float* Wk = reinterpret_cast<float*>(ws + L.Wk);
  float* Err = reinterpret_cast<float*>(ws + L.Err);
  int* perm = reinterpret_cast<int*>(ws + L.perm);
  float* keys_in = reinterpret_cast<float*>(ws + L.keys_in);
  float* keys_out = reinterpret_cast<float*>(ws + L.keys_out);
  int* vals_in = reinterpret_cast<int*>(ws + L.vals_in);
  double* loss = reinterpret_cast<double*>(ws + L.loss);
  int* flags = reinterpret_cast<int*>(ws + L.flags);
  int* info = reinterpret_cast<int*>(ws + L.info);
  float* mean = reinterpret_cast<float*>(ws + L.mean);
  float* gbuf = reinterpret_cast<float*>(ws + L.stage);
  int* dead = info + 1;

  auto cuda_ok = [](cudaError_t e) { return e == cudaSuccess; };
  auto launch_check = [&](const char* what) -> Status {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return make_status(StatusCode::cuda_error, "gptq gpu: ", what, ": ", cudaGetErrorString(e));
    return Status::success();
  };
  if (cublasSetStream(blas, stream) != CUBLAS_STATUS_SUCCESS || cusolverDnSetStream(solver, stream) != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: setting the library streams failed");
  if (!cuda_ok(cudaMemsetAsync(flags, 0, sizeof(int), stream)) ||
      !cuda_ok(cudaMemsetAsync(info, 0, 3 * sizeof(int), stream)) ||
      !cuda_ok(cudaMemsetAsync(loss, 0, (N + 1) * sizeof(double), stream)))
    return make_status(StatusCode::cuda_error, "gptq gpu: memset failed");

  const unsigned tb = ::lowbit::detail::kGptqThreads;
  const unsigned kb = static_cast<unsigned>((K + tb - 1) / tb);
  // 1. diagonal, permutation, mean diagonal
  ::lowbit::detail::gptq_diag_kernel<<<kb, tb, 0, stream>>>(p.H, K, keys_in, vals_in, dead);
  if (opt.act_order) {
    std::size_t tmp = L.sort_tmp_bytes;
    if (cub::DeviceRadixSort::SortPairsDescending(ws + L.sort_tmp, tmp, keys_in, keys_out, vals_in, perm,
                                                  static_cast<int>(K), 0, static_cast<int>(sizeof(float) * 8),
                                                  stream) != cudaSuccess)
      return make_status(StatusCode::cuda_error, "gptq gpu: act-order sort failed");
  } else if (!cuda_ok(cudaMemcpyAsync(perm, vals_in, K * sizeof(int), cudaMemcpyDeviceToDevice, stream))) {
    return make_status(StatusCode::cuda_error, "gptq gpu: copy failed");
  }
  ::lowbit::detail::gptq_mean_diag_kernel<<<1, tb, 0, stream>>>(keys_in, K, mean, flags);
  if (Status e = launch_check("diagonal kernels"); !e.ok()) return e;

  ::lowbit::detail::PhaseProfiler prof;
  prof.on = opt.profile;
  prof.mark(stream, 0);
  // 2. damped factorization with escalation: A = J P (H + λI) Pᵀ J = L Lᵀ
  cusolverDnParams_t params = nullptr;
  if (cusolverDnCreateParams(&params) != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: cusolverDnCreateParams failed");
  std::vector<char> host_potrf(std::max<std::size_t>(1, L.potrf_host_bytes));
  std::vector<char> host_trtri(std::max<std::size_t>(1, L.trtri_host_bytes));
  double damp = opt.damp;
  int attempts = 0;
  int host_info[2] = {0, 0};
  int host_flags = 0;
  for (;;) {
    ++attempts;
    ::lowbit::detail::gptq_gather_h_kernel<<<dim3(kb, ::lowbit::detail::grid_y(K)), tb, 0, stream>>>(
        p.H, K, perm, mean, static_cast<float>(damp), A, flags);
    if (Status e = launch_check("Hessian gather"); !e.ok()) {
      cusolverDnDestroyParams(params);
      return e;
    }
    const cusolverStatus_t st = cusolverDnXpotrf(solver, params, CUBLAS_FILL_MODE_LOWER, static_cast<int64_t>(K),
                                                 CUDA_R_32F, A, static_cast<int64_t>(K), CUDA_R_32F, ws + L.potrf,
                                                 L.potrf_bytes, host_potrf.data(), L.potrf_host_bytes, info);
    if (st != CUSOLVER_STATUS_SUCCESS) {
      cusolverDnDestroyParams(params);
      return make_status(StatusCode::cuda_error, "gptq gpu: cusolverDnXpotrf failed (", static_cast<int>(st), ")");
    }
    // synchronization 1 of 2: the factorization's info decides on escalation
    if (!cuda_ok(cudaMemcpyAsync(host_info, info, sizeof(int), cudaMemcpyDeviceToHost, stream)) ||
        !cuda_ok(cudaMemcpyAsync(&host_flags, flags, sizeof(int), cudaMemcpyDeviceToHost, stream)) ||
        !cuda_ok(cudaStreamSynchronize(stream))) {
      cusolverDnDestroyParams(params);
      return make_status(StatusCode::cuda_error, "gptq gpu: reading the factorization status failed");
    }
    if (host_flags & (::lowbit::detail::kFlagNonFiniteH | ::lowbit::detail::kFlagBadMeanDiag)) {
      cusolverDnDestroyParams(params);
      if (host_flags & ::lowbit::detail::kFlagNonFiniteH)
        return make_status(StatusCode::non_finite, "gptq gpu: non-finite Hessian entry");
      return make_status(StatusCode::invalid_argument, "gptq gpu: Hessian has non-positive mean diagonal");
    }
    if (host_info[0] == 0) break;
    const double next = damp == 0.0 ? 1e-6 : damp * opt.damp_factor;
    if (next > opt.max_damp * (1.0 + 1e-12)) {
      cusolverDnDestroyParams(params);
      return make_status(StatusCode::not_positive_definite, "gptq gpu: Hessian is not positive definite even with damping ",
                         damp, " x mean(diag H) (minor ", host_info[0], " of ", K, " after ", attempts, " attempts)");
    }
    damp = next;
  }
  prof.mark(stream, 1);
  const bool use_cusolver = !opt.inverse_free && opt.inverse == TriInverse::cusolver;
  const cusolverStatus_t st =
      !use_cusolver ? CUSOLVER_STATUS_SUCCESS
                    : cusolverDnXtrtri(solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, static_cast<int64_t>(K),
                                       CUDA_R_32F, A, static_cast<int64_t>(K), ws + L.trtri, L.trtri_bytes,
                                       host_trtri.data(), L.trtri_host_bytes, info + 2);
  cusolverDnDestroyParams(params);
  if (st != CUSOLVER_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "gptq gpu: cusolverDnXtrtri failed (", static_cast<int>(st), ")");
  if (!opt.inverse_free && !use_cusolver) {
    // Wk is free until the weight gather below: scratch of the GEMM variant
    const std::size_t scratch = std::max(N * K, tri_inverse_min_scratch(K));
    if (Status e = tri_inverse_lower_gpu(blas, opt.inverse, A, K, K, Wk, scratch, stream); !e.ok()) return e;
  }
  prof.mark(stream, 6);
  if (K % ::lowbit::detail::kAntiTile == 0 && K / ::lowbit::detail::kAntiTile <= ::lowbit::detail::kMaxGridY) {
    const unsigned T = static_cast<unsigned>(K / ::lowbit::detail::kAntiTile);
    ::lowbit::detail::gptq_antitranspose_tiled_kernel<<<dim3(T, T),
                                                        dim3(::lowbit::detail::kAntiTile, ::lowbit::detail::kAntiRows),
                                                        0, stream>>>(A, K);
  } else {
    ::lowbit::detail::gptq_antitranspose_kernel<<<dim3(kb, ::lowbit::detail::grid_y(K)), tb, 0, stream>>>(A, K);
  }

  // weights and fixed group parameters
  prof.mark(stream, 2);
  ::lowbit::detail::gptq_gather_w_kernel<<<dim3(kb, ::lowbit::detail::grid_y(N)), tb, 0, stream>>>(p.W, p.H, N, K, perm, Wk, flags,
                                                                                            opt.inverse_free);
  float* colmask = keys_out;  // free after the sort
  ::lowbit::detail::gptq_colmask_kernel<<<kb, tb, 0, stream>>>(p.H, K, perm, colmask);
  if (Status e = launch_check("weight gather"); !e.ok()) return e;
  const std::size_t gs = spec.effective_group(K);
  const bool grouped = spec.group_size > 0;
  const int group_mode = !grouped ? 0 : (opt.static_groups ? 1 : 2);
  Status ls = Status::success();
  dispatch_bits(spec.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    if (group_mode != 2) {
      const std::size_t items = N * (K / gs);
      ::lowbit::detail::gptq_static_params_kernel<B><<<static_cast<unsigned>((items + tb - 1) / tb), tb, 0, stream>>>(
          p.W, p.H, N, K, gs, !grouped, spec, p.scales, p.zeros, flags);
    }
    const std::size_t smem = (static_cast<std::size_t>(opt.block) * opt.block + ::lowbit::detail::kGptqWarps * kMaxGpuBlock) *
                             sizeof(float);
    auto kernel = opt.inverse_free ? ::lowbit::detail::gptq_block_kernel<B, true>
                                   : ::lowbit::detail::gptq_block_kernel<B, false>;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem)) != cudaSuccess) {
      ls = make_status(StatusCode::cuda_error, "gptq gpu: shared memory attribute failed");
      return;
    }
    ::lowbit::detail::GptqBlockArgs args{};
    args.Wk = Wk;
    args.U = A;
    args.Err = Err;
    args.codes = p.codes;
    args.scales = p.scales;
    args.zeros = p.zeros;
    args.loss = loss;
    args.perm = perm;
    args.gbuf = group_mode == 2 ? gbuf : nullptr;
    args.W0 = p.W;
    args.colmask = colmask;
    args.flags = flags;
    args.N = N;
    args.K = K;
    args.gs = gs;
    args.group_mode = group_mode;
    args.spec = spec;
    const float minus_one = opt.inverse_free ? 1.f : -1.f, one = 1.f;  // inverse-free: S += R·Ũ
    const std::size_t S = static_cast<std::size_t>(::lowbit::detail::super_block_cols(opt));
    args.ld_err = S;
    // W[:, c0:c0+m] -= Err[:, e0:e0+k] · U[u0:u0+k, c0:c0+m]; column-major view:
    // Wᵀ (m x N, ld K) -= Uᵀ (m x k, ld K) · Errᵀ (k x N, ld S)
    auto update = [&](std::size_t c0, std::size_t m, std::size_t u0, std::size_t e0, std::size_t k) -> bool {
      cublasStatus_t bs;
      if (opt.tf32_update) {
        bs = cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(N),
                          static_cast<int>(k), &minus_one, A + u0 * K + c0, CUDA_R_32F, static_cast<int>(K), Err + e0,
                          CUDA_R_32F, static_cast<int>(S), &one, Wk + c0, CUDA_R_32F, static_cast<int>(K),
                          CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
      } else {
        bs = cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(N),
                         static_cast<int>(k), &minus_one, A + u0 * K + c0, static_cast<int>(K), Err + e0,
                         static_cast<int>(S), &one, Wk + c0, static_cast<int>(K));
      }
      if (bs != CUBLAS_STATUS_SUCCESS) {
        ls = make_status(StatusCode::cuda_error, "gptq gpu: lazy-update GEMM failed (", static_cast<int>(bs), ")");
        return false;
      }
      return true;
    };
    for (std::size_t s1 = 0; s1 < K; s1 += S) {
      const std::size_t s2 = std::min(K, s1 + S);
      args.s1 = s1;
      args.s2 = s2;
      for (std::size_t i1 = s1; i1 < s2; i1 += static_cast<std::size_t>(opt.block)) {
        const std::size_t i2 = std::min(s2, i1 + static_cast<std::size_t>(opt.block));
        args.i1 = i1;
        args.nb = static_cast<int>(i2 - i1);
        const std::size_t sm = (static_cast<std::size_t>(args.nb) * args.nb + ::lowbit::detail::kGptqWarps * kMaxGpuBlock) *
                               sizeof(float);
        prof.mark(stream, 3);
        kernel<<<grid, ::lowbit::detail::kGptqWarps * 32, sm, stream>>>(args);
        prof.mark(stream, 4);
        if (i2 < s2 && !update(i2, s2 - i2, i1, i1 - s1, i2 - i1)) return;  // near: rest of the super-block
      }
      prof.mark(stream, 5);
      if (s2 < K && !update(s2, K - s2, s1, 0, s2 - s1)) return;  // far: everything beyond it
    }
    prof.mark(stream, 3);
  });
  if (!ls.ok()) return ls;
  ::lowbit::detail::gptq_gidx_kernel<<<kb, tb, 0, stream>>>(perm, K, gs, group_mode == 2, p.g_idx);
  ::lowbit::detail::gptq_sum_kernel<<<1, tb, 0, stream>>>(loss, N, loss + N);
  if (Status e = launch_check("column loop"); !e.ok()) return e;

  // synchronization 2 of 2: flags and the loss
  double host_loss = 0.0;
  int host_dead = 0;
  if (!cuda_ok(cudaMemcpyAsync(&host_flags, flags, sizeof(int), cudaMemcpyDeviceToHost, stream)) ||
      !cuda_ok(cudaMemcpyAsync(&host_dead, dead, sizeof(int), cudaMemcpyDeviceToHost, stream)) ||
      !cuda_ok(cudaMemcpyAsync(&host_loss, loss + N, sizeof(double), cudaMemcpyDeviceToHost, stream)) ||
      !cuda_ok(cudaStreamSynchronize(stream)))
    return make_status(StatusCode::cuda_error, "gptq gpu: reading the results failed: ",
                       cudaGetErrorString(cudaGetLastError()));
  if (host_flags & ::lowbit::detail::kFlagNonFiniteW) return make_status(StatusCode::non_finite, "gptq gpu: non-finite weight");
  if (host_flags & ::lowbit::detail::kFlagScaleRange)
    return make_status(StatusCode::invalid_argument, "gptq gpu: a group scale exceeds the fp16 range");
  if (report) {
    report->loss = host_loss / 2.0;
    report->damp_used = damp;
    report->damp_attempts = attempts;
    report->dead_columns = static_cast<std::size_t>(host_dead);
    for (double& t : report->phase_seconds) t = 0.0;
    prof.collect(report->phase_seconds);
  }
  return Status::success();
}

}  // namespace lowbit::gptq

// ---------------------------------------------------------------------------------------------
// Output error on the GPU and a host-array convenience wrapper
// ---------------------------------------------------------------------------------------------

namespace lowbit::detail {

/// Rows of ΔW processed per GEMM in output_error_gpu.
inline constexpr std::size_t kErrorChunkRows = 256;

/// Wq[r, k] = scale[g, r] · (code[k, r] − zero[g, r]), g = g_idx[k].
static __global__ void gptq_dequant_kernel(const std::uint8_t* __restrict__ codes, const float* __restrict__ scales,
                                    const std::uint8_t* __restrict__ zeros, const std::int32_t* __restrict__ g_idx,
                                    std::size_t N, std::size_t K, float* __restrict__ Wq) {
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= K) return;
  const std::size_t g = static_cast<std::size_t>(g_idx[k]);
  for (std::size_t r = blockIdx.y; r < N; r += gridDim.y)
    Wq[r * K + k] = dequantize_code(codes[k * N + r], scales[g * N + r], static_cast<float>(zeros[g * N + r]));
}

/// RTN of one (row, group) per thread into Wq (same quantizer as rtn_quantize).
template <int B>
static __global__ void gptq_rtn_kernel(const float* __restrict__ W, std::size_t N, std::size_t K, std::size_t gs,
                                QuantSpec spec, float* __restrict__ Wq, int* __restrict__ flags) {
  const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (t >= N * (K / gs)) return;
  const std::size_t r = t % N, g = t / N;
  const float* src = W + r * K + g * gs;
  const ScaleZero sz = device_find_scale_zero<B>([&](std::size_t j) { return src[j]; }, gs, spec, flags);
  for (std::size_t j = 0; j < gs; ++j) Wq[r * K + g * gs + j] = fake_quantize<B>(src[j], sz.scale, sz.zero);
}

/// D[r, k] = W[r, k] − Wq[r, k] for a chunk of rows.
static __global__ void gptq_diff_kernel(const float* __restrict__ W, const float* __restrict__ Wq, std::size_t count,
                                 float* __restrict__ D) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < count) D[i] = W[i] - Wq[i];
}

/// *out += Σ D ∘ T (block partial sums in double, one atomic per block).
static __global__ void gptq_dot_kernel(const float* __restrict__ D, const float* __restrict__ T, std::size_t count,
                                double* __restrict__ out) {
  __shared__ double part[kGptqThreads];
  double s = 0.0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    s += static_cast<double>(D[i]) * static_cast<double>(T[i]);
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = kGptqThreads / 2; o > 0; o >>= 1) {
    if (static_cast<int>(threadIdx.x) < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(out, part[0]);
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Bytes of scratch output_error_gpu needs for K input features.
inline std::size_t output_error_gpu_scratch(std::size_t K) {
  return 2 * ::lowbit::detail::kErrorChunkRows * K * sizeof(float) + 256;
}

/// `tr(ΔW H ΔWᵀ)` with `ΔW = W − Wq` on the GPU (fp32 GEMM against H in row chunks, double sums).
/// Synchronizes `stream` once to return the value.
/// @param blas   cuBLAS handle (stream set to `stream`).
/// @param W      device `[N, K]` reference weights.
/// @param Wq     device `[N, K]` quantized weights.
/// @param H      device `[K, K]` symmetric matrix.
/// @param N      rows.
/// @param K      columns.
/// @param scratch device scratch of output_error_gpu_scratch(K) bytes.
/// @param stream the stream.
/// @param out    host result.
inline Status output_error_gpu(cublasHandle_t blas, const float* W, const float* Wq, const float* H, std::size_t N,
                               std::size_t K, void* scratch, cudaStream_t stream, double* out) {
  using ::lowbit::detail::make_status;
  if (!W || !Wq || !H || !scratch || !out) return make_status(StatusCode::invalid_argument, "output_error_gpu: null");
  const std::size_t CH = ::lowbit::detail::kErrorChunkRows;
  float* D = static_cast<float*>(scratch);
  float* T = D + CH * K;
  double* acc = reinterpret_cast<double*>(T + CH * K);
  cublasSetStream(blas, stream);
  if (cudaMemsetAsync(acc, 0, sizeof(double), stream) != cudaSuccess)
    return make_status(StatusCode::cuda_error, "output_error_gpu: memset failed");
  const float one = 1.f, zero = 0.f;
  for (std::size_t r0 = 0; r0 < N; r0 += CH) {
    const std::size_t rows = std::min(CH, N - r0);
    const std::size_t count = rows * K;
    const unsigned blocks = static_cast<unsigned>((count + ::lowbit::detail::kGptqThreads - 1) / ::lowbit::detail::kGptqThreads);
    ::lowbit::detail::gptq_diff_kernel<<<blocks, ::lowbit::detail::kGptqThreads, 0, stream>>>(W + r0 * K, Wq + r0 * K, count, D);
    // column-major: Tᵀ (K x rows) = H (K x K) · Dᵀ (K x rows)
    if (cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(K), static_cast<int>(rows), static_cast<int>(K),
                    &one, H, static_cast<int>(K), D, static_cast<int>(K), &zero, T, static_cast<int>(K)) !=
        CUBLAS_STATUS_SUCCESS)
      return make_status(StatusCode::cuda_error, "output_error_gpu: cublasSgemm failed");
    ::lowbit::detail::gptq_dot_kernel<<<std::min(blocks, 1024u), ::lowbit::detail::kGptqThreads, 0, stream>>>(D, T, count, acc);
  }
  if (cudaMemcpyAsync(out, acc, sizeof(double), cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess)
    return make_status(StatusCode::cuda_error, "output_error_gpu: ", cudaGetErrorString(cudaGetLastError()));
  return Status::success();
}

/// Dequantizes device codes/scales/zeros/g_idx into device `Wq [N, K]` (asynchronous).
inline Status dequantize_gpu(const GptqGpuProblem& p, float* Wq, cudaStream_t stream) {
  const unsigned kb = static_cast<unsigned>((p.K + ::lowbit::detail::kGptqThreads - 1) / ::lowbit::detail::kGptqThreads);
  ::lowbit::detail::gptq_dequant_kernel<<<dim3(kb, ::lowbit::detail::grid_y(p.N)), ::lowbit::detail::kGptqThreads, 0, stream>>>(
      p.codes, p.scales, p.zeros, p.g_idx, p.N, p.K, Wq);
  if (cudaGetLastError() != cudaSuccess) return ::lowbit::detail::make_status(StatusCode::cuda_error, "dequantize_gpu failed");
  return Status::success();
}

/// RTN-quantizes device `W [N, K]` into device `Wq` (fake-quantized values), asynchronous; a scale beyond
/// fp16 is recorded in `*flags` (device int).
inline Status rtn_fake_quantize_gpu(const float* W, std::size_t N, std::size_t K, const QuantSpec& spec, float* Wq,
                                    int* flags, cudaStream_t stream) {
  const std::size_t gs = spec.effective_group(K);
  const std::size_t items = N * (K / gs);
  Status s = Status::success();
  dispatch_bits(spec.bits, [&](auto Bc) {
    ::lowbit::detail::gptq_rtn_kernel<decltype(Bc)::value>
        <<<static_cast<unsigned>((items + ::lowbit::detail::kGptqThreads - 1) / ::lowbit::detail::kGptqThreads), ::lowbit::detail::kGptqThreads, 0,
           stream>>>(W, N, K, gs, spec, Wq, flags);
    if (cudaGetLastError() != cudaSuccess) s = ::lowbit::detail::make_status(StatusCode::cuda_error, "rtn_fake_quantize_gpu failed");
  });
  return s;
}

/// RAII device buffer used by the host-array wrapper.
struct DeviceBuffer {
  void* ptr = nullptr;  ///< device pointer (nullptr when empty)
  /// Allocates `bytes` (throws lowbit::Error on failure).
  explicit DeviceBuffer(std::size_t bytes) {
    if (bytes && cudaMalloc(&ptr, bytes) != cudaSuccess) {
      ptr = nullptr;
      ::lowbit::detail::fail("cudaMalloc of ", bytes, " bytes failed");
    }
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  /// Typed view.
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

/// Device storage for the outputs of one layer's solve (codes `[K, N]`, scales and zeros `[G, N]`, g_idx
/// `[K]`, G = spec.num_groups(K)); problem() pairs them with the device inputs W and H.
struct GptqGpuOutputs {
  std::size_t N;        ///< output features
  std::size_t K;        ///< input features
  DeviceBuffer codes;   ///< `[K, N]` uint8 codes
  DeviceBuffer scales;  ///< `[G, N]` fp32 scales
  DeviceBuffer zeros;   ///< `[G, N]` uint8 zero codes
  DeviceBuffer g_idx;   ///< `[K]` int32 group of each column
  /// Allocates the outputs of an N×K layer under `spec` (throws lowbit::Error on allocation failure).
  GptqGpuOutputs(std::size_t n, std::size_t k, const QuantSpec& spec)
      : N(n), K(k), codes(k * n), scales(spec.num_groups(k) * n * sizeof(float)), zeros(spec.num_groups(k) * n),
        g_idx(k * sizeof(std::int32_t)) {}
  /// The problem that solves device weight `W` `[N, K]` with device Hessian `H` `[K, K]` into these outputs.
  GptqGpuProblem problem(const float* W, const float* H) const {
    GptqGpuProblem p;
    p.W = W;
    p.H = H;
    p.N = N;
    p.K = K;
    p.codes = codes.as<std::uint8_t>();
    p.scales = scales.as<float>();
    p.zeros = zeros.as<std::uint8_t>();
    p.g_idx = g_idx.as<std::int32_t>();
    return p;
  }
};

/// Timings of gptq_quantize_gpu (seconds, measured with CUDA events around each phase).
struct GptqGpuTimes {
  double solve = 0.0;   ///< gptq_solve_gpu (H given)
  double errors = 0.0;  ///< GPTQ and RTN output errors
};

/// Host-array convenience: copies W and H to the device, runs gptq_solve_gpu and the GPU output errors,
/// and returns the same GptqResult as the host gptq_quantize (errors use the undamped H).
/// @param W    host weight `[N, K]`.
/// @param N    output features.
/// @param K    input features.
/// @param H    host Hessian `[K, K]` fp32.
/// @param spec quantization spec.
/// @param opt  solver options (opt.block <= 128; threads ignored).
/// @param times optional phase timings.
/// @param tuning optional GPU-only settings (super_block, tf32_update, inverse_free, inverse) to use
///               instead of the defaults; the remaining fields come from `opt`.
/// @throws lowbit::Error with the status message on any failure (naming opt.layer).
inline GptqResult gptq_quantize_gpu(const float* W, std::size_t N, std::size_t K, const float* H,
                                    const QuantSpec& spec, const GptqOptions& opt, GptqGpuTimes* times = nullptr,
                                    const GptqGpuOptions* tuning = nullptr) {
  auto check = [&](const Status& s) {
    if (!s.ok()) ::lowbit::detail::fail("layer '", opt.layer, "': ", s.message);
  };
  auto cuda = [&](cudaError_t e, const char* what) {
    if (e != cudaSuccess) ::lowbit::detail::fail("layer '", opt.layer, "': ", what, ": ", cudaGetErrorString(e));
  };
  try {
    spec.validate(K);
  } catch (const Error& e) {
    ::lowbit::detail::fail("layer '", opt.layer, "': ", e.what());
  }
  LOWBIT_CHECK(N > 0 && W && H, "layer '", opt.layer, "': empty layer or null input");
  GptqOptions o = opt;
  GptqGpuOptions g;
  g.block = o.block;
  g.damp = o.damp;
  g.damp_factor = o.damp_factor;
  g.max_damp = o.max_damp;
  g.act_order = o.act_order;
  g.static_groups = o.static_groups;
  if (tuning) {
    g.super_block = tuning->super_block;
    g.tf32_update = tuning->tf32_update;
    g.inverse_free = tuning->inverse_free;
    g.inverse = tuning->inverse;
  }
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) ::lowbit::detail::fail("cublasCreate failed");
  if (cusolverDnCreate(&solver) != CUSOLVER_STATUS_SUCCESS) {
    cublasDestroy(blas);
    ::lowbit::detail::fail("cusolverDnCreate failed");
  }
  struct Handles {
    cublasHandle_t b;
    cusolverDnHandle_t s;
    ~Handles() {
      cusolverDnDestroy(s);
      cublasDestroy(b);
    }
  } handles{blas, solver};
  cudaStream_t stream = nullptr;
  const std::size_t G = spec.num_groups(K);
  DeviceBuffer dW(N * K * sizeof(float)), dH(K * K * sizeof(float));
  GptqGpuOutputs out(N, K, spec);
  cuda(cudaMemcpy(dW.ptr, W, N * K * sizeof(float), cudaMemcpyHostToDevice), "copy W");
  cuda(cudaMemcpy(dH.ptr, H, K * K * sizeof(float), cudaMemcpyHostToDevice), "copy H");
  std::size_t ws_bytes = 0;
  check(gptq_gpu_workspace_size(N, K, spec, g, solver, &ws_bytes));
  GptqResult res;
  {
    DeviceBuffer ws(ws_bytes);
    const GptqGpuProblem p = out.problem(dW.as<float>(), dH.as<float>());
    GptqGpuReport rep;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, stream);
    const Status s = gptq_solve_gpu(p, spec, g, ws.ptr, ws_bytes, blas, solver, stream, &rep);
    cudaEventRecord(e1, stream);
    cudaEventSynchronize(e1);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, e0, e1);
    if (times) times->solve = ms / 1e3;
    check(s);
    res.report.loss = rep.loss;
    res.report.damp_used = rep.damp_used;
    res.report.damp_attempts = rep.damp_attempts;
    res.report.dead_columns = rep.dead_columns;
    res.report.solve_seconds = ms / 1e3;
    res.report.seconds = ms / 1e3;
    if (opt.compute_errors) {
      cudaEventRecord(e0, stream);
      DeviceBuffer dWq(N * K * sizeof(float)), scratch(output_error_gpu_scratch(K)), flag(sizeof(int));
      cuda(cudaMemset(flag.ptr, 0, sizeof(int)), "memset");
      check(dequantize_gpu(p, dWq.as<float>(), stream));
      check(output_error_gpu(blas, p.W, dWq.as<float>(), p.H, N, K, scratch.ptr, stream, &res.report.gptq_error));
      check(rtn_fake_quantize_gpu(p.W, N, K, spec, dWq.as<float>(), flag.as<int>(), stream));
      check(output_error_gpu(blas, p.W, dWq.as<float>(), p.H, N, K, scratch.ptr, stream, &res.report.rtn_error));
      cudaEventRecord(e1, stream);
      cudaEventSynchronize(e1);
      cudaEventElapsedTime(&ms, e0, e1);
      if (times) times->errors = ms / 1e3;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  QuantizedWeight& q = res.weight;
  q.spec = spec;
  q.K = K;
  q.N = N;
  q.codes.resize(K * N);
  q.scales.resize(G * N);
  q.zeros.resize(G * N);
  q.g_idx.resize(K);
  cuda(cudaMemcpy(q.codes.data(), out.codes.ptr, K * N, cudaMemcpyDeviceToHost), "copy codes");
  cuda(cudaMemcpy(q.scales.data(), out.scales.ptr, G * N * sizeof(float), cudaMemcpyDeviceToHost), "copy scales");
  cuda(cudaMemcpy(q.zeros.data(), out.zeros.ptr, G * N, cudaMemcpyDeviceToHost), "copy zeros");
  cuda(cudaMemcpy(q.g_idx.data(), out.g_idx.ptr, K * sizeof(std::int32_t), cudaMemcpyDeviceToHost), "copy g_idx");
  return res;
}

}  // namespace lowbit::gptq
