// GPTQ host solver: blocked lazy-batch == column-by-column; equals an independent OBS implementation
// (explicit inverse-Hessian downdates) on tiny sizes; dead columns, NaN inputs, bad group sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "lowbit/gptq/solver.hpp"
#include "gptq_test_util.hpp"

using lowbit::QuantSpec;
using lowbit::gptq::GptqOptions;
using lowbit::gptq::gptq_quantize;

namespace {

struct ObsResult {
  std::vector<std::uint8_t> codes;  // [K, N]
  double loss = 0;
};

// Independent OBS reference (arXiv 2208.11580 / 2210.17323 eq. 2-3), one row at a time, in double:
// keep the full inverse Hessian over the not-yet-quantized columns F; quantize column i (in solve
// order), update w_F -= (w_i - q_i) / Hinv[i,i] * Hinv[F, i], then downdate
// Hinv <- Hinv - Hinv[:, i] Hinv[i, :] / Hinv[i, i]. Group parameters at each group start (in solve
// order) from the current weights. Dead columns: H[i,i] = 1, w_i = 0. Per-channel: parameters from the
// original row.
ObsResult obs_reference(const std::vector<float>& W, std::size_t N, std::size_t K, std::vector<double> H,
                        const QuantSpec& spec, bool act_order, double damp) {
  const std::size_t gs = spec.effective_group(K);
  std::vector<char> dead(K);
  for (std::size_t i = 0; i < K; ++i) {
    dead[i] = H[i * K + i] == 0.0;
    if (dead[i]) H[i * K + i] = 1.0;
  }
  std::vector<std::size_t> order(K);
  std::iota(order.begin(), order.end(), 0);
  if (act_order)
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return H[a * K + a] > H[b * K + b]; });
  double md = 0;
  for (std::size_t i = 0; i < K; ++i) md += H[i * K + i];
  md /= static_cast<double>(K);
  for (std::size_t i = 0; i < K; ++i) H[i * K + i] += damp * md;
  // inverse by Gauss-Jordan (H is SPD: no pivoting needed)
  std::vector<double> A = H, Hinv(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) Hinv[i * K + i] = 1;
  for (std::size_t c = 0; c < K; ++c) {
    const double d = A[c * K + c];
    for (std::size_t j = 0; j < K; ++j) {
      A[c * K + j] /= d;
      Hinv[c * K + j] /= d;
    }
    for (std::size_t r = 0; r < K; ++r)
      if (r != c) {
        const double f = A[r * K + c];
        for (std::size_t j = 0; j < K; ++j) {
          A[r * K + j] -= f * A[c * K + j];
          Hinv[r * K + j] -= f * Hinv[c * K + j];
        }
      }
  }
  ObsResult res;
  res.codes.assign(K * N, 0);
  for (std::size_t r = 0; r < N; ++r) {
    std::vector<double> w(K);
    for (std::size_t k = 0; k < K; ++k) w[k] = dead[k] ? 0.0 : W[r * K + k];
    std::vector<double> Hi = Hinv;
    lowbit::ScaleZero sz{};
    if (spec.group_size <= 0) sz = lowbit::find_scale_zero(W.data() + r * K, K, 1, spec);
    for (std::size_t t = 0; t < K; ++t) {
      const std::size_t i = order[t];
      if (spec.group_size > 0 && t % gs == 0) {
        std::vector<float> g(gs);
        for (std::size_t j = 0; j < gs; ++j) g[j] = static_cast<float>(w[order[t + j]]);
        sz = lowbit::find_scale_zero(g.data(), gs, 1, spec);
      }
      const std::uint32_t code = lowbit::dispatch_bits(spec.bits, [&](auto B) {
        return lowbit::quantize_code<decltype(B)::value>(static_cast<float>(w[i]), sz.scale, sz.zero);
      });
      res.codes[i * N + r] = static_cast<std::uint8_t>(code);
      const double q = lowbit::dequantize_code(code, sz.scale, sz.zero);
      const double dii = Hi[i * K + i];
      const double e = (w[i] - q) / dii;
      res.loss += (w[i] - q) * (w[i] - q) / dii / 2.0;
      for (std::size_t s = t + 1; s < K; ++s) {
        const std::size_t j = order[s];
        w[j] -= e * Hi[j * K + i];
      }
      w[i] = q;
      // downdate: remove column i
      std::vector<double> col(K);
      for (std::size_t j = 0; j < K; ++j) col[j] = Hi[j * K + i];
      for (std::size_t a = 0; a < K; ++a)
        for (std::size_t b = 0; b < K; ++b) Hi[a * K + b] -= col[a] * col[b] / dii;
    }
  }
  return res;
}

