// GPU tests (label gpu) of lowbit/linear.cuh: each layer type built the ways an engine builds it, run at
// small and large M (both weight-only paths), against the double-precision host references; loading
// from device GPTQ tensors gives the same outputs as loading from the host weight; bad input refused.
#include <lowbit/linear.cuh>
#include <lowbit/packing.hpp>

#include "../kernels/gpu_common.cuh"

namespace {

using namespace kt;

template <class T>
std::vector<float> run_forward(const WeightOnlyLinear<T>& layer, const std::vector<T>& A, std::size_t M,
                               std::size_t ws_bytes, bool expect_dequant) {
  DevBuf dA(A.size() * 2), dY(M * layer.out_features() * 2), ws(ws_bytes);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), M * layer.in_features() * 2, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemset(dY.p, 0xff, dY.bytes));
  REQUIRE(layer.init_workspace(ws.p, ws_bytes, nullptr).ok());
  CHECK(layer.uses_dequant_gemm(M, ws_bytes) == expect_dequant);
  for (int rep = 0; rep < 2; ++rep) {  // twice: the workspace must stay valid from call to call
    const Status st = layer.forward(dA.as<T>(), M, dY.as<T>(), ws.p, ws_bytes, nullptr);
    INFO("status " << st.message);
    REQUIRE(st.ok());
  }
  KT_CUDA(cudaDeviceSynchronize());
  std::vector<T> Y(M * layer.out_features());
  KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
  return to_float(Y);
}

template <int B, class T>
void check_weight_only(std::size_t group, bool act) {
  const std::size_t K = 384, N = 320;
  const QuantizedWeight q = random_weight(B, K, N, group, false, act);
  std::vector<float> bias(N);
  for (std::size_t n = 0; n < N; ++n) bias[n] = static_cast<float>(T(0.01f * static_cast<float>(n % 17) - 0.08f));
  const auto layer = WeightOnlyLinear<T>::from_quantized(q, bias.data(), nullptr);
  CHECK(layer.in_features() == K);
  CHECK(layer.out_features() == N);
  const std::size_t Mmax = 300;  // >= kDequantGemmMinM: both paths
  const auto A = random_activations<T>(Mmax * K);
  const auto Af = to_float(A);
  const auto ref = reference_gemm(q, Af.data(), Mmax, bias.data());
  const std::size_t ws = layer.workspace_size(Mmax);
  const std::size_t ws_small = layer.workspace_size(kernels::kDequantGemmMinM - 1);
  for (std::size_t M : {std::size_t(1), std::size_t(16), std::size_t(100), Mmax}) {
    INFO("bits " << B << " group " << group << " act " << act << " M " << M);
    const bool dequant = M >= kernels::kDequantGemmMinM;
    const auto y = run_forward(layer, A, M, ws, dequant);
    const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * N));
    CHECK(relative_error(y, r) < tolerance<T>());
    if (dequant) {  // a workspace sized for small M (fused kernels unless a slab fits): same answer
      std::size_t fused_ws = 0;
      for (std::size_t m = 1; m <= M; ++m) fused_ws = std::max(fused_ws, gemm_workspace_size(m, layer.weight().meta));
      const std::size_t b2 = std::max(fused_ws, ws_small);
      // the documented rule: the dense path needs the counter region plus one 64-column slab
      const bool room = b2 >= kernels::detail::kCounterBytes + gemm_dequant_min_workspace_size<T>(layer.weight().meta);
      const auto y2 = run_forward(layer, A, M, b2, room);
      CHECK(relative_error(y2, r) < tolerance<T>());
    }
  }
  // a bounded dense slab (several passes over N) gives the same result. The dense path at M = Mmax needs only the
  // counters and the slab; workspace_size(Mmax, limit) also covers the fused kernels' region for the smaller M, which
  // can be the larger part (sm_90a builds, act-order), so the bounded run gets just what the dense path needs.
  const std::size_t slab = K * 128 * sizeof(T), dense_only = kernels::detail::kCounterBytes + slab;
  const std::size_t limited = layer.workspace_size(Mmax, slab);
  CHECK(limited <= ws);
  CHECK(limited >= dense_only);
  REQUIRE(slab < K * N * sizeof(T));  // more than one pass over N
  const auto y3 = run_forward(layer, A, Mmax, dense_only, true);
  CHECK(relative_error(y3, ref) < tolerance<T>());
}

