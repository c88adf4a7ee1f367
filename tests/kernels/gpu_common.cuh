// Shared helpers of the kernels' GPU tests: random quantized weights, device buffers, the GEMM sweep
// against the double-accumulating host reference, with poisoned outputs.
#pragma once

#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <lowbit/kernels/convert.cuh>
#include <lowbit/kernels/gemm.cuh>
#include <lowbit/kernels/reference.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kt {

using namespace lowbit;
using namespace lowbit::kernels;

#define KT_CUDA(call)                                                              \
  do {                                                                             \
    const cudaError_t e_ = (call);                                                 \
    INFO(#call << " -> " << cudaGetErrorString(e_));                               \
    REQUIRE(e_ == cudaSuccess);                                                    \
  } while (0)

/// Device buffer of bytes (RAII).
struct DevBuf {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit DevBuf(std::size_t n = 0) : bytes(n) {
    if (n) REQUIRE(cudaMalloc(&p, n) == cudaSuccess);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  template <class U>
  U* as() const {
    return static_cast<U*>(p);
  }
};

inline std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

/// A random group-quantized weight (fresh each call): random codes, fp16-exact scales, zeros.
inline QuantizedWeight random_weight(int bits, std::size_t K, std::size_t N, std::size_t group, bool sym, bool act) {
  QuantizedWeight q;
  q.spec.bits = bits;
  q.spec.group_size = group == K ? -1 : static_cast<int>(group);
  q.spec.sym = sym;
  q.K = K;
  q.N = N;
  const std::size_t G = K / group;
  std::uniform_int_distribution<int> dc(0, (1 << bits) - 1);
  std::uniform_real_distribution<float> ds(0.002f, 0.03f);
  q.codes.resize(K * N);
  for (auto& v : q.codes) v = static_cast<std::uint8_t>(dc(rng()));
  q.scales.resize(G * N);
  for (auto& s : q.scales) s = round_to_half(ds(rng()));
  q.zeros.resize(G * N);
  for (auto& z : q.zeros) z = static_cast<std::uint8_t>(sym ? (1 << (bits - 1)) : dc(rng()));
  q.g_idx.resize(K);
  for (std::size_t k = 0; k < K; ++k) q.g_idx[k] = static_cast<std::int32_t>(k / group);
  if (act) std::shuffle(q.g_idx.begin(), q.g_idx.end(), rng());
  return q;
}

template <class T>
std::vector<T> random_activations(std::size_t n) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<T> a(n);
  for (auto& v : a) v = T(d(rng()));
  return a;
}

template <class T>
std::vector<float> to_float(const std::vector<T>& v) {
  std::vector<float> f(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
  return f;
}

/// Tolerance on ‖y − ref‖/‖ref‖: fp16 keeps 11 significant bits (weights and output rounded once
/// each), bf16 keeps 8.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, half_t> ? 2e-3 : 1.2e-2;
}

/// Runs Y = A·W (+bias) on the GPU for each M and compares with the host reference. With
/// `BulkDecode`, M <= 16 runs the decode kernel's bulk-copy (sm_90 TMA) variant instead of the
/// cp.async one gemm uses, through the same planner and workspace.
template <int B, class T, bool BulkDecode = false>
void check_gemm(const QuantizedWeight& q, const std::vector<std::size_t>& Ms, bool with_bias) {
  constexpr bool bulk_decode = BulkDecode;
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  const auto A = random_activations<T>(Mmax * q.K);
  const auto bias = random_activations<T>(q.N);
  const auto Af = to_float(A), biasf = to_float(bias);
  const auto ref = reference_gemm(q, Af.data(), Mmax, with_bias ? biasf.data() : nullptr);
  DevBuf dA(A.size() * 2), dB(q.N * 2), dY(Mmax * q.N * 2);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  // one workspace for every M, zeroed once: split-K counters must stay valid across calls and shapes
  std::size_t ws = 0;
  for (std::size_t M : Ms) ws = std::max(ws, gemm_workspace_size(M, w.view().meta));
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  for (std::size_t M : Ms) {
    INFO("bits " << B << " bulk decode " << bulk_decode << " K " << q.K << " N " << q.N << " group " << w.view().meta.group_size << " sym "
                 << w.view().meta.sym << " act_order " << w.view().meta.act_order << " M " << M << " bias "
                 << with_bias);
    constexpr std::size_t cb = lowbit::kernels::detail::kCounterBytes;  // the rest is scratch: fill it with garbage
    KT_CUDA(cudaMemset(static_cast<char*>(dW.p) + std::min(ws, cb), 0x5a, ws > cb ? ws - cb : 0));
    KT_CUDA(cudaMemset(dY.p, 0xff, Mmax * q.N * 2));  // poison: all-ones bits are NaN in fp16 and bf16
    for (int rep = 0; rep < 2; ++rep) {  // twice: the split-K counters must be left ready for reuse
      const T* dbias = with_bias ? dB.as<T>() : nullptr;
      Status st;
      if constexpr (BulkDecode) {
        if (M <= DecodeConfig<B>::max_m) {
          st = lowbit::kernels::detail::run_decode<B, T, true>(
              dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws,
              lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, lowbit::kernels::detail::current_sm_count()), nullptr);
        } else {
          st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws, nullptr);
        }
      } else {
        st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws, nullptr);
      }
      INFO("status: " << st.message << " rep " << rep);
      CHECK(st.ok());
      if (!st.ok()) break;  // keep sweeping the other configurations
      KT_CUDA(cudaDeviceSynchronize());
      std::vector<T> Y(M * q.N);
      KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
      const std::vector<float> y = to_float(Y);
      const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * q.N));
      const double err = relative_error(y, r);
      INFO("relative error " << err);
      CHECK(err < tolerance<T>());
    }
    // rows past M must be untouched (still poisoned)
    if (M < Mmax) {
      std::uint16_t after = 0;
      KT_CUDA(cudaMemcpy(&after, dY.as<std::uint16_t>() + M * q.N, 2, cudaMemcpyDeviceToHost));
      CHECK(after == 0xffffu);
    }
  }
}

/// The full sweep for one width and element type: group × sym × act-order × M on odd shapes, plus a
/// long-K case that exercises split-K across CTAs with an uneven last split.
template <int B, class T>
void run_sweep() {
  // 1..16: decode kernel (8 | 9: one or two 8-row MMA blocks); 17+: tile kernels
  const std::vector<std::size_t> Ms = {1, 3, 8, 9, 16, 17, 64, 200, 1024};
  for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), std::size_t(0)})
    for (bool sym : {false, true})
      for (bool act : {false, true}) {
        const std::size_t K = group == 128 ? 384 : 448, N = 320;  // 448 = 7*64, 320 = 5*64
        const std::size_t g = group == 0 ? K : group;
        if (group == 0 && act) continue;  // per-channel has a single group: act-order is the identity
        check_gemm<B, T>(random_weight(B, K, N, g, sym, act), Ms, !sym);
      }
  check_gemm<B, T>(random_weight(B, 3200, 192, 128, false, true), {1, 5, 16, 17, 32, 33, 64, 200}, true);
  check_gemm<B, T>(random_weight(B, 3200, 192, 32, true, false), {1, 16, 40}, false);
}

}  // namespace kt
