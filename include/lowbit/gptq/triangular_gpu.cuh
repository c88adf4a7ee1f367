/// @file triangular_gpu.cuh
/// @brief In-place fp32 inverse of a lower-triangular matrix on the GPU, built so that almost all flops
///        run inside large cuBLAS level-3 calls (the GPTQ solver's `L⁻¹` step).
///
/// Recursive halving of `L = [[A, 0], [B, C]]`: `L⁻¹ = [[A⁻¹, 0], [−C⁻¹ B A⁻¹, C⁻¹]]`. The split points
/// are multiples of the leaf size (kTriLeaf), so every leaf is an aligned diagonal block; all leaves are
/// inverted by one kernel launch (forward substitution with double accumulation, one thread per column).
/// Two ways to form the off-diagonal block `−C⁻¹ B A⁻¹`:
///  - TriInverse::recursive_trsm: top-down, with the ORIGINAL `A` and `C` as two in-place cuBLAS
///    triangular solves (`B ← B A⁻¹`, then `B ← −C⁻¹ B`) before recursing into `A` and `C`; the leaves
///    last. `n³/3` flops, like a triangular inverse, no scratch.
///  - TriInverse::recursive_gemm: bottom-up (leaves first), with the already inverted `A⁻¹`, `C⁻¹` as plain
///    GEMMs in panels through a scratch buffer: `T = B[:, p:] · A⁻¹[p:, panel]`, then
///    `B[rows, panel] = −C⁻¹[rows, :end] · T[:end]`; up to 4 panels per product skip most of the
///    triangles' zeros (about `0.42 n³` flops instead of the optimal `n³/3`, all at GEMM speed; the strict
///    upper triangle is zeroed first so triangular blocks can be used as full GEMM operands).
///
/// Storage: column-major (cuBLAS/cuSOLVER convention), leading dimension `ld >= n`; only the lower
/// triangle is read on input; on output the lower triangle holds `L⁻¹`. The strict upper triangle is left
/// as it was inside the recursive blocks by recursive_trsm (set to zero inside the leaves) and set to zero
/// everywhere by recursive_gemm. Asynchronous on `stream`, no synchronization, no allocation.
///
/// @code
/// // d_L: n x n column-major lower triangle (e.g. from cusolverDnXpotrf), ld = n
/// lowbit::gptq::tri_inverse_lower_gpu(blas, lowbit::gptq::TriInverse::recursive_trsm, d_L, n, n,
///                                     nullptr, 0, stream).throw_if_error();
/// @endcode
#pragma once

#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cstddef>

#include "../error.hpp"

namespace lowbit::gptq {

/// How the GPU solver inverts the Cholesky factor `L` (all exact formulations, fp32 storage).
enum class TriInverse : int {
  recursive_trsm = 0,  ///< recursive halving, off-diagonal blocks by two in-place cuBLAS trsm (no scratch)
  recursive_gemm = 1,  ///< recursive halving, off-diagonal blocks by cuBLAS GEMMs in panels (scratch)
  cusolver = 2,        ///< cusolverDnXtrtri (the solver's first GPU version; used by gptq_solve_gpu only)
};

/// Rows of a leaf block of the recursive inverse (diagonal blocks inverted by one kernel).
inline constexpr int kTriLeaf = 128;

/// Smallest scratch (floats) TriInverse::recursive_gemm accepts for an `n x n` matrix: one panel of
/// kTriLeaf columns beside the largest lower half.
inline std::size_t tri_inverse_min_scratch(std::size_t n) {
  return (n / 2 + static_cast<std::size_t>(kTriLeaf)) * static_cast<std::size_t>(kTriLeaf);
}

/// Narrowest panel TriInverse::recursive_gemm splits a product into by default (narrower GEMMs lose more
/// speed than the triangular zeros they skip).
inline constexpr std::size_t kTriPanelMin = 512;

}  // namespace lowbit::gptq

