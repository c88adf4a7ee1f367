// `lowbit demo`: quantize a synthetic layer with realistic statistics at 8/4/3/2 bits (per-channel
// and g128) and print what each choice costs in storage and in accuracy.
//
//   lowbit demo [--seed S] [--n N] [--k K] [--m M] [--sym] [--mse]
//
// Limits: one synthetic layer. This file builds the layer and the RTN rows; GPTQ, LLM.int8() and the
// GPU section are appended by their modules through DemoRowRegistrar (see demo.hpp). The host part
// runs in seconds at the default N = K = 1024, M = 512 in an optimized build.
#include "demo.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/gptq/hessian.hpp>
#include <lowbit/gptq/linalg.hpp>
#include <lowbit/kernels/layout.hpp>
#include <lowbit/numeric.hpp>
#include <lowbit/quant.hpp>

#include "commands.hpp"

namespace lowbit_cli {
namespace {

// ---- deterministic random numbers (mt19937_64's sequence is fixed by the standard; the
// distributions are written here so the layer is the same with every standard library) ----
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}
  /// Uniform in (0, 1), from the top 53 bits.
  double uniform() { return (static_cast<double>(gen_() >> 11) + 0.5) * 0x1p-53; }
  /// Standard normal (Box-Muller, second value cached).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    constexpr double kTwoPi = 6.283185307179586;
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double t = kTwoPi * uniform();
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  /// Student-t with integer `nu` degrees of freedom: z / sqrt(chi2_nu / nu).
  double student_t(int nu) {
    const double z = normal();
    double chi2 = 0;
    for (int i = 0; i < nu; ++i) {
      const double g = normal();
      chi2 += g * g;
    }
    return z / std::sqrt(chi2 / nu);
  }
  /// Uniform index in [0, n).
  std::size_t index(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)) % n; }

 private:
  std::mt19937_64 gen_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// Statistics of the synthetic layer, named.
constexpr int kWeightNu = 5;                   // Student-t degrees of freedom (heavy tails, finite variance)
constexpr double kWeightStd = 0.02;            // typical LLM linear-weight standard deviation
constexpr double kRowScaleSigma = 0.25;        // log-normal spread of per-output-row scales
constexpr std::size_t kHeavyRows = 4;          // output rows with 4x larger weights
constexpr std::size_t kHeavyCols = 4;          // input columns with 3x larger weights
constexpr double kHeavyRowFactor = 4.0;
constexpr double kHeavyColFactor = 2.0;
constexpr std::size_t kLatentFactors = 16;     // rank of the shared structure of the inputs (correlations)
constexpr double kFactorWeight = 0.8;          // share of the latent part vs independent noise
constexpr double kNoiseWeight = 0.6;
constexpr double kInputStd = 0.5;              // typical activation scale (LLM hidden states: O(1))
constexpr double kFeatureScaleSigma = 0.3;     // log-normal spread of per-feature input scales
constexpr double kStrongFeatureFactor = 20.0;  // LLM.int8()-style outlier features (~20x magnitude)
constexpr std::size_t kStrongFeaturesPer = 128;  // one strong feature per 128 inputs (at least 4)

struct Registry {
  std::multimap<int, DemoRowProvider> providers;
};
Registry& registry() {
  static Registry r;
  return r;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string sig(double v) {
  char buf[64];
  if (v == 0.0) return "0";
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

/// X^T X [K, K] (double) of the rows of X [M, K]: upper triangle by rank-1 updates, then mirrored.
std::vector<double> gram(const float* X, std::size_t M, std::size_t K) {
  std::vector<double> H(K * K, 0.0);
  std::vector<double> x(K);
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t k = 0; k < K; ++k) x[k] = X[m * K + k];
    for (std::size_t i = 0; i < K; ++i) {
      const double xi = x[i];
      double* h = H.data() + i * K;
      for (std::size_t j = i; j < K; ++j) h[j] += xi * x[j];
    }
  }
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < i; ++j) H[i * K + j] = H[j * K + i];
  return H;
}

// Built-in rows: fp16 storage (the reference) and RTN at 8/4/3/2 bits, per-channel and g128.
void fp16_rows(const DemoLayer& L, const DemoOptions&, std::vector<DemoRow>& rows) {
  std::vector<float> Wq(L.W.size());
  for (std::size_t i = 0; i < Wq.size(); ++i) Wq[i] = lowbit::round_to_half(L.W[i]);
  rows.push_back(evaluate_row(L, "fp16", "16", "-", Wq, static_cast<double>(lowbit::fp16_bytes(L.N, L.K))));
  rows.back().device_bytes = rows.back().stored_bytes;
}

