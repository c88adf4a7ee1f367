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