namespace lowbit::detail {

/// Padded shared-memory row of the leaf kernel (avoids bank conflicts on column-wise access).
inline constexpr int kTriLeafPad = gptq::kTriLeaf + 1;

/// Dynamic shared memory of the leaf kernel: the inverse (type XT) and, with kLInSmem, the leaf of L.
template <class XT, bool kLInSmem>
constexpr std::size_t tri_leaf_smem() {
  return static_cast<std::size_t>(gptq::kTriLeaf) * kTriLeafPad * (sizeof(XT) + (kLInSmem ? sizeof(float) : 0));
}

/// Inverts every diagonal block `[b·kTriLeaf, min(n, (b+1)·kTriLeaf))` of the column-major lower
/// triangle in place (one thread block per leaf, thread j computes column j by forward substitution with
/// double accumulation); the strict upper triangle of each leaf is set to zero.
/// @tparam XT       storage of the inverse while it is built (double where shared memory allows).
/// @tparam kLInSmem stage the leaf of L in shared memory (else read through L1 from global memory).
template <class XT, bool kLInSmem>
__global__ void __launch_bounds__(gptq::kTriLeaf) tri_leaf_inverse_kernel(float* __restrict__ L, std::size_t n,
                                                                          std::size_t ld) {
  extern __shared__ double tri_smem[];                  // double: alignment for either XT
  XT* X = reinterpret_cast<XT*>(tri_smem);               // [nb][pad] X[i][j] = Linv(i, j)
  float* Ls = reinterpret_cast<float*>(X + gptq::kTriLeaf * kTriLeafPad);  // [nb][pad] Ls[i][l] = L(i, l)
  const std::size_t c0 = static_cast<std::size_t>(blockIdx.x) * gptq::kTriLeaf;
  const std::size_t rest = n - c0;
  const int nb = rest < static_cast<std::size_t>(gptq::kTriLeaf) ? static_cast<int>(rest) : gptq::kTriLeaf;
  const int t = threadIdx.x;
  float* base = L + c0 * ld + c0;  // leaf origin; element (i, l) at base[l * ld + i]
  if constexpr (kLInSmem) {
    for (int l = 0; l < nb; ++l)  // coalesced: thread t reads row t of column l
      if (t < nb) Ls[t * kTriLeafPad + l] = t >= l ? base[static_cast<std::size_t>(l) * ld + t] : 0.f;
    __syncthreads();
  }
  auto Lil = [&](int i, int l) -> double {
    if constexpr (kLInSmem)
      return static_cast<double>(Ls[i * kTriLeafPad + l]);
    else
      return static_cast<double>(__ldg(base + static_cast<std::size_t>(l) * ld + i));
  };
  // Row by row, all columns at once: X[i][j] = (δ_ij − Σ_{l<i} L(i,l) X[l][j]) / L(i,i). X[l][j] = 0 for
  // l < j, so each warp starts at its first column (uniform loop, L(i,l) broadcast, X row-contiguous);
  // four partial sums break the dependent fp64 FMA chain. Column j is read and written by thread j
  // only: no barrier inside the loop.
  const int j = t;
  const int l0 = j & ~31;
  for (int i = 0; i < nb && j < nb; ++i) {
    double s0 = i == j ? 1.0 : 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int l = l0;
    for (; l + 3 < i; l += 4) {
      s0 -= Lil(i, l) * static_cast<double>(X[l * kTriLeafPad + j]);
      s1 -= Lil(i, l + 1) * static_cast<double>(X[(l + 1) * kTriLeafPad + j]);
      s2 -= Lil(i, l + 2) * static_cast<double>(X[(l + 2) * kTriLeafPad + j]);
      s3 -= Lil(i, l + 3) * static_cast<double>(X[(l + 3) * kTriLeafPad + j]);
    }
    for (; l < i; ++l) s0 -= Lil(i, l) * static_cast<double>(X[l * kTriLeafPad + j]);
    X[i * kTriLeafPad + j] = static_cast<XT>(((s0 + s1) + (s2 + s3)) / Lil(i, i));
  }
  __syncthreads();  // (also: every read of L is done before the leaf is overwritten)
  for (int l = 0; l < nb; ++l)
    if (t < nb) base[static_cast<std::size_t>(l) * ld + t] = static_cast<float>(X[t * kTriLeafPad + l]);
}

/// Sets the strict upper triangle (row < col) of a column-major `n x n` matrix to zero.
static __global__ void tri_zero_upper_kernel(float* __restrict__ L, std::size_t n, std::size_t ld) {
  const std::size_t r = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  for (std::size_t c = blockIdx.y; c < n; c += gridDim.y)
    if (r < c) L[c * ld + r] = 0.f;
}

/// Split point of `[lo, hi)`: half way, rounded up to a multiple of the leaf (so leaves stay aligned).
inline std::size_t tri_split(std::size_t lo, std::size_t hi) {
  const std::size_t leaf = static_cast<std::size_t>(gptq::kTriLeaf);
  return lo + ((hi - lo) / 2 + leaf - 1) / leaf * leaf;
}

/// Leaf-kernel storage variants: 0 double inverse + L in shared memory (198 KiB, sm_90), 1 float
/// inverse + L in shared memory (132 KiB, sm_80), 2 float inverse, L through L1 (66 KiB, any GPU).
inline constexpr int kTriLeafVariants = 3;

/// Launches the leaf kernel over all leaves of an `n x n` matrix; `variant` < 0 picks the most precise
/// storage that the device's opt-in shared memory holds (tests force each variant).
inline Status tri_leaves(float* L, std::size_t n, std::size_t ld, cudaStream_t stream, int variant = -1) {
  if (variant < 0) {
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
      return make_status(StatusCode::cuda_error, "triangular inverse: device query failed");
    const std::size_t have = static_cast<std::size_t>(optin);
    variant = have >= tri_leaf_smem<double, true>() ? 0 : have >= tri_leaf_smem<float, true>() ? 1 : 2;
  }
  const std::size_t leaves = (n + gptq::kTriLeaf - 1) / gptq::kTriLeaf;
  auto launch = [&](auto kernel, std::size_t smem) -> Status {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) !=
        cudaSuccess)
      return make_status(StatusCode::cuda_error, "triangular inverse: shared memory attribute (", smem,
                         " bytes) failed");
    kernel<<<static_cast<unsigned>(leaves), gptq::kTriLeaf, smem, stream>>>(L, n, ld);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
      return make_status(StatusCode::cuda_error, "triangular inverse: leaf kernel: ", cudaGetErrorString(e));
    return Status::success();
  };
  if (variant == 0) return launch(tri_leaf_inverse_kernel<double, true>, tri_leaf_smem<double, true>());
  if (variant == 1) return launch(tri_leaf_inverse_kernel<float, true>, tri_leaf_smem<float, true>());
  return launch(tri_leaf_inverse_kernel<float, false>, tri_leaf_smem<float, false>());
}

