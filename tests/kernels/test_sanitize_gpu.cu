// Small GEMM cases for compute-sanitizer memcheck/racecheck (few kernels, so instrumentation is quick):
// split-K with the last-CTA reduction, act-order gather, group 32, a partial CTA column, multi-M-tile;
// the decode kernel (M <= 16) with per-warp cp.async and bulk-copy (TMA) rings, both MMA row-block
// counts, group 32, the fp32 dequantization fallback (8-bit bf16), and hand-made plans whose warp K
// ranges start inside groups, span several groups and leave a warp without tiles; persistent CTAs that
// loop over several slabs (hand-made grids smaller than the slab count); short PDL chains.
#include "gpu_common.cuh"

namespace {
using namespace kt;

// Runs the decode kernel with W warps per CTA and `kpw` tiles per warp (planner bypassed) and compares
// with the host reference; rows past M stay poisoned. `persist_ctas` > 0: persistent CTAs (W x kpw must
// be K/64), that many of them, each looping over the slabs y, y + persist_ctas, ...
template <int B, class T>
void check_decode_plan(const QuantizedWeight& q, std::size_t M, int W, int kpw, int persist_ctas = 0) {
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  const std::size_t KT = q.K / 64;
  lowbit::kernels::detail::GemmPlan p = lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, 132);
  p.warps_k = W;
  p.kt_per_warp = kpw;
  p.kt_per_split = W * kpw;
  p.splits = static_cast<int>((KT + p.kt_per_split - 1) / p.kt_per_split);
  p.persist = persist_ctas > 0;
  p.grid = dim3(1u, static_cast<unsigned>(p.persist ? persist_ctas : q.N / 64), static_cast<unsigned>(p.splits));
  if (p.persist) REQUIRE(p.splits == 1);
  p.workspace_bytes = p.splits > 1 ? lowbit::kernels::detail::kCounterBytes + p.splits * M * q.N * 4 : 0;
  const std::size_t ws = lowbit::kernels::detail::workspace_total(p, M, w.view().meta);
  const auto A = random_activations<T>(M * q.K);
  const auto bias = random_activations<T>(q.N);
  const auto Af = to_float(A), biasf = to_float(bias);
  const auto ref = reference_gemm(q, Af.data(), M, biasf.data());
  DevBuf dA(A.size() * 2), dB(q.N * 2), dY((M + 1) * q.N * 2), dW(ws);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  KT_CUDA(cudaMemset(dY.p, 0xff, (M + 1) * q.N * 2));
  INFO("bits " << B << " K " << q.K << " N " << q.N << " group " << w.view().meta.group_size << " sym " << w.view().meta.sym
               << " act " << w.view().meta.act_order << " M " << M << " W " << W << " kpw " << kpw << " splits " << p.splits
               << " persistent CTAs " << persist_ctas);
  const Status st = lowbit::kernels::detail::run_decode<B, T, false>(dA.as<T>(), M, w.view(), dB.as<T>(), dY.as<T>(),
                                                                     dW.p, ws, p, nullptr);
  INFO("status: " << st.message);
  REQUIRE(st.ok());
  KT_CUDA(cudaDeviceSynchronize());
  std::vector<T> Y((M + 1) * q.N);
  KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
  const std::vector<float> y = to_float(std::vector<T>(Y.begin(), Y.begin() + static_cast<std::ptrdiff_t>(M * q.N)));
  const double err = relative_error(y, ref);
  INFO("relative error " << err);
  CHECK(err < tolerance<T>());
  std::uint16_t after = 0;
  std::memcpy(&after, &Y[M * q.N], 2);
  CHECK(after == 0xffffu);
}
}  // namespace

TEST_CASE("small cases for compute-sanitizer", "[kernels][gpu][sanitize]") {
  check_gemm<4, half_t>(random_weight(4, 1024, 192, 128, false, true), {1, 17, 40, 300}, true);
  check_gemm<4, half_t>(random_weight(4, 448, 128, 32, true, false), {3, 70}, false);
  check_gemm<4, half_t>(random_weight(4, 2048, 128, 128, false, false), {1, 9, 16}, true);
  check_gemm<4, half_t>(random_weight(4, 4096, 64, 128, false, false), {1, 16}, true);  // decode split-K
  check_gemm<8, bfloat16_t>(random_weight(8, 576, 128, 32, false, false), {2, 12}, true);
  check_gemm<4, half_t, /*BulkDecode=*/true>(random_weight(4, 2048, 128, 128, false, true), {1, 9, 16}, true);
}

TEST_CASE("decode kernel: warp K ranges inside and across groups", "[kernels][gpu][sanitize]") {
  // K = 1280 (20 tiles), 4 warps x 3 tiles: warps start inside groups of 128 and 256, span groups,
  // the second split has 8 tiles (3 + 3 + 2 + an empty warp)
  for (std::size_t group : {std::size_t(32), std::size_t(128), std::size_t(256), std::size_t(1280)})
    for (bool sym : {false, true}) {
      check_decode_plan<4, half_t>(random_weight(4, 1280, 128, group, sym, false), 1, 4, 3);
      check_decode_plan<4, half_t>(random_weight(4, 1280, 128, group, sym, false), 9, 4, 3);
    }
  check_decode_plan<3, bfloat16_t>(random_weight(3, 1280, 128, 256, false, true), 5, 8, 1);
}

