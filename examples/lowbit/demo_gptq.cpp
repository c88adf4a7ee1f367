// `lowbit demo` rows for GPTQ (arXiv 2210.17323): the host solver of lowbit/gptq/solver.hpp on the
// demo layer at 4/3/2 bits, g128 (and 4-bit with act-order), with the GPTQ Hessian H = 2/n XᵀX of the
// demo's calibration inputs. Same output-error column as the RTN rows above them, so the table shows
// what GPTQ buys over round-to-nearest at the same storage; the note gives the solve time per layer.
//
// The "scale refit" rows run gptq::refine_scales after the solve (group scales re-solved for the output
// error with the codes fixed; the solve time in their note includes it).
//
// Limits: host solver only here (the GPU solve is timed in demo_gpu.cu when a GPU is present);
// threads = all hardware threads (about 0.3-0.5 s per row for 1024 x 1024 on one core).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/gptq/refine.hpp>
#include <lowbit/gptq/solver.hpp>
#include <lowbit/quant.hpp>

#include "demo.hpp"
#include "demo_gptq.hpp"

namespace lowbit_cli {
namespace {

constexpr int kDemoGptqOrder = 200;  // after fp16 (0) and RTN (100)

std::string seconds_note(const char* what, double s) {
  char buf[64];
  if (s < 1.0)
    std::snprintf(buf, sizeof buf, "%s %.0f ms", what, s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%s %.2f s", what, s);
  return buf;
}

void gptq_rows(const DemoLayer& L, const DemoOptions& opt, std::vector<DemoRow>& rows) {
  const std::vector<double> H = demo_gptq_hessian(L);
  for (const DemoGptqConfig& c : demo_gptq_configs(opt.group)) {
    const DemoGptqOutcome r = demo_gptq_run(L, H, opt, c);
    std::string note = std::string(opt.sym ? "sym" : "asym") + (opt.mse ? "+mse" : "");
    if (c.act_order) note += ", act-order";
    if (c.refit) note += ", scale refit";
    const std::string config = note;
    note += ", " + seconds_note("solve", r.seconds);
    if (r.damp_attempts > 1) {  // damping escalated: say how far
      char buf[48];
      std::snprintf(buf, sizeof buf, ", damp %g", r.damp_used);
      note += buf;
    }
    rows.push_back(evaluate_row(L, "GPTQ", c.bits, c.group, r.Wq, r.stored_bytes, note));
    rows.back().config = config;
    rows.back().device_bytes = r.device_bytes;
  }
}

const DemoRowRegistrar gptq_registrar(kDemoGptqOrder, gptq_rows);

}  // namespace

std::vector<DemoGptqConfig> demo_gptq_configs(int group) {
  return {{4, group, false}, {3, group, false}, {2, group, false}, {4, group, true},
          {4, group, false, true}, {3, group, false, true}, {2, group, false, true}, {4, group, true, true}};
}

std::vector<double> demo_gptq_hessian(const DemoLayer& L) {
  // DemoLayer::H is XᵀX (double); the GPTQ Hessian of n = M samples is 2/n XᵀX, the running mean
  // gptq::Hessian accumulates (scaling it does not change the solve, damping is relative; kept exact).
  std::vector<double> H(L.H.size());
  const double s = 2.0 / static_cast<double>(L.M);
  for (std::size_t i = 0; i < H.size(); ++i) H[i] = s * L.H[i];
  return H;
}

DemoGptqOutcome demo_gptq_run(const DemoLayer& L, const std::vector<double>& H, const DemoOptions& opt,
                              const DemoGptqConfig& c) {
  lowbit::QuantSpec spec;
  spec.bits = c.bits;
  spec.group_size = c.group;
  spec.sym = opt.sym;
  spec.mse = opt.mse;
  lowbit::gptq::GptqOptions g;
  g.act_order = c.act_order;
  g.compute_errors = false;  // the table computes the output error itself (same definition as RTN)
  g.layer = "demo";
  lowbit::gptq::GptqResult res = lowbit::gptq::gptq_quantize<float>(L.W.data(), L.N, L.K, H.data(), spec, g);
  double refit_seconds = 0;
  if (c.refit) {
    const auto t0 = std::chrono::steady_clock::now();
    lowbit::gptq::RefineOptions ro;
    ro.layer = g.layer;
    (void)lowbit::gptq::refine_scales(res.weight, L.W.data(), H.data(), ro);
    refit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  DemoGptqOutcome out;
  out.Wq = lowbit::dequantize(res.weight);
  out.stored_bytes = static_cast<double>(lowbit::gptq_footprint(L.N, L.K, spec).total);
  out.device_bytes = kernel_device_bytes(res.weight);
  out.seconds = res.report.seconds + refit_seconds;
  out.damp_used = res.report.damp_used;
  out.damp_attempts = res.report.damp_attempts;
  return out;
}

}  // namespace lowbit_cli
