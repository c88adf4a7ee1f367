// LLM.int8() rows of `lowbit demo` (demo_int8.cpp), exposed so the demo test (tests/demo) and the GPU
// section (demo_gpu.cu) evaluate exactly what the table shows.
#pragma once

#include <cstddef>
#include <vector>

#include <lowbit/int8/llm_int8.hpp>

#include "demo.hpp"

namespace lowbit_cli {

/// Calibration samples the W8A8 rows run through the host reference (the first rows of X; the
/// reference is a plain triple loop, this keeps the demo within seconds on one core).
inline constexpr std::size_t kDemoInt8MaxSamples = 256;

/// One W8A8 evaluation of the demo layer on its calibration inputs.
struct DemoInt8Outcome {
  double rel_output_error = 0;  ///< ||Y - X Wᵀ||_F / ||X Wᵀ||_F over the evaluated samples
  std::size_t outlier_columns = 0;  ///< columns of X with some |x| >= threshold (0 when threshold <= 0)
  std::size_t samples = 0;          ///< calibration rows evaluated
};

/// The float reference `Y = X Wᵀ` [S, N] (double) for the first `samples` rows of the demo's X (of
/// the held-out X_eval with `held_out`).
std::vector<double> demo_int8_reference(const DemoLayer& L, std::size_t samples, bool held_out = false);

/// LLM.int8() forward of the first `samples` rows of X (of X_eval with `held_out`) with weight `w`
/// (threshold <= 0: plain W8A8; `side`: optional calibrated fp16 copy of outlier weight columns),
/// compared with `Y_ref`.
DemoInt8Outcome demo_int8_eval(const DemoLayer& L, const lowbit::int8::Int8Weight& w, float threshold,
                               const lowbit::int8::OutlierSideCopy* side, const std::vector<double>& Y_ref,
                               std::size_t samples, bool held_out = false);

/// Stored bytes of an int8 weight: N·K codes + N fp32 scales (+ the side copy's fp16 columns and
/// their int32 dimension indices).
double demo_int8_bytes(std::size_t N, std::size_t K, const lowbit::int8::OutlierSideCopy* side);

}  // namespace lowbit_cli