std::size_t count_diff(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::size_t d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}

}  // namespace

TEST_CASE("GPTQ equals an independent OBS implementation on tiny layers", "[gptq][solver]") {
  const std::size_t N = 6, K = 24, n = 64;
  const auto X = gptq_test::correlated_inputs(n, K, 21, 8.0);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 22);
  for (int bits : {2, 3, 4, 8})
    for (int group : {-1, 8, 12})
      for (bool sym : {false, true})
        for (bool act : {false, true}) {
          QuantSpec spec;
          spec.bits = bits;
          spec.group_size = group;
          spec.sym = sym;
          GptqOptions opt;
          opt.block = 5;  // several blocks, group starts inside blocks
          opt.act_order = act;
          opt.threads = 1;
          const auto res = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
          const auto ref = obs_reference(W, N, K, H, spec, act, opt.damp);
          INFO("bits " << bits << " group " << group << " sym " << sym << " act " << act);
          CHECK(count_diff(res.weight.codes, ref.codes) == 0);
          CHECK(res.report.loss == Approx(ref.loss).epsilon(1e-9));
        }
}

TEST_CASE("blocked lazy-batch updates give the same codes as column-by-column", "[gptq][solver]") {
  const std::size_t N = 33, K = 192, n = 256;
  const auto X = gptq_test::correlated_inputs(n, K, 31, 4.0);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 32);
  for (int bits : {2, 3, 4, 8})
    for (int group : {-1, 32, 64, 96})
      for (bool act : {false, true}) {
        QuantSpec spec;
        spec.bits = bits;
        spec.group_size = group;
        GptqOptions one;
        one.block = 1;
        one.act_order = act;
        one.compute_errors = false;
        const auto ref = gptq_quantize<double>(W.data(), N, K, H.data(), spec, one);
        for (int block : {7, 64, 128, 500}) {
          GptqOptions opt = one;
          opt.block = block;
          opt.threads = 2;
          const auto res = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
          INFO("bits " << bits << " group " << group << " act " << act << " block " << block);
          CHECK(count_diff(res.weight.codes, ref.weight.codes) == 0);
          CHECK(res.weight.scales == ref.weight.scales);
          CHECK(res.weight.zeros == ref.weight.zeros);
          CHECK(res.weight.g_idx == ref.weight.g_idx);
          CHECK(res.report.loss == Approx(ref.report.loss).epsilon(1e-12));
        }
      }
}

TEST_CASE("float solve agrees with the double solve", "[gptq][solver]") {
  const std::size_t N = 64, K = 256, n = 512;
  const auto X = gptq_test::correlated_inputs(n, K, 41);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 42);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 64;
  GptqOptions opt;
  opt.act_order = true;
  const auto rd = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
  const auto rf = gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
  CHECK(count_diff(rd.weight.codes, rf.weight.codes) <= N * K / 100);  // only near-ties flip
  CHECK(rf.report.gptq_error == Approx(rd.report.gptq_error).epsilon(0.01));
  lowbit::validate(rf.weight);
}

