/// @file hessian.hpp
/// @brief GPTQ layer Hessian `H = 2/n · Σ x xᵀ` accumulated over calibration batches as a running mean.
///
/// Same update as the published reference: for a batch of `m` rows,
/// `H ← H · n/(n+m)`, `n ← n+m`, `H ← H + (√(2/n) X)ᵀ(√(2/n) X)`, so H is always the mean over all
/// samples seen so far, whatever the batching.
///
/// @code
/// lowbit::gptq::Hessian<double> h(K);
/// h.add_batch(x.data(), rows);            // x: [rows, K] float / half_t / bfloat16_t
/// const std::vector<double>& H = h.matrix();
/// @endcode
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "../numeric.hpp"
#include "linalg.hpp"

namespace lowbit::gptq {

/// Running-mean GPTQ Hessian of one linear layer.
/// @tparam Acc accumulation type: double (host reference) or float (the published precision).
template <class Acc = double>
class Hessian {
  static_assert(std::is_floating_point_v<Acc>, "Hessian: Acc must be float or double");

 public:
  /// Rows of a batch converted and accumulated at a time (bounds the scratch to kChunk·K values).
  static constexpr std::size_t kChunk = 256;

  /// An all-zero Hessian for a layer with K input features.
  /// @param K       input features (> 0).
  /// @param threads worker threads for the accumulation (0 = all hardware threads).
  explicit Hessian(std::size_t K, unsigned threads = 1) : K_(K), threads_(::lowbit::detail::resolve_threads(threads)) {
    LOWBIT_CHECK(K > 0, "Hessian: K must be positive");
    H_.assign(K * K, Acc(0));
  }

  /// Adds a batch of calibration inputs.
  /// @tparam In element type: float, double, half_t or bfloat16_t.
  /// @param x    activations `[rows, K]` row-major.
  /// @param rows number of samples in the batch (0 is a no-op).
  /// @throws lowbit::Error on a null pointer or a non-finite input (naming sample and feature).
  template <class In>
  void add_batch(const In* x, std::size_t rows) {
    if (rows == 0) return;
    LOWBIT_CHECK(x != nullptr, "Hessian::add_batch: null input");
    for (std::size_t s = 0; s < rows; ++s)
      for (std::size_t k = 0; k < K_; ++k) {
        const double v = static_cast<double>(static_cast<float>(x[s * K_ + k]));
        LOWBIT_CHECK(std::isfinite(v), "Hessian::add_batch: non-finite input ", v, " at sample ", s, ", feature ", k);
      }
    const double total = static_cast<double>(n_) + static_cast<double>(rows);
    const Acc keep = static_cast<Acc>(static_cast<double>(n_) / total);
    for (auto& h : H_) h *= keep;
    n_ += rows;
    const Acc scale = static_cast<Acc>(std::sqrt(2.0 / static_cast<double>(n_)));
    std::vector<Acc> xs, xt;  // xs [m, K] scaled rows; xt [K, m] = -xsᵀ (gemm_sub subtracts)
    for (std::size_t s0 = 0; s0 < rows; s0 += kChunk) {
      const std::size_t m = std::min(kChunk, rows - s0);
      xs.resize(m * K_);
      xt.resize(K_ * m);
      for (std::size_t s = 0; s < m; ++s)
        for (std::size_t k = 0; k < K_; ++k) {
          const Acc v = scale * static_cast<Acc>(static_cast<float>(x[(s0 + s) * K_ + k]));
          xs[s * K_ + k] = v;
          xt[k * m + s] = -v;
        }
      ::lowbit::detail::gemm_sub(K_, K_, m, xt.data(), m, xs.data(), K_, H_.data(), K_, threads_);
    }
  }

  /// Input features K.
  [[nodiscard]] std::size_t K() const { return K_; }
  /// Samples accumulated so far.
  [[nodiscard]] std::size_t samples() const { return n_; }
  /// The Hessian `[K, K]` row-major (symmetric).
  [[nodiscard]] const std::vector<Acc>& matrix() const { return H_; }

 private:
  std::size_t K_;
  unsigned threads_;
  std::size_t n_ = 0;
  std::vector<Acc> H_;
};

}  // namespace lowbit::gptq
