// The sm_90a large-M kernel (large_wgmma.cuh), both CTA shapes (128 x 256 and 256 x 128), each alone and in 2-CTA
// clusters sharing the activation loads, called directly
// (make_large_wgmma_plan + run_large_wgmma) against the double-accumulating host reference: every width x group x sym x
// act-order x element type on odd shapes (K = 7 or 6 k-tiles, N = 5 slabs: the last column block has one slab), M from
// 1 to 300 (partial row blocks), with poisoned outputs, a row past M that must stay untouched, a garbage-filled
// workspace and a second call; then CTAs with 2 and 3 slabs inside N, longer K, and PDL launches. Built only in sm_90a
// builds; skipped on devices without the wgmma kernels.
#include "gpu_common.cuh"

namespace {

template <int B, class T, int BM, int CN>
void check_large(const kt::QuantizedWeight& q, const std::vector<std::size_t>& Ms, bool with_bias, bool pdl = false) {
  namespace d = lowbit::kernels::detail;
  using namespace kt;
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  GemmProblem<T> prob(q, Mmax, with_bias, Mmax + 1);  // one row past the largest M: must stay untouched
  const TiledWeightBuffer& w = prob.w;
  std::size_t ws = 0;
  for (std::size_t M : Ms) ws = std::max(ws, d::workspace_total(d::make_large_wgmma_plan<B, BM>(M, q.N, q.K), M, w.view().meta));
  DevBuf dW(std::max<std::size_t>(ws, 16));
  for (std::size_t M : Ms) {
    const d::GemmPlan p = d::make_large_wgmma_plan<B, BM>(M, q.N, q.K);
    INFO("BM " << BM << " cluster " << CN << " bits " << B << " K " << q.K << " N " << q.N << " group "
                 << w.view().meta.group_size << " sym " << w.view().meta.sym << " act_order " << w.view().meta.act_order
                 << " M " << M << " bias " << with_bias << " pdl " << pdl);
    KT_CUDA(cudaMemset(dW.p, 0x5a, std::max<std::size_t>(ws, 16)));
    KT_CUDA(cudaMemset(prob.dY.p, 0xff, (Mmax + 1) * q.N * 2));  // all-ones bits: NaN in fp16 and bf16
    lowbit::kernels::GemmOptions o;
    o.pdl = pdl ? lowbit::kernels::PdlMode::on : lowbit::kernels::PdlMode::off;
    check_twice_against_reference(prob, M, q.N, [&] {
      return d::run_large_wgmma<B, T, BM, CN>(prob.dA.template as<T>(), M, w.view(),
                                             with_bias ? prob.dB.template as<T>() : nullptr, prob.dY.template as<T>(), dW.p,
                                             ws, p, nullptr, o);
    });
  }
}

template <int B, class T, int BM, int CN>
void run_large_shape() {
  const std::vector<std::size_t> Ms = {1, 17, 128, 129, 300};
  for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), std::size_t(0)})
    for (bool sym : {false, true})
      for (bool act : {false, true}) {
        if (group == 0 && act) continue;
        const std::size_t K = group == 128 ? 384 : 448, N = 320;
        const kt::QuantizedWeight q = kt::random_weight(B, K, N, group == 0 ? K : group, sym, act);
        check_large<B, T, BM, CN>(q, Ms, !sym);
      }
  // CTAs with 2 and 3 slabs inside N at 128 x 256 (the second warpgroup's half empty or partial); whole and one-slab
  // column blocks at 256 x 128
  check_large<B, T, BM, CN>(kt::random_weight(B, 256, 128, 64, false, false), {1, 130}, true);
  check_large<B, T, BM, CN>(kt::random_weight(B, 256, 448, 128, true, false), {65, 257}, false);
  // longer K (the ring wraps many times), several 256-column blocks, act-order with bias
  check_large<B, T, BM, CN>(kt::random_weight(B, 3200, 576, 128, false, true), {256, 520}, true);
  // PDL launches (the chain's producer side: the previous call in the stream wrote Y before)
  check_large<B, T, BM, CN>(kt::random_weight(B, 1024, 512, 128, false, false), {200, 384}, true, true);
}

template <int B, class T>
void run_large_sweep() {  // both CTA shapes: 128 x 256 (two m64n256 warpgroups) and 256 x 128 (four m64n128), each
                          // alone and in 2-CTA clusters
  if (!lowbit::kernels::detail::large_wgmma_available()) {
    WARN("no sm_90a wgmma kernels or no tensor-map encoder on this device: large-M kernel not tested");
    return;
  }
  run_large_shape<B, T, 128, 1>();
  run_large_shape<B, T, 128, 2>();
  run_large_shape<B, T, 256, 1>();
  run_large_shape<B, T, 256, 2>();  // gemm's: 2-CTA clusters (N = 320 has 3 column blocks, the fourth CTA lies past N)
}

}  // namespace

TEST_CASE("large-M kernel 4-bit: f16 and bf16 against the host reference", "[kernels][gpu][large]") {
  run_large_sweep<4, lowbit::half_t>();
  run_large_sweep<4, lowbit::bfloat16_t>();
}
TEST_CASE("large-M kernel 2-bit: f16 and bf16 against the host reference", "[kernels][gpu][large]") {
  run_large_sweep<2, lowbit::half_t>();
  run_large_sweep<2, lowbit::bfloat16_t>();
}
TEST_CASE("large-M kernel 3-bit: f16 and bf16 against the host reference", "[kernels][gpu][large]") {
  run_large_sweep<3, lowbit::half_t>();
  run_large_sweep<3, lowbit::bfloat16_t>();
}
TEST_CASE("large-M kernel 8-bit: f16 and bf16 against the host reference", "[kernels][gpu][large]") {
  run_large_sweep<8, lowbit::half_t>();
  run_large_sweep<8, lowbit::bfloat16_t>();
}
