/// @file cholesky.hpp
/// @brief Damped Cholesky for GPTQ: the upper Cholesky factor `U` of `H⁻¹` (`H⁻¹ = UᵀU`), with damping
///        escalation when `H` is not positive definite.
///
/// GPTQ needs `U = chol_upper((H + λI)⁻¹)`, `λ = damp · mean(diag H)`. The published code takes three
/// steps (Cholesky, inverse from the factor, Cholesky again). We take two with the same result:
/// factor `H = L̃ᵀ L̃` with `L̃` lower triangular (a Cholesky run from the last column backwards), then
/// `H⁻¹ = L̃⁻¹ L̃⁻ᵀ`, so `U = L̃⁻ᵀ` is upper triangular with a positive diagonal, and by uniqueness of
/// the Cholesky factor it is the one GPTQ uses. Both steps are blocked around one cache-tiled `C -= E P` kernel (linalg.hpp).
///
/// @code
/// std::vector<double> H = ...;                         // [K, K], symmetric
/// auto rep = lowbit::gptq::damped_inverse_upper(H, K, {}, "model.layers.0.mlp.down_proj");
/// // H now holds U (upper triangle; lower triangle zero); rep.damp_used is the damping that worked
/// @endcode
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../error.hpp"
#include "linalg.hpp"

namespace lowbit::detail {

/// Rows per panel of the blocked factorizations.
inline constexpr std::size_t kCholPanel = 64;

/// In place on the lower triangle of row-major `A [K, K]`: `A = L̃ᵀ L̃` with `L̃` lower triangular
/// (written over the lower triangle; the strict upper triangle is left undefined).
/// @return K on success, else the index of the first non-positive (or non-finite) pivot.
template <class T>
std::size_t reverse_cholesky_lower(T* A, std::size_t K, unsigned threads) {
  std::vector<T> Et;  // [rows above the panel, panel] = transposed panel columns
  for (std::size_t k1 = K; k1 > 0;) {
    const std::size_t k0 = k1 > kCholPanel ? k1 - kCholPanel : 0;
    const std::size_t nb = k1 - k0;
    for (std::size_t k = k1; k-- > k0;) {
      T* rk = A + k * K;
      const T pivot = rk[k];
      if (!(pivot > T(0)) || !std::isfinite(pivot)) return k;
      const T d = std::sqrt(pivot);
      for (std::size_t j = 0; j < k; ++j) rk[j] /= d;
      rk[k] = d;
      for (std::size_t i = k0; i < k; ++i) {  // rows of this panel still to factor
        const T a = rk[i];
        T* ri = A + i * K;
        for (std::size_t j = 0; j <= i; ++j) ri[j] -= a * rk[j];
      }
    }
    if (k0 > 0) {  // rows above the panel: A[i, 0:i] -= Σ_p A[p, i] A[p, 0:i]
      Et.assign(k0 * nb, T(0));
      for (std::size_t p = 0; p < nb; ++p)
        for (std::size_t i = 0; i < k0; ++i) Et[i * nb + p] = A[(k0 + p) * K + i];
      // row block [r0, r1) only needs columns [0, r1) (the lower triangle plus a little scratch)
      const std::size_t rb = kCholPanel;
      for (std::size_t r0 = 0; r0 < k0; r0 += rb) {
        const std::size_t r1 = std::min(k0, r0 + rb);
        for (std::size_t a = r0; a < r1; ++a)
          for (std::size_t j = a + 1; j < r1; ++j) A[a * K + j] = T(0);  // keep the scratch upper part finite
        gemm_sub(r1 - r0, r1, nb, Et.data() + r0 * nb, nb, A + k0 * K, K, A + r0 * K, K, threads);
      }
    }
    k1 = k0;
  }
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = i + 1; j < K; ++j) A[i * K + j] = T(0);
  return K;
}