/// Top-down trsm recursion over `[lo, hi)` (leaves are left to tri_leaves).
inline Status tri_trsm_rec(cublasHandle_t blas, float* L, std::size_t ld, std::size_t lo, std::size_t hi) {
  if (hi - lo <= static_cast<std::size_t>(gptq::kTriLeaf)) return Status::success();
  const std::size_t mid = tri_split(lo, hi);
  float* A = L + lo * ld + lo;
  float* B = L + lo * ld + mid;
  float* C = L + mid * ld + mid;
  const int rows = static_cast<int>(hi - mid), cols = static_cast<int>(mid - lo), ldi = static_cast<int>(ld);
  const float one = 1.f, minus_one = -1.f;
  // B ← B · A⁻¹ (solve X A = B), then B ← −C⁻¹ · B (solve C X = −B): both with the original factors
  if (cublasStrsm(blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, rows, cols, &one,
                  A, ldi, B, ldi) != CUBLAS_STATUS_SUCCESS ||
      cublasStrsm(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, rows, cols,
                  &minus_one, C, ldi, B, ldi) != CUBLAS_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "triangular inverse: cublasStrsm failed");
  if (Status s = tri_trsm_rec(blas, L, ld, lo, mid); !s.ok()) return s;
  return tri_trsm_rec(blas, L, ld, mid, hi);
}