void rtn_rows(const DemoLayer& L, const DemoOptions& opt, std::vector<DemoRow>& rows) {
  std::string note = opt.sym ? "sym" : "asym";
  if (opt.mse) note += "+mse";
  for (int bits : {8, 4, 3, 2}) {
    for (int group : {0, opt.group}) {
      lowbit::QuantSpec spec;
      spec.bits = bits;
      spec.group_size = group;
      spec.sym = opt.sym;
      spec.mse = opt.mse;
      const lowbit::QuantizedWeight q = lowbit::rtn_quantize(L.W.data(), L.N, L.K, spec);
      const std::vector<float> Wq = lowbit::dequantize(q);
      const lowbit::Footprint f = lowbit::gptq_footprint(L.N, L.K, spec);
      rows.push_back(evaluate_row(L, "RTN", bits, group, Wq, static_cast<double>(f.total), note));
      rows.back().config = note;
      rows.back().device_bytes = kernel_device_bytes(q);
    }
  }
}

const DemoRowRegistrar fp16_registrar(0, fp16_rows);
const DemoRowRegistrar rtn_registrar(100, rtn_rows);

const char* const kUsage =
    "usage: lowbit demo [--seed S] [--n N] [--k K] [--m M] [--sym] [--mse]\n"
    "  Quantizes a synthetic layer W [N, K] (heavy-tailed weights) with RTN at 8/4/3/2 bits,\n"
    "  per-channel and g128, and prints bits per weight (GPTQ checkpoint incl. scales, zeros, g_idx),\n"
    "  size vs fp16, relative weight error and relative output error on calibration inputs X [M, K]\n"
    "  (correlated features with a few strong columns).\n"
    "  --seed S  generator seed (default 1)\n"
    "  --n N     output features, a multiple of 32 (default 1024)\n"
    "  --k K     input features, a multiple of 128 (default 1024)\n"
    "  --m M     calibration samples (default 512)\n"
    "  --sym     symmetric grids (default asymmetric)\n"
    "  --mse     MSE clip search (p = 2.4, 100-point grid, shrink to 0.2)\n";

// Parses a positive integer option value in [1, max]; false with a reason otherwise.
bool parse_count(const char* name, const char* text, std::uint64_t max, std::uint64_t& out, std::string& why) {
  if (text == nullptr) {
    why = std::string(name) + " needs a value";
    return false;
  }
  if (*text == '\0' || *text == '-' || *text == '+') {
    why = std::string(name) + ": '" + text + "' is not a non-negative integer";
    return false;
  }
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v > max) {
    why = std::string(name) + ": '" + text + "' is not an integer in [0, " + std::to_string(max) + "]";
    return false;
  }
  out = v;
  return true;
}

}  // namespace

DemoRowRegistrar::DemoRowRegistrar(int order, DemoRowProvider provider) {
  registry().providers.emplace(order, std::move(provider));
}

std::vector<DemoRow> run_demo_rows(const DemoLayer& layer, const DemoOptions& options) {
  std::vector<DemoRow> rows;
  for (const auto& [order, provider] : registry().providers) provider(layer, options, rows);
  return rows;
}

