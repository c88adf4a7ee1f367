// Host-only checks of the GEMM planner and argument validation (no GPU needed: nothing here touches
// the device, so this runs wherever nvcc can build it).
#include <catch2/catch.hpp>

#include <lowbit/kernels/gemm.cuh>
#include <lowbit/kernels/tune.cuh>

#include <cmath>

using lowbit::half_t;
using lowbit::StatusCode;
using namespace lowbit::kernels;

namespace {
template <int B>
void check_plans(int sms) {
  for (std::size_t K : {std::size_t(64), std::size_t(448), std::size_t(4096), std::size_t(28672)})
    for (std::size_t N : {std::size_t(64), std::size_t(320), std::size_t(8192), std::size_t(28672)})
      for (std::size_t M : {std::size_t(1), std::size_t(3), std::size_t(16), std::size_t(17), std::size_t(64),
                            std::size_t(200), std::size_t(1024), std::size_t(4096)}) {
        INFO("B " << B << " K " << K << " N " << N << " M " << M << " sms " << sms);
        const detail::GemmPlan p = detail::plan_gemm<B>(M, N, K, sms);
        const std::size_t KT = K / 64;
        REQUIRE(p.splits >= 1);
        REQUIRE(p.kt_per_split % p.warps_k == 0);
        REQUIRE(static_cast<std::size_t>(p.splits) * p.kt_per_split >= KT);        // K fully covered
        REQUIRE(static_cast<std::size_t>(p.splits - 1) * p.kt_per_split < KT);    // no empty split
        REQUIRE(p.grid.z == static_cast<unsigned>(p.splits));
        REQUIRE(static_cast<std::size_t>(p.grid.x) * p.block_m >= M);
        if (!p.persist) REQUIRE(static_cast<std::size_t>(p.grid.y) * p.block_n >= N);  // persistent: CTAs loop over slabs
        if (p.splits > 1) {
          REQUIRE(static_cast<std::size_t>(p.grid.x) * p.grid.y <= detail::kMaxCounters);
          REQUIRE(p.workspace_bytes >= detail::kCounterBytes + p.splits * M * N * sizeof(float));
        } else {
          REQUIRE(p.workspace_bytes == 0);
        }
        // policy by M
        // mid-M: 32-row (M <= 32) and 64-row mma.sync CTAs; the wgmma variant (sm_90a builds on an sm_90
        // device) 64 rows up to M = 64 (from M = 17), 128 rows above, 256 rows where midm_prefers_w256
        const std::size_t midm_rows = p.wgmma ? (M <= 64 ? 64 : detail::midm_prefers_w256<B>(M, N, K) ? 256 : 128) : M <= 32 ? 32 : 64;
        // above the mid-M range: the large-M kernel's 128-row CTAs where it exists (sm_90a build, sm_90 device), else
        // the 64-row tile kernel
        const bool large = M > detail::kMidmMaxM && detail::large_wgmma_preferred(M, N, sms);
        REQUIRE((p.kind == detail::PolicyKind::large_wgmma) == large);
        REQUIRE(p.block_m == (M <= 16 ? 16 : M <= detail::kMidmMaxM ? midm_rows : large ? 128 : 64));
        if (M > 16 && M <= detail::kMidmMaxM) {  // mid-M kernel: its shared memory fits the SM at the planned occupancy
          REQUIRE(p.kind == detail::PolicyKind::midm);
          REQUIRE(p.ctas_per_sm >= 1);
          using QW = MidmWgmmaPolicies<B>;
          const std::size_t smem = p.wgmma ? (p.block_m == 64    ? (p.midm_ws ? QW::W64::template smem_bytes<B>(2)
                                                                              : QW::W64ls::template smem_bytes<B>(2))
                                              : p.block_m == 256 ? QW::W256::template smem_bytes<B>(2)
                                              : p.midm_ws        ? QW::W128::template smem_bytes<B>(2)
                                                                 : QW::W128ls::template smem_bytes<B>(2))
                                   : p.block_m == 32 ? MidmPolicies<B>::M32::template smem_bytes<B>(2)
                                   : p.block_m == 64 ? MidmPolicies<B>::M64::template smem_bytes<B>(2)
                                                     : MidmPolicies<B>::M128::template smem_bytes<B>(2);
          REQUIRE(p.ctas_per_sm * (smem + detail::kSmemReservedPerCta) <= detail::kSmemPerSm);
        }
        if (M <= 16) {  // decode kernel: warps of a CTA split the CTA's K range, one CTA column per 1 or 2 slabs
          REQUIRE(p.kind == detail::PolicyKind::decode);
          REQUIRE(p.kt_per_warp >= 1);
          REQUIRE(p.kt_per_split == p.kt_per_warp * p.warps_k);
          REQUIRE(p.grid.x == 1u);
          REQUIRE((p.slabs == 1 || p.slabs == 2));
          REQUIRE(p.ctas_per_sm >= 1);
          if (p.persist) {  // one generation of CTAs, each looping over slabs; equal warp K ranges
            REQUIRE(p.slabs == 1);
            REQUIRE(p.splits == 1);
            REQUIRE(M <= 8);
            REQUIRE(static_cast<std::size_t>(p.kt_per_warp * p.warps_k) == KT);
            REQUIRE(p.grid.y == std::min<std::size_t>(N / 64, static_cast<std::size_t>(sms) * p.ctas_per_sm));
          } else {
            REQUIRE(p.grid.y * static_cast<unsigned>(p.slabs) == N / 64);
          }
          REQUIRE((p.warps_k == 4 || p.warps_k == 8 || p.warps_k == 16));
          // the CTA's shared memory (cp.async ring, as gemm launches it) fits the SM, and its warps the registers
          REQUIRE(p.ctas_per_sm * (detail::decode_smem_bytes<B>(false, 2, M, p.warps_k, p.slabs, p.persist) +
                                   detail::kSmemReservedPerCta) <=
                  detail::kSmemPerSm);
          REQUIRE(p.ctas_per_sm * p.warps_k <=
                  (p.slabs == 1 ? DecodeConfig<B>::warps_per_sm : DecodeConfig<B>::max_warps_two_slabs));
          for (bool bulk : {false, true}) {
            REQUIRE(detail::decode_stages<B>(bulk, 2, M) >= 3);
            REQUIRE(detail::decode_stages<B>(bulk, 2, M) <= DecodeConfig<B>::max_stages);  // mbarriers in the header
          }
        }
        // act-order pre-gather never lands in the counter region
        TiledMeta meta{B, K, N, K, false, true};
        const std::size_t total = detail::workspace_total(p, M, meta);
        if (M > detail::kInKernelGatherMaxM) REQUIRE(total >= detail::gather_offset(p) + M * K * 2);
        REQUIRE(detail::gather_offset(p) >= detail::kCounterBytes);
      }
}
}  // namespace

