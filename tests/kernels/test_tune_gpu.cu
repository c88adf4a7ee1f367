// GPU tests (label gpu) of forced decode launch shapes (GemmOptions::decode) and of the decode tuner
// (lowbit/kernels/tune.cuh): every runnable shape gives the host reference's answer, shapes a weight cannot
// run are refused before anything is launched, and tune_decode records a runnable shape per M.
#include <lowbit/kernels/tune.cuh>

#include "gpu_common.cuh"

namespace {

using namespace kt;

/// Runs gemm_bits with every runnable decode shape (slabs x warps x splits <= max_splits x persistent or not) at each M and compares
/// with the double-precision host reference; outputs are poisoned first, the split-K workspace is
/// filled with garbage past the counters, and every call runs twice (the counters must be left zero).
template <int B, class T>
void check_every_shape(const QuantizedWeight& q, const std::vector<std::size_t>& Ms, int max_splits) {
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  GemmProblem<T> P(q, Mmax, true, Mmax);
  const TiledWeightBuffer& w = P.w;
  DevBuf &dA = P.dA, &dB = P.dB, &dY = P.dY;
  const int sms = lowbit::kernels::detail::current_sm_count();
  REQUIRE(sms > 0);
  std::vector<DecodeChoice> shapes;  // every shape in range: 1-2 slabs x 4/8/16 warps x 1..max_splits x persist 1/2
  for (int ns : {1, 2})
    for (int W : {4, 8, 16})
      for (int s = 1; s <= max_splits; ++s)
        for (int pe : {1, 2}) shapes.push_back({W, s, ns, pe});
  std::size_t ws = 0;
  for (std::size_t M : Ms)
    for (const DecodeChoice& c : shapes) {
      GemmOptions o;
      o.decode = c;
      ws = std::max(ws, gemm_workspace_size(M, w.view().meta, o));
    }
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  int runnable = 0, two_slabs = 0, persistent = 0;
  for (std::size_t M : Ms)
    for (const DecodeChoice& c : shapes) {
      GemmOptions o;
      o.decode = c;
      const auto plan = lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, sms, o.decode);
      INFO("bits " << B << " K " << q.K << " N " << q.N << " group " << q.spec.group_size << " act "
                   << w.view().meta.act_order << " M " << M << " slabs " << c.slabs << " warps " << c.warps << " splits "
                   << c.splits << " persist " << c.persist);
      constexpr std::size_t cb = lowbit::kernels::detail::kCounterBytes;
      KT_CUDA(cudaMemset(static_cast<char*>(dW.p) + std::min(ws, cb), 0x5a, ws > cb ? ws - cb : 0));
      KT_CUDA(cudaMemset(dY.p, 0xff, Mmax * q.N * 2));  // NaN in fp16 and bf16
      if (plan.kt_per_warp == 0) {  // not runnable: refused, nothing written
        const Status st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dB.as<T>(), dY.as<T>(), dW.p, ws, nullptr, o);
        CHECK(st.code == StatusCode::invalid_argument);
        CHECK_THAT(st.message, Catch::Contains("GemmOptions::decode"));
        KT_CUDA(cudaDeviceSynchronize());
        std::uint16_t first = 0;
        KT_CUDA(cudaMemcpy(&first, dY.p, 2, cudaMemcpyDeviceToHost));
        CHECK(first == 0xffffu);
        continue;
      }
      ++runnable;
      two_slabs += c.slabs == 2;
      persistent += c.persist == 2;
      for (int rep = 0; rep < 2; ++rep) {
        const Status st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dB.as<T>(), dY.as<T>(), dW.p, ws, nullptr, o);
        INFO("status: " << st.message << " rep " << rep);
        REQUIRE(st.ok());
        KT_CUDA(cudaDeviceSynchronize());
        std::vector<T> Y(M * q.N);
        KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
        const std::vector<float> r(P.ref.begin(), P.ref.begin() + static_cast<std::ptrdiff_t>(M * q.N));
        const double err = relative_error(to_float(Y), r);
        INFO("relative error " << err);
        CHECK(err < tolerance<T>());
      }
      if (M < Mmax) {  // rows past M untouched
        std::uint16_t after = 0;
        KT_CUDA(cudaMemcpy(&after, dY.as<std::uint16_t>() + M * q.N, 2, cudaMemcpyDeviceToHost));
        CHECK(after == 0xffffu);
      }
    }
  CHECK(runnable > 0);
  CHECK((two_slabs > 0) == (q.N % 128 == 0));  // two slabs per CTA need an even number of slabs
  // persistent CTAs: M <= 8 and a warp count that divides K/64 (4 does when any does)
  CHECK((persistent > 0) == (*std::min_element(Ms.begin(), Ms.end()) <= 8 && (q.K / 64) % 4 == 0));
}

}  // namespace

