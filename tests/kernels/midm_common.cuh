// Helpers of the mid-M kernel's GPU tests: runs one MidmPolicy (or, in sm_90a builds with
// LOWBIT_MIDM_WGMMA, a MidmWgmmaPolicy) directly (planner + run_midm, bypassing
// gemm's choice by M) and compares with the double-accumulating host reference, with poisoned outputs,
// a garbage-filled workspace scratch and a second call that checks the split-K counters were reset.
#pragma once

#include "gpu_common.cuh"

namespace kt {

template <int B, class T, class P>
void check_midm(const QuantizedWeight& q, const std::vector<std::size_t>& Ms, bool with_bias, int force_splits = 0) {
  namespace d = lowbit::kernels::detail;
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  GemmProblem<T> prob(q, Mmax, with_bias, Mmax + 1);  // one row past the largest M: must stay untouched
  const TiledWeightBuffer& w = prob.w;
  DevBuf &dA = prob.dA, &dB = prob.dB, &dY = prob.dY;
  const int sms = d::current_sm_count();
  REQUIRE(sms > 0);
  auto plan_for = [&](std::size_t M) {
    d::GemmPlan p = d::make_midm_plan<B, P>(M, q.N, q.K, sms);
    if (force_splits > 0) {  // a hand-made split (uneven last split, several per group)
      const std::size_t KT = q.K / 64;
      std::size_t per = (KT + force_splits - 1) / force_splits;
      per = (per + P::warps_k - 1) / P::warps_k * P::warps_k;
      p.kt_per_split = static_cast<int>(per);
      p.splits = static_cast<int>((KT + per - 1) / per);
      p.grid.z = static_cast<unsigned>(p.splits);
      p.workspace_bytes = p.splits > 1 ? d::kCounterBytes + (p.splits * M * q.N * 4 + 255) / 256 * 256 : 0;
    }
    return p;
  };
  std::size_t ws = 0;
  for (std::size_t M : Ms) ws = std::max(ws, d::workspace_total(plan_for(M), M, w.view().meta));
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  for (std::size_t M : Ms) {
    const d::GemmPlan p = plan_for(M);
    INFO("bits " << B << " policy block_m " << P::block_m << " K " << q.K << " N " << q.N << " group "
                 << w.view().meta.group_size << " sym " << w.view().meta.sym << " act_order " << w.view().meta.act_order
                 << " M " << M << " bias " << with_bias << " splits " << p.splits << " kt/split " << p.kt_per_split);
    constexpr std::size_t cb = d::kCounterBytes;
    KT_CUDA(cudaMemset(static_cast<char*>(dW.p) + std::min(ws, cb), 0x5a, ws > cb ? ws - cb : 0));
    KT_CUDA(cudaMemset(dY.p, 0xff, (Mmax + 1) * q.N * 2));  // all-ones bits: NaN in fp16 and bf16
    check_twice_against_reference(prob, M, q.N, [&] {
      return d::run_midm<B, T, P>(dA.as<T>(), M, w.view(), with_bias ? dB.as<T>() : nullptr, dY.as<T>(), dW.p, ws, p, nullptr);
    });
  }
}

/// Every group x sym x act-order on odd shapes (K = 7x64 or 6x64, N = 5x64: the last 256-column CTA
/// block is partial) for M in {17, 32, 64, 100, 128, 200, 256}, with each default policy (the wgmma
/// 256-row policy from M = 129; both the warp-specialized and the lock-step wgmma ones), plus long-K split-K
/// cases (planner's and hand-made uneven splits).
template <int B, class T>
void run_midm_sweep() {
  using Q = MidmPolicies<B>;
  const std::vector<std::size_t> Ms = {17, 32, 64, 100, 128, 200, 256};
  for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), std::size_t(0)})
    for (bool sym : {false, true})
      for (bool act : {false, true}) {
        const std::size_t K = group == 128 ? 384 : 448, N = 320;
        const std::size_t g = group == 0 ? K : group;
        if (group == 0 && act) continue;
        const QuantizedWeight q = random_weight(B, K, N, g, sym, act);
        check_midm<B, T, typename Q::M32>(q, {17, 32, 64}, !sym);
        check_midm<B, T, typename Q::M64>(q, Ms, !sym);
        check_midm<B, T, typename Q::M128>(q, Ms, !sym);
#if defined(LOWBIT_MIDM_WGMMA)
        if (midm_wgmma_available()) {
          check_midm<B, T, typename MidmWgmmaPolicies<B>::W64>(q, {17, 32, 64, 100}, !sym);
          check_midm<B, T, typename MidmWgmmaPolicies<B>::W128>(q, Ms, !sym);
          // the lock-step policies gemm takes where the warp-specialized ones lose (plan_midm_wgmma)
          check_midm<B, T, typename MidmWgmmaPolicies<B>::W64ls>(q, {17, 64}, !sym);
          check_midm<B, T, typename MidmWgmmaPolicies<B>::W128ls>(q, {100, 256}, !sym);
          check_midm<B, T, typename MidmWgmmaPolicies<B>::W256>(q, {129, 200, 256}, !sym);
        }
#endif
      }
  const QuantizedWeight q = random_weight(B, 3200, 576, 128, false, true);
  check_midm<B, T, typename Q::M32>(q, {17, 32}, true);
  check_midm<B, T, typename Q::M64>(q, {33, 64, 100}, true);
  check_midm<B, T, typename Q::M128>(q, {65, 128, 256}, true);
  check_midm<B, T, typename Q::M64>(q, {64}, true, 3);   // 50 k-tiles: 18 + 18 + 14
  check_midm<B, T, typename Q::M128>(q, {130}, true, 7); // 8 x 7 + 4... uneven last split
  check_midm<B, T, typename Q::M64>(random_weight(B, 3200, 192, 32, true, false), {40, 64}, false, 5);
#if defined(LOWBIT_MIDM_WGMMA)
  if (midm_wgmma_available()) {
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W64>(q, {33, 64}, true);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W128>(q, {65, 128, 256}, true);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W128>(q, {130}, true, 7);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W64ls>(q, {33, 64}, true);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W128ls>(q, {130}, true, 7);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W256>(q, {150, 256}, true);
    check_midm<B, T, typename MidmWgmmaPolicies<B>::W256>(q, {240}, true, 7);
  }
#endif
}

}  // namespace kt