/// The GPTQ checkpoint tensors of q (v2 zeros), packed on the host with the core's layouts.
struct HostGptq {
  std::vector<std::uint32_t> qweight, qzeros;
  std::vector<std::uint16_t> scales;
  std::vector<std::int32_t> g_idx;
};
template <int B>
HostGptq pack_gptq(const QuantizedWeight& q) {
  HostGptq h;
  const std::size_t G = q.groups();
  h.qweight.resize(GptqQWeightLayout<B>::packed_size(q.K, q.N));
  GptqQWeightLayout<B>::pack(q.codes.data(), q.K, q.N, h.qweight.data());
  h.qzeros.resize(GptqQZerosLayout<B>::packed_size(G, q.N));
  GptqQZerosLayout<B>::pack(q.zeros.data(), G, q.N, h.qzeros.data());
  for (float s : q.scales) h.scales.push_back(float_to_half_bits(s));
  h.g_idx = q.g_idx;
  return h;
}

}  // namespace

TEST_CASE("WeightOnlyLinear matches the host reference on both paths", "[gpu][linear]") {
  check_weight_only<4, half_t>(128, false);
  check_weight_only<4, half_t>(64, true);
  check_weight_only<3, bfloat16_t>(128, true);
  check_weight_only<8, half_t>(384, false);
  check_weight_only<2, bfloat16_t>(32, false);
}

TEST_CASE("WeightOnlyLinear: the large-M kernel below kDequantGemmOverLargeM where its grid fills the GPU", "[gpu][linear]") {
  // N = 16384: 2 x 128 CTAs of 256 x 128 at M = 300, a full wave on any current GPU; K = 128 keeps the reference small
  const std::size_t K = 128, N = 16384, M = 300;
  const QuantizedWeight q = random_weight(4, K, N, 128, false, false);
  const auto layer = WeightOnlyLinear<half_t>::from_quantized(q, nullptr, nullptr);
  const int sms = kernels::detail::current_sm_count();
  const bool large = kernels::detail::large_wgmma_preferred(M, N, sms);
  if (!large) WARN("no sm_90a large-M kernel on this build or device: the dense path serves M = 300 here");
  const std::size_t ws = layer.workspace_size(M);
  // with the kernel, M = 300 needs no dense weight slab: nothing past what M <= 256 needs (the large-M plan of a weight
  // without act-order takes no workspace); M = 1024 is dense + cuBLAS again
  if (large) CHECK(ws == layer.workspace_size(kernels::kDequantGemmMinM - 1));
  CHECK(layer.uses_dequant_gemm(kernels::kDequantGemmOverLargeM, layer.workspace_size(kernels::kDequantGemmOverLargeM)));
  const auto A = random_activations<half_t>(M * K);
  const auto Af = to_float(A);
  const auto ref = reference_gemm(q, Af.data(), M, nullptr);
  const auto y = run_forward(layer, A, M, ws, !large);
  CHECK(relative_error(y, ref) < tolerance<half_t>());
}