TEST_CASE("GEMM planner covers K exactly, fits the counter region and fills waves", "[kernels][plan]") {
  for (int sms : {1, 78, 132, 144}) {
    check_plans<2>(sms);
    check_plans<3>(sms);
    check_plans<4>(sms);
    check_plans<8>(sms);
  }
  // decode on 8192x8192 with 132 SMs: the 128 slabs x enough warps along K must occupy every SM's warp
  // slots in one wave of resident CTAs (a second, nearly empty wave would double the time)
  for (std::size_t M : {std::size_t(1), std::size_t(16)}) {
    const detail::GemmPlan p = detail::plan_gemm<4>(M, 8192, 8192, 132);
    CHECK(p.grid.y == 128);
    CHECK(p.grid.y * p.grid.z <= 132u * static_cast<unsigned>(p.ctas_per_sm));
    CHECK(p.grid.y * p.grid.z * p.warps_k >= 128u * 8u);  // at least 8 warps per SM stream weights
  }
  // one slab (N = 64) cannot fill a GPU without splitting K across CTAs: the GPU tests' back-to-back
  // PDL check (gpu_common.cuh) relies on this shape exercising the workspace counters
  for (int sms : {78, 114, 132})
    for (std::size_t M : {std::size_t(1), std::size_t(16)}) {
      CHECK(detail::plan_gemm<2>(M, 64, 16384, sms).splits > 1);
      CHECK(detail::plan_gemm<3>(M, 64, 16384, sms).splits > 1);
      CHECK(detail::plan_gemm<4>(M, 64, 16384, sms).splits > 1);
      CHECK(detail::plan_gemm<8>(M, 64, 16384, sms).splits > 1);
    }
  // session 9's plan sweep (bench/results/decode_sweep_*_s9.json, H100, PDL): the fastest plans of
  // 4-bit 4096^2 (one 16-warp CTA per slab, no split: 5.1 against 7.0 us split in two) and of the 4-bit
  // 8192 x 28672 (N = 28672) layer at M = 16 (8-warp CTAs: 64.5 against 73.0 us with 4 warps)
  for (std::size_t M : {std::size_t(1), std::size_t(16)}) {
    CHECK(detail::plan_gemm<4>(M, 4096, 4096, 132).splits == 1);
    CHECK(detail::plan_gemm<4>(M, 4096, 4096, 132).warps_k == 16);
  }
  CHECK(detail::plan_gemm<4>(16, 28672, 8192, 132).warps_k == 8);
  CHECK(detail::plan_gemm<4>(16, 28672, 8192, 132).splits == 1);
  // 8192 x 28672 (448 slabs): the previous (wave) model kept 448 4-warp CTAs on 528 slots: 52 SMs ran 4
  // CTAs (512 tiles), 80 ran 3, measured 15 % slower than the transposed shape with the same bytes. The
  // balance alone is not the measure, though: at 4 bits the 4-warp split plan that balances it (4 x 2)
  // measured slower than 8- and 16-warp CTAs that do not (session-9 sweep, M = 1 / 4: 4 x 2 50.5 / 53.9 us,
  // 8 x 1 49.2 / 49.5 us, 16 x 1 about 47 us), so the 4-bit plan must use 8 warps or more.
  for (std::size_t M : {std::size_t(1), std::size_t(4)}) {
    const detail::GemmPlan p = detail::plan_gemm<4>(M, 28672, 8192, 132);
    INFO("M " << M << " warps " << p.warps_k << " splits " << p.splits);
    CHECK(p.warps_k >= 8);
  }
  // 8 bits (memory-bound, its own busiest-SM weight and per-CTA term): the same shape at M = 1-16 plans
  // 8- or 16-warp CTAs without a split (session-9 sweep, M = 1 / 4 / 8 / 16: 4 x 2 87.1 / 94.3 / 98.3 / 103.8 us
  // against 16 x 1 84.5, 8 x 1 87.9 / 90.0 / 96.3 us), not the balanced 4 x 2 plan the 2-4-bit weights
  // would give it; 3584 x 18944 (K x N) at M = 4 and 8: 8 x 1 (28.9 / 30.0 us against 4 x 2 31.4 / 32.6 us)
  for (std::size_t M : {std::size_t(1), std::size_t(4), std::size_t(8), std::size_t(16)}) {
    const detail::GemmPlan p = detail::plan_gemm<8>(M, 28672, 8192, 132);
    INFO("B 8 M " << M << " warps " << p.warps_k << " splits " << p.splits);
    CHECK(p.warps_k >= 8);
    CHECK(p.splits == 1);
  }
  for (std::size_t M : {std::size_t(4), std::size_t(8)}) {
    const detail::GemmPlan p = detail::plan_gemm<8>(M, 18944, 3584, 132);
    CHECK(p.warps_k == 8);
    CHECK(p.splits == 1);
  }
  {
    const detail::GemmPlan legacy = detail::make_decode_plan<4>(1, 28672, 8192, 132, /*legacy_waves=*/true);
    CHECK(legacy.warps_k == 4);  // the plan the benchmark's A/B compares against
    CHECK(legacy.splits == 1);
  }
  // the transposed shape keeps one 16-warp CTA per slab (measured the faster of the two)
  CHECK(detail::plan_gemm<4>(1, 8192, 28672, 132).warps_k == 16);
  CHECK(detail::plan_gemm<4>(1, 8192, 28672, 132).splits == 1);
  // M = 1: 16 warps per CTA cover K = 8192 (8 tiles each) without a cross-CTA split
  CHECK(detail::plan_gemm<4>(1, 8192, 8192, 132).splits == 1);
  CHECK(detail::plan_gemm<4>(1, 8192, 8192, 132).warps_k == 16);
}

