// Host-only checks of the LLM.int8() planner's wgmma paths (no GPU needed: with force_path 3/4 the
// planner touches no device, so this runs wherever nvcc can build it): K slices cover K exactly, none is
// empty, and when split they are whole 128-byte k-tiles (the warp-specialized kernel's TMA boxes must not
// read into the next slice's K range).
#include <catch2/catch.hpp>

#include <lowbit/int8/linear.cuh>

using namespace lowbit;

TEST_CASE("int8 planner: wgmma K slices are whole k-tiles and cover K", "[int8][plan]") {
  for (int sms : {1, 78, 132})
    for (int K : {64, 192, 576, 1024, 8192, 28672})
      for (int N : {64, 320, 8192, 28672})
        for (int M : {64, 200, 300, 1024, 4096})
          for (int force : {3, 4}) {
            INFO("sms " << sms << " K " << K << " N " << N << " M " << M << " path " << force);
            const auto p = int8::detail::make_plan(M, N, K, sms, force);
            REQUIRE(p.wgmma());
            REQUIRE(p.tma);
            REQUIRE(p.splits >= 1);
            REQUIRE(p.k_per_split % 64 == 0);
            REQUIRE(static_cast<long long>(p.splits) * p.k_per_split >= K);        // K covered
            REQUIRE(static_cast<long long>(p.splits - 1) * p.k_per_split < K);     // no empty slice
            if (p.splits > 1) REQUIRE(p.k_per_split % kernels::WgmmaShape::BK == 0);
            if (force == 4) REQUIRE(p.splits == 1);  // the fused epilogue needs the whole K in one block
          }
}

TEST_CASE("int8 planner: ring K splits leave no CTA without stages", "[int8][plan]") {
  for (int sms : {1, 78, 132})
    for (long long slabs : {1LL, 2LL, 5LL, 64LL, 128LL, 131LL, 132LL, 448LL})
      for (int nst = 1; nst <= 160; ++nst)
        for (int forced : {0, 1, 2, 3, 7, 8}) {
          INFO("sms " << sms << " slabs " << slabs << " stages " << nst << " forced " << forced);
          const int s = int8::detail::ring_splits_for(slabs, nst, sms, forced);
          REQUIRE(s >= 1);
          REQUIRE(s <= int8::detail::kRingMaxSplits);
          REQUIRE(s <= nst);
          const int per = (nst + s - 1) / s;  // the kernel's stages per CTA
          REQUIRE(static_cast<long long>(s - 1) * per < nst);  // the last CTA has stages
          REQUIRE(static_cast<long long>(s) * per >= nst);     // K covered
          if (forced > 0) REQUIRE(s <= forced);
          if (forced == 0 && slabs >= sms) REQUIRE(s == 1);    // the slabs fill the SMs: no split
          if (forced == 0 && s > 1) REQUIRE(nst / s >= int8::detail::kRingMinSplitStages - 1);
        }
}

