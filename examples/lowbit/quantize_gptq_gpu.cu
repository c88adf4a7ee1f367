// `lowbit quantize --method gptq` on the GPU (built with nvcc; quantize_gptq_gpu_none.cpp otherwise).
#include <cuda_runtime.h>

#include <lowbit/gptq/solver_gpu.cuh>

#include "quantize_gptq.hpp"

namespace lowbit_cli {

bool gptq_gpu_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

lowbit::gptq::GptqResult gptq_layer_gpu(const float* W, std::size_t N, std::size_t K, const float* H,
                                        const lowbit::QuantSpec& spec, const lowbit::gptq::GptqOptions& opt) {
  return lowbit::gptq::gptq_quantize_gpu(W, N, K, H, spec, opt);
}

}  // namespace lowbit_cli
