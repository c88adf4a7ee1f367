// GPTQ rows of `lowbit demo` (demo_gptq.cpp): the configurations and one solve, exposed so the demo
// test (tests/demo) and the GPU section (demo_gpu.cu) use the same settings as the table.
#pragma once

#include <vector>

#include "demo.hpp"

namespace lowbit_cli {

/// One GPTQ row of the table.
struct DemoGptqConfig {
  int bits = 4;            ///< code width
  int group = 128;         ///< group size (<= 0 per-channel)
  bool act_order = false;  ///< desc_act
  bool refit = false;      ///< refit the group scales to the output error afterwards (gptq::refine_scales)
};

/// What one host GPTQ solve produced.
struct DemoGptqOutcome {
  std::vector<float> Wq;    ///< [N, K] dequantized result
  double stored_bytes = 0;  ///< GPTQ checkpoint bytes (qweight, qzeros, scales, g_idx)
  double device_bytes = 0;  ///< GPU bytes in the kernel layout (kernel_device_bytes)
  double seconds = 0;       ///< wall time of the solve (H given)
  double damp_used = 0;     ///< relative damping that factorized
  int damp_attempts = 0;    ///< factorizations tried
};

/// The rows the table shows: 4/3/2 bits with groups of `group` (128, the published default, in the
/// demo), 4 bits with act-order, then the same four with the scale refit.
std::vector<DemoGptqConfig> demo_gptq_configs(int group = 128);

/// The GPTQ Hessian 2/n XᵀX of the demo's calibration inputs (n = M), [K, K] double.
std::vector<double> demo_gptq_hessian(const DemoLayer& L);

/// Runs the host GPTQ solver on the demo layer (sym/mse from the demo options).
DemoGptqOutcome demo_gptq_run(const DemoLayer& L, const std::vector<double>& H, const DemoOptions& opt,
                              const DemoGptqConfig& c);

}  // namespace lowbit_cli
