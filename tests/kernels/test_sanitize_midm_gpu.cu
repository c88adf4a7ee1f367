// Small mid-M kernel cases for compute-sanitizer (part of test_kernels_sanitize): every default policy,
// split-K with the last-CTA reduction (planner's and a hand-made uneven split), act-order pre-gather,
// group 32, a partial last CTA column (N = 320), several M tiles with a partial last one, k-steps with
// an idle K warp (odd tile counts with WK = 2), the fp32 dequantization fallback (8-bit bf16).
#include "midm_common.cuh"

TEST_CASE("mid-M kernel: small cases for compute-sanitizer", "[kernels][gpu][sanitize][midm]") {
  using namespace kt;
  using Q4 = MidmPolicies<4>;
  const QuantizedWeight a = random_weight(4, 1088, 320, 64, false, true);  // 17 k-tiles
  check_midm<4, half_t, Q4::M32>(a, {17, 40}, true);
  check_midm<4, half_t, Q4::M64>(a, {33, 64}, true, 3);
  check_midm<4, half_t, Q4::M128>(a, {100, 200}, true);
  check_midm<4, half_t, Q4::M64>(random_weight(4, 448, 128, 32, true, false), {70}, false);
  check_midm<8, bfloat16_t, MidmPolicies<8>::M64>(random_weight(8, 576, 192, 32, false, false), {48}, true, 2);
  check_midm<3, half_t, MidmPolicies<3>::M128>(random_weight(3, 384, 320, 128, false, false), {129}, true);
#if defined(LOWBIT_MIDM_WGMMA)
  if (midm_wgmma_available()) {  // the sm_90a wgmma variant
    check_midm<4, half_t, MidmWgmmaPolicies<4>::W64>(a, {40, 64}, true, 3);
    check_midm<4, half_t, MidmWgmmaPolicies<4>::W128>(a, {100, 200}, true);
    check_midm<4, half_t, MidmWgmmaPolicies<4>::W256>(a, {160}, true, 3);
    check_midm<4, half_t, MidmWgmmaPolicies<4>::W64ls>(a, {40}, true, 3);
    check_midm<4, half_t, MidmWgmmaPolicies<4>::W128ls>(a, {100}, true);
    check_midm<8, bfloat16_t, MidmWgmmaPolicies<8>::W64>(random_weight(8, 576, 192, 32, false, false), {48}, true, 2);
  }
#endif
}