TEST_CASE("decode kernel: two tiles per step at 2 and 3 bits", "[kernels][gpu][sanitize]") {
  // K = 1280 (20 tiles). Pairs run where the group is an even number of tiles that the warp's range
  // starts on and the range is an even number of tiles (and, at 3 bits, M <= 4): groups of 128 and 256 and
  // per-channel (20 tiles) with 2 or 4 tiles per warp (warp ranges start inside groups of 256 at 2 tiles);
  // single steps for 3 tiles per warp, group 64 (one tile), group 32, 3 bits at M = 8 and 4 bits
  for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), std::size_t(256), std::size_t(1280)})
    for (int kpw : {2, 3, 4}) {
      const bool sym = kpw == 3;
      check_decode_plan<2, half_t>(random_weight(2, 1280, 128, group, sym, false), 1, 4, kpw);
      check_decode_plan<2, half_t>(random_weight(2, 1280, 64, group, !sym, false), 8, 4, kpw);
      check_decode_plan<3, half_t>(random_weight(3, 1280, 128, group, !sym, false), 2, 4, kpw);
      check_decode_plan<4, half_t>(random_weight(4, 1280, 64, group, sym, false), 4, 4, kpw);  // one tile per step
    }
  check_decode_plan<3, half_t>(random_weight(3, 1280, 128, 128, false, false), 8, 4, 2);
  // longer ranges, so that pairs wrap around the ring (S = 6 at 2 bits: a warp's 10 tiles; S = 5 at 3 bits:
  // 8 tiles, the pair of tiles 4 and 5 straddles the ring's end)
  check_decode_plan<2, half_t>(random_weight(2, 2560, 128, 128, false, false), 1, 4, 10);
  check_decode_plan<3, half_t>(random_weight(3, 2048, 128, 256, true, false), 4, 4, 8);
  check_decode_plan<2, bfloat16_t>(random_weight(2, 1280, 192, 256, false, true), 5, 8, 2);
  check_decode_plan<3, bfloat16_t>(random_weight(3, 1280, 64, 128, true, false), 3, 16, 2);
}

TEST_CASE("decode kernel: a persistent plan whose warps would not meet at its barriers is refused", "[kernels][gpu][sanitize]") {
  const QuantizedWeight q = random_weight(4, 1024, 128, 128, false, false);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  DevBuf dA(q.K * 2), dY(q.N * 2);
  KT_CUDA(cudaMemset(dA.p, 0, q.K * 2));
  KT_CUDA(cudaMemset(dY.p, 0xff, q.N * 2));
  const auto good = lowbit::kernels::detail::plan_gemm<4>(1, q.N, q.K, 132, DecodeChoice{4, 1, 1, 2});
  REQUIRE(good.persist);
  auto bad = good;
  bad.kt_per_split -= 1;  // the last warp would have fewer tiles than the others
  auto two = good;
  two.grid.z = 2;  // a second split
  for (const auto& p : {bad, two}) {
    const Status st = lowbit::kernels::detail::run_decode<4, half_t, false>(dA.as<half_t>(), 1, w.view(), nullptr,
                                                                            dY.as<half_t>(), nullptr, 0, p, nullptr);
    CHECK(st.code == StatusCode::cuda_error);
  }
  KT_CUDA(cudaDeviceSynchronize());
  std::uint16_t first = 0;
  KT_CUDA(cudaMemcpy(&first, dY.p, 2, cudaMemcpyDeviceToHost));
  CHECK(first == 0xffffu);  // nothing launched
}

TEST_CASE("decode kernel: persistent CTAs loop over slabs", "[kernels][gpu][sanitize]") {
  // N = 320 (5 slabs) on 1, 2 or 3 CTAs: 5, 3/2 or 2/2/1 slabs each, so the rings run on across slabs and
  // CTAs reduce different numbers of slabs; K = 1280 (20 tiles) as 4 warps x 5 tiles: warps start inside
  // groups of 128 and 256 and span groups
  for (std::size_t group : {std::size_t(32), std::size_t(128), std::size_t(256), std::size_t(1280)})
    for (bool sym : {false, true})
      for (int ctas : {1, 2, 3}) {
        const QuantizedWeight q = random_weight(4, 1280, 320, group, sym, false);
        check_decode_plan<4, half_t>(q, 1, 4, 5, ctas);
        check_decode_plan<4, half_t>(q, 8, 4, 5, ctas);
      }
  // 16 warps of one tile each (the ring deeper than a warp's range in a slab), act-order bf16, the fp32
  // path of 8-bit bf16, 2-bit g64
  check_decode_plan<3, bfloat16_t>(random_weight(3, 1024, 384, 256, false, true), 5, 16, 1, 4);
  check_decode_plan<8, bfloat16_t>(random_weight(8, 512, 256, 32, false, false), 2, 8, 1, 3);
  check_decode_plan<2, half_t>(random_weight(2, 768, 448, 64, false, false), 3, 4, 3, 5);
}

TEST_CASE("decode kernel with programmatic dependent launch: short chains for the sanitizers", "[kernels][gpu][sanitize][pdl]") {
  // the weight-before-wait prologue, chained calls whose activations come from the previous output,
  // back-to-back split-K calls on one workspace, in a stream and captured in a graph (PDL automatic:
  // on where the device supports it, else the same checks with plain launches)
  const GemmOptions automatic;
  check_pdl_chain<4, half_t>(random_weight(4, 256, 256, 128, false, false), 1, automatic, 3, false);
  check_pdl_chain<4, half_t>(random_weight(4, 256, 256, 32, false, true), 9, automatic, 3, true);
  check_pdl_back_to_back<4, half_t>(random_weight(4, 2048, 64, 128, false, false), 16, automatic, 4);
  check_pdl_back_to_back<4, half_t>(random_weight(4, 512, 256, 128, false, true), 9, automatic, 4, true);  // act-order
}