TEST_CASE("int8 planner: ring depth keeps every CTA resident, is maximal, and fuses by the rule", "[int8][plan]") {
  namespace R = kernels::ring;
  namespace D = int8::detail;
  for (int sms : {78, 132})
    for (int N : {64, 192, 4096, 8192, 28672, 57344})
      for (int K : {256, 4160, 8192, 28672, 65536})
        for (int M : {1, 2, 3, 4, 5, 16})
          for (int act : {0, 1, 2, 3})
            for (int forced : {0, 2, 8}) {
              INFO("sms " << sms << " N " << N << " K " << K << " M " << M << " ring_act " << act << " splits "
                          << forced);
              D::Plan p;
              const bool ok = D::ring_plan(M, N, K, sms, p, forced, act);
              const int splits = D::ring_splits_for(N / 64, (K + R::kSK - 1) / R::kSK, sms, forced);
              const long long per_sm = (static_cast<long long>(N / 64) * splits + sms - 1) / sms;
              if (per_sm > D::kRingMaxCtasPerSm) {  // a fifth CTA has no registers: no ring
                REQUIRE(!ok);
                continue;
              }
              if (!ok) continue;
              REQUIRE(p.splits == splits);
              REQUIRE(p.stages >= 2);
              REQUIRE(p.stages <= R::kMaxStages);
              const int range = std::min(p.k_per_split, K);
              // the kernel's own carve-up of its dynamic shared memory (gemv_ring_kernel): 127 bytes of
              // alignment slack, the ring, the code buffer (fused), mask, outlier table and values,
              // barriers, reduction scratch (fused)
              const int cs = R::code_stride(range);
              REQUIRE(cs % 128 == 64);
              REQUIRE(cs >= range);
              const long long used = 127 + static_cast<long long>(p.stages) * (p.fused_act ? 64 : 80) * R::kSK +
                                     (p.fused_act ? static_cast<long long>(M) * cs : 0) + ((K / 32) * 4 + 15) / 16 * 16 +
                                     R::kOTable * 4 + R::kOTable * R::kMaxM * 4 + 2 * R::kMaxStages * 8 +
                                     (p.fused_act ? (R::kConsumers * R::kFusedMaxM + 2 * R::kConsumers) * 4 : 0);
              const long long smem = R::kernel_smem(p.stages, p.fused_act, M, range, K);
              REQUIRE(used <= smem);
              REQUIRE(smem <= D::kSmemPerBlock);
              // every CTA resident at once (the runtime's reserve per CTA), beside one activation block
              // when separate
              const long long reserve = p.fused_act ? 0 : D::kRingActReserve;
              const long long per_cta = smem + static_cast<long long>(kernels::detail::kSmemReservedPerCta);
              REQUIRE(per_sm * per_cta + reserve <= D::kSmemPerSm);
              if (p.stages < R::kMaxStages) {  // maximal: one more stage would not fit
                const long long more = R::kernel_smem(p.stages + 1, p.fused_act, M, range, K);
                const long long more_cta = more + static_cast<long long>(kernels::detail::kSmemReservedPerCta);
                REQUIRE((more > D::kSmemPerBlock || per_sm * more_cta + reserve > D::kSmemPerSm));
              }
              // the activation mode
              const int fused = D::ring_depth(true, M, K, per_sm, p.k_per_split);
              const int separate = D::ring_depth(false, M, K, per_sm, p.k_per_split);
              if (p.fused_act) REQUIRE(M <= R::kFusedMaxM);
              if (act == 1 || act == 2) REQUIRE(!p.fused_act);
              if (act == 1) REQUIRE(p.self_act);
              if (act == 2) REQUIRE(!p.self_act);
              // by shape, one activation kernel only while each block's read of all of A stays short
              if (act == 0) REQUIRE(p.self_act == (static_cast<long long>(M) * K <= D::kRingSelfMaxElems));
              if (act == 3 && M <= R::kFusedMaxM && fused >= 2) REQUIRE(p.fused_act);
              if (act == 0 && M <= R::kFusedMaxM)
                REQUIRE(p.fused_act == (static_cast<long long>(M) * K <= D::kRingFusedMaxElems &&
                                        per_sm <= D::kRingFusedMaxCtasPerSm && fused >= separate && fused >= 2));
              REQUIRE(p.stages == (p.fused_act ? fused : separate));
            }
  // Worked example (H100: 132 SMs, 228 KB per SM): 8192^2 runs 2 CTAs per slab (256 CTAs, 2 per SM) over
  // 22 stages of 192 bytes each. Separate: (233472 - 12288) / 2 - 1024 = 109568 bytes per CTA, of which
  // 5760 are fixed: 6 stages of 15360. Fused at M = 1: 115712 - 5760 - 128 (scratch) - 4288 (one row of
  // codes) = 105536: 8 stages of 12288; at M = 4 (four rows, forced): 7.
  D::Plan p1, p4, p4f;
  REQUIRE(D::ring_plan(1, 8192, 8192, 132, p1));
  REQUIRE(D::ring_plan(4, 8192, 8192, 132, p4));
  REQUIRE(D::ring_plan(4, 8192, 8192, 132, p4f, 0, 3));
  REQUIRE((p1.fused_act && p1.splits == 2 && p1.stages == 8));
  REQUIRE((!p4.fused_act && p4.stages == 6));
  REQUIRE((p4f.fused_act && p4f.stages == 7));
  // 8192 x 28672 (K x N) at M = 1: 448 slabs, 4 CTAs per SM, each of which would read all of A: the
  // separate activation kernel by default (H100, sessions 18 and 21: 85.2 against 88.2-88.5 us with 8
  // outlier columns), the pass inside only when asked for
  D::Plan w1, w1f;
  REQUIRE(D::ring_plan(1, 28672, 8192, 132, w1));
  REQUIRE(D::ring_plan(1, 28672, 8192, 132, w1f, 0, 3));
  REQUIRE((!w1.fused_act && w1.self_act && w1.splits == 1));
  REQUIRE(w1f.fused_act);
  // two activation kernels where M·K > 16384: 28672 x 8192 at M = 1 and 2, 8192 x 28672 and 8192^2 at M = 3
  // and 4 (H100: 0.4-4.5 us faster than one kernel whose blocks each read all of A); 8192 x 28672 at M = 2
  // keeps the one kernel (a tie)
  D::Plan k1, k2, n2, n4, s4;
  REQUIRE(D::ring_plan(1, 8192, 28672, 132, k1));
  REQUIRE(D::ring_plan(2, 8192, 28672, 132, k2));
  REQUIRE(D::ring_plan(2, 28672, 8192, 132, n2));
  REQUIRE(D::ring_plan(4, 28672, 8192, 132, n4));
  REQUIRE(D::ring_plan(4, 8192, 8192, 132, s4));
  REQUIRE((!k1.fused_act && !k1.self_act && !k2.fused_act && !k2.self_act));
  REQUIRE((!n2.fused_act && n2.self_act));
  REQUIRE((!n4.fused_act && !n4.self_act && !s4.fused_act && !s4.self_act));
}

