// Shared helpers for the GPTQ tests: deterministic data generators.
#pragma once

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace gptq_test {

/// Calibration inputs X [n, K] with correlated features: X = Z · M, M mixing neighbouring features,
/// times per-feature scales (scale_spread > 1 makes a few features much stronger than the rest).
inline std::vector<float> correlated_inputs(std::size_t n, std::size_t K, unsigned seed, double scale_spread = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> Z(n * K);
  for (auto& z : Z) z = nd(rng);
  std::vector<double> feat(K);
  for (std::size_t k = 0; k < K; ++k)
    feat[k] = std::pow(scale_spread, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
  std::vector<float> X(n * K);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t k = 0; k < K; ++k) {
      double v = Z[s * K + k];
      if (k > 0) v += 0.8 * Z[s * K + k - 1];
      if (k > 1) v += 0.5 * Z[s * K + k - 2];
      v += 0.6 * Z[s * K + (k * 7) % K];
      X[s * K + k] = static_cast<float>(v * feat[k]);
    }
  return X;
}

/// Brute-force H = 2/n Σ x xᵀ in double.
inline std::vector<double> brute_hessian(const std::vector<float>& X, std::size_t n, std::size_t K) {
  std::vector<double> H(K * K, 0.0);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t i = 0; i < K; ++i)
      for (std::size_t j = 0; j < K; ++j) H[i * K + j] += static_cast<double>(X[s * K + i]) * X[s * K + j];
  for (auto& h : H) h *= 2.0 / static_cast<double>(n);
  return H;
}

/// Weights [N, K] ~ N(0, sigma²) with a few larger outliers.
inline std::vector<float> random_weights(std::size_t N, std::size_t K, unsigned seed, double sigma = 0.02) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, sigma);
  std::vector<float> W(N * K);
  for (std::size_t i = 0; i < N * K; ++i) W[i] = static_cast<float>(nd(rng) * (i % 97 == 0 ? 4.0 : 1.0));
  return W;
}

}  // namespace gptq_test