DemoLayer make_demo_layer(std::size_t N, std::size_t K, std::size_t M, std::uint64_t seed) {
  LOWBIT_CHECK(N > 0 && K > 0 && M > 0, "demo layer needs positive N, K, M");
  DemoLayer L;
  L.N = N;
  L.K = K;
  L.M = M;
  Rng rng(seed);

  // Weights: Student-t, per-row log-normal scale, a few heavy rows and columns.
  std::vector<double> row_scale(N), col_scale(K, 1.0);
  for (auto& s : row_scale) s = std::exp(kRowScaleSigma * rng.normal());
  for (std::size_t i = 0; i < std::min(kHeavyRows, N); ++i) row_scale[rng.index(N)] *= kHeavyRowFactor;
  for (std::size_t i = 0; i < std::min(kHeavyCols, K); ++i) col_scale[rng.index(K)] *= kHeavyColFactor;
  const double t_std = std::sqrt(kWeightNu / (kWeightNu - 2.0));  // std of Student-t(nu)
  L.W.resize(N * K);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      L.W[n * K + k] = static_cast<float>(kWeightStd / t_std * rng.student_t(kWeightNu) * row_scale[n] * col_scale[k]);

  // Inputs: x = scale_k * (a * (F Lambda)_k + b * e_k), F [M, r], Lambda [r, K]; a few strong features.
  std::vector<double> loading(kLatentFactors * K), feat_scale(K);
  for (auto& v : loading) v = rng.normal() / std::sqrt(static_cast<double>(kLatentFactors));
  for (auto& s : feat_scale) s = kInputStd * std::exp(kFeatureScaleSigma * rng.normal());
  const std::size_t strong = std::min(K, std::max<std::size_t>(4, K / kStrongFeaturesPer));
  while (L.strong_features.size() < strong) {
    const std::size_t k = rng.index(K);
    if (std::find(L.strong_features.begin(), L.strong_features.end(), k) != L.strong_features.end()) continue;
    L.strong_features.push_back(k);
    feat_scale[k] *= kStrongFeatureFactor;
  }
  std::sort(L.strong_features.begin(), L.strong_features.end());
  L.X.resize(M * K);
  std::vector<double> f(kLatentFactors);
  for (std::size_t m = 0; m < M; ++m) {
    for (auto& v : f) v = rng.normal();
    for (std::size_t k = 0; k < K; ++k) {
      double latent = 0;
      for (std::size_t r = 0; r < kLatentFactors; ++r) latent += f[r] * loading[r * K + k];
      L.X[m * K + k] = static_cast<float>(feat_scale[k] * (kFactorWeight * latent + kNoiseWeight * rng.normal()));
    }
  }

  L.H = gram(L.X.data(), M, K);  // X^T X in double

  const std::vector<float> zeros(N * K, 0.f);
  L.output_energy = lowbit::output_error(L.W.data(), zeros.data(), N, K, L.H.data());

  std::ostringstream d;
  d << "W [N=" << N << ", K=" << K << "] Student-t(" << kWeightNu << ") std " << kWeightStd << ", " << kHeavyRows
    << " heavy rows (x" << kHeavyRowFactor << "), " << kHeavyCols << " heavy columns (x" << kHeavyColFactor
    << "); X [M=" << M << ", K] " << kLatentFactors << "-factor correlated, " << strong << " strong features (x"
    << kStrongFeatureFactor << "); seed " << seed;
  L.description = d.str();
  return L;
}

double output_error_on_inputs(const std::vector<float>& W, const std::vector<float>& Wq, std::size_t N,
                              std::size_t K, const float* X, std::size_t M) {
  LOWBIT_CHECK(W.size() == N * K && Wq.size() == N * K, "output_error_on_inputs: weights of ", W.size(), " and ",
               Wq.size(), " elements, expected N*K = ", N * K);
  // (Wq - W) X^T as blocked products (chunks of output rows), then the sum of squares
  constexpr std::size_t kChunkRows = 256;
  const unsigned threads = lowbit::detail::resolve_threads(0);
  std::vector<double> Xt(K * M);  // X^T [K, M]
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) Xt[k * M + m] = static_cast<double>(X[m * K + k]);
  std::vector<double> D, Y;
  double total = 0;
  for (std::size_t n0 = 0; n0 < N; n0 += kChunkRows) {
    const std::size_t rows = std::min(kChunkRows, N - n0);
    D.resize(rows * K);
    for (std::size_t i = 0; i < rows * K; ++i)
      D[i] = static_cast<double>(Wq[n0 * K + i]) - static_cast<double>(W[n0 * K + i]);
    Y.assign(rows * M, 0.0);
    lowbit::detail::gemm_sub(rows, M, K, D.data(), K, Xt.data(), M, Y.data(), M, threads);  // Y = (W - Wq) X^T
    for (const double y : Y) total += y * y;
  }
  return total;
}

double kernel_device_bytes(const lowbit::QuantizedWeight& q) {
  namespace K = lowbit::kernels;
  const std::size_t G = q.groups();
  if (G == 0 || q.K % G || !K::TiledLayout<4>::fits(q.K, q.N) || !K::kernel_group_supported(q.K, q.K / G))
    return 0.0;  // the conditions tile_weight checks
  const std::size_t group = q.K / G;
  K::TiledMeta m;
  m.bits = q.spec.bits;
  m.K = q.K;
  m.N = q.N;
  m.group_size = group;
  m.sym = q.spec.sym;
  // act-order: the kernel layout sorts input columns by group and keeps the permutation (tile_weight)
  m.act_order = !std::is_sorted(q.g_idx.begin(), q.g_idx.end());
  return static_cast<double>(K::tiled_weight_bytes(m));
}

