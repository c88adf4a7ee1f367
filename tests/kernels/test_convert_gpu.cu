// GPU conversion GPTQ <-> kernel layout (bit-exact both ways), API error statuses, and a small case
// for compute-sanitizer.
#include "gpu_common.cuh"

#include <lowbit/packing.hpp>

namespace {
using namespace kt;

struct HostGptq {
  std::vector<std::uint32_t> qweight, qzeros;
  std::vector<std::uint16_t> scales;
  std::vector<std::int32_t> g_idx;
};

HostGptq to_gptq(const QuantizedWeight& q) {
  HostGptq h;
  const std::size_t G = q.groups();
  dispatch_bits(q.spec.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    h.qweight.resize(GptqQWeightLayout<B>::packed_size(q.K, q.N));
    GptqQWeightLayout<B>::pack(q.codes.data(), q.K, q.N, h.qweight.data());
    h.qzeros.resize(GptqQZerosLayout<B>::packed_size(G, q.N));
    GptqQZerosLayout<B>::pack(q.zeros.data(), G, q.N, h.qzeros.data());
  });
  for (float s : q.scales) h.scales.push_back(float_to_half_bits(s));
  h.g_idx = q.g_idx;
  return h;
}

template <class U>
void upload_vec(DevBuf& d, const std::vector<U>& v) {
  REQUIRE(cudaMemcpy(d.p, v.data(), v.size() * sizeof(U), cudaMemcpyHostToDevice) == cudaSuccess);
}
template <class U>
std::vector<U> download(const U* p, std::size_t n) {
  std::vector<U> v(n);
  REQUIRE(cudaMemcpy(v.data(), p, n * sizeof(U), cudaMemcpyDeviceToHost) == cudaSuccess);
  return v;
}
}  // namespace

TEST_CASE("convert_from_gptq matches host tiling and convert_to_gptq reproduces the GPTQ tensors", "[kernels][gpu][convert]") {
  for (int bits : {2, 3, 4, 8})
    for (std::size_t group : {std::size_t(32), std::size_t(128), std::size_t(0)})
      for (bool act : {false, true})
        for (bool sym : {false, true}) {
          const std::size_t K = 384, N = 192, g = group ? group : K;
          if (!group && act) continue;
          INFO("bits " << bits << " group " << g << " act " << act << " sym " << sym);
          const QuantizedWeight q = random_weight(bits, K, N, g, sym, act);
          const HostGptq h = to_gptq(q);
          const HostTiledWeight ht = tile_weight(q);
          DevBuf qw(h.qweight.size() * 4), qz(h.qzeros.size() * 4), sc(h.scales.size() * 2), gi(K * 4);
          upload_vec(qw, h.qweight);
          upload_vec(qz, h.qzeros);
          upload_vec(sc, h.scales);
          upload_vec(gi, h.g_idx);
          GptqDeviceTensors in{bits, K, N, group ? static_cast<int>(group) : -1, qw.as<std::int32_t>(),
                               qz.as<std::int32_t>(), sc.as<std::uint16_t>(), gi.as<std::int32_t>()};
          TiledWeightBuffer w;
          const Status st = convert_from_gptq(in, w, nullptr);
          INFO(st.message);
          REQUIRE(st.ok());
          REQUIRE(w.view().meta.act_order == ht.meta.act_order);
          REQUIRE(w.view().meta.sym == ht.meta.sym);
          REQUIRE(download(w.view().qweight, ht.qweight.size()) == ht.qweight);
          REQUIRE(download(w.view().scales, ht.scales.size()) == ht.scales);
          REQUIRE(download(w.view().zeros, ht.zeros.size()) == ht.zeros);
          if (act) REQUIRE(download(w.view().perm, K) == ht.perm);

          DevBuf oqw(h.qweight.size() * 4), oqz(h.qzeros.size() * 4), osc(h.scales.size() * 2), ogi(K * 4);
          KT_CUDA(cudaMemset(oqw.p, 0xAB, oqw.bytes));
          KT_CUDA(cudaMemset(oqz.p, 0xAB, oqz.bytes));
          GptqDeviceOutput out{oqw.as<std::int32_t>(), oqz.as<std::int32_t>(), osc.as<std::uint16_t>(),
                               ogi.as<std::int32_t>()};
          REQUIRE(convert_to_gptq(w.view(), out, nullptr).ok());
          REQUIRE(download(oqw.as<std::uint32_t>(), h.qweight.size()) == h.qweight);
          REQUIRE(download(oqz.as<std::uint32_t>(), h.qzeros.size()) == h.qzeros);
          REQUIRE(download(osc.as<std::uint16_t>(), h.scales.size()) == h.scales);
          REQUIRE(download(ogi.as<std::int32_t>(), K) == h.g_idx);
        }
}