TEST_CASE("WeightOnlyLinear from device GPTQ tensors equals the host-loaded layer", "[gpu][linear]") {
  constexpr int B = 4;
  const QuantizedWeight q = random_weight(B, 512, 192, 128, false, true);
  const HostGptq h = pack_gptq<B>(q);
  DevBuf qw(h.qweight.size() * 4), qz(h.qzeros.size() * 4), sc(h.scales.size() * 2), gi(h.g_idx.size() * 4);
  KT_CUDA(cudaMemcpy(qw.p, h.qweight.data(), qw.bytes, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(qz.p, h.qzeros.data(), qz.bytes, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(sc.p, h.scales.data(), sc.bytes, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(gi.p, h.g_idx.data(), gi.bytes, cudaMemcpyHostToDevice));
  kernels::GptqDeviceTensors t;
  t.bits = B;
  t.K = q.K;
  t.N = q.N;
  t.group_size = 128;
  t.qweight = qw.as<const std::int32_t>();
  t.qzeros = qz.as<const std::int32_t>();
  t.scales = sc.as<const std::uint16_t>();
  t.g_idx = gi.as<const std::int32_t>();
  const auto from_dev = WeightOnlyLinear<half_t>::from_gptq(t, nullptr, nullptr);
  const auto from_host = WeightOnlyLinear<half_t>::from_quantized(q, nullptr, nullptr);
  CHECK(from_dev.weight().meta.act_order);
  CHECK(from_dev.weight_bytes() == from_host.weight_bytes());
  const auto A = random_activations<half_t>(300 * q.K);
  for (std::size_t M : {std::size_t(3), std::size_t(300)}) {
    const std::size_t ws = from_host.workspace_size(M);
    const auto a = run_forward(from_dev, A, M, ws, M >= kernels::kDequantGemmMinM);
    const auto b = run_forward(from_host, A, M, ws, M >= kernels::kDequantGemmMinM);
    CHECK(a == b);  // same weights, same kernels: bit-identical outputs
  }
  kernels::GptqDeviceTensors bad = t;
  bad.K = 500;  // not a multiple of 64
  CHECK_THROWS_AS(WeightOnlyLinear<half_t>::from_gptq(bad, nullptr, nullptr), Error);
}

TEST_CASE("Int8Linear matches the LLM.int8() host reference", "[gpu][linear]") {
  const int N = 192, K = 512, M = 40;
  std::normal_distribution<float> d(0.f, 0.05f);
  std::vector<half_t> W(static_cast<std::size_t>(N) * K);
  for (auto& w : W) w = half_t(d(rng()));
  auto A = random_activations<half_t>(static_cast<std::size_t>(M) * K);
  for (int m = 0; m < M; m += 3) A[static_cast<std::size_t>(m) * K + 77] = half_t(30.f);  // an outlier feature
  std::vector<float> bias(N, 0.25f);
  const auto layer = Int8Linear<half_t>::from_weights(W.data(), N, K, bias.data(), nullptr, nullptr);
  const auto ref = int8::linear_reference(A.data(), M, K, int8::quantize_weight(W.data(), N, K), bias.data());
  const std::size_t ws = layer.workspace_size(M);
  DevBuf dA(A.size() * 2), dY(static_cast<std::size_t>(M) * N * 2), dW(ws);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), dA.bytes, cudaMemcpyHostToDevice));
  REQUIRE(layer.forward(dA.as<half_t>(), M, dY.as<half_t>(), dW.p, ws, nullptr).ok());
  KT_CUDA(cudaDeviceSynchronize());
  std::vector<half_t> Y(static_cast<std::size_t>(M) * N);
  KT_CUDA(cudaMemcpy(Y.data(), dY.p, dY.bytes, cudaMemcpyDeviceToHost));
  CHECK(int8::relative_error(Y, ref) < 2e-3);
  CHECK(layer.forward(dA.as<half_t>(), M, dY.as<half_t>(), dW.p, ws / 2, nullptr).code == StatusCode::workspace_too_small);
  std::vector<half_t> odd(static_cast<std::size_t>(N) * 100);
  CHECK_THROWS_AS(Int8Linear<half_t>::from_weights(odd.data(), N, 100, nullptr, nullptr, nullptr), Error);
}