DemoLayer make_data_layer(std::vector<float> W, std::size_t N, std::size_t K, std::vector<float> X, std::size_t n,
                          std::size_t eval_rows, std::size_t max_eval, std::string description) {
  LOWBIT_CHECK(N > 0 && K > 0, "layer needs positive N and K (got [", N, ", ", K, "])");
  LOWBIT_CHECK(W.size() == N * K, "weight has ", W.size(), " elements, expected N*K = ", N * K);
  LOWBIT_CHECK(X.size() == n * K, "inputs have ", X.size(), " elements, expected ", n, " rows x K = ", n * K);
  LOWBIT_CHECK(eval_rows < n, "no calibration rows left: ", n, " input rows, ", eval_rows, " held out");
  for (std::size_t i = 0; i < W.size(); ++i)
    LOWBIT_CHECK(std::isfinite(W[i]), "weight is not finite at row ", i / K, ", column ", i % K);
  for (std::size_t i = 0; i < X.size(); ++i)
    LOWBIT_CHECK(std::isfinite(X[i]), "inputs are not finite at row ", i / K, ", column ", i % K);
  DemoLayer L;
  L.N = N;
  L.K = K;
  L.M = n - eval_rows;
  L.W = std::move(W);
  // held-out rows [M, n): at most max_eval of them (evenly spaced) are evaluated on
  L.M_eval = max_eval > 0 ? std::min(eval_rows, max_eval) : eval_rows;
  L.X_eval.resize(L.M_eval * K);
  for (std::size_t i = 0; i < L.M_eval; ++i) {
    const std::size_t src = L.M + i * eval_rows / L.M_eval;
    std::copy(X.begin() + static_cast<std::ptrdiff_t>(src * K), X.begin() + static_cast<std::ptrdiff_t>((src + 1) * K),
              L.X_eval.begin() + static_cast<std::ptrdiff_t>(i * K));
  }
  X.resize(L.M * K);  // the calibration rows (no second copy of the recording)
  X.shrink_to_fit();
  L.X = std::move(X);
  // X^T X of the calibration rows by the GPTQ accumulator (blocked and threaded: recorded inputs can be
  // hundreds of thousands of rows), which keeps 2/M X^T X
  lowbit::gptq::Hessian<double> h(K, 0);
  h.add_batch(L.X.data(), L.M);
  L.H = h.matrix();
  for (double& v : L.H) v *= static_cast<double>(L.M) / 2.0;
  const std::vector<float> zeros(N * K, 0.f);
  L.output_energy = L.M_eval > 0 ? output_error_on_inputs(L.W, zeros, N, K, L.X_eval.data(), L.M_eval)
                                 : lowbit::output_error(L.W.data(), zeros.data(), N, K, L.H.data());
  L.description = std::move(description);
  return L;
}

DemoRow evaluate_row(const DemoLayer& layer, std::string method, std::string bits, std::string group,
                     const std::vector<float>& Wq, double stored_bytes, std::string note) {
  LOWBIT_CHECK(Wq.size() == layer.W.size(), "evaluate_row: Wq has ", Wq.size(), " elements, expected N*K = ",
               layer.W.size());
  LOWBIT_CHECK(stored_bytes > 0, "evaluate_row: stored bytes must be positive");
  DemoRow r;
  r.method = std::move(method);
  r.bits = std::move(bits);
  r.group = std::move(group);
  r.note = std::move(note);
  const double weights = static_cast<double>(layer.N) * static_cast<double>(layer.K);
  r.bits_per_weight = 8.0 * stored_bytes / weights;
  r.ratio_vs_fp16 = static_cast<double>(lowbit::fp16_bytes(layer.N, layer.K)) / stored_bytes;
  r.rel_weight_error = lowbit::relative_weight_error(layer.W.data(), Wq.data(), layer.W.size());
  r.stored_bytes = stored_bytes;
  const double out = layer.M_eval > 0
                         ? output_error_on_inputs(layer.W, Wq, layer.N, layer.K, layer.X_eval.data(), layer.M_eval)
                         : lowbit::output_error(layer.W.data(), Wq.data(), layer.N, layer.K, layer.H.data());
  r.rel_output_error = layer.output_energy > 0 ? std::sqrt(std::max(out, 0.0) / layer.output_energy) : 0.0;
  return r;
}