/// Inverse of the lower triangular row-major `L [K, K]` (positive diagonal) into `X` (lower; upper zero).
template <class T>
void lower_triangular_inverse(const T* L, T* X, std::size_t K, unsigned threads) {
  std::fill(X, X + K * K, T(0));
  for (std::size_t b0 = 0; b0 < K; b0 += kCholPanel) {
    const std::size_t b1 = std::min(K, b0 + kCholPanel);
    // X[b0:b1, 0:b0] = -Σ_{k<b0} L[i,k] X[k, 0:b0]; X lower, so a column tile from jt needs depth k >= jt
    for (std::size_t jt = 0; jt < b0; jt += kGemmColTile) {
      const std::size_t jn = std::min(kGemmColTile, b0 - jt);
      gemm_sub(b1 - b0, jn, b0 - jt, L + b0 * K + jt, K, X + jt * K + jt, K, X + b0 * K + jt, K, threads);
    }
    for (std::size_t i = b0; i < b1; ++i) {
      T* xi = X + i * K;
      const T* li = L + i * K;
      for (std::size_t k = b0; k < i; ++k) {
        const T a = li[k];
        const T* xk = X + k * K;
        for (std::size_t j = 0; j <= k; ++j) xi[j] -= a * xk[j];
      }
      const T d = li[i];
      for (std::size_t j = 0; j < i; ++j) xi[j] /= d;
      xi[i] = T(1) / d;
    }
  }
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Damping policy for damped_inverse_upper.
struct DampOptions {
  double damp = 0.01;       ///< relative damping: `damp · mean(diag H)` is added to the diagonal
  double factor = 10.0;     ///< escalation factor after a failed factorization
  double max_damp = 10.0;   ///< largest relative damping tried before giving up
  unsigned threads = 1;     ///< worker threads for the blocked updates (0 = all hardware threads)
};

/// What damped_inverse_upper did.
struct DampReport {
  double damp_requested = 0.0;  ///< relative damping asked for
  double damp_used = 0.0;       ///< relative damping of the successful factorization
  double lambda = 0.0;          ///< absolute value added to the diagonal (`damp_used · mean(diag H)`)
  int attempts = 0;             ///< factorizations tried (1 = no escalation)
  /// True when the requested damping failed and a larger one was needed.
  [[nodiscard]] bool escalated() const { return attempts > 1; }
};


/// Replaces the symmetric row-major `H [K, K]` by `U`, the upper Cholesky factor of `(H + λI)⁻¹`
/// (`U` in the upper triangle, zeros below), with `λ = damp · mean(diag H)`. When the factorization
/// fails (H not positive definite after damping) the damping is multiplied by `opt.factor` and the
/// factorization retried from the original H, up to `opt.max_damp`.
///
/// @tparam T float or double (the precision of the factorization).
/// @param H     in: symmetric `[K, K]` (only the lower triangle is read); out: `U`.
/// @param K     order of H.
/// @param opt   damping policy.
/// @param layer name used in error messages.
/// @return the damping actually used and the number of attempts.
/// @throws lowbit::Error on a non-finite entry, a non-positive mean diagonal, or when even `max_damp`
///         fails (the message names the layer, the pivot and the damping tried).
template <class T>
DampReport damped_inverse_upper(std::vector<T>& H, std::size_t K, const DampOptions& opt, std::string_view layer) {
  static_assert(std::is_floating_point_v<T>, "damped_inverse_upper: T must be float or double");
  LOWBIT_CHECK(K > 0 && H.size() == K * K, "layer '", layer, "': Hessian has ", H.size(), " elements, expected ",
               K, " x ", K);
  LOWBIT_CHECK(opt.damp >= 0.0 && opt.factor > 1.0 && opt.max_damp >= opt.damp, "layer '", layer,
               "': invalid damping options (damp ", opt.damp, ", factor ", opt.factor, ", max ", opt.max_damp, ")");
  double mean_diag = 0.0;
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j <= i; ++j)
      LOWBIT_CHECK(std::isfinite(H[i * K + j]), "layer '", layer, "': non-finite Hessian entry ", H[i * K + j],
                   " at (", i, ", ", j, ")");
  for (std::size_t i = 0; i < K; ++i) mean_diag += static_cast<double>(H[i * K + i]);
  mean_diag /= static_cast<double>(K);
  LOWBIT_CHECK(mean_diag > 0.0, "layer '", layer, "': Hessian has non-positive mean diagonal ", mean_diag,
               " (no calibration data?)");
  const unsigned threads = ::lowbit::detail::resolve_threads(opt.threads);

  DampReport rep;
  rep.damp_requested = opt.damp;
  std::vector<T> A(K * K);
  double damp = opt.damp;
  std::size_t bad_pivot = K;
  for (;;) {
    ++rep.attempts;
    const double lambda = damp * mean_diag;
    for (std::size_t i = 0; i < K; ++i) {
      for (std::size_t j = 0; j <= i; ++j) A[i * K + j] = H[i * K + j];
      A[i * K + i] = static_cast<T>(static_cast<double>(H[i * K + i]) + lambda);
    }
    bad_pivot = ::lowbit::detail::reverse_cholesky_lower(A.data(), K, threads);
    if (bad_pivot == K) {
      rep.damp_used = damp;
      rep.lambda = lambda;
      break;
    }
    const double next = damp == 0.0 ? 1e-6 : damp * opt.factor;
    if (next > opt.max_damp * (1.0 + 1e-12)) {
      ::lowbit::detail::fail("layer '", layer, "': Hessian is not positive definite even with damping ", damp,
                   " x mean(diag H) (pivot ", bad_pivot, " of ", K, " after ", rep.attempts,
                   " attempts); check the calibration data");
    }
    damp = next;
  }
  // U = L̃⁻ᵀ: invert L̃ into H's storage (as scratch), then transpose into H.
  ::lowbit::detail::lower_triangular_inverse(A.data(), H.data(), K, threads);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) A[i * K + j] = j >= i ? H[j * K + i] : T(0);
  H.swap(A);
  for (std::size_t i = 0; i < K; ++i)
    LOWBIT_CHECK(std::isfinite(H[i * K + i]) && H[i * K + i] > T(0), "layer '", layer,
                 "': inverse Hessian factor has a non-finite diagonal at ", i, " (damping ", rep.damp_used, ")");
  return rep;
}

}  // namespace lowbit::gptq
