// GEMM sweep for 2-bit weights, bf16 activations (one width x type per file keeps compile units small).
#include "gpu_common.cuh"

TEST_CASE("gemm 2-bit bf16: every group x sym x act-order x M against the host reference", "[kernels][gpu][sweep]") {
  kt::run_sweep<2, lowbit::bfloat16_t>();
}

TEST_CASE("gemm 2-bit bf16: chained and back-to-back decode calls with programmatic dependent launch", "[kernels][gpu][pdl]") {
  kt::run_pdl_checks<2, lowbit::bfloat16_t>();
}
