// `lowbit demo` GPU section for builds without nvcc: one line saying the run is CPU-only. With nvcc
// the CMake list defines LOWBIT_CLI_HAVE_CUDA and compiles demo_gpu.cu instead, which looks for a
// device at run time.
#ifndef LOWBIT_CLI_HAVE_CUDA

#include <iostream>
#include <vector>

#include "demo.hpp"
#include "demo_gpu.hpp"

namespace lowbit_cli {
namespace {

void no_gpu(const DemoLayer&, const DemoOptions& opt, std::vector<DemoRow>&) {
  if (!opt.gpu) return;  // `lowbit compare`: accuracy only
  std::cout << kDemoNoGpuLine << " (built without CUDA)\n\n";
}

const DemoRowRegistrar gpu_registrar(kDemoGpuOrder, no_gpu);

}  // namespace
}  // namespace lowbit_cli

#endif  // LOWBIT_CLI_HAVE_CUDA
