// `lowbit quantize --method gptq` without nvcc: no GPU path (the host solver is used). With nvcc the
// CMake list defines LOWBIT_CLI_HAVE_CUDA and compiles quantize_gptq_gpu.cu instead.
#ifndef LOWBIT_CLI_HAVE_CUDA

#include "quantize_gptq.hpp"

namespace lowbit_cli {

bool gptq_gpu_available() { return false; }

lowbit::gptq::GptqResult gptq_layer_gpu(const float*, std::size_t, std::size_t, const float*, const lowbit::QuantSpec&,
                                        const lowbit::gptq::GptqOptions& opt) {
  lowbit::detail::fail("layer '", opt.layer, "': this lowbit was built without CUDA (use --device cpu)");
}

}  // namespace lowbit_cli

#endif  // LOWBIT_CLI_HAVE_CUDA
