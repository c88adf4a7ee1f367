// `lowbit compare`: the demo's table (fp16, RTN, GPTQ, LLM.int8(): stored size and errors) for the
// user's own layers and inputs, so methods are scored with one evaluator on the data they will serve.
//
//   lowbit compare WEIGHTS --calib CALIB.safetensors [--holdout F] [--match REGEX] [--sym] [--mse]
//                  [--json OUT.json]
//
// Each layer `<name>.weight [N, K]` of WEIGHTS with recorded inputs `<name>.inputs [n, K]` in CALIB (the
// format `lowbit quantize --method gptq --calib` reads) becomes a DemoLayer whose last round(F·n) input
// rows are held out: GPTQ's Hessian and the int8 side copy's calibration see only the first rows, and
// every output error ||(W - Wq) Xᵀ||_F / ||W Xᵀ||_F is measured on the held-out rows (F = 0: on the
// calibration rows themselves, as `lowbit demo` does). Accuracy only: the kernels' speed against cuBLAS
// is what `lowbit demo` and bench/ measure on a GPU.
//
// Limits: everything runs on the CPU. The Hessian costs O(n·K²) once per layer and GPTQ O(N·K²) per row
// of the table (minutes for a 4096 x 4096 layer on a few cores: use --match to pick layers); errors cost
// O(R·N·K) per row for R evaluated rows (--eval-rows caps R). K is capped at 16384 (the double Hessian).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include <lowbit/format.hpp>
#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "demo.hpp"