TEST_CASE("int8 planner: stream plans cover K with no idle CTA or warp and fit an SM with every CTA resident",
          "[int8][plan]") {
  namespace S8 = kernels::stream8;
  for (int sms : {1, 78, 132})
    for (int N : {64, 320, 8192, 28672, 1 << 18})
      for (int K : {64, 256, 4160, 8192, 28672})
        for (int M : {1, 2, 8, 9, 16})
          for (bool clusters : {false, true})
            for (int forced : {0, 1, 3, 8})
              for (bool fused : {false, true}) {
              if (fused && M > S8::kFusedMaxM) continue;
              INFO("sms " << sms << " N " << N << " K " << K << " M " << M << " clusters " << clusters << " forced "
                          << forced << " fused " << fused);
              int8::detail::Plan p;
              const bool ok = int8::detail::stream_plan(M, N, K, sms, clusters, p, forced, fused);
              // (the fused pass keeps each warp's K range of codes: a long K over few warps may not fit)
              if (!fused) REQUIRE(ok);
              if (!ok) continue;
              REQUIRE(p.fused_act == fused);
              REQUIRE(p.path == int8::detail::Plan::stream);
              const int KT = K / 64, kps = p.k_per_split / 64;
              REQUIRE(p.k_per_split % 64 == 0);
              REQUIRE(p.splits >= 1);
              REQUIRE(p.splits <= S8::kMaxSplits);
              if (!clusters) REQUIRE(p.splits == 1);
              if (forced > 0 && clusters) REQUIRE(p.splits <= forced);
              REQUIRE(static_cast<long long>(p.splits) * kps >= KT);     // K covered
              REQUIRE(static_cast<long long>(p.splits - 1) * kps < KT);  // every CTA has tiles
              REQUIRE(p.warps >= 1);
              REQUIRE(p.warps <= S8::kMaxWarps);
              REQUIRE(static_cast<long long>(p.warps) * p.kt_per_warp >= kps);      // the run covered
              REQUIRE(static_cast<long long>(p.warps - 1) * p.kt_per_warp < kps);   // every warp has tiles
              // the CTAs of one wave (at most kStreamMaxCtasPerSm per SM) fit an SM's shared memory beside
              // one activation block, and their warps its registers
              const long long ctas = static_cast<long long>(N / 64) * p.splits;
              const long long per_sm =
                  std::min<long long>(int8::detail::kStreamMaxCtasPerSm, (ctas + sms - 1) / sms);
              const long long smem = fused ? S8::fused_kernel_smem(M, p.warps, p.kt_per_warp, K) : S8::kernel_smem(M, p.warps);
              REQUIRE(smem <= int8::detail::kSmemPerBlock);
              REQUIRE(per_sm * (smem + static_cast<long long>(kernels::detail::kSmemReservedPerCta)) +
                          (fused ? 0 : int8::detail::kRingActReserve) <=
                      int8::detail::kSmemPerSm);
              REQUIRE(per_sm * p.warps <= int8::detail::kStreamWarpsPerSm);
              // the reduction buffer fits the rings' memory the kernel allocates (fused: the region before
              // the codes, bits and scratch); a fused warp's code rows hold its whole K range
              REQUIRE(S8::reduce_bytes(M, p.warps) <= (fused ? S8::fused_ring_region(M, p.warps) : smem));
              if (fused) REQUIRE(S8::fused_code_stride(p.kt_per_warp) >= p.kt_per_warp * 64);
            }
  // one CTA per slab where the slabs occupy at least half the SMs; 16 warps at 8192^2 and M = 1
  int8::detail::Plan p;
  REQUIRE(int8::detail::stream_plan(1, 8192, 8192, 132, true, p));
  REQUIRE(p.splits == 1);
  REQUIRE(p.warps == 16);
  REQUIRE(p.kt_per_warp == 8);
  // a few slabs split K over a cluster to cover the SMs
  REQUIRE(int8::detail::stream_plan(1, 320, 8192, 132, true, p));
  REQUIRE(p.splits == 8);
  REQUIRE(!int8::detail::stream_plan(17, 8192, 8192, 132, true, p));  // M > 16
  REQUIRE(!int8::detail::stream_plan(5, 8192, 8192, 132, true, p, 0, true));  // the fused pass: M <= 4
  for (auto [K, N] : {std::pair{8192, 8192}, std::pair{8192, 28672}, std::pair{28672, 8192}})  // the issue shapes
    for (int M : {1, 4}) {                                                                        // fit the fused pass
      INFO("fused N " << N << " K " << K << " M " << M);
      REQUIRE(int8::detail::stream_plan(M, N, K, 132, true, p, 0, true));
    }
}

