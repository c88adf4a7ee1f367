/// @file llm_int8.hpp
/// @brief LLM.int8() host reference: vector-wise absmax int8 quantization, outlier-column detection and
/// the mixed-precision decomposition (Dettmers et al., arXiv 2208.07339). Compiles without CUDA.
///
/// Conventions (shared with the GPU path in `lowbit/int8/linear.cuh`, which is tested against this file):
/// - Weight `W [N, K]` row-major (PyTorch Linear), activations `A [M, K]`, `Y = A · Wᵀ (+ bias)`.
/// - Weight: per output channel (row of W) absmax `s_w[n] = max_k |W[n,k]|`, codes
///   `q_w = rint(W · (127 / s_w))` in [-127, 127], scales kept in fp32.
/// - Activations, threshold `t > 0`: column `k` is an *outlier column* when any finite-or-infinite entry
///   has `|A[m,k]| >= t`. Each row's scale `s_a[m]` is the absmax over the row's finite entries below the
///   threshold; entries at or above it (and non-finite ones) get code 0. This is the single-pass
///   definition used by the GPU kernel (the row scale cannot wait for the column flags of other rows);
///   it equals the absmax over the non-outlier columns except when an outlier column holds a sub-threshold
///   entry larger than the rest of its row, in which case the scale is a little larger (never clipping).
///   `t <= 0` disables the decomposition (plain W8A8: no outlier columns, absmax over all entries).
/// - Output (O = the outlier columns):
///   @code
///   Y[m,n] = s_a[m] s_w[n] / 127² · Σ_{k ∉ O} q_a[m,k] q_w[n,k]  +  Σ_{k ∈ O} A[m,k] · W_o[n,k]  +  bias[n]
///   @endcode
///   where `W_o[n,k]` is the dequantized weight `q_w[n,k] s_w[n] / 127` or, for the feature dimensions of
///   an optional calibrated fp16 side copy (OutlierSideCopy), the fp16 original.
/// - The int8 weight-only path (W8A16: int8 weights, fp16/bf16 activations, no activation quantization)
///   belongs to the weight-only GEMM family in `lowbit/kernels/` (8-bit instance of the W{2,3,4,8}A16
///   kernels); this header covers W8A8 with and without the outlier decomposition.
///
/// Example:
/// @code
///   auto wq = lowbit::int8::quantize_weight<float>(W.data(), N, K);
///   auto y  = lowbit::int8::linear_reference<float>(A.data(), M, K, wq, nullptr, 6.0f);
/// @endcode
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../numeric.hpp"

namespace lowbit::int8 {

/// Largest int8 code magnitude (symmetric range [-127, 127]; -128 is never produced).
inline constexpr int kCodeMax = 127;
/// The paper's default outlier threshold on |activation|.
inline constexpr float kDefaultThreshold = 6.0f;

namespace detail {

/// Reciprocal scale `127 / absmax` (0 for an all-zero row, so every code becomes 0).
LOWBIT_HOST_DEVICE float inv_scale(float absmax) {
  return absmax > 0.f ? static_cast<float>(kCodeMax) / absmax : 0.f;
}

/// int8 code of `x` for reciprocal scale `inv` (round half to even, clamped to [-127, 127]).
/// One float multiply and one rint, so host and device produce identical codes.
LOWBIT_HOST_DEVICE std::int8_t quantize_code(float x, float inv) {
  float r = std::nearbyint(x * inv);
  r = r > static_cast<float>(kCodeMax) ? static_cast<float>(kCodeMax) : r;
  r = r < -static_cast<float>(kCodeMax) ? -static_cast<float>(kCodeMax) : r;
  return static_cast<std::int8_t>(r);
}

/// True when `x` marks its column as an outlier column for threshold `t` (t <= 0: never). Infinities count.
LOWBIT_HOST_DEVICE bool is_outlier(float x, float t) { return t > 0.f && std::fabs(x) >= t; }

/// True when `x` takes part in its row's absmax (finite and below the threshold).
LOWBIT_HOST_DEVICE bool in_row_scale(float x, float t) {
  return std::isfinite(x) && !is_outlier(x, t);
}

}  // namespace detail

/// A per-output-channel absmax int8 weight.
struct Int8Weight {
  int N = 0;                        ///< output features (rows of W)
  int K = 0;                        ///< input features
  std::vector<std::int8_t> codes;   ///< [N, K] row-major codes in [-127, 127]
  std::vector<float> scales;        ///< [N] absmax of each row of W (fp32)