TEST_CASE("gemm with a forced decode shape: every runnable shape matches the host reference", "[kernels][gpu][tune]") {
  // 4-bit g128, K = 1280 (20 tiles: ragged splits), N = 256 (4 slabs: one or two per CTA), M = 1 / 9 (one
  // and two 8-row blocks)
  check_every_shape<4, half_t>(random_weight(4, 1280, 256, 128, false, false), {1, 9}, 8);
  // 2-bit per-channel, N = 192 (3 slabs: two per CTA refused), M = 16
  check_every_shape<2, half_t>(random_weight(2, 768, 192, 768, false, false), {16}, 4);
  // act-order 3-bit g32 in bf16 (pre-gathered activations, two groups per tile), 2 slabs
  check_every_shape<3, bfloat16_t>(random_weight(3, 640, 128, 32, false, true), {3, 16}, 6);
  // symmetric 8-bit per-channel
  check_every_shape<8, half_t>(random_weight(8, 1024, 64, 1024, true, false), {5}, 16);
}

TEST_CASE("persistent decode CTAs on the device's own grid match the host reference", "[kernels][gpu][tune]") {
  // 3584 x 18944 (K x N, 296 slabs) with 8-warp persistent CTAs: on an H100 264 CTAs, 32 of them with a
  // second slab (on other SM counts some other split of the slabs); M <= 8 (persistent CTAs serve no more)
  const int sms = lowbit::kernels::detail::current_sm_count();
  const auto p = lowbit::kernels::detail::plan_gemm<4>(1, 18944, 3584, sms, DecodeChoice{8, 1, 1, 2});
  REQUIRE(p.persist);
  INFO("persistent CTAs " << p.grid.y << " for 296 slabs");
  GemmOptions o;
  o.decode = {8, 1, 1, 2};
  check_gemm<4, half_t>(random_weight(4, 3584, 18944, 128, false, false), {1, 4, 8}, true, o);
  check_gemm<2, bfloat16_t>(random_weight(2, 3584, 18944, 64, true, true), {3}, false, o);
}

TEST_CASE("gemm with a forced decode shape: refusals name the problem", "[kernels][gpu][tune]") {
  const QuantizedWeight q = random_weight(4, 1024, 128, 128, false, false);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  DevBuf dA(32 * q.K * 2), dY(32 * q.N * 2);
  KT_CUDA(cudaMemset(dA.p, 0, dA.bytes));
  GemmOptions o;
  o.decode = {4, 3};  // 16 tiles of K: 3 CTAs of 4 warps take 2 each, so the third would be empty
  CHECK(gemm_workspace_size(1, w.view().meta, o) == 0);
  Status st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), nullptr, 0, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  CHECK_THAT(st.message, Catch::Contains("no launch for K = 1024"));
  o.decode = {12, 1};  // not a warp count
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), nullptr, 0, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  // a forced split needs the workspace asked with the same options
  o.decode = {4, 4};  // 16 tiles: one per warp
  const std::size_t need = gemm_workspace_size(1, w.view().meta, o);
  CHECK(need > gemm_workspace_size(1, w.view().meta));
  DevBuf ws(need);
  REQUIRE(gemm_workspace_init(ws.p, need, nullptr).ok());
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), ws.p, need / 2, nullptr, o);
  CHECK(st.code == StatusCode::workspace_too_small);
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), ws.p, need, nullptr, o);
  CHECK(st.ok());
  // persistent CTAs: one split only, M <= 8 only
  o.decode = {4, 2, 1, 2};
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), ws.p, need, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  CHECK_THAT(st.message, Catch::Contains("persist 2"));
  o.decode = {4, 1, 1, 2};
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 9, w.view(), nullptr, dY.as<half_t>(), ws.p, need, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 8, w.view(), nullptr, dY.as<half_t>(), ws.p, need, nullptr, o);
  CHECK(st.ok());
  o.decode = {4, 1, 1, 3};  // out of range
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 1, w.view(), nullptr, dY.as<half_t>(), ws.p, need, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  // M = 16 is still the decode kernel's: refused; M = 17 (mid-M kernel) ignores the decode shape
  o.decode = {4, 3};
  const std::size_t ws17 = gemm_workspace_size(17, w.view().meta, o);
  CHECK(ws17 == gemm_workspace_size(17, w.view().meta));
  DevBuf ws2(ws17 + 256);
  REQUIRE(gemm_workspace_init(ws2.p, ws2.bytes, nullptr).ok());
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 16, w.view(), nullptr, dY.as<half_t>(), ws2.p, ws2.bytes, nullptr, o);
  CHECK(st.code == StatusCode::invalid_argument);
  st = gemm_bits<4, half_t>(dA.as<half_t>(), 17, w.view(), nullptr, dY.as<half_t>(), ws2.p, ws2.bytes, nullptr, o);
  INFO("status " << st.message);
  CHECK(st.ok());
  KT_CUDA(cudaDeviceSynchronize());
}