namespace lowbit_cli {
namespace {

const char* const kCompareUsage =
    "usage: lowbit compare WEIGHTS --calib CALIB.safetensors [--holdout F] [--eval-rows R] [--match REGEX]\n"
    "                      [--sym] [--mse] [--group G] [--json OUT.json]\n"
    "  For every layer <name>.weight [N, K] of WEIGHTS (.safetensors file, folder or sharded index) with\n"
    "  recorded inputs <name>.inputs [n, K] in CALIB: fp16, RTN (8/4/3/2 bits, per-channel and groups of\n"
    "  G = 128), GPTQ (4/3/2-bit groups of G, 4-bit act-order; each also with the scale refit) and LLM.int8() (W8A16, W8A8\n"
    "  with and without the outlier decomposition, fp16 side copy) with exact stored bits per weight,\n"
    "  relative weight error and relative output error ||(W - Wq) X^T||_F / ||W X^T||_F on held-out\n"
    "  input rows; with several layers also one pooled table (bytes summed, errors as\n"
    "  sqrt(sum of squared errors / sum of squared norms)).\n"
    "  --calib    recorded layer inputs (fp32/fp16/bf16), as for `lowbit quantize --method gptq`\n"
    "  --holdout  fraction of each layer's input rows held out for the errors, in [0, 1) (default 0.25;\n"
    "             GPTQ and the side copy calibrate on the rest; 0: errors on the calibration rows)\n"
    "  --eval-rows  evaluate on at most R held-out rows, evenly spaced (default 2048; 0: all of them)\n"
    "  --match    only layers whose weight name matches REGEX (regex search)\n"
    "  --sym      symmetric RTN/GPTQ grids (default asymmetric)\n"
    "  --mse      MSE clip search for RTN/GPTQ (p = 2.4, 100-point grid, shrink to 0.2)\n"
    "  --group    group size of the grouped RTN and GPTQ rows, a multiple of 32 dividing K (default 128)\n"
    "  --json     also write the tables as JSON, with each method's GPU bytes in lowbit's kernels\n"
    "             (device_bytes; atomically, never over an input file)\n"
    "  N must be a multiple of 32 (3-bit zero packing) and K a multiple of the group size, K <= 16384.\n";

constexpr std::size_t kNPack = 32;       // 3-bit qzeros pack 32 output columns per 3 words
constexpr int kMinGroup = 32;            // group sizes: multiples of 32 (the kernels take 32 and multiples of 64)
constexpr std::size_t kMaxK = 16384;     // H = [K, K] doubles: at most 2 GiB
constexpr double kDefaultHoldout = 0.25;
constexpr std::size_t kDefaultEvalRows = 2048;  // held-out rows evaluated at most (O(rows·N·K) per table row)

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

nlohmann::json row_json(const DemoRow& r) {
  return {{"method", r.method},
          {"bits", r.bits},
          {"group", r.group},
          {"stored_bytes", r.stored_bytes},
          {"device_bytes", r.device_bytes},
          {"bits_per_weight", r.bits_per_weight},
          {"ratio_vs_fp16", r.ratio_vs_fp16},
          {"rel_weight_error", r.rel_weight_error},
          {"rel_output_error", r.rel_output_error},
          {"note", r.note},
          {"config", r.config}};
}

}  // namespace

int cmd_compare(int argc, char** argv) {
  namespace st = lowbit::safetensors;
  std::vector<std::string> pos;
  std::string calib, match, json_out;
  double holdout = kDefaultHoldout;
  std::size_t eval_rows = kDefaultEvalRows;
  DemoOptions opt;
  opt.gpu = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!is_option(a)) {
      pos.emplace_back(a);
      continue;
    }
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      std::cout << kCompareUsage;
      return 0;
    }
    if (!std::strcmp(a, "--calib")) calib = option_value(argc, argv, i);
    else if (!std::strcmp(a, "--match")) match = option_value(argc, argv, i);
    else if (!std::strcmp(a, "--json")) json_out = option_value(argc, argv, i);
    else if (!std::strcmp(a, "--holdout")) holdout = parse_double("--holdout", option_value(argc, argv, i));
    else if (!std::strcmp(a, "--eval-rows")) {
      const int v = parse_int("--eval-rows", option_value(argc, argv, i));
      if (v < 0) throw UsageError("--eval-rows must be >= 0 (got " + std::to_string(v) + ")");
      eval_rows = static_cast<std::size_t>(v);
    }
    else if (!std::strcmp(a, "--group")) opt.group = parse_int("--group", option_value(argc, argv, i));
    else if (!std::strcmp(a, "--sym")) opt.sym = true;
    else if (!std::strcmp(a, "--mse")) opt.mse = true;
    else throw UsageError(std::string("unknown option ") + a);
  }
  if (pos.size() != 1) throw UsageError("expected one WEIGHTS path, got " + std::to_string(pos.size()));
  if (opt.group < kMinGroup || opt.group % kMinGroup != 0)
    throw UsageError("--group must be a positive multiple of " + std::to_string(kMinGroup) + " (got " +
                     std::to_string(opt.group) + ")");
  if (calib.empty()) throw UsageError("--calib CALIB.safetensors is required (recorded <layer>.inputs [n, K])");
  if (!(holdout >= 0.0 && holdout < 1.0)) throw UsageError("--holdout must be in [0, 1) (got " + std::to_string(holdout) + ")");
  std::regex re;
  if (!match.empty()) {
    try {
      re = std::regex(match, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw UsageError("--match: invalid regular expression '" + match + "': " + e.what());
    }
  }

  const auto weights = st::ShardedReader::open(pos[0]);
  const auto inputs = st::ShardedReader::open(calib);
  std::vector<std::filesystem::path> sources = weights.files();
  for (const auto& f : inputs.files()) sources.push_back(f);

  nlohmann::json doc = {{"weights", pos[0]}, {"calib", calib}, {"holdout", holdout}, {"sym", opt.sym},
                        {"mse", opt.mse}, {"group", opt.group}, {"layers", nlohmann::json::array()}};
  std::size_t compared = 0, candidates = 0;
  struct Total {
    std::string key;         // method | bits | group | config
    DemoRow row;             // the row as the first layer had it
    std::size_t layers = 0;  // layers that have this row
    double bytes = 0, weights = 0, fp16_bytes = 0;
    double device_bytes = 0;  // summed GPU bytes (meaningful only if every layer fits the kernels)
    bool device_ok = true;
    double out_error = 0, energy = 0;  // sums over layers of ||(W - Wq) X^T||^2 and ||W X^T||^2
    double w_error = 0, w_energy = 0;  // sums over layers of ||W - Wq||^2 and ||W||^2
  };
  std::vector<Total> totals;
  for (const std::string& tn : weights.names()) {
    const st::TensorView t = weights.tensor(tn);
    if (!(ends_with(tn, ".weight") && t.shape().size() == 2 && st::is_floating(t.dtype()))) continue;
    if (!match.empty() && !std::regex_search(tn, re)) continue;
    ++candidates;
    const std::string layer = tn.substr(0, tn.size() - std::strlen(".weight"));
    const std::string xn = layer + ".inputs";
    if (!inputs.contains(xn)) {
      if (match.empty()) {  // without --match, layers without recorded inputs are skipped, said on stderr
        std::cerr << "skipped " << tn << ": no '" << xn << "' in " << calib << "\n";
        continue;
      }
      lowbit::detail::fail(calib, ": no recorded inputs '", xn, "' for layer '", layer, "'");
    }
    const std::size_t N = static_cast<std::size_t>(t.shape()[0]), K = static_cast<std::size_t>(t.shape()[1]);
    LOWBIT_CHECK(N % kNPack == 0 && K % static_cast<std::size_t>(opt.group) == 0 && K <= kMaxK, "layer '", layer,
                 "' [", N, ", ", K, "]: compare needs N a multiple of ", kNPack, " and K a multiple of ", opt.group,
                 " (the group size) up to ", kMaxK);
    const st::TensorView x = inputs.tensor(xn);
    LOWBIT_CHECK(x.shape().size() == 2 && x.shape()[1] == K, "inputs '", xn, "' must be [n, ", K, "] (layer '",
                 layer, "' has K = ", K, ")");
    LOWBIT_CHECK(st::is_floating(x.dtype()), "inputs '", xn, "' are not floating point");
    const std::size_t n = static_cast<std::size_t>(x.shape()[0]);
    const std::size_t held = static_cast<std::size_t>(std::llround(holdout * static_cast<double>(n)));
    LOWBIT_CHECK(n >= 1 && held < n && (holdout == 0.0 || held >= 1), "inputs '", xn, "': ", n,
                 " rows cannot be split into calibration and held-out rows with --holdout ", holdout);
    DemoLayer L;
    try {
      L = make_data_layer(t.to_float_vector(), N, K, x.to_float_vector(), n, held, eval_rows, "");
    } catch (const lowbit::Error& e) {
      lowbit::detail::fail("layer '", layer, "': ", e.what());
    }
    L.description = tn + " [N=" + std::to_string(N) + ", K=" + std::to_string(K) + "]; " + std::to_string(L.M) +
                    " calibration rows, " +
                    (held ? std::to_string(held) + " held-out rows" +
                                (L.M_eval < held ? " (" + std::to_string(L.M_eval) + " evenly spaced evaluated)" : "")
                          : std::string("errors on the calibration rows"));
    std::cout << L.description << "\n";
    const std::vector<DemoRow> rows = run_demo_rows(L, opt);
    print_table(std::cout, rows);
    std::cout << "\n" << std::flush;
    nlohmann::json lj = {{"name", layer}, {"N", N}, {"K", K}, {"calibration_rows", L.M},
                         {"evaluation_rows", held ? L.M_eval : L.M}, {"held_out_rows", held},
                         {"held_out", held > 0},
                         {"output_energy", L.output_energy},
                         {"rows", nlohmann::json::array()}};
    for (const DemoRow& r : rows) lj["rows"].push_back(row_json(r));
    doc["layers"].push_back(std::move(lj));
    ++compared;
    // running totals per table row, keyed by what the row is (not by position: a layer without outlier
    // columns has no side-copy row)
    double w_energy = 0;
    for (const float v : L.W) w_energy += static_cast<double>(v) * v;
    for (const DemoRow& row : rows) {
      const std::string key = row.method + "|" + row.bits + "|" + row.group + "|" + row.config;
      auto it = std::find_if(totals.begin(), totals.end(), [&](const Total& t) { return t.key == key; });
      if (it == totals.end()) it = totals.insert(totals.end(), Total{key, row});
      it->layers += 1;
      it->bytes += row.stored_bytes;
      it->device_bytes += row.device_bytes;
      it->device_ok = it->device_ok && row.device_bytes > 0;
      it->weights += static_cast<double>(N) * static_cast<double>(K);
      it->fp16_bytes += 2.0 * static_cast<double>(N) * static_cast<double>(K);
      it->out_error += row.rel_output_error * row.rel_output_error * L.output_energy;
      it->energy += L.output_energy;
      it->w_error += row.rel_weight_error * row.rel_weight_error * w_energy;
      it->w_energy += w_energy;
    }
  }
  if (compared == 0) {
    if (candidates == 0)
      lowbit::detail::fail(pos[0], match.empty() ? ": no 2-D floating-point '<name>.weight' tensor"
                                                 : ": --match '" + match + "' matched no 2-D floating-point weight");
    lowbit::detail::fail(calib, ": none of the ", candidates, " weights has recorded '<name>.inputs'");
  }
  if (compared > 1) {  // the whole selection: sizes summed, errors pooled over the layers
    std::vector<DemoRow> sum;
    nlohmann::json js = nlohmann::json::array();
    std::string partial;
    for (const Total& t : totals) {
      if (t.layers != compared) {  // a row some layers do not have: not comparable over the selection
        partial += (partial.empty() ? "" : "; ") + t.row.method + " " + t.row.config + " (" +
                   std::to_string(t.layers) + " of " + std::to_string(compared) + " layers)";
        continue;
      }
      DemoRow r = t.row;
      r.stored_bytes = t.bytes;
      r.device_bytes = t.device_ok ? t.device_bytes : 0.0;
      r.bits_per_weight = 8.0 * t.bytes / t.weights;
      r.ratio_vs_fp16 = t.fp16_bytes / t.bytes;
      r.rel_weight_error = t.w_energy > 0 ? std::sqrt(t.w_error / t.w_energy) : 0.0;
      r.rel_output_error = t.energy > 0 ? std::sqrt(t.out_error / t.energy) : 0.0;
      r.note = r.config;
      sum.push_back(r);
      nlohmann::json j = row_json(r);
      j.erase("note");
      js.push_back(std::move(j));
    }
    std::cout << "all " << compared << " layers: stored bytes summed, errors pooled (sqrt of the summed squared "
              << "errors over the summed squared norms)\n";
    print_table(std::cout, sum);
    if (!partial.empty()) std::cout << "not in every layer, left out of the pooled table: " << partial << "\n";
    doc["summary"] = {{"layers", compared}, {"rows", std::move(js)}};
  }
  if (!json_out.empty()) st::write_text_file_atomic(json_out, doc.dump(2) + "\n", sources);
  return 0;
}

}  // namespace lowbit_cli