TEST_CASE("int8 planner: the fused stream replaces the ring by default only with one 16-warp CTA per SM",
          "[int8][plan]") {
  namespace S8 = kernels::stream8;
  auto fused_default = [](int M, int N, int K, int sms) {
    int8::detail::Plan q;
    return int8::detail::stream_plan(M, N, K, sms, true, q, 0, true) && int8::detail::stream_fused_default(q, N, sms);
  };
  // H100 (132 SMs), session 20's measured layers (bench/int8/NOTES.md): the fused stream won at 8192^2 for
  // M = 1, 2, 3 and at 28672 x 8192 (K x N) for M = 1; it lost at 8192^2 M = 4 (15 warps: four rows of
  // codes per warp no longer fit beside 16 rings), 28672 x 8192 M = 2 (13 warps) and 8192 x 28672 (448
  // slabs: 4 CTAs of 3 warps per SM)
  for (int M : {1, 2, 3}) REQUIRE(fused_default(M, 8192, 8192, 132));
  REQUIRE(!fused_default(4, 8192, 8192, 132));
  REQUIRE(fused_default(1, 8192, 28672, 132));
  REQUIRE(!fused_default(2, 8192, 28672, 132));
  for (int M : {1, 2, 3, 4}) REQUIRE(!fused_default(M, 28672, 8192, 132));
  // the rule in general: a default plan is a fused one of kMaxWarps warps whose CTAs are one per SM
  for (int sms : {78, 132})
    for (int N : {64, 4096, 8192, 10240})
      for (int K : {1024, 8192, 28672})
        for (int M = 1; M <= S8::kFusedMaxM; ++M) {
          int8::detail::Plan q;
          if (!int8::detail::stream_plan(M, N, K, sms, true, q, 0, true)) continue;
          INFO("sms " << sms << " N " << N << " K " << K << " M " << M);
          const bool d = int8::detail::stream_fused_default(q, N, sms);
          REQUIRE(d == (q.warps == S8::kMaxWarps && static_cast<long long>(N / 64) * q.splits <= sms));
          // 16 warps need M rows of codes for each warp's K range beside the 16 rings
          if (d) REQUIRE(S8::fused_kernel_smem(M, q.warps, q.kt_per_warp, K) <= int8::detail::kSmemPerBlock);
        }
  // a non-fused plan is never the fused default
  int8::detail::Plan p;
  REQUIRE(int8::detail::stream_plan(1, 8192, 8192, 132, true, p));
  REQUIRE(!int8::detail::stream_fused_default(p, 8192, 132));
}