  /// Dequantized weight element W[n, k] = code · absmax / 127.
  [[nodiscard]] float dequant(int n, int k) const {
    return static_cast<float>(codes[static_cast<std::size_t>(n) * K + k]) * scales[n] /
           static_cast<float>(kCodeMax);
  }
};

/// Quantizes a weight `W [N, K]` row-wise (absmax per output channel).
/// @tparam T float, half_t or bfloat16_t
/// @param W row-major [N, K]
/// @param N output features
/// @param K input features
/// @throws lowbit::Error on non-positive shapes or non-finite weights.
template <class T>
Int8Weight quantize_weight(const T* W, int N, int K) {
  LOWBIT_CHECK(N > 0 && K > 0, "int8::quantize_weight: N and K must be positive (got N=", N, ", K=", K, ")");
  LOWBIT_CHECK(W != nullptr, "int8::quantize_weight: null weight");
  Int8Weight q;
  q.N = N;
  q.K = K;
  q.codes.resize(static_cast<std::size_t>(N) * K);
  q.scales.resize(static_cast<std::size_t>(N));
  for (int n = 0; n < N; ++n) {
    const T* row = W + static_cast<std::size_t>(n) * K;
    float amax = 0.f;
    for (int k = 0; k < K; ++k) {
      const float v = to_float(row[k]);
      LOWBIT_CHECK(std::isfinite(v), "int8::quantize_weight: non-finite weight at [", n, ", ", k, "]");
      amax = std::max(amax, std::fabs(v));
    }
    q.scales[n] = amax;
    const float inv = detail::inv_scale(amax);
    for (int k = 0; k < K; ++k) q.codes[static_cast<std::size_t>(n) * K + k] = detail::quantize_code(to_float(row[k]), inv);
  }
  return q;
}

/// Result of the activation pass: codes, row scales and the outlier columns.
struct ActivationQuant {
  int M = 0;                          ///< rows
  int K = 0;                          ///< columns
  std::vector<std::int8_t> codes;     ///< [M, K]; 0 at entries >= threshold and at non-finite entries
  std::vector<float> row_absmax;      ///< [M] absmax over the row's finite sub-threshold entries
  std::vector<int> outlier_cols;      ///< ascending outlier column indices
  long long nonfinite = 0;            ///< number of NaN / ±inf entries seen (results are then meaningless)
};

/// The fused activation pass: per-row absmax over sub-threshold entries, outlier column flags and int8 codes.
/// @tparam T float, half_t or bfloat16_t
/// @param A row-major [M, K]
/// @param M rows
/// @param K columns
/// @param threshold outlier threshold on |a| (<= 0 disables the decomposition)
template <class T>
ActivationQuant quantize_activations(const T* A, int M, int K, float threshold) {
  LOWBIT_CHECK(M > 0 && K > 0, "int8::quantize_activations: M and K must be positive (got M=", M, ", K=", K, ")");
  LOWBIT_CHECK(A != nullptr, "int8::quantize_activations: null activations");
  LOWBIT_CHECK(!std::isnan(threshold), "int8::quantize_activations: threshold is NaN");
  ActivationQuant r;
  r.M = M;
  r.K = K;
  r.codes.assign(static_cast<std::size_t>(M) * K, 0);
  r.row_absmax.assign(static_cast<std::size_t>(M), 0.f);
  std::vector<char> flag(static_cast<std::size_t>(K), 0);
  for (int m = 0; m < M; ++m) {
    const T* row = A + static_cast<std::size_t>(m) * K;
    float amax = 0.f;
    for (int k = 0; k < K; ++k) {
      const float v = to_float(row[k]);
      if (!std::isfinite(v)) ++r.nonfinite;
      if (detail::is_outlier(v, threshold)) flag[k] = 1;
      if (detail::in_row_scale(v, threshold)) amax = std::max(amax, std::fabs(v));
    }
    r.row_absmax[m] = amax;
    const float inv = detail::inv_scale(amax);
    for (int k = 0; k < K; ++k) {
      const float v = to_float(row[k]);
      if (detail::in_row_scale(v, threshold)) r.codes[static_cast<std::size_t>(m) * K + k] = detail::quantize_code(v, inv);
    }
  }
  for (int k = 0; k < K; ++k)
    if (flag[k]) r.outlier_cols.push_back(k);
  return r;
}

/// fp16 copies of the weight columns `W[:, d]` for a fixed set of feature dimensions `d`, chosen by a
/// calibration pass (outlier dimensions are systematic across tokens). Used instead of the dequantized
/// int8 weight when such a dimension is an outlier column at run time.
struct OutlierSideCopy {
  std::vector<int> dims;        ///< ascending feature dimensions (columns of W / A)
  std::vector<half_t> values;   ///< [dims.size(), N]: values[j * N + n] = fp16(W[n, dims[j]])

