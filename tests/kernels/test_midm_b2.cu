// Mid-M kernel (midm.cuh) sweep for 2-bit weights, fp16 and bf16 (one width per file keeps compile units small).
#include "midm_common.cuh"

TEST_CASE("midm 2-bit f16: every policy x group x sym x act-order x M against the host reference", "[kernels][gpu][midm]") {
  kt::run_midm_sweep<2, lowbit::half_t>();
}

TEST_CASE("midm 2-bit bf16: every policy x group x sym x act-order x M against the host reference", "[kernels][gpu][midm]") {
  kt::run_midm_sweep<2, lowbit::bfloat16_t>();
}