TEST_CASE("wgmma mid-M: 256-row CTAs from M = 129 on the measured winners, 128-row ones elsewhere", "[kernels][plan]") {
  // bench/results/large_probe_*_s16*.log (H100, M = 192 and 256, against the 128-row policy): faster on 8192^2,
  // 8192 x 28672 and 28672 x 8192 at every width, on 4096^2 only at 8 bits
  for (std::size_t M : {std::size_t(129), std::size_t(192), std::size_t(256)}) {
    CHECK(detail::midm_prefers_w256<2>(M, 8192, 8192));
    CHECK(detail::midm_prefers_w256<3>(M, 28672, 8192));
    CHECK(detail::midm_prefers_w256<4>(M, 8192, 28672));
    CHECK(detail::midm_prefers_w256<8>(M, 4096, 4096));
    CHECK_FALSE(detail::midm_prefers_w256<4>(M, 4096, 4096));
    CHECK_FALSE(detail::midm_prefers_w256<2>(M, 4096, 4096));
  }
  // outside 128 < M <= 256 never (M = 128 is one 128-row block; above 256 the mid-M kernel does not run)
  for (std::size_t M : {std::size_t(17), std::size_t(64), std::size_t(128), std::size_t(257), std::size_t(1024)}) {
    CHECK_FALSE(detail::midm_prefers_w256<4>(M, 8192, 8192));
    CHECK_FALSE(detail::midm_prefers_w256<8>(M, 8192, 8192));
  }
  // the policy's footprint: its ring or its epilogue staging fits one CTA's shared memory at every width
  CHECK(MidmWgmmaPolicies<2>::W256::smem_bytes<2>(2) <= detail::kSm90SmemPerCta);
  CHECK(MidmWgmmaPolicies<3>::W256::smem_bytes<3>(2) <= detail::kSm90SmemPerCta);
  CHECK(MidmWgmmaPolicies<4>::W256::smem_bytes<4>(2) <= detail::kSm90SmemPerCta);
  CHECK(MidmWgmmaPolicies<8>::W256::smem_bytes<8>(2) <= detail::kSm90SmemPerCta);
}

