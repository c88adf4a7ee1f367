// `lowbit compare` end to end: the JSON it writes for a user layer holds exactly what the documented
// definitions give when recomputed here — output errors on the held-out input rows only (a direct
// double-precision ||(W - Wq) X^T||_F / ||W X^T||_F), GPTQ calibrated on the other rows only (H = 2/n X^T X
// of the calibration rows), exact stored bits per weight — and bad input fails with a one-line reason
// while the input files stay untouched.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/kernels/layout.hpp>
#include <lowbit/format.hpp>
#include <lowbit/gptq/refine.hpp>
#include <lowbit/gptq/solver.hpp>
#include <lowbit/quant.hpp>
#include <nlohmann/json.hpp>

#ifndef LOWBIT_CLI_PATH
#error "LOWBIT_CLI_PATH must name the lowbit binary"
#endif

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kN = 64, kK = 256, kRows = 400;
constexpr std::size_t kN2 = 32, kK2 = 128, kRows2 = 200;

struct Run {
  int rc = 0;
  std::string out, err_last;  // stdout, last line of stderr
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

Run run(const fs::path& dir, const std::string& args) {
  const fs::path o = dir / "stdout.txt", e = dir / "stderr.txt";
  const std::string cmd = std::string(LOWBIT_CLI_PATH) + " compare " + args + " > " + o.string() + " 2> " + e.string();
  Run r;
  r.rc = std::system(cmd.c_str());
  r.out = slurp(o);
  std::string err = slurp(e);
  while (!err.empty() && err.back() == '\n') err.pop_back();
  r.err_last = err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1);
  return r;
}

// ||(W - Wq) X^T||_F / ||W X^T||_F over rows [m0, m1) of X, written out directly in double.
// ||(W - Wq) X^T||_F^2 and ||W X^T||_F^2 over rows [m0, m1) of X, written out directly in double.
struct OutErr {
  double num = 0, den = 0;
};
OutErr out_err(const std::vector<float>& W, const std::vector<float>& Wq, const std::vector<float>& X, std::size_t N,
               std::size_t K, std::size_t m0, std::size_t m1) {
  OutErr e;
  for (std::size_t m = m0; m < m1; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      double d = 0, y = 0;
      for (std::size_t k = 0; k < K; ++k) {
        d += (double(W[n * K + k]) - double(Wq[n * K + k])) * X[m * K + k];
        y += double(W[n * K + k]) * X[m * K + k];
      }
      e.num += d * d;
      e.den += y * y;
    }
  return e;
}
double rel_output_error(const std::vector<float>& W, const std::vector<float>& Wq, const std::vector<float>& X,
                        std::size_t m0, std::size_t m1) {
  const OutErr e = out_err(W, Wq, X, kN, kK, m0, m1);
  return std::sqrt(e.num / e.den);
}

const nlohmann::json* find_row(const nlohmann::json& rows, const std::string& method, const std::string& bits,
                               const std::string& group, bool act_order, bool refit = false) {
  for (const auto& r : rows) {
    const std::string config = r.value("config", "");  // layer-independent settings (rows and summary)
    if (r["method"] == method && r["bits"] == bits && r["group"] == group &&
        (config.find("act-order") != std::string::npos) == act_order &&
        (config.find("scale refit") != std::string::npos) == refit)
      return &r;
  }
  return nullptr;
}

// The RTN row (bits, group; group 0 = per-channel) of `rows` against a direct recomputation: the
// documented quantizer, output error over rows [m0, m1) of X.
void check_rtn_row(const nlohmann::json& rows, const std::vector<float>& W, const std::vector<float>& X, int bits,
                   int group, std::size_t m0, std::size_t m1) {
  lowbit::QuantSpec spec;
  spec.bits = bits;
  spec.group_size = group;
  const std::vector<float> rtn = lowbit::dequantize(lowbit::rtn_quantize(W.data(), kN, kK, spec));
  const auto* row = find_row(rows, "RTN", std::to_string(bits), group > 0 ? std::to_string(group) : "-", false);
  INFO("RTN " << bits << "-bit group " << group);
  REQUIRE(row != nullptr);
  CHECK((*row)["rel_output_error"].get<double>() == Approx(rel_output_error(W, rtn, X, m0, m1)).epsilon(1e-9));
}

}  // namespace

