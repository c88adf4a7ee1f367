// Hessian accumulation: running mean over batches equals the brute-force 2/n Σ x xᵀ, for fp32/fp16/bf16
// inputs and any batching; non-finite inputs are rejected.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "lowbit/gptq/hessian.hpp"
#include "gptq_test_util.hpp"

using lowbit::bfloat16_t;
using lowbit::half_t;
using lowbit::gptq::Hessian;

namespace {
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
}  // namespace

TEST_CASE("Hessian running mean equals 2/n sum x x^T for any batching", "[gptq][hessian]") {
  const std::size_t K = 37, n = 300;
  const auto X = gptq_test::correlated_inputs(n, K, 11);
  const auto ref = gptq_test::brute_hessian(X, n, K);
  for (std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{300}, std::size_t{256}}) {
    Hessian<double> h(K, 2);
    for (std::size_t s = 0; s < n; s += batch) h.add_batch(X.data() + s * K, std::min(batch, n - s));
    CHECK(h.samples() == n);
    CHECK(max_abs_diff(h.matrix(), ref) < 1e-10);
    for (std::size_t i = 0; i < K; ++i)
      for (std::size_t j = 0; j < K; ++j) REQUIRE(h.matrix()[i * K + j] == h.matrix()[j * K + i]);
  }
  Hessian<float> hf(K);
  hf.add_batch(X.data(), 100);
  hf.add_batch(X.data() + 100 * K, 200);
  std::vector<double> hd(hf.matrix().begin(), hf.matrix().end());
  CHECK(max_abs_diff(hd, ref) < 1e-4);
}

TEST_CASE("Hessian accepts fp16 and bf16 inputs", "[gptq][hessian]") {
  const std::size_t K = 20, n = 64;
  auto X = gptq_test::correlated_inputs(n, K, 5);
  std::vector<half_t> xh(n * K);
  std::vector<bfloat16_t> xb(n * K);
  std::vector<float> xhr(n * K), xbr(n * K);
  for (std::size_t i = 0; i < n * K; ++i) {
    xh[i] = half_t(X[i]);
    xb[i] = bfloat16_t(X[i]);
    xhr[i] = static_cast<float>(xh[i]);
    xbr[i] = static_cast<float>(xb[i]);
  }
  Hessian<double> h1(K), h2(K);
  h1.add_batch(xh.data(), n);
  h2.add_batch(xb.data(), n);
  CHECK(max_abs_diff(h1.matrix(), gptq_test::brute_hessian(xhr, n, K)) < 1e-10);
  CHECK(max_abs_diff(h2.matrix(), gptq_test::brute_hessian(xbr, n, K)) < 1e-10);
}

TEST_CASE("Hessian rejects non-finite inputs and bad shapes", "[gptq][hessian]") {
  const std::size_t K = 8;
  std::vector<float> x(3 * K, 1.f);
  x[2 * K + 5] = std::numeric_limits<float>::quiet_NaN();
  Hessian<double> h(K);
  CHECK_THROWS_WITH(h.add_batch(x.data(), 3), Catch::Contains("non-finite") && Catch::Contains("sample 2") &&
                                                  Catch::Contains("feature 5"));
  CHECK(h.samples() == 0);
  x[2 * K + 5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(h.add_batch(x.data(), 3), lowbit::Error);
  CHECK_THROWS_AS(Hessian<double>(0), lowbit::Error);
  const float* null = nullptr;
  CHECK_THROWS_AS(h.add_batch(null, 2), lowbit::Error);
}
