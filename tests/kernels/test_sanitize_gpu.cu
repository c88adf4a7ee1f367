// Small GEMM cases for compute-sanitizer memcheck/racecheck (few kernels, so instrumentation is quick):
// split-K with the last-CTA reduction, act-order gather, group 32, a partial CTA column, multi-M-tile.
#include "gpu_common.cuh"

TEST_CASE("small cases for compute-sanitizer", "[kernels][gpu][sanitize]") {
  using namespace kt;
  check_gemm<4, half_t>(random_weight(4, 1024, 192, 128, false, true), {1, 17, 40, 300}, true);
  check_gemm<4, half_t>(random_weight(4, 448, 128, 32, true, false), {3, 70}, false);
}