TEST_CASE("lowbit compare scores every method on held-out rows of the user's inputs", "[cli][compare]") {
  const fs::path dir = fs::temp_directory_path() / ("lowbit_compare_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::mt19937 rng(91);
  std::normal_distribution<float> nw(0.f, 0.02f), nx(0.f, 0.5f);
  std::vector<float> W(kN * kK), X(kRows * kK);
  for (auto& v : W) v = nw(rng);
  for (std::size_t m = 0; m < kRows; ++m)
    for (std::size_t k = 0; k < kK; ++k) X[m * kK + k] = nx(rng) * (k % 97 == 5 ? 30.f : 1.f);  // outlier features
  std::vector<float> W2(kN2 * kK2), X2(kRows2 * kK2);  // a second, smaller layer for the pooled summary
  for (auto& v : W2) v = 2.f * nw(rng);
  for (auto& v : X2) v = nx(rng);
  {
    lowbit::safetensors::Writer w;
    w.add_copy("blk.0.proj.weight", lowbit::DType::f32, {kN, kK}, W.data(), W.size() * sizeof(float));
    w.add_copy("blk.0.odd.weight", lowbit::DType::f32, {kN, 200}, W.data(), kN * 200 * sizeof(float));
    w.add_copy("blk.1.proj.weight", lowbit::DType::f32, {kN2, kK2}, W2.data(), W2.size() * sizeof(float));
    w.write(dir / "w.safetensors");
    lowbit::safetensors::Writer c;
    c.add_copy("blk.0.proj.inputs", lowbit::DType::f32, {kRows, kK}, X.data(), X.size() * sizeof(float));
    c.add_copy("blk.0.odd.inputs", lowbit::DType::f32, {8, 200}, X.data(), 8 * 200 * sizeof(float));
    c.add_copy("blk.1.proj.inputs", lowbit::DType::f32, {kRows2, kK2}, X2.data(), X2.size() * sizeof(float));
    c.write(dir / "c.safetensors");
    std::vector<float> Xbad = X;
    Xbad[3 * kK + 7] = std::nanf("");
    lowbit::safetensors::Writer b;
    b.add_copy("blk.0.proj.inputs", lowbit::DType::f32, {kRows, kK}, Xbad.data(), Xbad.size() * sizeof(float));
    b.write(dir / "nan.safetensors");
  }
  const std::string w = (dir / "w.safetensors").string(), c = (dir / "c.safetensors").string();
  const std::string w_bytes = slurp(w), c_bytes = slurp(c);
  const std::string proj = " --match 'blk\\.0\\.proj\\.weight$' ";

  SECTION("held-out rows") {
    const Run r = run(dir, w + proj + "--calib " + c + " --holdout 0.25 --json " + (dir / "out.json").string());
    INFO(r.err_last);
    REQUIRE(r.rc == 0);
    const auto doc = nlohmann::json::parse(slurp(dir / "out.json"));
    REQUIRE(doc["layers"].size() == 1);
    const auto& L = doc["layers"][0];
    CHECK(L["name"] == "blk.0.proj");
    CHECK(L["calibration_rows"] == 300);
    CHECK(L["evaluation_rows"] == 100);
    const std::size_t M = 300;

    // RTN 4-bit g128: the documented quantizer, error on rows 300..399 only
    check_rtn_row(L["rows"], W, X, 4, 128, M, kRows);
    lowbit::QuantSpec spec;
    spec.bits = 4;
    spec.group_size = 128;
    const std::vector<float> rtn = lowbit::dequantize(lowbit::rtn_quantize(W.data(), kN, kK, spec));
    const auto* row = find_row(L["rows"], "RTN", "4", "128", false);
    REQUIRE(row != nullptr);
    CHECK((*row)["rel_output_error"].get<double>() !=
          Approx(rel_output_error(W, rtn, X, 0, kRows)).epsilon(1e-6));  // not all rows
    CHECK((*row)["bits_per_weight"].get<double>() ==
          Approx(8.0 * double(lowbit::gptq_footprint(kN, kK, spec).total) / double(kN * kK)).epsilon(1e-12));
    CHECK((*row)["stored_bytes"].get<double>() == double(lowbit::gptq_footprint(kN, kK, spec).total));
    {  // GPU bytes: the arrays the kernel layout holds for this weight
      const lowbit::kernels::HostTiledWeight t = lowbit::kernels::tile_weight(lowbit::rtn_quantize(W.data(), kN, kK, spec));
      CHECK((*row)["device_bytes"].get<double>() ==
            double(t.qweight.size() * 4 + t.scales.size() * 2 + t.zeros.size() + t.perm.size() * 4));
    }

    // GPTQ 4-bit g128: Hessian 2/n X^T X of the 300 calibration rows only
    std::vector<double> H(kK * kK, 0.0);
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t i = 0; i < kK; ++i)
        for (std::size_t j = i; j < kK; ++j) H[i * kK + j] += double(X[m * kK + i]) * double(X[m * kK + j]);
    for (std::size_t i = 0; i < kK; ++i)
      for (std::size_t j = 0; j < i; ++j) H[i * kK + j] = H[j * kK + i];
    for (double& h : H) h *= 2.0 / double(M);
    lowbit::gptq::GptqOptions go;
    go.compute_errors = false;
    const auto g = lowbit::gptq::gptq_quantize<float>(W.data(), kN, kK, H.data(), spec, go);
    const std::vector<float> gq = lowbit::dequantize(g.weight);
    const auto* grow = find_row(L["rows"], "GPTQ", "4", "128", false);
    REQUIRE(grow != nullptr);
    CHECK((*grow)["rel_output_error"].get<double>() == Approx(rel_output_error(W, gq, X, M, kRows)).epsilon(1e-9));
    {  // act-order GPTQ carries the permutation on the GPU: K int32 more than the plain row
      const auto* act = find_row(L["rows"], "GPTQ", "4", "128", true);
      REQUIRE(act != nullptr);
      CHECK((*act)["device_bytes"].get<double>() == (*grow)["device_bytes"].get<double>() + 4.0 * kK);
    }
    // the same with the scale refit on that Hessian
    lowbit::QuantizedWeight refit = g.weight;
    (void)lowbit::gptq::refine_scales(refit, W.data(), H.data());
    const auto* rrow = find_row(L["rows"], "GPTQ", "4", "128", false, true);
    REQUIRE(rrow != nullptr);
    CHECK((*rrow)["rel_output_error"].get<double>() ==
          Approx(rel_output_error(W, lowbit::dequantize(refit), X, M, kRows)).epsilon(1e-9));

    // fp16 storage: the error of rounding W to fp16 (about 2^-12 relative), 16 bits per weight
    const auto* f = find_row(L["rows"], "fp16", "16", "-", false);
    REQUIRE(f != nullptr);
    CHECK((*f)["bits_per_weight"].get<double>() == 16.0);
    CHECK((*f)["rel_output_error"].get<double>() < 1e-3);
    // LLM.int8() rows say they ran on the held-out samples, and the decomposition helps
    const nlohmann::json* dec = nullptr;
    const nlohmann::json* plain = nullptr;
    for (const auto& rr : L["rows"]) {
      const std::string note = rr["note"];
      if (rr["method"] != "LLM.int8()" || rr["bits"] != "8") continue;
      CHECK(note.find("held-out") != std::string::npos);
      if (note.find("t=6") != std::string::npos) dec = &rr;
      if (note.find("t=0") != std::string::npos) plain = &rr;
    }
    REQUIRE(dec != nullptr);
    REQUIRE(plain != nullptr);
    CHECK((*dec)["rel_output_error"].get<double>() < (*plain)["rel_output_error"].get<double>());
    CHECK(r.out.find("GPTQ") != std::string::npos);  // the table is printed too
  }

  SECTION("several layers: the summary sums bytes and pools errors") {
    const Run r = run(dir, w + " --match 'proj\\.weight$' --calib " + c + " --json " + (dir / "two.json").string());
    INFO(r.err_last);
    REQUIRE(r.rc == 0);
    const auto doc = nlohmann::json::parse(slurp(dir / "two.json"));
    REQUIRE(doc["layers"].size() == 2);
    lowbit::QuantSpec spec;
    spec.bits = 4;
    spec.group_size = 128;
    const std::vector<float> q1 = lowbit::dequantize(lowbit::rtn_quantize(W.data(), kN, kK, spec));
    const std::vector<float> q2 = lowbit::dequantize(lowbit::rtn_quantize(W2.data(), kN2, kK2, spec));
    const OutErr e1 = out_err(W, q1, X, kN, kK, 300, kRows), e2 = out_err(W2, q2, X2, kN2, kK2, 150, kRows2);
    CHECK(doc["layers"][0]["output_energy"].get<double>() == Approx(e1.den).epsilon(1e-9));
    CHECK(doc["layers"][1]["output_energy"].get<double>() == Approx(e2.den).epsilon(1e-9));
    const auto* srow = find_row(doc["summary"]["rows"], "RTN", "4", "128", false);
    REQUIRE(srow != nullptr);
    CHECK(doc["summary"]["layers"] == 2);
    CHECK((*srow)["stored_bytes"].get<double>() == double(lowbit::gptq_footprint(kN, kK, spec).total +
                                                          lowbit::gptq_footprint(kN2, kK2, spec).total));
    CHECK((*srow)["rel_output_error"].get<double>() ==
          Approx(std::sqrt((e1.num + e2.num) / (e1.den + e2.den))).epsilon(1e-9));
    CHECK(r.out.find("all 2 layers") != std::string::npos);
  }

  SECTION("--holdout 0 measures on the calibration rows") {
    const Run r = run(dir, w + proj + "--calib " + c + " --holdout 0 --json " + (dir / "all.json").string());
    INFO(r.err_last);
    REQUIRE(r.rc == 0);
    const auto doc = nlohmann::json::parse(slurp(dir / "all.json"));
    const auto& L = doc["layers"][0];
    CHECK(L["calibration_rows"] == 400);
    CHECK(L["evaluation_rows"] == 400);
    check_rtn_row(L["rows"], W, X, 3, 0, 0, kRows);
  }

  SECTION("--group sets the grouped rows' group size") {
    const Run r = run(dir, w + proj + "--calib " + c + " --group 64 --json " + (dir / "g64.json").string());
    INFO(r.err_last);
    REQUIRE(r.rc == 0);
    const auto doc = nlohmann::json::parse(slurp(dir / "g64.json"));
    check_rtn_row(doc["layers"][0]["rows"], W, X, 2, 64, 300, kRows);
    CHECK(find_row(doc["layers"][0]["rows"], "GPTQ", "4", "64", true, true) != nullptr);
    CHECK(find_row(doc["layers"][0]["rows"], "RTN", "4", "128", false) == nullptr);
  }

  SECTION("--eval-rows evaluates on evenly spaced held-out rows") {
    const Run r = run(dir, w + proj + "--calib " + c + " --eval-rows 10 --json " + (dir / "e10.json").string());
    INFO(r.err_last);
    REQUIRE(r.rc == 0);
    const auto doc = nlohmann::json::parse(slurp(dir / "e10.json"));
    const auto& L = doc["layers"][0];
    CHECK(L["held_out_rows"] == 100);
    CHECK(L["evaluation_rows"] == 10);
    std::vector<float> Xs;  // rows 300, 310, ..., 390
    for (std::size_t i = 0; i < 10; ++i)
      Xs.insert(Xs.end(), X.begin() + (300 + 10 * i) * kK, X.begin() + (301 + 10 * i) * kK);
    check_rtn_row(L["rows"], W, Xs, 4, 128, 0, 10);
  }

  SECTION("bad input: one-line reasons, inputs untouched") {
    Run r = run(dir, w + proj);
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("--calib") != std::string::npos);
    r = run(dir, w + proj + "--calib " + c + " --eval-rows -3");
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("--eval-rows") != std::string::npos);
    r = run(dir, w + proj + "--calib " + c + " --group 48");
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("--group") != std::string::npos);
    r = run(dir, w + proj + "--calib " + c + " --holdout 1");
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("--holdout") != std::string::npos);
    r = run(dir, w + " --match odd --calib " + c);
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("multiple of 128 (the group size)") != std::string::npos);
    r = run(dir, w + proj + "--calib " + (dir / "nan.safetensors").string());
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("not finite at row 3, column 7") != std::string::npos);
    r = run(dir, w + " --match nothing_like_this --calib " + c);
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("matched no") != std::string::npos);
    r = run(dir, w + proj + "--calib " + w);  // weights file holds no recorded inputs
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("blk.0.proj.inputs") != std::string::npos);
    r = run(dir, w + proj + "--calib " + c + " --json " + c);  // never over an input
    CHECK(r.rc != 0);
    CHECK(r.err_last.find("refusing to overwrite") != std::string::npos);
    CHECK(slurp(w) == w_bytes);
    CHECK(slurp(c) == c_bytes);
  }
  fs::remove_all(dir);
}
