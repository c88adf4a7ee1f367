// The `lowbit demo` building blocks (examples/lowbit/demo.cpp): the synthetic layer has the
// statistics it claims, the table rows are computed from independent definitions, and bad options
// are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/quant.hpp>

#include "commands.hpp"
#include "demo.hpp"

namespace {
constexpr std::size_t kN = 64, kK = 256, kM = 96;
}

TEST_CASE("demo layer: deterministic, H = X^T X, strong feature columns", "[core][demo]") {
  const lowbit_cli::DemoLayer a = lowbit_cli::make_demo_layer(kN, kK, kM, 7);
  const lowbit_cli::DemoLayer b = lowbit_cli::make_demo_layer(kN, kK, kM, 7);
  const lowbit_cli::DemoLayer c = lowbit_cli::make_demo_layer(kN, kK, kM, 8);
  REQUIRE(a.W.size() == kN * kK);
  REQUIRE(a.X.size() == kM * kK);
  REQUIRE(a.H.size() == kK * kK);
  CHECK(a.W == b.W);
  CHECK(a.X == b.X);
  CHECK(a.W != c.W);
  // H against an explicit X^T X.
  for (std::size_t i = 0; i < kK; i += 17)
    for (std::size_t j = 0; j < kK; j += 13) {
      double h = 0;
      for (std::size_t m = 0; m < kM; ++m) h += double(a.X[m * kK + i]) * double(a.X[m * kK + j]);
      CHECK(a.H[i * kK + j] == Approx(h).epsilon(1e-12));
    }
  // Strong features: their column norms stand out from the median column by a wide margin.
  REQUIRE(a.strong_features.size() >= 4);
  std::vector<double> col(kK);
  for (std::size_t k = 0; k < kK; ++k) col[k] = std::sqrt(a.H[k * kK + k]);
  std::vector<double> sorted = col;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[kK / 2];
  for (std::size_t k : a.strong_features) CHECK(col[k] > 5 * median);
  // Heavy tails: excess kurtosis of the weights well above a Gaussian's 0.
  double m2 = 0, m4 = 0;
  for (float w : a.W) {
    m2 += double(w) * w;
    m4 += double(w) * w * w * w;
  }
  m2 /= a.W.size();
  m4 /= a.W.size();
  CHECK(m4 / (m2 * m2) - 3.0 > 1.0);
  // Output energy is tr(W H W^T) = ||W X^T||^2.
  double direct = 0;
  for (std::size_t m = 0; m < kM; ++m)
    for (std::size_t n = 0; n < kN; ++n) {
      double y = 0;
      for (std::size_t k = 0; k < kK; ++k) y += double(a.W[n * kK + k]) * double(a.X[m * kK + k]);
      direct += y * y;
    }
  CHECK(a.output_energy == Approx(direct).epsilon(1e-9));
}

TEST_CASE("demo rows: sizes from the checkpoint footprint, errors ordered by bits and grouping", "[core][demo]") {
  const lowbit_cli::DemoLayer L = lowbit_cli::make_demo_layer(kN, kK, kM, 1);
  const std::vector<lowbit_cli::DemoRow> rows = lowbit_cli::run_demo_rows(L, lowbit_cli::DemoOptions{});
  REQUIRE(rows.size() >= 9);
  CHECK(rows[0].method == "fp16");
  CHECK(rows[0].ratio_vs_fp16 == 1.0);
  CHECK(rows[0].bits_per_weight == 16.0);
  CHECK(rows[0].rel_weight_error < 1e-3);  // fp16 rounding only
  std::vector<const lowbit_cli::DemoRow*> rtn;
  for (const auto& r : rows)
    if (r.method == "RTN") rtn.push_back(&r);
  REQUIRE(rtn.size() == 8);
  const int bits[] = {8, 4, 3, 2};
  for (int i = 0; i < 4; ++i) {
    const auto& pc = *rtn[2 * i];
    const auto& g = *rtn[2 * i + 1];
    CHECK(pc.bits == std::to_string(bits[i]));
    CHECK(pc.group == "-");
    CHECK(g.group == "128");
    lowbit::QuantSpec spec;
    spec.bits = bits[i];
    spec.group_size = 0;
    CHECK(pc.bits_per_weight == Approx(lowbit::gptq_footprint(kN, kK, spec).bits_per_weight));
    spec.group_size = 128;
    CHECK(g.bits_per_weight == Approx(lowbit::gptq_footprint(kN, kK, spec).bits_per_weight));
    CHECK(pc.ratio_vs_fp16 == Approx(16.0 / pc.bits_per_weight));
    // Finer groups cost more bits and give smaller errors.
    CHECK(g.bits_per_weight > pc.bits_per_weight);
    CHECK(g.rel_weight_error < pc.rel_weight_error);
    if (i > 0) {
      CHECK(pc.rel_weight_error > rtn[2 * (i - 1)]->rel_weight_error);
      CHECK(pc.rel_output_error > rtn[2 * (i - 1)]->rel_output_error);
    }
  }
  // The 4-bit g128 row recomputed from its definition.
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 128;
  const std::vector<float> Wq = lowbit::dequantize(lowbit::rtn_quantize(L.W.data(), kN, kK, spec));
  double num = 0;
  for (std::size_t m = 0; m < kM; ++m)
    for (std::size_t n = 0; n < kN; ++n) {
      double y = 0;
      for (std::size_t k = 0; k < kK; ++k) y += (double(L.W[n * kK + k]) - Wq[n * kK + k]) * double(L.X[m * kK + k]);
      num += y * y;
    }
  CHECK(rtn[3]->rel_output_error == Approx(std::sqrt(num / L.output_energy)).epsilon(1e-9));
  // The table prints every row with aligned columns.
  std::ostringstream os;
  lowbit_cli::print_table(os, rows);
  std::istringstream in(os.str());
  std::string line;
  std::size_t lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == rows.size() + 2);  // header + rule
}

TEST_CASE("demo refuses bad options", "[core][demo]") {
  auto run = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return lowbit_cli::cmd_demo(static_cast<int>(argv.size()), argv.data());
  };
  CHECK_THROWS_AS(run({"demo", "--n", "33"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--k", "100"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--k", "-128"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--m", "0"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--seed"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--seed", "12x"}), lowbit_cli::UsageError);
  CHECK_THROWS_AS(run({"demo", "--k", "99999999999999999999999"}), lowbit_cli::UsageError);
  CHECK_THROWS_WITH(run({"demo", "--frobnicate"}), Catch::Contains("--frobnicate"));
  CHECK(run({"demo", "--help"}) == 0);
  CHECK(run({"demo", "--n", "32", "--k", "128", "--m", "8", "--seed", "3"}) == 0);
}