DemoRow evaluate_row(const DemoLayer& layer, const std::string& method, int bits, int group,
                     const std::vector<float>& Wq, double stored_bytes, std::string note) {
  return evaluate_row(layer, method, std::to_string(bits), group <= 0 ? std::string("-") : std::to_string(group), Wq,
                      stored_bytes, std::move(note));
}

void print_table(std::ostream& os, const std::vector<DemoRow>& rows) {
  const std::vector<std::string> head{"method", "bits", "group", "bits/weight", "vs fp16", "rel W err",
                                      "rel out err", "note"};
  std::vector<std::vector<std::string>> cells;
  cells.push_back(head);
  for (const DemoRow& r : rows)
    cells.push_back({r.method, r.bits, r.group, fixed(r.bits_per_weight, 3), fixed(r.ratio_vs_fp16, 2) + "x",
                     sig(r.rel_weight_error), sig(r.rel_output_error), r.note});
  std::vector<std::size_t> width(head.size(), 0);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    std::string line;
    for (std::size_t c = 0; c < cells[i].size(); ++c) {
      const std::string& s = cells[i][c];
      const bool left = c == 0 || c + 1 == cells[i].size();  // method and note left-aligned, numbers right
      const std::string pad(width[c] - s.size(), ' ');
      line += left ? s + pad : pad + s;
      if (c + 1 < cells[i].size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << line << '\n';
    if (i == 0) {
      std::size_t total = 0;
      for (std::size_t c = 0; c < width.size(); ++c) total += width[c] + (c + 1 < width.size() ? 2 : 0);
      os << std::string(total, '-') << '\n';
    }
  }
}

// argv[0] is the command name ("demo"), as in main(); options follow. Usage mistakes throw UsageError,
// bad values lowbit::Error (main() turns both into a one-line reason and a non-zero exit).
int cmd_demo(int argc, char** argv) {
  constexpr std::uint64_t kMaxFeatures = 16384;  // keeps H = [K, K] doubles at most 2 GiB
  constexpr std::uint64_t kMaxSamples = 65536;
  constexpr std::size_t kNPack = 32;             // 3-bit qzeros pack 32 output columns per 3 words
  constexpr std::size_t kKGroup = 128;           // the g128 rows need K divisible by 128
  DemoOptions opt;
  std::string why;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    std::uint64_t v = 0;
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--sym") {
      opt.sym = true;
    } else if (a == "--mse") {
      opt.mse = true;
    } else if (a == "--seed") {
      if (!parse_count("--seed", value, std::numeric_limits<std::uint64_t>::max(), v, why)) break;
      opt.seed = v;
      ++i;
    } else if (a == "--n" || a == "--k" || a == "--m") {
      if (!parse_count(a.c_str(), value, a == "--m" ? kMaxSamples : kMaxFeatures, v, why)) break;
      (a == "--n" ? opt.n : a == "--k" ? opt.k : opt.m) = static_cast<std::size_t>(v);
      ++i;
    } else {
      why = "unknown option '" + a + "'";
      break;
    }
  }
  if (why.empty() && (opt.n == 0 || opt.n % kNPack != 0))
    why = "--n must be a positive multiple of " + std::to_string(kNPack) + " (3-bit qzeros packing)";
  if (why.empty() && (opt.k == 0 || opt.k % kKGroup != 0))
    why = "--k must be a positive multiple of " + std::to_string(kKGroup) + " (group size 128)";
  if (why.empty() && opt.m == 0) why = "--m must be positive";
  if (!why.empty()) throw UsageError(why);  // main() prints it with the usage hint, exit 2
  const DemoLayer layer = make_demo_layer(opt.n, opt.k, opt.m, opt.seed);  // lowbit::Error -> exit 1
  std::cout << "lowbit demo: " << layer.description << "\n"
            << "bits/weight and vs fp16 count everything a GPTQ checkpoint stores (qweight, qzeros, fp16 "
               "scales, g_idx);\nrel out err = ||(W - Wq) X^T||_F / ||W X^T||_F on the calibration inputs.\n\n";
  print_table(std::cout, run_demo_rows(layer, opt));
  return 0;
}

}  // namespace lowbit_cli
