// Group-wise scale/zero search and RTN against an independent double-precision transcription of the
// published GPTQ quantizer, swept over (bits, group) x sym/asym x MSE on/off on odd shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <lowbit/quant.hpp>

namespace {

// ---------------------------------------------------------------------------------------------
// Reference: the published quantizer written out in double, sharing no code with lowbit.
// ---------------------------------------------------------------------------------------------

double ref_round(double v) { return std::nearbyint(v); }  // ties to even (default rounding mode)

struct Candidate {
  double scale;
  double zero;
  double zraw;  // -xmin/scale before rounding (asymmetric), the zero itself when symmetric
  double err;  // sum |fq(x) - x|^norm over the group (only meaningful with mse)
};

double ref_fake_quant(double w, double s, double z, double maxq) {
  double q = ref_round(w / s) + z;
  q = std::min(std::max(q, 0.0), maxq);
  return s * (q - z);
}

// All candidates the published algorithm considers, in order: without mse just min-max; with mse
// the grid p = 1 - i/grid for i in [0, int(maxshrink*grid)).
std::vector<Candidate> ref_candidates(const float* x, std::size_t n, int bits, const lowbit::QuantSpec& spec) {
  const double maxq = std::pow(2.0, bits) - 1.0;
  double xmin = 0.0, xmax = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    xmin = std::min(xmin, static_cast<double>(x[i]));
    xmax = std::max(xmax, static_cast<double>(x[i]));
  }
  if (spec.sym) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0 && xmax == 0) {
    xmin = -1;
    xmax = 1;
  }
  const double sym_zero = (maxq + 1) / 2;
  auto err_of = [&](double s, double z) {
    double e = 0;
    for (std::size_t i = 0; i < n; ++i) e += std::pow(std::fabs(ref_fake_quant(x[i], s, z, maxq) - x[i]), spec.mse_norm);
    return e;
  };
  std::vector<Candidate> out;
  if (!spec.mse) {
    const double s = (xmax - xmin) / maxq;
    const double zr = spec.sym ? sym_zero : -xmin / s;
    out.push_back({s, ref_round(zr), zr, 0.0});
    return out;
  }
  const int steps = static_cast<int>(static_cast<double>(spec.mse_max_shrink) * spec.mse_grid);
  for (int i = 0; i < steps; ++i) {
    const double p = 1.0 - static_cast<double>(i) / spec.mse_grid;
    const double lo = p * xmin, hi = p * xmax;
    const double s = (hi - lo) / maxq;
    const double zr = spec.sym ? sym_zero : -lo / s;
    const double z = ref_round(zr);
    out.push_back({s, z, zr, err_of(s, z)});
  }
  return out;
}

// True when v lies within `tol` (relative) of a .5 rounding tie, where float and double may round apart.
bool near_tie(double v, double tol) {
  const double frac = v - std::floor(v);
  return std::fabs(frac - 0.5) <= tol * std::max(1.0, std::fabs(v));
}

// Weights with heavy tails and special groups: a few large outliers, a row that is all positive,
// a row that is all negative, and (when it fits) an all-zero group.
std::vector<float> make_weights(std::size_t N, std::size_t K, std::size_t group, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.02f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::vector<float> W(N * K);
  for (auto& w : W) {
    w = normal(rng);
    if (uni(rng) < 0.01f) w *= 12.f;  // outliers
  }
  if (N > 1)
    for (std::size_t k = 0; k < K; ++k) W[1 * K + k] = std::fabs(W[1 * K + k]) + 1e-3f;
  if (N > 2)
    for (std::size_t k = 0; k < K; ++k) W[2 * K + k] = -std::fabs(W[2 * K + k]) - 1e-3f;
  if (N > 3)
    for (std::size_t k = 0; k < group; ++k) W[3 * K + k] = 0.f;  // first group of row 3
  return W;
}