  /// Index j of dimension k in dims, or -1.
  [[nodiscard]] int find(int k) const {
    const auto it = std::lower_bound(dims.begin(), dims.end(), k);
    return (it != dims.end() && *it == k) ? static_cast<int>(it - dims.begin()) : -1;
  }
};

/// Calibration: the feature dimensions whose |x| reaches the threshold most often in calibration
/// activations X, at most `max_dims` of them, with fp16 copies of the matching weight columns.
/// @tparam T float, half_t or bfloat16_t (both X and W)
/// @param X calibration activations [S, K]
/// @param S calibration rows
/// @param W weight [N, K]
/// @param N output features
/// @param K input features
/// @param threshold outlier threshold (> 0)
/// @param max_dims most dimensions kept (the most frequent first)
template <class T>
OutlierSideCopy calibrate_side_copy(const T* X, int S, const T* W, int N, int K, float threshold, int max_dims) {
  LOWBIT_CHECK(S > 0 && N > 0 && K > 0, "int8::calibrate_side_copy: shapes must be positive");
  LOWBIT_CHECK(threshold > 0.f, "int8::calibrate_side_copy: threshold must be positive");
  LOWBIT_CHECK(max_dims >= 0, "int8::calibrate_side_copy: max_dims must be >= 0");
  std::vector<long long> count(static_cast<std::size_t>(K), 0);
  for (int s = 0; s < S; ++s)
    for (int k = 0; k < K; ++k)
      if (detail::is_outlier(to_float(X[static_cast<std::size_t>(s) * K + k]), threshold)) ++count[k];
  std::vector<int> order(static_cast<std::size_t>(K));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return count[a] > count[b]; });
  OutlierSideCopy side;
  for (int i = 0; i < K && static_cast<int>(side.dims.size()) < max_dims && count[order[i]] > 0; ++i)
    side.dims.push_back(order[i]);
  std::sort(side.dims.begin(), side.dims.end());
  side.values.resize(side.dims.size() * static_cast<std::size_t>(N));
  for (std::size_t j = 0; j < side.dims.size(); ++j)
    for (int n = 0; n < N; ++n)
      side.values[j * N + n] = half_t(to_float(W[static_cast<std::size_t>(n) * K + side.dims[j]]));
  return side;
}

/// Weight value W_o[n, k] used for outlier column k: the side copy if it holds k, else dequantized int8.
inline double outlier_weight(const Int8Weight& w, const OutlierSideCopy* side, int n, int k) {
  if (side) {
    const int j = side->find(k);
    if (j >= 0) return static_cast<double>(static_cast<float>(side->values[static_cast<std::size_t>(j) * w.N + n]));
  }
  return static_cast<double>(w.codes[static_cast<std::size_t>(n) * w.K + k]) * w.scales[n] / kCodeMax;
}

