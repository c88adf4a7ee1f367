// The GPTQ and LLM.int8() rows that examples/lowbit/demo_gptq.cpp and demo_int8.cpp add to
// `lowbit demo`: they show what they claim on the demo's own layer (GPTQ below RTN at every width,
// act-order lower still, the int8 decomposition beating plain W8A8 when X has outlier columns), and
// their figures match independent recomputations (Hessian by the gptq::Hessian accumulator, W8A8
// output error by a direct double-precision transcription of the documented definition).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/gptq/hessian.hpp>
#include <lowbit/gptq/solver.hpp>
#include <lowbit/int8/llm_int8.hpp>
#include <lowbit/quant.hpp>

#include "demo.hpp"
#include "demo_gptq.hpp"
#include "demo_int8.hpp"

namespace {

// Small enough for the sanitizer build, large enough for several g128 groups and outlier columns.
constexpr std::size_t kN = 128, kK = 512, kM = 256;
constexpr std::uint64_t kSeed = 3;
constexpr float kThreshold = 6.0f;  // LLM.int8() default

const lowbit_cli::DemoRow* find_row(const std::vector<lowbit_cli::DemoRow>& rows, const std::string& method,
                                    const std::string& bits, const std::string& group, const std::string& note_part) {
  for (const auto& r : rows)
    if (r.method == method && r.bits == bits && r.group == group && r.note.find(note_part) != std::string::npos)
      return &r;
  return nullptr;
}

// W8A8 output error of the first S rows of X by the documented definition, written out directly:
// weights absmax per row; outlier columns = columns with some |x| >= t among those rows; row scales =
// absmax of the row's entries below t; Y = int8 part + outlier columns through the dequantized weight.
double direct_w8a8_error(const lowbit_cli::DemoLayer& L, std::size_t S, float t, std::size_t* outliers) {
  const std::size_t N = L.N, K = L.K;
  std::vector<double> wdq(N * K);
  std::vector<std::int32_t> qw(N * K);
  std::vector<double> sw(N);
  for (std::size_t n = 0; n < N; ++n) {
    float amax = 0;
    for (std::size_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(L.W[n * K + k]));
    sw[n] = amax;
    const float inv = 127.f / amax;
    for (std::size_t k = 0; k < K; ++k) {
      qw[n * K + k] = static_cast<std::int32_t>(std::nearbyint(L.W[n * K + k] * inv));
      wdq[n * K + k] = qw[n * K + k] * double(amax) / 127.0;
    }
  }
  std::vector<char> out(K, 0);
  if (t > 0)
    for (std::size_t s = 0; s < S; ++s)
      for (std::size_t k = 0; k < K; ++k)
        if (std::fabs(L.X[s * K + k]) >= t) out[k] = 1;
  *outliers = static_cast<std::size_t>(std::count(out.begin(), out.end(), 1));
  double num = 0, den = 0;
  std::vector<std::int32_t> qa(K);
  for (std::size_t s = 0; s < S; ++s) {
    const float* x = L.X.data() + s * K;
    float amax = 0;
    for (std::size_t k = 0; k < K; ++k)
      if (t <= 0 || std::fabs(x[k]) < t) amax = std::max(amax, std::fabs(x[k]));
    const float inv = 127.f / amax;
    for (std::size_t k = 0; k < K; ++k)
      qa[k] = (t <= 0 || std::fabs(x[k]) < t) ? static_cast<std::int32_t>(std::nearbyint(x[k] * inv)) : 0;
    for (std::size_t n = 0; n < N; ++n) {
      double exact = 0, y = 0;
      std::int64_t acc = 0;
      for (std::size_t k = 0; k < K; ++k) {
        exact += double(x[k]) * L.W[n * K + k];
        if (out[k])
          y += double(x[k]) * wdq[n * K + k];
        else
          acc += std::int64_t(qa[k]) * qw[n * K + k];
      }
      y += double(acc) * double(amax) * sw[n] / (127.0 * 127.0);
      num += (y - exact) * (y - exact);
      den += exact * exact;
    }
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("demo GPTQ rows: below RTN at every width, act-order lower still", "[demo][gptq]") {
  const lowbit_cli::DemoLayer L = lowbit_cli::make_demo_layer(kN, kK, kM, kSeed);
  const std::vector<lowbit_cli::DemoRow> rows = lowbit_cli::run_demo_rows(L, lowbit_cli::DemoOptions{});
  for (const std::string bits : {"4", "3", "2"}) {
    INFO("bits " << bits);
    const auto* rtn = find_row(rows, "RTN", bits, "128", "");
    const auto* gptq = find_row(rows, "GPTQ", bits, "128", "solve");
    REQUIRE(rtn != nullptr);
    REQUIRE(gptq != nullptr);
    CHECK(gptq->note.find("act-order") == std::string::npos);
    // Same storage as RTN (same checkpoint format), lower output error on the calibration inputs.
    CHECK(gptq->bits_per_weight == Approx(rtn->bits_per_weight).epsilon(1e-12));
    CHECK(gptq->rel_output_error < rtn->rel_output_error);
    CHECK(std::isfinite(gptq->rel_output_error));
  }
  const auto* plain = find_row(rows, "GPTQ", "4", "128", "solve");
  const auto* act = find_row(rows, "GPTQ", "4", "128", "act-order");
  REQUIRE(act != nullptr);
  CHECK(act->rel_output_error < plain->rel_output_error);  // uneven feature scales: act-order helps
}

TEST_CASE("demo GPTQ: Hessian is 2/n X^T X and the row error matches the solver's own report", "[demo][gptq]") {
  const lowbit_cli::DemoLayer L = lowbit_cli::make_demo_layer(kN, kK, kM, kSeed);
  const std::vector<double> H = lowbit_cli::demo_gptq_hessian(L);
  lowbit::gptq::Hessian<double> acc(kK);
  acc.add_batch(L.X.data(), 100);  // two uneven batches: the running mean must not care
  acc.add_batch(L.X.data() + 100 * kK, kM - 100);
  REQUIRE(acc.samples() == kM);
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < H.size(); ++i) {
    diff = std::max(diff, std::fabs(H[i] - acc.matrix()[i]));
    norm = std::max(norm, std::fabs(acc.matrix()[i]));
  }
  CHECK(diff <= 1e-10 * norm);

  const lowbit_cli::DemoGptqConfig cfg{3, 128, false};
  const lowbit_cli::DemoGptqOutcome o = lowbit_cli::demo_gptq_run(L, H, lowbit_cli::DemoOptions{}, cfg);
  lowbit::QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 128;
  const auto res = lowbit::gptq::gptq_quantize<float>(L.W.data(), kN, kK, acc.matrix().data(), spec);
  const std::vector<float> Wq = lowbit::dequantize(res.weight);
  CHECK(o.Wq == Wq);  // the row's weights are the solver's result
  CHECK(o.stored_bytes == double(lowbit::gptq_footprint(kN, kK, spec).total));
  // The solver reports tr(dW H dW^T) with H = 2/n X^T X; the table divides by tr(W X^T X W^T).
  const lowbit_cli::DemoRow row = lowbit_cli::evaluate_row(L, "GPTQ", 3, 128, o.Wq, o.stored_bytes);
  const double from_report = std::sqrt(res.report.gptq_error * double(kM) / 2.0 / L.output_energy);
  CHECK(row.rel_output_error == Approx(from_report).epsilon(1e-9));
  CHECK(res.report.gptq_error < res.report.rtn_error);
}

TEST_CASE("demo LLM.int8() rows: decomposition beats plain W8A8 on the demo inputs", "[demo][int8]") {
  const lowbit_cli::DemoLayer L = lowbit_cli::make_demo_layer(kN, kK, kM, kSeed);
  const std::size_t S = std::min(kM, lowbit_cli::kDemoInt8MaxSamples);
  std::size_t direct_outliers = 0, none = 0;
  const double direct_dec = direct_w8a8_error(L, S, kThreshold, &direct_outliers);
  const double direct_plain = direct_w8a8_error(L, S, 0.f, &none);
  REQUIRE(none == 0);
  // The demo's strong features reach |x| >= 6: the decomposition has work to do.
  REQUIRE(direct_outliers > 0);
  CHECK(direct_outliers < kK / 4);

  const std::vector<lowbit_cli::DemoRow> rows = lowbit_cli::run_demo_rows(L, lowbit_cli::DemoOptions{});
  const auto* dec = find_row(rows, "LLM.int8()", "8", "-", "t=6:");
  const auto* plain = find_row(rows, "LLM.int8()", "8", "-", "t=0");
  const auto* w8a16 = find_row(rows, "int8 W8A16", "8", "-", "");
  REQUIRE(dec != nullptr);
  REQUIRE(plain != nullptr);
  REQUIRE(w8a16 != nullptr);
  CHECK(dec->note.find(std::to_string(direct_outliers) + " outlier cols") != std::string::npos);
  CHECK(dec->rel_output_error == Approx(direct_dec).epsilon(1e-6));
  CHECK(plain->rel_output_error == Approx(direct_plain).epsilon(1e-6));
  CHECK(dec->rel_output_error < plain->rel_output_error);
  // Storage: one int8 code per weight plus one fp32 scale per output channel.
  const double bits = 8.0 + 32.0 / double(kK);
  CHECK(dec->bits_per_weight == Approx(bits).epsilon(1e-12));
  CHECK(w8a16->bits_per_weight == Approx(bits).epsilon(1e-12));
  CHECK(dec->ratio_vs_fp16 == Approx(16.0 / bits).epsilon(1e-12));
  // Activation quantization only adds error to the weight-only figure.
  CHECK(plain->rel_output_error > w8a16->rel_output_error);

  // The fp16 side copy row, when present, stores its extra columns.
  if (const auto* side = find_row(rows, "LLM.int8()", "8+fp16", "-", "side copy")) {
    CHECK(side->bits_per_weight > bits);
    CHECK(side->rel_output_error <= dec->rel_output_error);
  }
}

TEST_CASE("demo LLM.int8(): without outliers in X the decomposition changes nothing", "[demo][int8]") {
  lowbit_cli::DemoLayer L = lowbit_cli::make_demo_layer(kN, kK, kM, kSeed);
  float amax = 0;
  for (float x : L.X) amax = std::max(amax, std::fabs(x));
  const float shrink = 0.5f * kThreshold / amax;  // every |x| now below half the threshold
  for (float& x : L.X) x *= shrink;
  const std::size_t S = std::min(kM, lowbit_cli::kDemoInt8MaxSamples);
  const auto w = lowbit::int8::quantize_weight(L.W.data(), int(kN), int(kK));
  const std::vector<double> Y_ref = lowbit_cli::demo_int8_reference(L, S);
  const auto dec = lowbit_cli::demo_int8_eval(L, w, kThreshold, nullptr, Y_ref, S);
  const auto plain = lowbit_cli::demo_int8_eval(L, w, 0.f, nullptr, Y_ref, S);
  CHECK(dec.outlier_columns == 0);
  CHECK(dec.rel_output_error == plain.rel_output_error);
  CHECK_THROWS_AS(lowbit_cli::demo_int8_eval(L, w, kThreshold, nullptr, Y_ref, S + 1), lowbit::Error);
}