template <int B>
void check_rtn_against_reference(std::size_t N, std::size_t K, const lowbit::QuantSpec& spec, std::uint32_t seed) {
  const double maxq = std::pow(2.0, B) - 1.0;
  const std::size_t group = spec.group_size > 0 ? static_cast<std::size_t>(spec.group_size) : K;
  const std::size_t G = K / group;
  const std::vector<float> W = make_weights(N, K, group, seed);
  const lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), N, K, spec);
  REQUIRE_NOTHROW(lowbit::validate(q));
  REQUIRE(q.codes.size() == K * N);
  REQUIRE(q.scales.size() == G * N);
  for (std::size_t k = 0; k < K; ++k) REQUIRE(q.g_idx[k] == static_cast<std::int32_t>(k / group));
  const std::vector<float> Wq = lowbit::dequantize(q);

  for (std::size_t n = 0; n < N; ++n) {
    for (std::size_t g = 0; g < G; ++g) {
      INFO("row " << n << " group " << g);
      const float* x = W.data() + n * K + g * group;
      const std::vector<Candidate> cands = ref_candidates(x, group, B, spec);
      // 1) The fp32 search picks a reference candidate, and (with mse) one of minimal error.
      const lowbit::ScaleZero fp32 = lowbit::detail::search_scale_zero<B>(x, group, 1, spec);
      const Candidate* match = nullptr;
      for (const Candidate& c : cands) {
        if (std::fabs(fp32.scale - c.scale) <= 2e-6 * c.scale && std::fabs(fp32.zero - c.zero) <= 1.0) {
          match = &c;
          break;
        }
      }
      REQUIRE(match != nullptr);
      if (fp32.zero != match->zero) {  // only where -xmin/scale sits on a .5 tie within float precision
        CHECK(!spec.sym);
        CHECK(near_tie(match->zraw, 1e-5));
      }
      if (spec.mse) {
        double best = std::numeric_limits<double>::infinity();
        for (const Candidate& c : cands) best = std::min(best, c.err);
        CHECK(match->err <= best * (1 + 1e-5) + 1e-30);   // brute force: the grid minimum
        CHECK(match->err <= cands.front().err * (1 + 1e-5) + 1e-30);  // never worse than min-max
      }
      // 2) Stored parameters: scale rounded to fp16 (never 0), zero as searched.
      const float s = q.scales[g * N + n];
      const float z = static_cast<float>(q.zeros[g * N + n]);
      const float expect_s = lowbit::round_to_half(fp32.scale);
      CHECK(s == (expect_s == 0.f ? lowbit::detail::kMinPositiveHalf : expect_s));
      CHECK(z == fp32.zero);
      CHECK(z >= 0.f);
      CHECK(z <= maxq);
      if (spec.sym) CHECK(z == (maxq + 1) / 2);
      const double group_min = *std::min_element(x, x + group);
      // 3) Codes: nearest code with the stored scale, in double; float may differ only at a .5 tie.
      for (std::size_t i = 0; i < group; ++i) {
        const std::size_t k = g * group + i;
        const double t = static_cast<double>(x[i]) / s;
        const double unclamped = ref_round(t) + z;
        const double ref_code = std::min(std::max(unclamped, 0.0), maxq);
        const double code = q.codes[k * N + n];
        if (code != ref_code) {
          INFO("k " << k << " w " << x[i] << " w/s " << t);
          CHECK(near_tie(t, 1.2e-7));
          CHECK(std::fabs(code - ref_code) == 1.0);
        }
        // 4) Dequantized value and per-element error bound inside the clip range.
        const double deq = static_cast<double>(s) * (code - z);
        CHECK(Wq[n * K + k] == static_cast<float>(deq));
        const double e = std::fabs(static_cast<double>(x[i]) - deq);
        if (unclamped >= 0 && unclamped <= maxq) {
          CHECK(e <= s / 2.0 * (1 + 1e-6) + 1e-12);
        } else if (!spec.mse && !(spec.sym && group_min >= 0)) {
          // Min-max range: only fp16 rounding of the scale can push an extreme just past the grid.
          // (A symmetric group without negative values keeps xmin = 0 as published, so its grid
          // [-2^(B-1) s, (2^(B-1)-1) s] with s = xmax/max_code clips the top: only the direction is checked.)
          CHECK(e <= s * (0.5 + (maxq + 1) * std::ldexp(1.0, -10)));
          CHECK((unclamped > maxq ? code == maxq : code == 0));
        } else {
          CHECK((unclamped > maxq ? code == maxq : code == 0));
        }
      }
      // 5) All-zero groups dequantize to exact zeros.
      bool all_zero = std::all_of(x, x + group, [](float v) { return v == 0.f; });
      if (all_zero)
        for (std::size_t i = 0; i < group; ++i) CHECK(Wq[n * K + g * group + i] == 0.f);
    }
  }
}