TEST_CASE("WeightOnlyLinear refuses bad input with a clear error", "[gpu][linear][sanitize]") {
  QuantizedWeight q = random_weight(4, 256, 128, 128, false, false);
  std::vector<float> bias(q.N, 0.f);
  bias[5] = NAN;
  CHECK_THROWS_AS(WeightOnlyLinear<half_t>::from_quantized(q, bias.data(), nullptr), Error);
  q.K = 200;
  CHECK_THROWS_AS(WeightOnlyLinear<half_t>::from_quantized(q, nullptr, nullptr), Error);
  const auto layer = WeightOnlyLinear<half_t>::from_quantized(random_weight(4, 256, 128, 128, false, true), nullptr, nullptr);
  const std::size_t M = 8, ws = layer.workspace_size(M);
  REQUIRE(ws > 0);  // act-order gathers A into the workspace
  DevBuf dA(M * 256 * 2), dY(M * 128 * 2), dW(ws);
  REQUIRE(layer.init_workspace(dW.p, ws, nullptr).ok());
  CHECK(layer.forward(dA.as<half_t>(), M, dY.as<half_t>(), dW.p, ws - 16, nullptr).code == StatusCode::workspace_too_small);
  CHECK(layer.forward(dA.as<half_t>() + 1, M, dY.as<half_t>(), dW.p, ws, nullptr).code == StatusCode::misaligned);
  CHECK(layer.forward(dA.as<half_t>(), M, dY.as<half_t>(), dW.p, ws, nullptr).ok());
  KT_CUDA(cudaDeviceSynchronize());
}

TEST_CASE("WeightOnlyLinear::tune: measured decode shapes give the reference's answer and can be shared", "[gpu][linear][tune]") {
  using T = half_t;
  const std::size_t K = 1536, N = 256;
  const QuantizedWeight q = random_weight(4, K, N, 128, false, false);
  std::vector<float> bias(N, 0.25f);
  auto layer = WeightOnlyLinear<T>::from_quantized(q, bias.data(), nullptr);
  CHECK(layer.decode_tuning().sm_count == 0);  // planned until tuned
  kernels::TuneOptions opt;
  opt.reps = 3;
  opt.batch = 4;
  const Status st = layer.tune(nullptr, {1, 8, 12}, opt);
  INFO("status " << st.message);
  REQUIRE(st.ok());
  const kernels::DecodeTuning& t = layer.decode_tuning();
  CHECK(t.sm_count == kernels::detail::current_sm_count());
  for (std::size_t M : {std::size_t(1), std::size_t(8), std::size_t(12)}) CHECK(t.for_m(M).warps > 0);
  CHECK(t.for_m(2).planned());
  const std::size_t Mmax = 16;
  const auto A = random_activations<T>(Mmax * K);
  const auto Af = to_float(A);
  const auto ref = reference_gemm(q, Af.data(), Mmax, bias.data());
  const std::size_t ws = layer.workspace_size(Mmax);  // after tuning: covers the measured shapes
  for (std::size_t M : {std::size_t(1), std::size_t(2), std::size_t(8), std::size_t(12)}) {
    INFO("M " << M);
    const auto y = run_forward(layer, A, M, ws, false);
    const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * N));
    CHECK(relative_error(y, r) < tolerance<T>());
  }
  // another layer of the same shape takes the measured shapes; one of another shape refuses them
  auto same = WeightOnlyLinear<T>::from_quantized(random_weight(4, K, N, 128, false, false), nullptr, nullptr);
  CHECK(same.set_decode_tuning(t).ok());
  CHECK(same.decode_tuning().for_m(8) == t.for_m(8));
  auto other = WeightOnlyLinear<T>::from_quantized(random_weight(4, K, 2 * N, 128, false, false), nullptr, nullptr);
  const Status refused = other.set_decode_tuning(t);
  CHECK(refused.code == StatusCode::invalid_argument);
  CHECK_THAT(refused.message, Catch::Contains("decode tuning"));
  CHECK(other.decode_tuning().sm_count == 0);
  // a failed tune keeps the previous shapes
  CHECK(layer.tune(nullptr, {17}).code == StatusCode::invalid_argument);
  CHECK(layer.decode_tuning().for_m(8) == t.for_m(8));
  // moving a layer keeps its shapes
  const kernels::DecodeChoice at8 = t.for_m(8);
  WeightOnlyLinear<T> moved = std::move(layer);
  CHECK(moved.decode_tuning().for_m(8) == at8);
}
