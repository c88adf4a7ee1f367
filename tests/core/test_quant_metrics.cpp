// Error metrics against explicit computations, dequantize/validate round trips and validate's errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <lowbit/quant.hpp>

TEST_CASE("output_error equals ||dW X^T||^2 with H = X^T X built explicitly", "[core][metrics]") {
  // N not a multiple of the 4-row blocking, K odd.
  for (std::size_t N : {1u, 5u, 13u}) {
    const std::size_t K = 37, M = 23;
    std::mt19937 rng(static_cast<std::uint32_t>(N));
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<float> W(N * K), Wq(N * K), X(M * K);
    for (auto& v : W) v = d(rng);
    for (std::size_t i = 0; i < W.size(); ++i) Wq[i] = W[i] + 0.1f * d(rng);
    for (auto& v : X) v = d(rng);
    for (std::size_t m = 0; m < M; ++m) X[m * K + 3] *= 20.f;  // a strong feature column
    std::vector<double> H(K * K, 0.0);
    for (std::size_t i = 0; i < K; ++i)
      for (std::size_t j = 0; j < K; ++j)
        for (std::size_t m = 0; m < M; ++m) H[i * K + j] += double(X[m * K + i]) * double(X[m * K + j]);
    double direct = 0.0;  // sum over samples and outputs of (dW x)^2
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n) {
        double y = 0.0;
        for (std::size_t k = 0; k < K; ++k) y += (double(W[n * K + k]) - double(Wq[n * K + k])) * double(X[m * K + k]);
        direct += y * y;
      }
    CHECK(lowbit::output_error(W.data(), Wq.data(), N, K, H.data()) == Approx(direct).epsilon(1e-10));
    CHECK(lowbit::output_error(W.data(), W.data(), N, K, H.data()) == 0.0);
  }
}

TEST_CASE("relative_weight_error by hand", "[core][metrics]") {
  const std::vector<float> W{3.f, 4.f};
  const std::vector<float> Wq{3.f, 3.f};
  CHECK(lowbit::relative_weight_error(W.data(), Wq.data(), 2) == Approx(1.0 / 5.0));
  CHECK(lowbit::relative_weight_error(W.data(), W.data(), 2) == 0.0);
  const std::vector<float> Z{0.f, 0.f};
  CHECK(lowbit::relative_weight_error(Z.data(), Z.data(), 2) == 0.0);
  CHECK(std::isinf(lowbit::relative_weight_error(Z.data(), W.data(), 2)));
}

TEST_CASE("dequantize follows g_idx (act-order style column permutation)", "[core][metrics]") {
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 2;
  lowbit::QuantizedWeight q = lowbit::make_quantized_weight(3, 4, spec);
  REQUIRE(q.scales.size() == 2 * 3);
  // Two groups with different scales/zeros; column order interleaved through g_idx.
  q.g_idx = {1, 0, 1, 0};
  for (std::size_t n = 0; n < 3; ++n) {
    q.scales[0 * 3 + n] = 0.5f;
    q.zeros[0 * 3 + n] = 8;
    q.scales[1 * 3 + n] = 0.25f;
    q.zeros[1 * 3 + n] = 3;
  }
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t n = 0; n < 3; ++n) q.codes[k * 3 + n] = static_cast<std::uint8_t>(k + n);
  const std::vector<float> W = lowbit::dequantize(q);
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t k = 0; k < 4; ++k) {
      const bool g1 = k % 2 == 0;
      const float expect = g1 ? 0.25f * (float(k + n) - 3.f) : 0.5f * (float(k + n) - 8.f);
      CHECK(W[n * 4 + k] == expect);
    }
}

TEST_CASE("validate names each kind of corruption", "[core][metrics]") {
  lowbit::QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 4;
  std::vector<float> Wf(5 * 8);
  for (std::size_t i = 0; i < Wf.size(); ++i) Wf[i] = std::sin(float(i));
  const lowbit::QuantizedWeight good = lowbit::rtn_quantize(Wf.data(), 5, 8, spec);
  REQUIRE_NOTHROW(lowbit::validate(good));
  lowbit::QuantizedWeight q = good;
  SECTION("sizes") {
    q.codes.pop_back();
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("codes"));
    q = good;
    q.scales.push_back(1.f);
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("scales"));
    q = good;
    q.zeros.clear();
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("zeros"));
    q = good;
    q.g_idx.resize(3);
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("g_idx"));
  }
  SECTION("code and zero ranges") {
    q.codes[7] = 8;  // 3-bit max is 7
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("code 8"));
    q = good;
    q.zeros[3] = 200;
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("zero 200"));
  }
  SECTION("g_idx range") {
    q.g_idx[5] = 2;  // only groups 0 and 1 exist
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("g_idx[5]"));
    q.g_idx[5] = -1;
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("g_idx[5]"));
  }
  SECTION("scales") {
    for (float bad : {0.f, -0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      q.scales[4] = bad;
      CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("scale"));
      CHECK_THROWS_AS(lowbit::dequantize(q), lowbit::Error);
    }
    q.scales[4] = 0.1f;  // not an fp16 value
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("fp16"));
  }
  SECTION("spec") {
    q.spec.bits = 6;
    CHECK_THROWS_WITH(lowbit::validate(q), Catch::Contains("bits"));
    q = good;
    q.N = 0;
    CHECK_THROWS_AS(lowbit::validate(q), lowbit::Error);
  }
}

TEST_CASE("public helpers: for_each_row_group, sequential_g_idx, make_quantized_weight, check_finite",
          "[core][metrics]") {
  lowbit::QuantSpec spec;
  spec.bits = 2;
  spec.group_size = 8;
  std::vector<int> seen(3 * 24, 0);
  std::size_t calls = 0;
  lowbit::for_each_row_group(3, 24, spec, [&](std::size_t n, std::size_t g, std::size_t k0, std::size_t k1) {
    CHECK(k1 - k0 == 8);
    CHECK(k0 == g * 8);
    for (std::size_t k = k0; k < k1; ++k) ++seen[n * 24 + k];
    ++calls;
  });
  CHECK(calls == 3 * 3);
  for (int s : seen) CHECK(s == 1);  // every (row, column) visited exactly once
  CHECK(lowbit::sequential_g_idx(24, spec) ==
        std::vector<std::int32_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2});
  spec.group_size = 0;
  CHECK(lowbit::sequential_g_idx(5, spec) == std::vector<std::int32_t>(5, 0));
  const lowbit::QuantizedWeight q = lowbit::make_quantized_weight(3, 5, spec);
  CHECK(q.codes.size() == 15);
  CHECK(q.scales.size() == 3);
  CHECK(q.zeros.size() == 3);
  CHECK(q.groups() == 1);
  spec.group_size = 4;
  CHECK_THROWS_WITH(lowbit::make_quantized_weight(3, 5, spec), Catch::Contains("does not divide"));
  CHECK_THROWS_WITH(lowbit::for_each_row_group(3, 5, spec, [](auto...) {}), Catch::Contains("does not divide"));
  std::vector<float> W(6, 1.f);
  REQUIRE_NOTHROW(lowbit::check_finite(W.data(), 2, 3));
  W[4] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(lowbit::check_finite(W.data(), 2, 3), Catch::Contains("row 1") && Catch::Contains("column 1"));
}