TEST_CASE("tune_decode times every shape and records a runnable one per M", "[kernels][gpu][tune]") {
  const QuantizedWeight q = random_weight(4, 2048, 512, 128, false, false);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  const int sms = lowbit::kernels::detail::current_sm_count();
  TuneOptions opt;
  opt.reps = 3;
  opt.batch = 4;
  DecodeTuning t;
  std::vector<DecodeTuneResult> details;
  const Status st = tune_decode<half_t>(w.view(), {1, 4, 16}, nullptr, t, opt, &details);
  INFO("status " << st.message);
  REQUIRE(st.ok());
  CHECK(t.applies_to(w.view().meta, sms, lowbit::kernels::detail::current_device_name()));
  CHECK_FALSE(t.device.empty());
  REQUIRE(details.size() == 3);
  for (const DecodeTuneResult& r : details) {
    INFO("M " << r.M);
    const auto plan = lowbit::kernels::detail::plan_gemm<4>(r.M, q.N, q.K, sms);
    CHECK(r.planned == lowbit::kernels::detail::decode_choice_of(plan));
    CHECK(t.by_m[r.M] == r.best);
    CHECK(lowbit::kernels::detail::plan_gemm<4>(r.M, q.N, q.K, sms, r.best).kt_per_warp > 0);
    CHECK(r.timings.size() >= 3);
    CHECK(std::is_sorted(r.timings.begin(), r.timings.end(),
                         [](const DecodeTiming& a, const DecodeTiming& b) { return a.us < b.us; }));
    for (const DecodeTiming& d : r.timings) {
      CHECK(std::isfinite(d.us));
      CHECK(d.us > 0);
      CHECK(d.us < 1e5);  // 100 ms would mean something is badly wrong
    }
    CHECK(r.best_us <= r.planned_us);
    CHECK(r.planned_us > 0);
  }
  for (std::size_t M : {std::size_t(2), std::size_t(3), std::size_t(5), std::size_t(15)}) CHECK(t.for_m(M).planned());
  // the measured shapes run through gemm and give the reference's answer
  const auto A = random_activations<half_t>(16 * q.K);
  const auto Af = to_float(A);
  const auto ref = reference_gemm(q, Af.data(), 16, nullptr);
  DevBuf dA(A.size() * 2), dY(16 * q.N * 2);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  for (std::size_t M : {std::size_t(1), std::size_t(4), std::size_t(16)}) {
    GemmOptions o;
    o.decode = t.for_m(M);
    const std::size_t wsb = gemm_workspace_size(M, w.view().meta, o);
    DevBuf ws(wsb);
    REQUIRE(gemm_workspace_init(ws.p, wsb, nullptr).ok());
    KT_CUDA(cudaMemset(dY.p, 0xff, dY.bytes));
    REQUIRE(gemm_bits<4, half_t>(dA.as<half_t>(), M, w.view(), nullptr, dY.as<half_t>(), ws.p, wsb, nullptr, o).ok());
    KT_CUDA(cudaDeviceSynchronize());
    std::vector<half_t> Y(M * q.N);
    KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
    const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * q.N));
    CHECK(relative_error(to_float(Y), r) < tolerance<half_t>());
  }
  // one copy of the weight only (rotation_bytes below its size) and a symmetric weight without zeros
  const QuantizedWeight qs = random_weight(2, 512, 256, 64, true, false);
  TiledWeightBuffer ws_sym;
  REQUIRE(upload(tile_weight(qs), ws_sym, nullptr).ok());
  TiledWeightView v = ws_sym.view();
  v.zeros = nullptr;
  opt.rotation_bytes = 1;
  DecodeTuning t2;
  const Status st2 = tune_decode<bfloat16_t>(v, {2}, nullptr, t2, opt);
  INFO("status " << st2.message);
  CHECK(st2.ok());
  CHECK(t2.by_m[2].warps > 0);
}

TEST_CASE("tune_decode refuses bad requests", "[kernels][gpu][tune]") {
  const QuantizedWeight q = random_weight(4, 256, 128, 128, false, false);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  DecodeTuning t;
  t.by_m[1] = {4, 1};  // must stay as it was on failure
  CHECK(tune_decode<half_t>(w.view(), {17}, nullptr, t).code == StatusCode::invalid_argument);
  TuneOptions bad;
  bad.reps = 0;
  CHECK(tune_decode<half_t>(w.view(), {1}, nullptr, t, bad).code == StatusCode::invalid_argument);
  TiledWeightView v = w.view();
  v.qweight = nullptr;
  CHECK(tune_decode<half_t>(v, {1}, nullptr, t).code == StatusCode::invalid_argument);
  CHECK(t.by_m[1] == DecodeChoice{4, 1});
  CHECK(t.sm_count == 0);
  // not while the stream is being captured
  cudaStream_t s;
  KT_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  KT_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  const Status cap = tune_decode<half_t>(w.view(), {1}, s, t);
  cudaGraph_t g = nullptr;
  KT_CUDA(cudaStreamEndCapture(s, &g));
  if (g) cudaGraphDestroy(g);
  KT_CUDA(cudaStreamDestroy(s));
  CHECK(cap.code == StatusCode::invalid_argument);
  CHECK_THAT(cap.message, Catch::Contains("captured"));
}
