// Host (CPU) tests of the LLM.int8() reference in lowbit/int8/llm_int8.hpp. Expected values come from
// double-precision references and exactly-representable constructions computed here, never pasted.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <lowbit/int8.hpp>

using namespace lowbit;
using lowbit::int8::kCodeMax;

namespace {

/// Gaussian matrix [R, C] with standard deviation sigma, stored as T.
template <class T>
std::vector<T> gaussian(int R, int C, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<T> v(static_cast<std::size_t>(R) * C);
  for (auto& x : v) x = T(d(rng));
  return v;
}

/// Plants outlier feature columns: every row gets |a| in [lo, hi] with a random sign in each column.
template <class T>
std::vector<int> plant_outliers(std::vector<T>& A, int M, int K, int count, float lo, float hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> col(0, K - 1);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::vector<int> cols;
  while (static_cast<int>(cols.size()) < count) {
    const int c = col(rng);
    if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
  }
  std::sort(cols.begin(), cols.end());
  for (int m = 0; m < M; ++m)
    for (int c : cols) A[static_cast<std::size_t>(m) * K + c] = T((rng() & 1 ? 1.f : -1.f) * mag(rng));
  return cols;
}

/// Relative error predicted by the uniform rounding-noise model (each code off by U(-1/2, 1/2) steps):
/// var(Y[m,n]) = Σ_k step_a[m]² w² / 12 + a² step_w[n]² / 12 over the int8 (non-outlier) columns, plus
/// the weight rounding of the outlier columns when they use the dequantized int8 weight.
template <class T>
double predicted_error(const std::vector<T>& A, const std::vector<T>& W, int M, int N, int K,
                       const int8::ActivationQuant& aq, const int8::Int8Weight& wq, bool outliers_use_int8,
                       const std::vector<double>& ref) {
  std::vector<char> is_out(static_cast<std::size_t>(K), 0);
  for (int c : aq.outlier_cols) is_out[c] = 1;
  double var = 0, den = 0;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      const double sa = aq.row_absmax[m] / kCodeMax, sw = wq.scales[n] / kCodeMax;
      for (int k = 0; k < K; ++k) {
        const double a = to_float(A[static_cast<std::size_t>(m) * K + k]);
        const double w = to_float(W[static_cast<std::size_t>(n) * K + k]);
        if (!is_out[k]) var += (sa * sa * w * w + a * a * sw * sw) / 12.0;
        else if (outliers_use_int8) var += a * a * sw * sw / 12.0;
      }
      den += ref[static_cast<std::size_t>(m) * N + n] * ref[static_cast<std::size_t>(m) * N + n];
    }
  return std::sqrt(var / den);
}

}  // namespace

TEST_CASE("int8 weight quantization: per-row absmax, codes within half a step", "[int8][host]") {
  std::mt19937 rng(11);
  const int N = 37, K = 129;
  auto W = gaussian<float>(N, K, 0.05f, rng);
  for (int k = 0; k < K; ++k) W[5 * K + k] = 0.f;  // an all-zero row
  const auto q = int8::quantize_weight(W.data(), N, K);
  for (int n = 0; n < N; ++n) {
    double amax = 0;
    int cmax = 0;
    for (int k = 0; k < K; ++k) {
      amax = std::max(amax, std::fabs(double(W[n * K + k])));
      cmax = std::max(cmax, std::abs(int(q.codes[n * K + k])));
    }
    REQUIRE(q.scales[n] == Approx(amax).epsilon(0));
    if (n == 5) {
      REQUIRE(q.scales[n] == 0.f);
      REQUIRE(cmax == 0);
      continue;
    }
    REQUIRE(cmax == kCodeMax);  // the absmax element maps to ±127
    for (int k = 0; k < K; ++k)
      REQUIRE(std::fabs(q.dequant(n, k) - W[n * K + k]) <= 0.5 * amax / kCodeMax * (1 + 1e-5));
  }
  W[3] = std::nanf("");
  REQUIRE_THROWS_WITH(int8::quantize_weight(W.data(), N, K), Catch::Contains("non-finite"));
  REQUIRE_THROWS_AS(int8::quantize_weight(W.data(), 0, K), Error);
}

