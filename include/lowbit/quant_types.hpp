/// @file quant_types.hpp
/// @brief The shared description of a group-wise quantized linear weight (unpacked, host side).
///
/// Conventions used across lowbit:
/// - A linear layer's weight `W` is `[N, K]` row-major (PyTorch `Linear`: out_features × in_features),
///   and `Y = X · Wᵀ` for activations `X [M, K]`.
/// - Quantized codes are kept `[K, N]` (the logical orientation of GPTQ's `qweight`), scales and zero
///   points `[G, N]` with `G` groups along K, and `g_idx [K]` maps each input column to its group.
/// - Zero points are the *actual* zero codes (the `gptq_v2` convention); checkpoint code converts.
/// - Dequantized value: `w[n, k] = scale[g, n] * (code[k, n] - zero[g, n])`, `g = g_idx[k]`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "error.hpp"

namespace lowbit {

/// How a weight is quantized (runtime form; the width dispatches to `Bits<B>` through dispatch_bits).
struct QuantSpec {
  int bits = 4;          ///< code width: 2, 3, 4 or 8
  int group_size = 128;  ///< input columns per group; a divisor of K, or <= 0 for per-channel (one group)
  bool sym = false;      ///< symmetric (zero fixed at 2^(bits-1)) or asymmetric (min-max) grid
  bool mse = false;      ///< search a shrunk clipping range minimising the p-norm error
  float mse_norm = 2.4f;        ///< p of the p-norm in the clip search (published default 2.4)
  int mse_grid = 100;           ///< grid points of the clip search (published default 100)
  float mse_max_shrink = 0.8f;  ///< search shrinks the range down to (1 - max_shrink) = 0.2 of min-max

  /// Group size actually used for K input columns (K itself when per-channel).
  [[nodiscard]] std::size_t effective_group(std::size_t K) const {
    return group_size <= 0 ? K : static_cast<std::size_t>(group_size);
  }
  /// Number of groups along K.
  [[nodiscard]] std::size_t num_groups(std::size_t K) const { return K / effective_group(K); }
  /// Throws lowbit::Error unless the spec is valid for a K-column weight.
  void validate(std::size_t K) const {
    LOWBIT_CHECK(bits == 2 || bits == 3 || bits == 4 || bits == 8, "bits must be 2, 3, 4 or 8 (got ", bits, ")");
    LOWBIT_CHECK(K > 0, "K (input features) must be positive");
    LOWBIT_CHECK(group_size <= 0 || K % static_cast<std::size_t>(group_size) == 0, "group size ", group_size,
                 " does not divide K = ", K);
    LOWBIT_CHECK(!mse || (mse_grid > 0 && mse_max_shrink > 0.f && mse_max_shrink < 1.f && mse_norm > 0.f),
                 "invalid MSE clip-search parameters");
  }
};

/// A group-wise quantized weight in unpacked form (see the file comment for conventions).
struct QuantizedWeight {
  QuantSpec spec;                    ///< how it was quantized
  std::size_t K = 0;                 ///< input features
  std::size_t N = 0;                 ///< output features
  std::vector<std::uint8_t> codes;   ///< [K, N] codes in [0, 2^bits - 1], original column order
  std::vector<float> scales;         ///< [G, N] scales, each exactly representable in fp16
  std::vector<std::uint8_t> zeros;   ///< [G, N] zero codes in [0, 2^bits - 1] (actual zero, v2 convention)
  std::vector<std::int32_t> g_idx;   ///< [K] group index of each input column

  /// Number of groups G.
  [[nodiscard]] std::size_t groups() const { return N ? scales.size() / N : 0; }
  /// Dequantized weight element w[n, k].
  [[nodiscard]] float dequant(std::size_t n, std::size_t k) const {
    const std::size_t g = static_cast<std::size_t>(g_idx[k]);
    return scales[g * N + n] * (static_cast<float>(codes[k * N + n]) - static_cast<float>(zeros[g * N + n]));
  }
};

}  // namespace lowbit