/// Most panels per product: q panels skip a fraction (q - 1) / (2q) of the flops of a full GEMM.
inline constexpr std::size_t kTriMaxPanels = 4;
/// Panel sizes are rounded up to this many rows/columns (aligned GEMM operands).
inline constexpr std::size_t kTriPanelAlign = 32;

/// Panel size for `extent` rows/columns: about extent / q with q = clamp(extent / panel_min, 1,
/// kTriMaxPanels), rounded up to kTriPanelAlign, at most `extent`.
inline std::size_t tri_panel(std::size_t extent, std::size_t panel_min) {
  const std::size_t q = std::min(kTriMaxPanels, std::max<std::size_t>(1, extent / panel_min));
  const std::size_t w = ((extent + q - 1) / q + kTriPanelAlign - 1) / kTriPanelAlign * kTriPanelAlign;
  return std::min(w, extent);
}

/// Bottom-up GEMM recursion over `[lo, hi)` (leaves already inverted, strict upper triangle zero).
/// Off-diagonal block `B (r x m) ← −C⁻¹ · B · A⁻¹` in column panels `[p, pe)` of A⁻¹ (depth mid − p:
/// A⁻¹ is zero above p) through the scratch `T = B[:, p:] · A⁻¹[p:, p:pe]`, then row panels
/// `[q0, q1)` of C⁻¹ (depth q1: C⁻¹ is zero right of q1): `B[q0:q1, p:pe] = −C⁻¹[q0:q1, :q1] · T[:q1]`.
/// B columns left of p are not needed any more once their panel is done, so B is overwritten in place.
inline Status tri_gemm_rec(cublasHandle_t blas, float* L, std::size_t ld, std::size_t lo, std::size_t hi, float* T,
                           std::size_t scratch, std::size_t panel_min) {
  if (hi - lo <= static_cast<std::size_t>(gptq::kTriLeaf)) return Status::success();
  const std::size_t mid = tri_split(lo, hi);
  if (Status s = tri_gemm_rec(blas, L, ld, lo, mid, T, scratch, panel_min); !s.ok()) return s;
  if (Status s = tri_gemm_rec(blas, L, ld, mid, hi, T, scratch, panel_min); !s.ok()) return s;
  const std::size_t rows = hi - mid;
  const std::size_t w = std::max<std::size_t>(1, std::min(tri_panel(mid - lo, panel_min), scratch / rows));
  const std::size_t h = tri_panel(rows, panel_min);  // panel rows (w: panel columns)
  const float one = 1.f, zero = 0.f, minus_one = -1.f;
  const int ldi = static_cast<int>(ld), r = static_cast<int>(rows);
  float* C = L + mid * ld + mid;
  for (std::size_t p = lo; p < mid; p += w) {
    const std::size_t pe = std::min(mid, p + w);
    const int pw = static_cast<int>(pe - p);
    if (cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, r, pw, static_cast<int>(mid - p), &one, L + p * ld + mid, ldi,
                    L + p * ld + p, ldi, &zero, T, r) != CUBLAS_STATUS_SUCCESS)
      return make_status(StatusCode::cuda_error, "triangular inverse: cublasSgemm failed");
    for (std::size_t q0 = 0; q0 < rows; q0 += h) {
      const std::size_t q1 = std::min(rows, q0 + h);
      if (cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(q1 - q0), pw, static_cast<int>(q1), &minus_one,
                      C + q0, ldi, T, r, &zero, L + p * ld + mid + q0, ldi) != CUBLAS_STATUS_SUCCESS)
        return make_status(StatusCode::cuda_error, "triangular inverse: cublasSgemm failed");
    }
  }
  return Status::success();
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Inverts the lower triangle of a column-major `n x n` fp32 matrix in place (see the file comment).
/// The diagonal must be nonzero (a Cholesky factor of an SPD matrix); nothing checks it on the device.
/// @param blas    cuBLAS handle (its stream is set to `stream`).
/// @param method  TriInverse::recursive_trsm or TriInverse::recursive_gemm (cusolver is not offered here).
/// @param L       device matrix, column-major, leading dimension `ld`.
/// @param n       order.
/// @param ld      leading dimension (>= n).
/// @param scratch device scratch for recursive_gemm (ignored by recursive_trsm; may be null then).
/// @param scratch_floats its size in floats, at least tri_inverse_min_scratch(n) for recursive_gemm;
///                more allows wider (fewer) panels.
/// @param stream  the stream.
/// @param panel_min recursive_gemm: narrowest panel a product is split into (tuning and tests; >= 1).
/// @return ok, or invalid_argument / workspace_too_small / cuda_error.
inline Status tri_inverse_lower_gpu(cublasHandle_t blas, TriInverse method, float* L, std::size_t n, std::size_t ld,
                                    float* scratch, std::size_t scratch_floats, cudaStream_t stream,
                                    std::size_t panel_min = kTriPanelMin) {
  using ::lowbit::detail::make_status;
  if (!L || n == 0 || ld < n || panel_min == 0)
    return make_status(StatusCode::invalid_argument, "triangular inverse: bad matrix or panel size");
  if (ld > static_cast<std::size_t>(INT32_MAX))
    return make_status(StatusCode::unsupported, "triangular inverse: order must fit in int32");
  if (cublasSetStream(blas, stream) != CUBLAS_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "triangular inverse: cublasSetStream failed");
  // plain fp32 whatever math mode the caller's handle has (TF32 would cost the inverse its accuracy)
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
  if (cublasGetMathMode(blas, &mode) != CUBLAS_STATUS_SUCCESS ||
      cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS)
    return make_status(StatusCode::cuda_error, "triangular inverse: cuBLAS math mode failed");
  struct Restore {
    cublasHandle_t h;
    cublasMath_t m;
    ~Restore() { cublasSetMathMode(h, m); }
  } restore{blas, mode};
  if (method == TriInverse::recursive_trsm) {
    if (Status s = ::lowbit::detail::tri_trsm_rec(blas, L, ld, 0, n); !s.ok()) return s;
    return ::lowbit::detail::tri_leaves(L, n, ld, stream);
  }
  if (method != TriInverse::recursive_gemm)
    return make_status(StatusCode::invalid_argument, "triangular inverse: unsupported method");
  if (!scratch || scratch_floats < tri_inverse_min_scratch(n))
    return make_status(StatusCode::workspace_too_small, "triangular inverse: scratch of ", scratch_floats,
                       " floats < ", tri_inverse_min_scratch(n));
  constexpr unsigned kThreads = 256;
  const unsigned gx = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  ::lowbit::detail::tri_zero_upper_kernel<<<dim3(gx, static_cast<unsigned>(std::min<std::size_t>(n, 65535))),
                                            kThreads, 0, stream>>>(L, n, ld);
  if (cudaGetLastError() != cudaSuccess)
    return make_status(StatusCode::cuda_error, "triangular inverse: zeroing kernel failed");
  if (Status s = ::lowbit::detail::tri_leaves(L, n, ld, stream); !s.ok()) return s;
  return ::lowbit::detail::tri_gemm_rec(blas, L, ld, 0, n, scratch, scratch_floats, panel_min);
}

}  // namespace lowbit::gptq
