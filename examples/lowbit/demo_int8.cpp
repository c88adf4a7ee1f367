// `lowbit demo` rows for LLM.int8() (Dettmers et al., arXiv 2208.07339), from the host reference of
// lowbit/int8/llm_int8.hpp: per-output-channel absmax int8 weights, then
//   - int8 W8A16: the weight alone (activations stay fp16): output error as for the RTN/GPTQ rows;
//   - LLM.int8() W8A8 with the decomposition at the paper's threshold 6: the outlier feature columns of
//     X (|x| >= 6) go through a high-precision product, the rest through row-wise absmax int8;
//   - the same without decomposition (threshold 0: every column int8, one absmax per row);
//   - the decomposition with an fp16 side copy of the calibrated outlier dimensions' weights.
// The W8A8 rows' output error includes the activation quantization: ||Y - X Wᵀ||_F / ||X Wᵀ||_F with Y
// the int8 pipeline's output, over the first kDemoInt8MaxSamples calibration rows (said in the note).
#include "demo_int8.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <lowbit/int8/llm_int8.hpp>

#include "demo.hpp"

namespace lowbit_cli {
namespace {

constexpr int kDemoInt8Order = 300;        // after GPTQ (200)
constexpr int kSideCopyMaxDims = 32;       // fp16 side copy for at most this many calibrated dimensions
constexpr double kFp32ScaleBytes = 4.0;    // one fp32 absmax per output channel
constexpr double kFp16Bytes = 2.0;         // side-copy element
constexpr double kIndexBytes = 4.0;        // int32 dimension index per side-copy column

std::vector<float> dequantized(const lowbit::int8::Int8Weight& w, const lowbit::int8::OutlierSideCopy* side) {
  std::vector<float> Wq(static_cast<std::size_t>(w.N) * w.K);
  for (int n = 0; n < w.N; ++n)
    for (int k = 0; k < w.K; ++k) Wq[static_cast<std::size_t>(n) * w.K + k] = w.dequant(n, k);
  if (side)
    for (std::size_t j = 0; j < side->dims.size(); ++j)
      for (int n = 0; n < w.N; ++n)
        Wq[static_cast<std::size_t>(n) * w.K + side->dims[j]] = static_cast<float>(side->values[j * w.N + n]);
  return Wq;
}

void int8_rows(const DemoLayer& L, const DemoOptions&, std::vector<DemoRow>& rows) {
  const int N = static_cast<int>(L.N), K = static_cast<int>(L.K);
  const lowbit::int8::Int8Weight w = lowbit::int8::quantize_weight(L.W.data(), N, K);
  const std::vector<float> Wq = dequantized(w, nullptr);
  const double bytes = demo_int8_bytes(L.N, L.K, nullptr);
  DemoRow w8a16 = evaluate_row(L, "int8 W8A16", 8, 0, Wq, bytes, "absmax per row, fp16 activations");
  w8a16.config = "W8A16";
  w8a16.device_bytes = bytes;  // codes + fp32 scales, as Int8Linear holds them
  rows.push_back(w8a16);

  // W8A8 errors on the evaluation rows: the held-out ones when there are some (the side copy below is
  // calibrated on X, never on them)
  const bool held_out = L.M_eval > 0;
  const std::size_t avail = held_out ? L.M_eval : L.M;
  const std::size_t S = std::min(avail, kDemoInt8MaxSamples);
  const std::vector<double> Y_ref = demo_int8_reference(L, S, held_out);
  const std::string of =
      " on " + std::to_string(S) + "/" + std::to_string(avail) + (held_out ? " held-out samples" : " samples");

  const float t = lowbit::int8::kDefaultThreshold;
  const DemoInt8Outcome dec = demo_int8_eval(L, w, t, nullptr, Y_ref, S, held_out);
  char buf[160];
  std::snprintf(buf, sizeof buf, "W8A8, t=%g: %zu outlier cols in fp16%s", static_cast<double>(t),
                dec.outlier_columns, of.c_str());
  std::string note = buf;
  if (dec.outlier_columns == 0) note += "; X has no |x| >= threshold: the decomposition is idle";
  // Same stored weight as the W8A16 row (sizes and weight error carry over); only the output error differs.
  DemoRow r = w8a16;
  r.method = "LLM.int8()";
  r.note = note;
  r.config = "W8A8, t=" + std::to_string(static_cast<int>(t));
  r.rel_output_error = dec.rel_output_error;
  rows.push_back(r);

  const DemoInt8Outcome plain = demo_int8_eval(L, w, 0.f, nullptr, Y_ref, S, held_out);
  r.note = "W8A8, t=0: no decomposition" + of;
  r.config = "W8A8, t=0";
  r.rel_output_error = plain.rel_output_error;
  rows.push_back(r);

  // fp16 side copy of the weight columns of the dimensions most often above the threshold in X.
  const lowbit::int8::OutlierSideCopy side =
      lowbit::int8::calibrate_side_copy(L.X.data(), static_cast<int>(L.M), L.W.data(), N, K, t, kSideCopyMaxDims);
  if (!side.dims.empty()) {
    const DemoInt8Outcome sc = demo_int8_eval(L, w, t, &side, Y_ref, S, held_out);
    std::snprintf(buf, sizeof buf, "W8A8, t=%g + fp16 side copy of %zu dims%s", static_cast<double>(t),
                  side.dims.size(), of.c_str());
    r = evaluate_row(L, "LLM.int8()", "8+fp16", "-", dequantized(w, &side), demo_int8_bytes(L.N, L.K, &side), buf);
    r.config = "W8A8, t=" + std::to_string(static_cast<int>(t)) + " + fp16 side copy";
    r.device_bytes = r.stored_bytes;
    r.rel_output_error = sc.rel_output_error;
    rows.push_back(r);
  }
}

const DemoRowRegistrar int8_registrar(kDemoInt8Order, int8_rows);

}  // namespace

double demo_int8_bytes(std::size_t N, std::size_t K, const lowbit::int8::OutlierSideCopy* side) {
  double b = static_cast<double>(N) * static_cast<double>(K) + kFp32ScaleBytes * static_cast<double>(N);
  if (side) b += static_cast<double>(side->dims.size()) * (kFp16Bytes * static_cast<double>(N) + kIndexBytes);
  return b;
}

std::vector<double> demo_int8_reference(const DemoLayer& L, std::size_t samples, bool held_out) {
  const std::size_t rows = held_out ? L.M_eval : L.M;
  LOWBIT_CHECK(samples <= rows, "demo_int8_reference: ", samples, " samples, the layer has ", rows);
  const float* X = held_out ? L.X_eval.data() : L.X.data();
  return lowbit::int8::matmul_reference(X, static_cast<int>(samples), static_cast<int>(L.K), L.W.data(),
                                        static_cast<int>(L.N), nullptr);
}

DemoInt8Outcome demo_int8_eval(const DemoLayer& L, const lowbit::int8::Int8Weight& w, float threshold,
                               const lowbit::int8::OutlierSideCopy* side, const std::vector<double>& Y_ref,
                               std::size_t samples, bool held_out) {
  const std::size_t rows = held_out ? L.M_eval : L.M;
  LOWBIT_CHECK(samples <= rows && Y_ref.size() == samples * L.N, "demo_int8_eval: reference of ", Y_ref.size(),
               " values does not match ", samples, " samples x N = ", L.N);
  const float* X = held_out ? L.X_eval.data() : L.X.data();
  const lowbit::int8::ActivationQuant aq =
      lowbit::int8::quantize_activations(X, static_cast<int>(samples), static_cast<int>(L.K), threshold);
  LOWBIT_CHECK(aq.nonfinite == 0, "demo_int8_eval: non-finite inputs");
  const std::vector<double> Y = lowbit::int8::decomposed_matmul(X, aq, w, nullptr, side);
  DemoInt8Outcome out;
  out.rel_output_error = lowbit::int8::relative_error(Y, Y_ref);
  out.outlier_columns = aq.outlier_cols.size();
  out.samples = samples;
  return out;
}

}  // namespace lowbit_cli