TEST_CASE("act-order g_idx and static groups", "[gptq][solver]") {
  const std::size_t N = 16, K = 128, n = 256;
  const auto X = gptq_test::correlated_inputs(n, K, 51, 16.0);
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 52);
  QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 32;
  GptqOptions opt;
  opt.act_order = true;
  const auto res = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
  lowbit::validate(res.weight);
  // g_idx: the columns with the 32 largest diag(H) form group 0, and every group has 32 columns
  std::vector<std::size_t> order(K);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return H[a * K + a] > H[b * K + b]; });
  for (std::size_t t = 0; t < K; ++t) REQUIRE(res.weight.g_idx[order[t]] == static_cast<int>(t / 32));
  bool permuted = false;
  for (std::size_t k = 0; k < K; ++k) permuted |= res.weight.g_idx[k] != static_cast<int>(k / 32);
  CHECK(permuted);

  // static groups: g_idx = k / group and the parameters are RTN's (computed before any feedback)
  opt.static_groups = true;
  const auto st = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
  const auto rtn = lowbit::rtn_quantize(W.data(), N, K, spec);
  CHECK(st.weight.g_idx == rtn.g_idx);
  CHECK(st.weight.scales == rtn.scales);
  CHECK(st.weight.zeros == rtn.zeros);
  CHECK(st.report.gptq_error < st.report.rtn_error);
}

TEST_CASE("dead columns are zeroed and do not disturb the rest", "[gptq][solver]") {
  const std::size_t N = 12, K = 64, n = 128;
  auto X = gptq_test::correlated_inputs(n, K, 61);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t k : {std::size_t{3}, std::size_t{40}, std::size_t{63}}) X[s * K + k] = 0.f;
  const auto H = gptq_test::brute_hessian(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 62);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 16;
  for (bool act : {false, true}) {
    GptqOptions opt;
    opt.act_order = act;
    const auto res = gptq_quantize<double>(W.data(), N, K, H.data(), spec, opt);
    CHECK(res.report.dead_columns == 3);
    const auto Wq = lowbit::dequantize(res.weight);
    for (std::size_t r = 0; r < N; ++r)
      for (std::size_t k : {std::size_t{3}, std::size_t{40}, std::size_t{63}}) REQUIRE(Wq[r * K + k] == 0.f);
    for (float v : Wq) REQUIRE(std::isfinite(v));
    CHECK(res.report.gptq_error < res.report.rtn_error);
    // equals the OBS reference too
    const auto ref = obs_reference(W, N, K, H, spec, act, 0.01);
    CHECK(count_diff(res.weight.codes, ref.codes) == 0);
  }
}

TEST_CASE("indefinite Hessian: damping escalation is reported; hopeless H names the layer", "[gptq][solver]") {
  const std::size_t N = 8, K = 32;
  std::vector<double> H(K * K, 0.0);
  for (std::size_t i = 0; i < K; ++i) H[i * K + i] = 1.0;
  H[5 * K + 5] = -0.05;
  const auto W = gptq_test::random_weights(N, K, 71);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 16;
  GptqOptions opt;
  opt.layer = "blk.7.ffn_down";
  const auto res = gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
  CHECK(res.report.damp_attempts == 2);
  CHECK(res.report.damp_used == Approx(0.1));
  for (float s : res.weight.scales) REQUIRE(std::isfinite(s));
  H[5 * K + 5] = -20.0;  // mean diag stays positive, but even 10 x mean(diag) cannot lift it
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt),
                    Catch::Contains("blk.7.ffn_down") && Catch::Contains("not positive definite"));
}

TEST_CASE("bad inputs give clear errors", "[gptq][solver]") {
  const std::size_t N = 4, K = 48;
  const auto X = gptq_test::correlated_inputs(64, K, 81);
  auto H = gptq_test::brute_hessian(X, 64, K);
  auto W = gptq_test::random_weights(N, K, 82);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 32;  // does not divide 48
  GptqOptions opt;
  opt.layer = "L0";
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt),
                    Catch::Contains("L0") && Catch::Contains("does not divide"));
  spec.group_size = 16;
  spec.bits = 5;
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt), Catch::Contains("bits"));
  spec.bits = 4;
  W[2 * K + 7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt),
                    Catch::Contains("non-finite weight") && Catch::Contains("row 2") && Catch::Contains("column 7"));
  W[2 * K + 7] = 0.f;
  H[3 * K + 9] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt),
                    Catch::Contains("non-finite Hessian"));
  H[3 * K + 9] = 0.0;
  opt.block = 0;
  CHECK_THROWS_WITH(gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt), Catch::Contains("block"));
}