// Odd shapes: K a non-power-of-two multiple of the group, N odd.
template <int G>
std::size_t odd_k() {
  return G > 0 ? static_cast<std::size_t>(3 * G) : std::size_t{77};
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("RTN matches a double-precision transcription of the published quantizer", "[core][quant]",
                       ((int B, int G), B, G), (2, 0), (2, 32), (2, 64), (2, 128), (3, 0), (3, 32), (3, 64), (3, 128),
                       (4, 0), (4, 32), (4, 64), (4, 128), (8, 0), (8, 32), (8, 64), (8, 128)) {
  const std::size_t K = odd_k<G>();
  const std::size_t N = 7;
  for (int sym = 0; sym < 2; ++sym) {
    for (int mse = 0; mse < 2; ++mse) {
      lowbit::QuantSpec spec;
      spec.bits = B;
      spec.group_size = G;
      spec.sym = sym != 0;
      spec.mse = mse != 0;
      INFO("bits " << B << " group " << G << " sym " << sym << " mse " << mse << " K " << K);
      check_rtn_against_reference<B>(N, K, spec, static_cast<std::uint32_t>(1000 * B + G + 10 * sym + mse));
    }
  }
}

TEST_CASE("round_half_even and quantize_code follow torch.round / clamp", "[core][quant]") {
  CHECK(lowbit::round_half_even(0.5f) == 0.f);
  CHECK(lowbit::round_half_even(1.5f) == 2.f);
  CHECK(lowbit::round_half_even(2.5f) == 2.f);
  CHECK(lowbit::round_half_even(-0.5f) == 0.f);
  CHECK(lowbit::round_half_even(-1.5f) == -2.f);
  CHECK(lowbit::round_half_even(2.4999998f) == 2.f);
  // 4 bits, scale 0.5, zero 8: w = 1.25 -> 2.5 -> 2 (even) + 8 = 10.
  CHECK(lowbit::quantize_code<4>(1.25f, 0.5f, 8.f) == 10u);
  CHECK(lowbit::quantize_code<4>(1.75f, 0.5f, 8.f) == 12u);  // 3.5 -> 4
  CHECK(lowbit::quantize_code<4>(100.f, 0.5f, 8.f) == 15u);  // clamp high
  CHECK(lowbit::quantize_code<4>(-100.f, 0.5f, 8.f) == 0u);  // clamp low
  CHECK(lowbit::quantize_code<2>(std::numeric_limits<float>::quiet_NaN(), 1.f, 1.f) == 0u);
  CHECK(lowbit::quantize_code<8>(std::numeric_limits<float>::infinity(), 1.f, 1.f) == 255u);
  CHECK(lowbit::fake_quantize<4>(1.25f, 0.5f, 8.f) == 1.f);
}

TEMPLATE_TEST_CASE_SIG("all-zero and tiny groups never produce a zero scale or NaN", "[core][quant]", ((int B), B), 2,
                       3, 4, 8) {
  const double maxq = std::pow(2.0, B) - 1.0;
  for (int sym = 0; sym < 2; ++sym) {
    lowbit::QuantSpec spec;
    spec.bits = B;
    spec.group_size = 16;
    spec.sym = sym != 0;
    spec.mse = true;
    // Row 0: all zeros. Row 1: a range far below fp16's smallest subnormal. Row 2: one tiny value.
    std::vector<float> W(3 * 32, 0.f);
    for (std::size_t k = 0; k < 32; ++k) W[32 + k] = 1e-12f * static_cast<float>(static_cast<int>(k) - 16);
    W[2 * 32 + 5] = -3e-9f;
    const lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), 3, 32, spec);
    REQUIRE_NOTHROW(lowbit::validate(q));
    const std::vector<float> Wq = lowbit::dequantize(q);
    // All-zero group: published [-1, 1] fallback, computed here from scratch.
    const double s0 = 2.0 / maxq;
    const double z0 = sym ? (maxq + 1) / 2 : std::nearbyint(1.0 / s0);
    CHECK(q.scales[0] == lowbit::round_to_half(static_cast<float>(s0)));
    // fp32 (as published) may round 1/(2/maxq) = maxq/2 + 0.5 either way: a .5 tie.
    CHECK(std::fabs(static_cast<double>(q.zeros[0]) - z0) <= (sym ? 0.0 : 1.0));
    CHECK((sym || near_tie(1.0 / s0, 1e-6)));
    for (std::size_t i = 0; i < W.size(); ++i) {
      INFO("element " << i);
      CHECK(std::isfinite(Wq[i]));
      CHECK(std::fabs(Wq[i] - W[i]) <= 1e-7f);  // tiny ranges stay tiny
    }
    for (float s : q.scales) CHECK(s > 0.f);
  }
}

TEST_CASE("find_scale_zero: strided access and runtime dispatch agree with the template", "[core][quant]") {
  std::vector<float> col{0.3f, 9.f, -0.7f, 9.f, 0.1f, 9.f, 0.25f, 9.f};  // every other value
  lowbit::QuantSpec spec;
  spec.bits = 3;
  const lowbit::ScaleZero a = lowbit::find_scale_zero<3>(col.data(), 4, 2, spec);
  const lowbit::ScaleZero b = lowbit::find_scale_zero(col.data(), 4, 2, spec);
  CHECK(a.scale == b.scale);
  CHECK(a.zero == b.zero);
  // Hand computation: range [-0.7, 0.3], scale = 1/7, zero = round(0.7*7) = round(4.9) = 5.
  CHECK(a.scale == lowbit::round_to_half(1.0f / 7.0f));
  CHECK(a.zero == 5.f);
}