/// LLM.int8() forward from an activation pass: int8 product over the non-outlier columns (exact int32
/// accumulation, dequantized with s_a ⊗ s_w / 127²), plus the outlier columns' product in high precision.
/// @param A the original activations [M, K] (for the outlier columns)
/// @param aq result of quantize_activations on A
/// @param w quantized weight
/// @param bias [N] or nullptr
/// @param side optional fp16 side copy of calibrated dimensions (nullptr: dequantized int8 weight rows)
/// @return Y [M, N] in double precision (the GPU rounds the same value to its output type)
template <class T>
std::vector<double> decomposed_matmul(const T* A, const ActivationQuant& aq, const Int8Weight& w, const float* bias,
                                      const OutlierSideCopy* side = nullptr) {
  LOWBIT_CHECK(aq.K == w.K, "int8::decomposed_matmul: K mismatch (activations ", aq.K, ", weight ", w.K, ")");
  const int M = aq.M, K = aq.K, N = w.N;
  std::vector<char> is_out(static_cast<std::size_t>(K), 0);
  for (int c : aq.outlier_cols) is_out[c] = 1;
  std::vector<double> Y(static_cast<std::size_t>(M) * N);
  for (int m = 0; m < M; ++m) {
    const std::int8_t* qa = aq.codes.data() + static_cast<std::size_t>(m) * K;
    for (int n = 0; n < N; ++n) {
      const std::int8_t* qw = w.codes.data() + static_cast<std::size_t>(n) * K;
      std::int64_t acc = 0;
      for (int k = 0; k < K; ++k)
        if (!is_out[k]) acc += static_cast<std::int64_t>(qa[k]) * qw[k];
      double y = static_cast<double>(acc) * aq.row_absmax[m] * w.scales[n] / (double(kCodeMax) * kCodeMax);
      for (int c : aq.outlier_cols)
        y += static_cast<double>(to_float(A[static_cast<std::size_t>(m) * K + c])) * outlier_weight(w, side, n, c);
      if (bias) y += bias[n];
      Y[static_cast<std::size_t>(m) * N + n] = y;
    }
  }
  return Y;
}

/// The whole LLM.int8() layer on the host: activation pass + decomposed product.
/// @tparam T float, half_t or bfloat16_t
/// @param A activations [M, K]
/// @param M rows
/// @param K input features (must equal w.K)
/// @param w quantized weight
/// @param bias [N] or nullptr
/// @param threshold outlier threshold (default 6; <= 0: plain vector-wise W8A8)
/// @param side optional calibrated fp16 side copy
/// @throws lowbit::Error on shape mismatch or non-finite activations (named with their count).
template <class T>
std::vector<double> linear_reference(const T* A, int M, int K, const Int8Weight& w, const float* bias,
                                     float threshold = kDefaultThreshold, const OutlierSideCopy* side = nullptr) {
  LOWBIT_CHECK(K == w.K, "int8::linear_reference: K = ", K, " does not match the weight's K = ", w.K);
  const ActivationQuant aq = quantize_activations(A, M, K, threshold);
  LOWBIT_CHECK(aq.nonfinite == 0, "int8::linear_reference: activations hold ", aq.nonfinite,
               " non-finite value(s)");
  return decomposed_matmul(A, aq, w, bias, side);
}

/// Double-precision product `A · Wᵀ (+ bias)` of the unquantized operands (the reference the
/// quantized paths are judged against).
template <class T>
std::vector<double> matmul_reference(const T* A, int M, int K, const T* W, int N, const float* bias) {
  std::vector<double> Y(static_cast<std::size_t>(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double y = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k)
        y += static_cast<double>(to_float(A[static_cast<std::size_t>(m) * K + k])) *
             to_float(W[static_cast<std::size_t>(n) * K + k]);
      Y[static_cast<std::size_t>(m) * N + n] = y;
    }
  return Y;
}

/// Relative Frobenius error ‖y − ref‖ / ‖ref‖ (a NaN anywhere gives +inf).
template <class V>
double relative_error(const std::vector<V>& y, const std::vector<double>& ref) {
  LOWBIT_CHECK(y.size() == ref.size(), "int8::relative_error: size mismatch");
  double num = 0, den = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    double v;
    if constexpr (std::is_same_v<V, double>) v = y[i];
    else v = static_cast<double>(to_float(y[i]));
    if (!std::isfinite(v)) return std::numeric_limits<double>::infinity();
    num += (v - ref[i]) * (v - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace lowbit::int8