namespace {
// plan_midm_wgmma's choice between the warp-specialized and the lock-step policies, against its two rules
// recomputed from the candidate plans
template <int B>
void check_ws_choice(std::size_t M, std::size_t N, std::size_t K, int sms) {
  using QW = MidmWgmmaPolicies<B>;
  INFO("B " << B << " M " << M << " N " << N << " K " << K << " sms " << sms);
  const detail::GemmPlan p = detail::plan_midm_wgmma<B>(M, N, K, sms);
  REQUIRE(p.wgmma);
  if (M <= 64) {
    const detail::GemmPlan ws = detail::make_midm_plan<B, typename QW::W64>(M, N, K, sms);
    const detail::GemmPlan ls = detail::make_midm_plan<B, typename QW::W64ls>(M, N, K, sms);
    CHECK(ws.grid.y == ls.grid.y);  // the same CTAs either way
    CHECK(ws.splits == ls.splits);
    CHECK(p.midm_ws == (ws.kt_per_split >= detail::kMidmWsMinKTiles));
    CHECK(p.block_m == 64);
  } else if (!detail::midm_prefers_w256<B>(M, N, K)) {
    const detail::GemmPlan ws = detail::make_midm_plan<B, typename QW::W128>(M, N, K, sms);
    const detail::GemmPlan ls = detail::make_midm_plan<B, typename QW::W128ls>(M, N, K, sms);
    CHECK(p.midm_ws == (ws.splits <= ls.splits));
    CHECK(p.block_n == (p.midm_ws ? 192 : 256));
    CHECK(p.splits == (p.midm_ws ? ws.splits : ls.splits));
  } else {
    CHECK(p.block_m == 256);
    CHECK_FALSE(p.midm_ws);
  }
}
}  // namespace

TEST_CASE("wgmma mid-M: warp-specialized CTAs where they were measured faster, lock-step ones elsewhere", "[kernels][plan]") {
  for (int sms : {114, 132}) {
    for (std::size_t M : {std::size_t(17), std::size_t(32), std::size_t(64), std::size_t(65), std::size_t(128),
                          std::size_t(200), std::size_t(256)})
      for (std::size_t K : {std::size_t(1024), std::size_t(4096), std::size_t(8192), std::size_t(28672)})
        for (std::size_t N : {std::size_t(192), std::size_t(4096), std::size_t(8192), std::size_t(28672)}) {
          check_ws_choice<2>(M, N, K, sms);
          check_ws_choice<3>(M, N, K, sms);
          check_ws_choice<4>(M, N, K, sms);
          check_ws_choice<8>(M, N, K, sms);
        }
  }
  // the H100 (132 SMs) cases of bench/results/large_probe_*_2026-12-07_s25_ws_wg.log: the warp-specialized W64
  // won on the three large shapes (32-128 k-tiles a CTA) and lost on 4096^2 (8)
  for (std::size_t M : {std::size_t(32), std::size_t(64)}) {
    CHECK(detail::plan_midm_wgmma<4>(M, 8192, 8192, 132).midm_ws);
    CHECK(detail::plan_midm_wgmma<4>(M, 28672, 8192, 132).midm_ws);
    CHECK(detail::plan_midm_wgmma<8>(M, 8192, 28672, 132).midm_ws);
    CHECK_FALSE(detail::plan_midm_wgmma<4>(M, 4096, 4096, 132).midm_ws);
  }
  // W128 won on 8192^2, 28672 x 8192 and 4096^2, lost on 8192 x 28672 (150 column blocks split 4 ways
  // against 112 unsplit)
  CHECK(detail::plan_midm_wgmma<4>(128, 8192, 8192, 132).midm_ws);
  CHECK(detail::plan_midm_wgmma<4>(128, 8192, 28672, 132).midm_ws);
  CHECK(detail::plan_midm_wgmma<4>(128, 4096, 4096, 132).midm_ws);
  CHECK_FALSE(detail::plan_midm_wgmma<4>(128, 28672, 8192, 132).midm_ws);
  CHECK_FALSE(detail::plan_midm_wgmma<8>(128, 28672, 8192, 132).midm_ws);
  // without the driver's tensor-map encoder the 128-row CTAs are the lock-step ones (W128 is fed by TMA)
  for (std::size_t M : {std::size_t(65), std::size_t(128), std::size_t(200)}) {  // 4096^2: no 256-row CTAs
    const detail::GemmPlan p = detail::plan_midm_wgmma<4>(M, 4096, 4096, 132, false);
    CHECK_FALSE(p.midm_ws);
    CHECK(p.block_m == 128);
    CHECK(p.block_n == 256);
    CHECK(detail::plan_midm_wgmma<4>(M, 4096, 4096, 132, true).midm_ws);
  }
  CHECK(detail::plan_midm_wgmma<4>(64, 8192, 8192, 132, false).midm_ws);  // W64 uses no tensor map
}

