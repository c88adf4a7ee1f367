// GEMM sweep for 4-bit weights, f16 activations (one width x type per file keeps compile units small).
#include "gpu_common.cuh"

TEST_CASE("gemm 4-bit f16: every group x sym x act-order x M against the host reference", "[kernels][gpu][sweep]") {
  kt::run_sweep<4, lowbit::half_t>();
}

TEST_CASE("gemm 4-bit f16: chained and back-to-back decode calls with programmatic dependent launch", "[kernels][gpu][pdl]") {
  kt::run_pdl_checks<4, lowbit::half_t>();
}