TEST_CASE("int8 activation pass: outlier columns, row absmax below threshold, codes", "[int8][host]") {
  std::mt19937 rng(12);
  const int M = 9, K = 300;
  const float t = 3.0f;
  auto A = gaussian<float>(M, K, 1.2f, rng);  // naturally crosses 3.0 in a few places
  const auto aq = int8::quantize_activations(A.data(), M, K, t);
  // brute-force definition
  std::vector<int> cols;
  for (int k = 0; k < K; ++k) {
    bool any = false;
    for (int m = 0; m < M; ++m) any |= std::fabs(A[m * K + k]) >= t;
    if (any) cols.push_back(k);
  }
  REQUIRE(!cols.empty());
  REQUIRE(aq.outlier_cols == cols);
  REQUIRE(aq.nonfinite == 0);
  for (int m = 0; m < M; ++m) {
    float amax = 0;
    for (int k = 0; k < K; ++k)
      if (std::fabs(A[m * K + k]) < t) amax = std::max(amax, std::fabs(A[m * K + k]));
    REQUIRE(aq.row_absmax[m] == amax);
    for (int k = 0; k < K; ++k) {
      const float a = A[m * K + k];
      const int c = aq.codes[m * K + k];
      if (std::fabs(a) >= t) {
        REQUIRE(c == 0);
      } else {
        REQUIRE(std::abs(c) <= kCodeMax);
        REQUIRE(std::fabs(c * amax / kCodeMax - a) <= 0.5 * amax / kCodeMax * (1 + 1e-5));
      }
    }
  }
  // threshold 0 disables detection: no outliers, absmax over every entry
  const auto a0 = int8::quantize_activations(A.data(), M, K, 0.f);
  REQUIRE(a0.outlier_cols.empty());
  for (int m = 0; m < M; ++m) {
    float amax = 0;
    for (int k = 0; k < K; ++k) amax = std::max(amax, std::fabs(A[m * K + k]));
    REQUIRE(a0.row_absmax[m] == amax);
  }
}

TEST_CASE("int8 decomposition is exact on exactly representable data", "[int8][host]") {
  // Integer activations in [-127,127] with a 127 in every row and integer weights with a 127 in every
  // row quantize without error (scale 127 -> reciprocal 1), so the int8 path must reproduce A·Wᵀ exactly;
  // planted outliers (|a| = 300 > threshold 200) then go through the high-precision path, also exactly.
  std::mt19937 rng(13);
  const int M = 7, N = 11, K = 160;
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<float> A(M * K), W(N * K), bias(N);
  for (auto& x : A) x = float(d(rng));
  for (auto& x : W) x = float(d(rng));
  for (auto& b : bias) b = float(d(rng)) * 0.25f;
  for (int m = 0; m < M; ++m) A[m * K + (m % K)] = 127.f;
  for (int n = 0; n < N; ++n) W[n * K + (3 * n + 1) % K] = -127.f;
  for (int m = 0; m < M; ++m) {
    A[m * K + 50] = (m & 1) ? 300.f : -300.f;
    A[m * K + 99] = 310.f;
  }
  const auto wq = int8::quantize_weight(W.data(), N, K);
  const auto ref = int8::matmul_reference(A.data(), M, K, W.data(), N, bias.data());
  const auto y = int8::linear_reference(A.data(), M, K, wq, bias.data(), 200.f);
  const auto aq = int8::quantize_activations(A.data(), M, K, 200.f);
  REQUIRE(aq.outlier_cols == std::vector<int>{50, 99});
  for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(ref[i]).margin(1e-9));
}