TEST_CASE("large-M kernel: gemm's grid-fill rule", "[kernels][plan]") {
  // taken from M = 257 when the grid, one CTA per block_m x block_n outputs, is at least 90 % of the SMs (119 of 132)
  using C = LargeWgmmaConfig<4, 1>;
  CHECK_FALSE(detail::large_wgmma_fills(256, 28672, 132));  // the mid-M range
  CHECK(detail::large_wgmma_fills(257, 28672, 132));        // 3 x 112 = 336 or 2 x 224 = 448 CTAs
  if constexpr (C::block_m == 128) {  // 128 x 256 CTAs
    CHECK_FALSE(detail::large_wgmma_fills(384, 8192, 132));   // 3 x 32 = 96 CTAs
    CHECK(detail::large_wgmma_fills(385, 8192, 132));         // 4 x 32 = 128
    CHECK_FALSE(detail::large_wgmma_fills(512, 4096, 132));   // 4 x 16 = 64
    CHECK(detail::large_wgmma_fills(1024, 4096, 132));        // 8 x 16 = 128
    CHECK_FALSE(detail::large_wgmma_fills(1024, 4096, 144));  // 128 of 144 SMs: under 90 %
    CHECK(detail::large_wgmma_fills(1024, 4160, 144));        // 8 x 17 = 136 (the last block partial)
  } else {  // 256 x 128 CTAs
    CHECK(detail::large_wgmma_fills(257, 8192, 132));         // 2 x 64 = 128
    CHECK_FALSE(detail::large_wgmma_fills(257, 7552, 132));   // 2 x 59 = 118: under 119
    CHECK(detail::large_wgmma_fills(257, 7616, 132));         // 2 x 60 = 120 (the last column block half full)
    CHECK_FALSE(detail::large_wgmma_fills(768, 4096, 132));   // 3 x 32 = 96
    CHECK(detail::large_wgmma_fills(769, 4096, 132));         // 4 x 32 = 128 (the last block partial)
    CHECK_FALSE(detail::large_wgmma_fills(1024, 4096, 144));  // 128 of 144 SMs: under 90 %
    CHECK(detail::large_wgmma_fills(1024, 4224, 144));        // 4 x 33 = 132, the last column block half full
  }
  // the dispatch is the rule where the kernel exists, never elsewhere
  CHECK(detail::large_wgmma_preferred(4096, 8192, 132) == detail::large_wgmma_available());
  CHECK_FALSE(detail::large_wgmma_preferred(256, 8192, 132));
}

TEST_CASE("gemm argument checks report the problem without touching the device", "[kernels][plan]") {
  TiledWeightView w;
  w.meta = {4, 4096, 4096, 128, false, false};
  alignas(16) static std::uint32_t dummy[64];
  w.qweight = dummy;
  w.scales = reinterpret_cast<const std::uint16_t*>(dummy);
  w.zeros = reinterpret_cast<const std::uint8_t*>(dummy);
  const half_t* A = reinterpret_cast<const half_t*>(dummy);
  half_t* Y = reinterpret_cast<half_t*>(dummy);
  CHECK(detail::check_gemm_args(A, 1, w, static_cast<const half_t*>(nullptr), Y).ok());
  CHECK(detail::check_gemm_args(A + 1, 1, w, static_cast<const half_t*>(nullptr), Y).code == StatusCode::misaligned);
  {  // zeros 8 bytes past a 16-byte boundary: the mid-M kernels copy them in 16-byte chunks
    TiledWeightView z = w;
    z.zeros = reinterpret_cast<const std::uint8_t*>(dummy) + 8;
    const lowbit::Status s = detail::check_gemm_args(A, 1, z, static_cast<const half_t*>(nullptr), Y);
    CHECK(s.code == StatusCode::misaligned);
    CHECK_THAT(s.message, Catch::Contains("zeros"));
  }
  CHECK(detail::check_gemm_args(static_cast<const half_t*>(nullptr), 1, w, static_cast<const half_t*>(nullptr), Y).code ==
        StatusCode::invalid_argument);
  TiledWeightView v = w;
  v.meta.N = 100;
  CHECK_THAT(detail::check_gemm_args(A, 1, v, static_cast<const half_t*>(nullptr), Y).message,
             Catch::Contains("multiples of 64"));
  v = w;
  v.meta.group_size = 48;
  CHECK(detail::check_gemm_args(A, 1, v, static_cast<const half_t*>(nullptr), Y).code == StatusCode::unsupported);
  v = w;
  v.meta.act_order = true;  // perm missing
  CHECK(detail::check_gemm_args(A, 1, v, static_cast<const half_t*>(nullptr), Y).code == StatusCode::invalid_argument);
  v = w;
  v.zeros = nullptr;  // asymmetric weight without zeros
  CHECK(detail::check_gemm_args(A, 1, v, static_cast<const half_t*>(nullptr), Y).code == StatusCode::invalid_argument);
  v.meta.sym = true;  // symmetric: zeros not needed
  CHECK(detail::check_gemm_args(A, 1, v, static_cast<const half_t*>(nullptr), Y).ok());
}

TEST_CASE("gemm options: programmatic dependent launch is automatic by default, bad modes are rejected", "[kernels][plan]") {
  const GemmOptions def;
  CHECK(def.pdl == PdlMode::automatic);
  for (PdlMode m : {PdlMode::off, PdlMode::automatic, PdlMode::on}) {
    GemmOptions o;
    o.pdl = m;
    CHECK(detail::check_gemm_options(o).ok());
  }
  GemmOptions bad;
  bad.pdl = static_cast<PdlMode>(3);
  const lowbit::Status s = detail::check_gemm_options(bad);
  CHECK(s.code == StatusCode::invalid_argument);
  CHECK_THAT(s.message, Catch::Contains("GemmOptions::pdl"));
}

