/// @file reference.hpp
/// @brief Host reference of the weight-only GEMM `Y = A · dequant(W)ᵀ (+ bias)`: dequantize to float,
///        accumulate in double. Independent of the kernel layout; compiles with g++ alone.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "../error.hpp"
#include "../quant_types.hpp"

namespace lowbit::kernels {

/// Reference GEMM on the host.
///
/// @param q     the quantized weight (original column order, any g_idx).
/// @param A     activations `[M, K]` row-major, as float (convert fp16/bf16 inputs exactly first).
/// @param M     rows of A.
/// @param bias  optional `[N]` bias (nullptr for none).
/// @return      `[M, N]` row-major outputs, each a double sum rounded once to float.
/// @throws lowbit::Error when the weight's arrays do not match its K, N.
inline std::vector<float> reference_gemm(const QuantizedWeight& q, const float* A, std::size_t M,
                                         const float* bias = nullptr) {
  const std::size_t K = q.K, N = q.N, G = q.groups();
  LOWBIT_CHECK(q.codes.size() == K * N && q.g_idx.size() == K && G > 0 && q.zeros.size() == G * N,
               "reference_gemm: QuantizedWeight arrays do not match K = ", K, ", N = ", N);
  std::vector<double> w(N * K);  // dequantized weight [N, K] in double (exact: products of floats)
  for (std::size_t k = 0; k < K; ++k) {
    LOWBIT_CHECK(q.g_idx[k] >= 0 && static_cast<std::size_t>(q.g_idx[k]) < G, "reference_gemm: g_idx[", k,
                 "] out of range");
    for (std::size_t n = 0; n < N; ++n) w[n * K + k] = static_cast<double>(q.dequant(n, k));
  }
  std::vector<float> Y(M * N);
  for (std::size_t m = 0; m < M; ++m) {
    const float* a = A + m * K;
    for (std::size_t n = 0; n < N; ++n) {
      const double* wn = w.data() + n * K;
      double acc = bias ? static_cast<double>(bias[n]) : 0.0;
      for (std::size_t k = 0; k < K; ++k) acc += static_cast<double>(a[k]) * wn[k];
      Y[m * N + n] = static_cast<float>(acc);
    }
  }
  return Y;
}

/// Relative error ‖y − ref‖₂ / ‖ref‖₂ (NaN/inf in y gives +inf, so it never passes a tolerance).
inline double relative_error(const std::vector<float>& y, const std::vector<float>& ref) {
  LOWBIT_CHECK(y.size() == ref.size(), "relative_error: sizes differ");
  double num = 0, den = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) return INFINITY;
    const double d = static_cast<double>(y[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace lowbit::kernels