TEST_CASE("convert_from_gptq rejects bad g_idx and shapes with clear statuses", "[kernels][gpu][convert]") {
  const QuantizedWeight q = random_weight(4, 256, 64, 64, false, false);
  const HostGptq h = to_gptq(q);
  DevBuf qw(h.qweight.size() * 4), qz(h.qzeros.size() * 4), sc(h.scales.size() * 2), gi(256 * 4);
  upload_vec(qw, h.qweight);
  upload_vec(qz, h.qzeros);
  upload_vec(sc, h.scales);
  GptqDeviceTensors in{4, 256, 64, 64, qw.as<std::int32_t>(), qz.as<std::int32_t>(), sc.as<std::uint16_t>(),
                       gi.as<std::int32_t>()};
  TiledWeightBuffer w;
  auto bad = h.g_idx;
  bad[3] = 9;  // out of range
  upload_vec(gi, bad);
  Status st = convert_from_gptq(in, w, nullptr);
  CHECK(st.code == StatusCode::invalid_argument);
  CHECK_THAT(st.message, Catch::Contains("outside"));
  bad = h.g_idx;
  bad[0] = 1;  // group 1 gets 65 members
  upload_vec(gi, bad);
  st = convert_from_gptq(in, w, nullptr);
  CHECK(st.code == StatusCode::invalid_argument);
  CHECK_THAT(st.message, Catch::Contains("exactly 64"));
  in.g_idx = nullptr;
  in.N = 96;
  CHECK(convert_from_gptq(in, w, nullptr).code == StatusCode::invalid_argument);
  in.N = 64;
  in.bits = 5;
  CHECK(convert_from_gptq(in, w, nullptr).code == StatusCode::unsupported);
  in.bits = 4;
  in.group_size = 96;
  CHECK(convert_from_gptq(in, w, nullptr).code == StatusCode::unsupported);
}

TEST_CASE("gemm returns clear statuses for bad calls", "[kernels][gpu][api]") {
  // act-order: the decode path pre-gathers A into the workspace, so every M needs one
  const QuantizedWeight q = random_weight(4, 2048, 128, 128, false, true);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  DevBuf A(64 * 2048 * 2 + 16), Y(64 * 128 * 2);
  const half_t* a = A.as<half_t>();
  half_t* y = Y.as<half_t>();
  const std::size_t ws = gemm_workspace_size(1, w.view().meta);
  REQUIRE(ws > 0);
  DevBuf W(ws);
  REQUIRE(gemm_workspace_init(W.p, ws, nullptr).ok());
  CHECK(gemm<half_t>(a, 1, w.view(), nullptr, y, W.p, ws, nullptr).ok());
  CHECK(gemm<half_t>(a, 1, w.view(), nullptr, y, W.p, ws - 1, nullptr).code == StatusCode::workspace_too_small);
  CHECK(gemm<half_t>(a, 1, w.view(), nullptr, y, nullptr, 0, nullptr).code == StatusCode::workspace_too_small);
  CHECK(gemm<half_t>(reinterpret_cast<const half_t*>(A.as<char>() + 2), 1, w.view(), nullptr, y, W.p, ws, nullptr).code ==
        StatusCode::misaligned);
  CHECK(gemm<half_t>(a, 0, w.view(), nullptr, y, nullptr, 0, nullptr).ok());  // M = 0: nothing to do
  CHECK(gemm<half_t>(nullptr, 1, w.view(), nullptr, y, W.p, ws, nullptr).code == StatusCode::invalid_argument);
  TiledWeightView v = w.view();
  v.meta.K = 2000;
  CHECK(gemm<half_t>(a, 1, v, nullptr, y, W.p, ws, nullptr).code == StatusCode::invalid_argument);
  v = w.view();
  v.meta.bits = 5;
  CHECK(gemm<half_t>(a, 1, v, nullptr, y, W.p, ws, nullptr).code == StatusCode::unsupported);
  v = w.view();
  v.meta.group_size = 96;
  CHECK(gemm<half_t>(a, 1, v, nullptr, y, W.p, ws, nullptr).code == StatusCode::unsupported);
  KT_CUDA(cudaDeviceSynchronize());
}