TEST_CASE("gemm options: decode launch shapes out of range are rejected", "[kernels][plan]") {
  CHECK(GemmOptions{}.decode.planned());
  for (DecodeChoice c : {DecodeChoice{0, 0}, DecodeChoice{4, 0}, DecodeChoice{0, 3}, DecodeChoice{16, kMaxDecodeSplits},
                         DecodeChoice{8, 1}, DecodeChoice{8, 2, 2}, DecodeChoice{0, 0, 2}}) {
    GemmOptions o;
    o.decode = c;
    INFO("warps " << c.warps << " splits " << c.splits);
    CHECK(detail::check_gemm_options(o).ok());
  }
  for (DecodeChoice c : {DecodeChoice{5, 0}, DecodeChoice{-4, 1}, DecodeChoice{32, 1}, DecodeChoice{2, 1},
                         DecodeChoice{4, -1}, DecodeChoice{4, kMaxDecodeSplits + 1}, DecodeChoice{4, 1, 3},
                         DecodeChoice{8, 1, -1}}) {
    GemmOptions o;
    o.decode = c;
    INFO("warps " << c.warps << " splits " << c.splits);
    const lowbit::Status s = detail::check_gemm_options(o);
    CHECK(s.code == StatusCode::invalid_argument);
    CHECK_THAT(s.message, Catch::Contains("GemmOptions::decode"));
  }
}

namespace {
// Whether a CTA of W warps on ns slabs fits an SM next to nothing else (registers: warps_per_sm, 8 warps
// for two slabs at 255 registers; shared memory of the cp.async ring gemm launches, worst case group 32).
template <int B>
bool decode_cta_fits(std::size_t M, int W, int ns = 1) {
  return W <= (ns == 1 ? DecodeConfig<B>::warps_per_sm : 8) &&
         detail::decode_smem_bytes<B>(false, 2, M, W, ns) + detail::kSmemReservedPerCta <= detail::kSmemPerSm;
}

// Brute force: some tiles-per-warp count gives `s` CTAs of W warps that cover K with none empty.
bool split_exists(std::size_t KT, int W, int s) {
  for (std::size_t kpw = 1; kpw <= KT; ++kpw) {
    const std::size_t per_cta = kpw * static_cast<std::size_t>(W);
    if (static_cast<std::size_t>(s) * per_cta >= KT && static_cast<std::size_t>(s - 1) * per_cta < KT) return true;
  }
  return false;
}

template <int B>
void check_forced_decode(int sms) {
  for (std::size_t K : {std::size_t(64), std::size_t(640), std::size_t(4096), std::size_t(28672)})
    for (std::size_t N : {std::size_t(64), std::size_t(192), std::size_t(8192), std::size_t(64) * (detail::kMaxCounters + 2)})
      for (std::size_t M : {std::size_t(1), std::size_t(8), std::size_t(9), std::size_t(16)}) {
        const std::size_t KT = K / 64, slabs = N / 64;
        const detail::GemmPlan planned = detail::plan_gemm<B>(M, N, K, sms);
        // {0, 0} is the planner's plan, and forcing the planner's own shape changes nothing
        const detail::GemmPlan same = detail::plan_gemm<B>(M, N, K, sms, DecodeChoice{planned.warps_k, planned.splits});
        CHECK(same.kt_per_warp == planned.kt_per_warp);
        CHECK(same.ctas_per_sm == planned.ctas_per_sm);
        CHECK(same.workspace_bytes == planned.workspace_bytes);
        CHECK(same.slabs == planned.slabs);
        // two slabs per CTA exactly where the rule asks for them (widths <= 4, M > 8, an even number of
        // slabs, >= 20480 weight tiles) and a two-slab CTA fits
        const bool two = B <= 4 && M > 8 && slabs % 2 == 0 && slabs * KT >= 20480 &&
                         (decode_cta_fits<B>(M, 4, 2) || decode_cta_fits<B>(M, 8, 2));
        CHECK(planned.slabs == (two ? 2 : 1));
        CHECK_FALSE(planned.persist);  // persistent CTAs only where forced (tune_decode measures them)
        for (int ns : {1, 2})
        for (int W : {4, 8, 16})
          for (int s : {1, 2, 3, 5, 16, kMaxDecodeSplits}) {
            INFO("B " << B << " K " << K << " N " << N << " M " << M << " sms " << sms << " slabs " << ns << " warps " << W
                      << " splits " << s);
            const detail::GemmPlan p = detail::plan_gemm<B>(M, N, K, sms, DecodeChoice{W, s, ns});
            const bool runnable = decode_cta_fits<B>(M, W, ns) && slabs % static_cast<std::size_t>(ns) == 0 &&
                                  (s == 1 || slabs <= detail::kMaxCounters) && split_exists(KT, W, s);
            CHECK((p.kt_per_warp > 0) == runnable);
            if (p.kt_per_warp == 0) continue;
            CHECK(p.warps_k == W);
            CHECK(p.splits == s);
            CHECK(p.slabs == ns);
            CHECK(p.kt_per_split == p.kt_per_warp * W);
            CHECK(static_cast<std::size_t>(s) * p.kt_per_split >= KT);      // K covered
            CHECK(static_cast<std::size_t>(s - 1) * p.kt_per_split < KT);  // no empty split
            if (!p.persist) CHECK(p.grid.y * static_cast<unsigned>(ns) == slabs);  // every slab once
            else CHECK(p.grid.y == std::min<std::size_t>(slabs, static_cast<std::size_t>(sms) * p.ctas_per_sm));
            CHECK(p.grid.z == static_cast<unsigned>(s));
            CHECK(p.ctas_per_sm * W <= (ns == 1 ? DecodeConfig<B>::warps_per_sm : 8));
            CHECK(p.ctas_per_sm * (detail::decode_smem_bytes<B>(false, 2, M, W, ns, p.persist) + detail::kSmemReservedPerCta) <=
                  detail::kSmemPerSm);
            if (s > 1) CHECK(p.workspace_bytes >= detail::kCounterBytes + s * M * N * sizeof(float));
            else CHECK(p.workspace_bytes == 0);
          }
        // a forced warp count alone: the planner picks the splits for it
        for (int W : {4, 8, 16}) {
          const detail::GemmPlan p = detail::plan_gemm<B>(M, N, K, sms, DecodeChoice{W, 0});
          if (decode_cta_fits<B>(M, W)) {
            CHECK(p.kt_per_warp > 0);
            CHECK(p.warps_k == W);
            if (W == 16) CHECK(p.slabs == 1);  // no two-slab CTA of 16 warps: one slab, whatever the rule says
          }
        }
      }
}
}  // namespace

