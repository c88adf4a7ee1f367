// refine_scales (gptq/refine.hpp): the refit scales are the least-squares optimum of the output error
// (checked against normal equations built and solved naively here), the error it reports matches
// lowbit::output_error on the dequantized weights, it never rises on the given Hessian, codes / zeros /
// g_idx are untouched for every width, grouping, sym/asym and act-order, and bad input is refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <lowbit/gptq.hpp>

#include "gptq_test_util.hpp"

using namespace lowbit;
using lowbit::gptq::refine_scales;
using lowbit::gptq::RefineOptions;

namespace {

// Solves A x = b (n x n, dense) by Gaussian elimination with partial pivoting.
std::vector<double> gauss_solve(std::vector<double> A, std::vector<double> b, std::size_t n) {
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(A[r * n + c]) > std::fabs(A[p * n + c])) p = r;
    for (std::size_t j = 0; j < n; ++j) std::swap(A[c * n + j], A[p * n + j]);
    std::swap(b[c], b[p]);
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = A[r * n + c] / A[c * n + c];
      for (std::size_t j = c; j < n; ++j) A[r * n + j] -= f * A[c * n + j];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t j = i + 1; j < n; ++j) s -= A[i * n + j] * x[j];
    x[i] = s / A[i * n + i];
  }
  return x;
}

float next_half_up(float s) {  // the next fp16 value above a positive fp16 value
  return half_bits_to_float(static_cast<std::uint16_t>(float_to_half_bits(s) + 1));
}

}  // namespace

TEST_CASE("refine_scales gives the least-squares scales of each row", "[gptq][refine]") {
  const std::size_t N = 6, K = 64, n = 256;
  const auto X = gptq_test::correlated_inputs(n, K, 71, 8.0);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 72);
  QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 16;
  const QuantizedWeight q0 = rtn_quantize(W.data(), N, K, spec);
  QuantizedWeight q = q0;
  RefineOptions opt;
  opt.ridge = 0.0;
  const auto rep = refine_scales(q, W.data(), H.data(), opt);
  const std::size_t G = q.groups();
  REQUIRE(G == 4);
  CHECK(rep.rows_changed > 0);
  for (std::size_t r = 0; r < N; ++r) {
    // Q [K, G] of this row, normal equations (Qᵀ H Q) a = Qᵀ H w written out
    std::vector<double> Q(K * G, 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t g = static_cast<std::size_t>(q0.g_idx[k]);
      Q[k * G + g] = double(q0.codes[k * N + r]) - double(q0.zeros[g * N + r]);
    }
    std::vector<double> A(G * G, 0.0), b(G, 0.0);
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t l = 0; l < K; ++l) {
          for (std::size_t h = 0; h < G; ++h) A[g * G + h] += Q[k * G + g] * H[k * K + l] * Q[l * G + h];
          b[g] += Q[k * G + g] * H[k * K + l] * W[r * K + l];
        }
    const std::vector<double> a = gauss_solve(A, b, G);
    const bool row_changed = [&] {
      for (std::size_t g = 0; g < G; ++g)
        if (q.scales[g * N + r] != q0.scales[g * N + r]) return true;
      return false;
    }();
    if (!row_changed) continue;  // (kept only when the rounded optimum beats the old scales)
    for (std::size_t g = 0; g < G; ++g) {
      const float want = round_to_half(static_cast<float>(a[g]));
      const float got = q.scales[g * N + r];
      INFO("row " << r << " group " << g << " optimum " << a[g]);
      // equal, or the neighbouring fp16 value when the optimum sits at a rounding boundary
      CHECK((got == want || got == next_half_up(want) || next_half_up(got) == want));
    }
  }
}

TEST_CASE("refine_scales never raises the error on its Hessian and keeps codes, zeros and g_idx",
          "[gptq][refine]") {
  const std::size_t N = 32, K = 256, n = 512;
  const auto X = gptq_test::correlated_inputs(n, K, 81, 16.0);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 82);
  for (int bits : {2, 3, 4, 8})
    for (int group : {0, 32, 128})
      for (int sym = 0; sym < 2; ++sym)
        for (int act = 0; act < 2; ++act) {
          QuantSpec spec;
          spec.bits = bits;
          spec.group_size = group;
          spec.sym = sym != 0;
          gptq::GptqOptions go;
          go.act_order = act != 0;
          go.compute_errors = false;
          const QuantizedWeight q0 = gptq::gptq_quantize<float>(W.data(), N, K, H.data(), spec, go).weight;
          QuantizedWeight q = q0;
          const auto rep = refine_scales(q, W.data(), H.data());
          INFO("bits " << bits << " group " << group << " sym " << sym << " act-order " << act);
          validate(q);
          CHECK(q.codes == q0.codes);
          CHECK(q.zeros == q0.zeros);
          CHECK(q.g_idx == q0.g_idx);
          const double e0 = output_error(W.data(), dequantize(q0).data(), N, K, H.data());
          const double e1 = output_error(W.data(), dequantize(q).data(), N, K, H.data());
          CHECK(rep.error_before == Approx(e0).epsilon(1e-9));
          CHECK(rep.error_after == Approx(e1).epsilon(1e-9));
          CHECK(e1 <= e0 * (1 + 1e-12));
          if (rep.rows_changed == 0) CHECK(q.scales == q0.scales);
          if (bits <= 3) CHECK(e1 < e0);  // coarse grids: the weight-space scales are never all optimal
        }
}

TEST_CASE("refine_scales refuses bad input", "[gptq][refine]") {
  const std::size_t N = 4, K = 32, n = 64;
  const auto X = gptq_test::correlated_inputs(n, K, 91);
  auto H = gptq_test::brute_hessian(X, n, K);
  auto W = gptq_test::random_weights(N, K, 92);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 16;
  QuantizedWeight q = rtn_quantize(W.data(), N, K, spec);
  const QuantizedWeight q0 = q;
  RefineOptions opt;
  opt.layer = "blk.7.down";
  W[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(refine_scales(q, W.data(), H.data(), opt), Catch::Contains("blk.7.down") &&
                                                                    Catch::Contains("non-finite weight"));
  W[5] = 0.f;
  H[3] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(refine_scales(q, W.data(), H.data(), opt), Catch::Contains("non-finite Hessian"));
  H[3] = 0.0;
  opt.ridge = -1.0;
  CHECK_THROWS_WITH(refine_scales(q, W.data(), H.data(), opt), Catch::Contains("ridge"));
  opt.ridge = 1e-6;
  q.scales[0] = 0.f;
  CHECK_THROWS_WITH(refine_scales(q, W.data(), H.data(), opt), Catch::Contains("scale"));
  q.scales[0] = q0.scales[0];
  CHECK(q.scales == q0.scales);  // nothing was changed by the refused calls
}
