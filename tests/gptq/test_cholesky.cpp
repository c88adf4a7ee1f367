// Damped inverse Cholesky factor: U upper with U^T U = (H + λI)^-1 (checked against an independent
// Gauss-Jordan inverse), damping escalation on indefinite H, and a clear error naming the layer.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/gptq/cholesky.hpp"
#include "gptq_test_util.hpp"

using lowbit::gptq::damped_inverse_upper;
using lowbit::gptq::DampOptions;

namespace {
// Independent inverse by Gauss-Jordan elimination with partial pivoting (double).
std::vector<double> gauss_jordan_inverse(std::vector<double> A, std::size_t K) {
  std::vector<double> X(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) X[i * K + i] = 1.0;
  for (std::size_t c = 0; c < K; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < K; ++r)
      if (std::fabs(A[r * K + c]) > std::fabs(A[p * K + c])) p = r;
    for (std::size_t j = 0; j < K; ++j) {
      std::swap(A[c * K + j], A[p * K + j]);
      std::swap(X[c * K + j], X[p * K + j]);
    }
    const double d = A[c * K + c];
    for (std::size_t j = 0; j < K; ++j) {
      A[c * K + j] /= d;
      X[c * K + j] /= d;
    }
    for (std::size_t r = 0; r < K; ++r)
      if (r != c) {
        const double f = A[r * K + c];
        for (std::size_t j = 0; j < K; ++j) {
          A[r * K + j] -= f * A[c * K + j];
          X[r * K + j] -= f * X[c * K + j];
        }
      }
  }
  return X;
}

double mean_diag(const std::vector<double>& H, std::size_t K) {
  double m = 0;
  for (std::size_t i = 0; i < K; ++i) m += H[i * K + i];
  return m / static_cast<double>(K);
}
}  // namespace

TEST_CASE("U^T U equals the damped inverse Hessian (blocked sizes and odd sizes)", "[gptq][cholesky]") {
  for (std::size_t K : {std::size_t{1}, std::size_t{5}, std::size_t{63}, std::size_t{64}, std::size_t{150},
                        std::size_t{300}}) {
    const std::size_t n = K + 20;
    const auto X = gptq_test::correlated_inputs(n, K, 3 + static_cast<unsigned>(K));
    const auto H = gptq_test::brute_hessian(X, n, K);
    std::vector<double> U = H;
    DampOptions opt;
    opt.threads = 2;
    const auto rep = damped_inverse_upper(U, K, opt, "t");
    CHECK(rep.attempts == 1);
    CHECK(rep.damp_used == 0.01);
    std::vector<double> Hd = H;
    for (std::size_t i = 0; i < K; ++i) Hd[i * K + i] += 0.01 * mean_diag(H, K);
    const auto inv = gauss_jordan_inverse(Hd, K);
    double maxerr = 0, maxval = 0;
    for (std::size_t i = 0; i < K; ++i) {
      REQUIRE(U[i * K + i] > 0.0);
      for (std::size_t j = 0; j < i; ++j) REQUIRE(U[i * K + j] == 0.0);
      for (std::size_t j = 0; j < K; ++j) {
        double s = 0;
        for (std::size_t k = 0; k < K; ++k) s += U[k * K + i] * U[k * K + j];
        maxerr = std::max(maxerr, std::fabs(s - inv[i * K + j]));
        maxval = std::max(maxval, std::fabs(inv[i * K + j]));
      }
    }
    INFO("K = " << K);
    CHECK(maxerr <= 1e-9 * maxval);
  }
}

TEST_CASE("float factorization agrees with double", "[gptq][cholesky]") {
  const std::size_t K = 96, n = 200;
  const auto X = gptq_test::correlated_inputs(n, K, 9);
  const auto H = gptq_test::brute_hessian(X, n, K);
  std::vector<double> Ud = H;
  std::vector<float> Uf(H.begin(), H.end());
  damped_inverse_upper(Ud, K, {}, "d");
  damped_inverse_upper(Uf, K, {}, "f");
  for (std::size_t i = 0; i < K * K; ++i) REQUIRE(std::fabs(Uf[i] - Ud[i]) <= 1e-3 * std::fabs(Ud[i]) + 1e-4);
}

TEST_CASE("indefinite H escalates the damping and reports it", "[gptq][cholesky]") {
  const std::size_t K = 40;
  // H = I - 0.05 * mean-diag-ish e_7 e_7^T * 21: eigenvalue 1 - 0.05*... pick H[7,7] = -0.03 (others 1).
  std::vector<double> H(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) H[i * K + i] = 1.0;
  H[7 * K + 7] = -0.03;  // mean diag ≈ 0.974: damp 0.01 adds 0.00974 (still < 0), 0.1 adds 0.0974 (> 0)
  std::vector<double> U = H;
  const auto rep = damped_inverse_upper(U, K, {}, "model.layers.3.q_proj");
  CHECK(rep.attempts == 2);
  CHECK(rep.escalated());
  CHECK(rep.damp_used == Approx(0.1));
  CHECK(U[7 * K + 7] == Approx(1.0 / std::sqrt(-0.03 + 0.1 * mean_diag(H, K))));
  for (double u : U) REQUIRE(std::isfinite(u));

  // Strongly indefinite: even the cap fails -> error naming the layer, never NaN.
  std::vector<double> H2(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) H2[i * K + i] = 1.0;
  H2[3 * K + 3] = -1000.0;
  H2[4 * K + 4] = 2000.0;
  std::vector<double> U2 = H2;
  CHECK_THROWS_WITH(damped_inverse_upper(U2, K, {}, "model.layers.3.q_proj"),
                    Catch::Contains("model.layers.3.q_proj") && Catch::Contains("not positive definite"));
}

TEST_CASE("non-finite or empty Hessians are rejected", "[gptq][cholesky]") {
  const std::size_t K = 6;
  std::vector<double> H(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) H[i * K + i] = 1.0;
  H[4 * K + 2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(damped_inverse_upper(H, K, {}, "L"), Catch::Contains("non-finite") && Catch::Contains("'L'"));
  std::vector<double> Z(K * K, 0.0);
  CHECK_THROWS_WITH(damped_inverse_upper(Z, K, {}, "L"), Catch::Contains("non-positive mean diagonal"));
  std::vector<double> bad(5);
  CHECK_THROWS_AS(damped_inverse_upper(bad, K, {}, "L"), lowbit::Error);
}