TEST_CASE("forced decode launch shapes: exactly the runnable ones plan, with that shape", "[kernels][plan]") {
  for (int sms : {78, 132}) {
    check_forced_decode<2>(sms);
    check_forced_decode<4>(sms);
    check_forced_decode<8>(sms);
  }
}

TEST_CASE("decode planner: persistent CTAs where forced, with every slab covered", "[kernels][plan]") {
  // 3584 x 18944 (K x N): 296 slabs of 56 k-tiles on 132 SMs x 2 CTAs of 8 warps: 264 CTAs, 32 with two slabs
  for (std::size_t M : {std::size_t(1), std::size_t(4), std::size_t(8)}) {
    CHECK_FALSE(detail::plan_gemm<4>(M, 18944, 3584, 132).persist);
    const detail::GemmPlan p = detail::plan_gemm<4>(M, 18944, 3584, 132, DecodeChoice{8, 1, 1, 2});
    CHECK(p.persist);
    CHECK(p.grid.y == static_cast<unsigned>(std::min<std::size_t>(296, 132u * p.ctas_per_sm)));
    CHECK(p.kt_per_warp == 7);
  }
  // fewer slabs than resident CTAs: one slab each
  const detail::GemmPlan on = detail::plan_gemm<4>(1, 8192, 28672, 132, DecodeChoice{16, 1, 1, 2});
  CHECK(on.persist);
  CHECK(on.grid.y == 128u);
  CHECK(on.kt_per_warp == 28);
  // the planner's warps and splits with persistence forced: one split of equal warp ranges
  const detail::GemmPlan free = detail::plan_gemm<4>(1, 28672, 8192, 132, DecodeChoice{0, 0, 0, 2});
  CHECK(free.persist);
  CHECK(free.splits == 1);
  CHECK(static_cast<std::size_t>(free.kt_per_warp * free.warps_k) == 8192 / 64);
  // forced on where no persistent plan exists: 16 warps do not divide 56 k-tiles; two splits; M = 9
  CHECK(detail::plan_gemm<4>(1, 18944, 3584, 132, DecodeChoice{16, 0, 0, 2}).kt_per_warp == 0);
  CHECK(detail::plan_gemm<4>(1, 28672, 8192, 132, DecodeChoice{8, 2, 1, 2}).kt_per_warp == 0);
  CHECK(detail::plan_gemm<4>(9, 28672, 8192, 132, DecodeChoice{8, 1, 1, 2}).kt_per_warp == 0);
}