TEST_CASE("bad inputs are rejected with errors naming the problem", "[core][quant]") {
  std::vector<float> W(4 * 64, 0.01f);
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 32;
  SECTION("non-finite weight names row and column") {
    W[2 * 64 + 5] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(lowbit::rtn_quantize(W.data(), 4, 64, spec),
                      Catch::Contains("row 2") && Catch::Contains("column 5"));
    W[2 * 64 + 5] = 0.f;
    W[3 * 64 + 63] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(lowbit::rtn_quantize(W.data(), 4, 64, spec),
                      Catch::Contains("row 3") && Catch::Contains("column 63"));
  }
  SECTION("group size not dividing K") {
    spec.group_size = 48;
    CHECK_THROWS_WITH(lowbit::rtn_quantize(W.data(), 4, 64, spec), Catch::Contains("does not divide"));
  }
  SECTION("unsupported widths") {
    for (int bits : {0, 1, 5, 7, 9, 16}) {
      spec.bits = bits;
      CHECK_THROWS_WITH(lowbit::rtn_quantize(W.data(), 4, 64, spec), Catch::Contains("bits"));
    }
  }
  SECTION("empty shapes") {
    CHECK_THROWS_AS(lowbit::rtn_quantize(W.data(), 0, 64, spec), lowbit::Error);
    CHECK_THROWS_AS(lowbit::rtn_quantize(W.data(), 4, 0, spec), lowbit::Error);
  }
  SECTION("scales beyond fp16 cannot be stored") {
    W[1 * 64 + 40] = 1e6f;
    spec.bits = 2;
    CHECK_THROWS_WITH(lowbit::rtn_quantize(W.data(), 4, 64, spec),
                      Catch::Contains("fp16") && Catch::Contains("row 1") && Catch::Contains("group 1"));
  }
  SECTION("bad MSE parameters") {
    spec.mse = true;
    spec.mse_grid = 0;
    CHECK_THROWS_AS(lowbit::rtn_quantize(W.data(), 4, 64, spec), lowbit::Error);
  }
}

TEST_CASE("RTN by hand: exact .5 ties round to even, the symmetric grid clips its top", "[core][quant]") {
  // Symmetric 2-bit: xmax = 1.5, xmin = -1.5, scale = 3/3 = 1 (fp16-exact), zero = 2.
  // w/scale = -1.5, -0.5, 0.5, 1.5 -> round half even -2, -0, 0, 2 -> +2 -> 0, 2, 2, 4 -> clamp 3.
  // (Round half away from zero would give 0, 1, 3, 3.)
  const std::vector<float> W{-1.5f, -0.5f, 0.5f, 1.5f};
  lowbit::QuantSpec spec;
  spec.bits = 2;
  spec.group_size = 0;
  spec.sym = true;
  const lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), 1, 4, spec);
  CHECK(q.scales[0] == 1.f);
  CHECK(q.zeros[0] == 2);
  CHECK(q.codes == std::vector<std::uint8_t>{0, 2, 2, 3});
  CHECK(lowbit::dequantize(q) == std::vector<float>{-2.f, 0.f, 0.f, 1.f});
  // Asymmetric 2-bit on [0, 3]: scale 1, zero round(0) = 0, codes are the values themselves.
  const std::vector<float> V{0.f, 1.f, 2.f, 3.f, 2.5f, 0.5f};
  spec.sym = false;
  const lowbit::QuantizedWeight r = lowbit::rtn_quantize(V.data(), 1, 6, spec);
  CHECK(r.scales[0] == 1.f);
  CHECK(r.zeros[0] == 0);
  CHECK(r.codes == std::vector<std::uint8_t>{0, 1, 2, 3, 2, 0});
  // Published symmetric quirk: no negative value keeps xmin = 0, so scale = xmax/3 = 1 around zero 2
  // and everything above 1 clips to the top code.
  const std::vector<float> P{1.f, 2.f, 3.f, 0.f};
  spec.sym = true;
  const lowbit::QuantizedWeight p = lowbit::rtn_quantize(P.data(), 1, 4, spec);
  CHECK(p.scales[0] == 1.f);
  CHECK(p.zeros[0] == 2);
  CHECK(p.codes == std::vector<std::uint8_t>{3, 3, 3, 2});
}