TEMPLATE_TEST_CASE("LLM.int8() phenomenon: planted outlier columns ruin vector-wise int8, decomposition holds",
                   "[int8][host]", float, half_t, bfloat16_t) {
  // ~0.1 % of K (4 of 4096) outlier feature columns with |a| in [20, 60] in every row.
  std::mt19937 rng(14);
  const int M = 24, N = 48, K = 4096;
  auto A = gaussian<TestType>(M, K, 1.0f, rng);
  auto W = gaussian<TestType>(N, K, 0.02f, rng);
  // keep the normal part below the threshold so the planted columns are the only outliers
  for (auto& a : A)
    if (std::fabs(to_float(a)) >= 5.5f) a = TestType(0.5f);
  const auto cols = plant_outliers(A, M, K, 4, 20.f, 60.f, rng);
  const auto ref = int8::matmul_reference(A.data(), M, K, W.data(), N, nullptr);
  const auto wq = int8::quantize_weight(W.data(), N, K);

  const auto aq = int8::quantize_activations(A.data(), M, K, int8::kDefaultThreshold);
  REQUIRE(aq.outlier_cols == cols);
  const auto y_dec = int8::decomposed_matmul(A.data(), aq, wq, nullptr);
  const auto y_vw = int8::linear_reference(A.data(), M, K, wq, nullptr, 0.f);  // plain vector-wise W8A8
  const double e_dec = int8::relative_error(y_dec, ref);
  const double e_vw = int8::relative_error(y_vw, ref);

  // What 8-bit rounding alone must cost on this data (noise model from the actual scales).
  const double pred_dec = predicted_error(A, W, M, N, K, aq, wq, true, ref);
  const auto a0 = int8::quantize_activations(A.data(), M, K, 0.f);
  const double pred_vw = predicted_error(A, W, M, N, K, a0, wq, true, ref);
  // fp16 output rounding: half an ulp of each output, relative 2^-11.
  const double fp16_level = std::ldexp(1.0, -11);
  INFO("e_dec " << e_dec << " pred_dec " << pred_dec << " e_vw " << e_vw << " pred_vw " << pred_vw);
  // The decomposition behaves like int8 on outlier-free data: within the noise model (1.5x slack for
  // correlations in a finite sample) plus the fp16 output rounding.
  REQUIRE(e_dec <= 1.5 * pred_dec + fp16_level);
  // Vector-wise int8 is dominated by the outlier-inflated row scale (steps ~ 60/127 instead of ~4/127).
  REQUIRE(pred_vw >= 5.0 * pred_dec);
  REQUIRE(e_vw >= 0.7 * pred_vw);
  REQUIRE(e_vw >= 4.0 * e_dec);

  // Calibrated fp16 side copy of the outlier dimensions removes the weight rounding of the largest
  // products: it must beat the dequantized-int8 default on these outlier-heavy activations.
  const auto side = int8::calibrate_side_copy(A.data(), M, W.data(), N, K, int8::kDefaultThreshold, 8);
  REQUIRE(side.dims == cols);
  const auto y_side = int8::decomposed_matmul(A.data(), aq, wq, nullptr, &side);
  const double e_side = int8::relative_error(y_side, ref);
  const double pred_side = predicted_error(A, W, M, N, K, aq, wq, false, ref);
  INFO("e_side " << e_side << " pred_side " << pred_side);
  REQUIRE(pred_side < pred_dec);
  REQUIRE(e_side < e_dec);
}

TEST_CASE("int8 edge cases: threshold 0, no outliers, all outliers", "[int8][host]") {
  std::mt19937 rng(15);
  const int M = 5, N = 13, K = 96;
  auto A = gaussian<float>(M, K, 1.f, rng);
  auto W = gaussian<float>(N, K, 0.1f, rng);
  for (auto& a : A)
    if (a == 0.f) a = 0.25f;
  std::vector<float> bias(N);
  for (int n = 0; n < N; ++n) bias[n] = 0.01f * n;
  const auto wq = int8::quantize_weight(W.data(), N, K);

  // A threshold above every |a| finds no outliers and equals threshold 0 (plain W8A8) exactly.
  const auto y0 = int8::linear_reference(A.data(), M, K, wq, bias.data(), 0.f);
  const auto yh = int8::linear_reference(A.data(), M, K, wq, bias.data(), 1e6f);
  REQUIRE(y0 == yh);

  // A threshold below every |a| makes every column an outlier: no int8 activations, so Y is the
  // high-precision product with the dequantized int8 weight (W8A16).
  const auto aq = int8::quantize_activations(A.data(), M, K, 1e-20f);
  REQUIRE(static_cast<int>(aq.outlier_cols.size()) == K);
  for (int m = 0; m < M; ++m) REQUIRE(aq.row_absmax[m] == 0.f);
  const auto yall = int8::linear_reference(A.data(), M, K, wq, bias.data(), 1e-20f);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double r = bias[n];
      for (int k = 0; k < K; ++k) r += double(A[m * K + k]) * (double(wq.codes[n * K + k]) * wq.scales[n] / kCodeMax);
      REQUIRE(yall[m * N + n] == Approx(r).epsilon(1e-12).margin(1e-12));
    }
  REQUIRE_THROWS_WITH(int8::linear_reference(A.data(), M, K + 1, wq, nullptr), Catch::Contains("does not match"));
}

TEST_CASE("int8 non-finite activations are reported", "[int8][host]") {
  std::mt19937 rng(16);
  const int M = 4, N = 8, K = 64;
  auto A = gaussian<half_t>(M, K, 1.f, rng);
  auto W = gaussian<half_t>(N, K, 0.1f, rng);
  const auto wq = int8::quantize_weight(W.data(), N, K);
  A[1 * K + 7] = half_t(std::nanf(""));
  A[2 * K + 9] = half_t(INFINITY);
  const auto aq = int8::quantize_activations(A.data(), M, K, 6.f);
  REQUIRE(aq.nonfinite == 2);
  REQUIRE(aq.codes[1 * K + 7] == 0);
  REQUIRE(std::find(aq.outlier_cols.begin(), aq.outlier_cols.end(), 9) != aq.outlier_cols.end());  // inf >= t
  REQUIRE(std::isfinite(aq.row_absmax[1]));
  REQUIRE_THROWS_WITH(int8::linear_reference(A.data(), M, K, wq, nullptr), Catch::Contains("2 non-finite"));
}