TEST_CASE("decode tuner: candidates, choice of the best, tuning tables", "[kernels][plan][tune]") {
  // candidates: every runnable shape up to max_splits once, and the planner's own
  for (std::size_t M : {std::size_t(1), std::size_t(16)})
    for (std::size_t N : {std::size_t(64), std::size_t(28672)}) {
      DecodeChoice planned;
      const auto c = detail::decode_candidates<4>(M, N, 8192, 132, 16, planned);
      const detail::GemmPlan p = detail::plan_gemm<4>(M, N, 8192, 132);
      CHECK(planned == detail::decode_choice_of(p));
      CHECK(p.slabs == (M == 16 && N == 28672 ? 2 : 1));  // 448 x 128 tiles at M = 16: two slabs
      CHECK(std::count(c.begin(), c.end(), planned) == 1);
      std::size_t runnable = 0, two = 0, persistent = 0;
      for (int ns : {1, 2})
        for (int W : {4, 8, 16})
          for (int s = 1; s <= 16; ++s)
            for (int pe : {1, 2}) {
              const detail::GemmPlan q = detail::plan_gemm<4>(M, N, 8192, 132, DecodeChoice{W, s, ns, pe});
              const bool ok = q.kt_per_warp > 0;
              runnable += ok;
              two += ok && ns == 2;
              persistent += ok && pe == 2;
              if (ok) CHECK(q.persist == (pe == 2));
            }
      CHECK((two > 0) == (N > 64));  // two slabs need an even number of them
      // persistent CTAs: M <= 8, one slab, one split, any warp count here (4, 8 and 16 divide 128 k-tiles)
      CHECK(persistent == (M == 16 ? 0u : 3u));
      CHECK(c.size() == runnable + (planned.splits > 16 ? 1 : 0));
      for (std::size_t i = 0; i < c.size(); ++i) {
        CHECK(detail::plan_gemm<4>(M, N, 8192, 132, c[i]).kt_per_warp > 0);
        for (std::size_t j = 0; j < i; ++j) CHECK_FALSE(c[i] == c[j]);
      }
    }
  // the choice: fastest first; the planner's shape is kept when within the tolerance
  DecodeTuneResult r;
  r.planned = {8, 2, 1};
  r.timings = {{{4, 1, 1}, 12.0}, {{8, 2, 1}, 10.2}, {{16, 1, 1}, 10.0}, {{4, 3, 2}, 11.0}};
  detail::pick_decode_best(r, 0.03);
  CHECK(r.best == DecodeChoice{8, 2, 1});
  CHECK(r.best_us == 10.2);
  CHECK(r.planned_us == 10.2);
  CHECK(std::is_sorted(r.timings.begin(), r.timings.end(), [](const DecodeTiming& a, const DecodeTiming& b) { return a.us < b.us; }));
  detail::pick_decode_best(r, 0.01);
  CHECK(r.best == DecodeChoice{16, 1, 1});
  CHECK(r.best_us == 10.0);
  CHECK(r.planned_us == 10.2);
  // a table applies to one weight shape on one device; M outside 1 .. 16 (or untuned) is planned
  DecodeTuning t;
  const TiledMeta m{4, 8192, 28672, 128, false, false};
  const std::string h100 = "NVIDIA H100 80GB HBM3";
  CHECK_FALSE(t.applies_to(m, 132, h100));  // never measured
  t.meta = m;
  t.sm_count = 132;
  t.device = h100;
  t.by_m[1] = {16, 1};
  CHECK(t.applies_to(m, 132, h100));
  CHECK_FALSE(t.applies_to(m, 114, h100));
  CHECK_FALSE(t.applies_to(m, 132, "NVIDIA H200"));  // same SM count, another device
  TiledMeta other = m;
  other.N = 8192;
  CHECK_FALSE(t.applies_to(other, 132, h100));
  other = m;
  other.group_size = 32;
  CHECK_FALSE(t.applies_to(other, 132, h100));
  other = m;
  other.act_order = true;
  CHECK_FALSE(t.applies_to(other, 132, h100));
  other = m;
  other.sym = true;
  CHECK_FALSE(t.applies_to(other, 132, h100));
  CHECK(t.for_m(1) == DecodeChoice{16, 1});
  CHECK(t.for_m(2).planned());
  CHECK(t.for_m(17).planned());
  CHECK(t.for_m(0).planned());
  // options
  CHECK(detail::check_tune_options(TuneOptions{}).ok());
  auto bad = [](auto edit) {
    TuneOptions o;
    edit(o);
    return detail::check_tune_options(o).code == StatusCode::invalid_argument;
  };
  CHECK(bad([](TuneOptions& o) { o.batch = 0; }));
  CHECK(bad([](TuneOptions& o) { o.reps = 0; }));
  CHECK(bad([](TuneOptions& o) { o.max_splits = 0; }));
  CHECK(bad([](TuneOptions& o) { o.max_splits = kMaxDecodeSplits + 1; }));
  CHECK(bad([](TuneOptions& o) { o.confirm_top = -1; }));
  CHECK(bad([](TuneOptions& o) { o.confirm_top = 17; }));
  CHECK(bad([](TuneOptions& o) { o.keep_planned_within = -0.1; }));
  CHECK(bad([](TuneOptions& o) { o.keep_planned_within = std::nan(""); }));
  CHECK(bad([](TuneOptions& o) { o.pdl = static_cast<PdlMode>(7); }));
  // requests: M in 1 .. 16, a weight gemm could run
  TiledWeightView w;
  w.meta = m;
  alignas(16) static std::uint32_t dummy[64];
  w.qweight = dummy;
  w.scales = reinterpret_cast<const std::uint16_t*>(dummy);
  w.zeros = reinterpret_cast<const std::uint8_t*>(dummy);
  CHECK(detail::check_tune_args<half_t>(w, {1, 16}, {}).ok());
  CHECK(detail::check_tune_args<half_t>(w, {1, 17}, {}).code == StatusCode::invalid_argument);
  CHECK(detail::check_tune_args<half_t>(w, {0}, {}).code == StatusCode::invalid_argument);
  CHECK(detail::check_tune_args<half_t>(w, {}, {}).code == StatusCode::invalid_argument);
  TiledWeightView v = w;
  v.meta.N = 100;
  CHECK(detail::check_tune_args<half_t>(v, {1}, {}).code == StatusCode::invalid_argument);
}
