/// @file demo_gpu.hpp
/// @brief The GPU section of `lowbit demo` (demo_gpu.cu with nvcc, demo_gpu_none.cpp without):
///        shared constants so both builds print the same line when no GPU can be used.
#pragma once

namespace lowbit_cli {

/// Registration order of the GPU rows: after fp16 (0), RTN (100), GPTQ (200) and LLM.int8() (300).
inline constexpr int kDemoGpuOrder = 400;

/// The line `lowbit demo` prints instead of the GPU rows (followed by the reason in parentheses).
inline constexpr const char* kDemoNoGpuLine = "GPU: none found \xe2\x80\x94 CPU-only run";

}  // namespace lowbit_cli
