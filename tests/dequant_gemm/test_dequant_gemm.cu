// GPU tests (label gpu) of kernels/dequant_gemm.cuh: the dense dequantization must equal the host's
// s * (c - z) rounded once to the element type, bit for bit, in original row order (act-order
// un-permuted), only in the requested columns; gemm_dequant must match the double-accumulating host
// reference for every width, element type, slab count and bias; bad arguments give a clear Status.
#include <cublas_v2.h>

#include <lowbit/kernels/dequant_gemm.cuh>

#include "../kernels/gpu_common.cuh"

namespace {

using namespace kt;

struct Cublas {
  cublasHandle_t h = nullptr;
  Cublas() { REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS); }
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;
  ~Cublas() { cublasDestroy(h); }
};

/// Bits of T's value of s * (c - z) for element (k, n), computed on the host (independently of the
/// kernel layout): fp16 rounds the exact float product once; bf16 rounds the fp16 scale to bf16 first
/// on the magic-number path (widths up to 7 bits), once on the fp32 fallback (8 bits).
template <int B, class T>
std::uint16_t expected_bits(const QuantizedWeight& q, std::size_t n, std::size_t k) {
  const std::size_t g = static_cast<std::size_t>(q.g_idx[k]);
  const float s = q.scales[g * q.N + n];
  const float d = static_cast<float>(static_cast<int>(q.codes[k * q.N + n]) - static_cast<int>(q.zeros[g * q.N + n]));
  if constexpr (std::is_same_v<T, half_t>) return half_t(s * d).bits;
  else if constexpr (magic_exact_v<B, T>) return bfloat16_t(static_cast<float>(bfloat16_t(s)) * d).bits;
  else return bfloat16_t(s * d).bits;
}

template <int B, class T>
void check_dequantize(const QuantizedWeight& q, std::size_t n0, std::size_t ncols, std::size_t ld) {
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  INFO("bits " << B << " K " << q.K << " N " << q.N << " group " << ht.meta.group_size << " sym " << ht.meta.sym
               << " act_order " << ht.meta.act_order << " columns [" << n0 << ", " << n0 + ncols << ") ld " << ld);
  DevBuf out(q.K * ld * 2);
  KT_CUDA(cudaMemset(out.p, 0xff, out.bytes));  // poison: NaN bits in both types
  const Status st = dequantize_tiled<B, T>(w.view(), n0, ncols, out.as<T>(), ld, nullptr);
  INFO("status " << st.message);
  REQUIRE(st.ok());
  KT_CUDA(cudaDeviceSynchronize());
  std::vector<std::uint16_t> h(q.K * ld);
  KT_CUDA(cudaMemcpy(h.data(), out.p, out.bytes, cudaMemcpyDeviceToHost));
  std::size_t wrong = 0, touched_padding = 0;
  for (std::size_t k = 0; k < q.K; ++k)
    for (std::size_t c = 0; c < ld; ++c) {
      const std::uint16_t got = h[k * ld + c];
      if (c < ncols) wrong += got != expected_bits<B, T>(q, n0 + c, k);
      else touched_padding += got != 0xffffu;
    }
  CHECK(wrong == 0);
  CHECK(touched_padding == 0);
}

template <int B, class T>
void dequantize_sweep() {
  for (std::size_t group : {std::size_t(32), std::size_t(128), std::size_t(0)})
    for (bool act : {false, true}) {
      if (group == 0 && act) continue;  // one group: act-order is the identity
      const std::size_t K = group == 128 ? 384 : 448, N = 320;
      const QuantizedWeight q = random_weight(B, K, N, group ? group : K, !act && group == 32, act);
      check_dequantize<B, T>(q, 0, N, N);             // the whole weight, dense
      check_dequantize<B, T>(q, 64, 128, 128 + 24);   // a column range into a padded destination
    }
}

template <int B, class T>
void check_gemm_dequant(const QuantizedWeight& q, const std::vector<std::size_t>& Ms) {
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  Cublas blas;
  cudaStream_t mine = nullptr, theirs = nullptr;
  KT_CUDA(cudaStreamCreate(&mine));
  KT_CUDA(cudaStreamCreate(&theirs));
  REQUIRE(cublasSetStream(blas.h, theirs) == CUBLAS_STATUS_SUCCESS);  // the caller's own stream setting
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  const auto A = random_activations<T>(Mmax * q.K);
  const auto bias = random_activations<T>(q.N);
  const auto Af = to_float(A), biasf = to_float(bias);
  DevBuf dA(A.size() * 2), dB(q.N * 2), dY(Mmax * q.N * 2);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  const std::size_t full = gemm_dequant_workspace_size<T>(w.view().meta);
  const std::size_t one = gemm_dequant_min_workspace_size<T>(w.view().meta);
  for (bool with_bias : {false, true}) {
    const auto ref = reference_gemm(q, Af.data(), Mmax, with_bias ? biasf.data() : nullptr);
    // one pass; 64-column slabs; 128-column slabs with a narrower last one (when N = 320)
    for (std::size_t ws : {full, one, 2 * one + one / 2}) {
      DevBuf dW(ws);
      for (std::size_t M : Ms) {
        INFO("bits " << B << " K " << q.K << " N " << q.N << " group " << ht.meta.group_size << " sym "
                     << ht.meta.sym << " act_order " << ht.meta.act_order << " M " << M << " bias " << with_bias
                     << " workspace " << ws << " (one pass " << full << ")");
        KT_CUDA(cudaMemset(dY.p, 0xff, dY.bytes));
        const Status st = gemm_dequant_bits<B, T>(blas.h, dA.as<T>(), M, w.view(), with_bias ? dB.as<T>() : nullptr,
                                                  dY.as<T>(), dW.p, ws, mine);
        INFO("status " << st.message);
        REQUIRE(st.ok());
        KT_CUDA(cudaStreamSynchronize(mine));
        std::vector<T> Y(Mmax * q.N);
        KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
        const std::vector<float> y = to_float(Y);
        const std::vector<float> got(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(M * q.N));
        const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * q.N));
        const double err = relative_error(got, r);
        INFO("relative error " << err);
        CHECK(err < tolerance<T>());
        if (M < Mmax) CHECK(reinterpret_cast<const std::uint16_t&>(Y[M * q.N]) == 0xffffu);  // rows past M untouched
      }
    }
  }
  cudaStream_t after = nullptr;
  REQUIRE(cublasGetStream(blas.h, &after) == CUBLAS_STATUS_SUCCESS);
  CHECK(after == theirs);  // the caller's handle is left as it came in
  cudaStreamDestroy(mine);
  cudaStreamDestroy(theirs);
}

template <int B, class T>
void gemm_dequant_sweep() {
  check_gemm_dequant<B, T>(random_weight(B, 448, 320, 64, false, true), {1, 17, 200});
  check_gemm_dequant<B, T>(random_weight(B, 384, 192, 128, true, false), {5, 64});
  check_gemm_dequant<B, T>(random_weight(B, 256, 128, 32, false, false), {33});
}

}  // namespace

TEST_CASE("dequantize_tiled equals the host dequantization bit for bit", "[gpu][dequant]") {
  dequantize_sweep<2, half_t>();
  dequantize_sweep<3, half_t>();
  dequantize_sweep<4, half_t>();
  dequantize_sweep<8, half_t>();
  dequantize_sweep<2, bfloat16_t>();
  dequantize_sweep<3, bfloat16_t>();
  dequantize_sweep<4, bfloat16_t>();
  dequantize_sweep<8, bfloat16_t>();
}

TEST_CASE("gemm_dequant matches the double-precision reference", "[gpu][dequant]") {
  gemm_dequant_sweep<2, half_t>();
  gemm_dequant_sweep<3, half_t>();
  gemm_dequant_sweep<4, half_t>();
  gemm_dequant_sweep<8, half_t>();
  gemm_dequant_sweep<2, bfloat16_t>();
  gemm_dequant_sweep<4, bfloat16_t>();
  gemm_dequant_sweep<8, bfloat16_t>();
}

TEST_CASE("gemm_dequant and dequantize_tiled reject bad arguments with a clear status", "[gpu][dequant][sanitize]") {
  const QuantizedWeight q = random_weight(4, 256, 128, 128, false, false);
  TiledWeightBuffer w;
  REQUIRE(upload(tile_weight(q), w, nullptr).ok());
  Cublas blas;
  const std::size_t M = 8;
  DevBuf dA(M * q.K * 2), dY(M * q.N * 2), ws(gemm_dequant_workspace_size<half_t>(w.view().meta) + 16);
  auto* A = dA.as<half_t>();
  auto* Y = dY.as<half_t>();
  const std::size_t min_ws = gemm_dequant_min_workspace_size<half_t>(w.view().meta);

  Status s = gemm_dequant_bits<4, half_t>(nullptr, A, M, w.view(), nullptr, Y, ws.p, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::invalid_argument);
  CHECK(s.message.find("handle") != std::string::npos);
  s = gemm_dequant_bits<4, half_t>(blas.h, A, M, w.view(), nullptr, Y, ws.p, min_ws - 2, nullptr);
  CHECK(s.code == StatusCode::workspace_too_small);
  s = gemm_dequant_bits<4, half_t>(blas.h, A, M, w.view(), nullptr, Y, nullptr, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::workspace_too_small);
  s = gemm_dequant_bits<4, half_t>(blas.h, A, M, w.view(), nullptr, Y, static_cast<char*>(ws.p) + 8, min_ws, nullptr);
  CHECK(s.code == StatusCode::misaligned);
  s = gemm_dequant_bits<3, half_t>(blas.h, A, M, w.view(), nullptr, Y, ws.p, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::invalid_argument);
  s = gemm_dequant_bits<4, half_t>(blas.h, A + 1, M, w.view(), nullptr, Y, ws.p, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::misaligned);
  TiledWeightView bad = w.view();
  bad.meta.N = 100;
  s = gemm_dequant<half_t>(blas.h, A, M, bad, nullptr, Y, ws.p, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::invalid_argument);
  bad = w.view();
  bad.meta.bits = 5;
  s = gemm_dequant<half_t>(blas.h, A, M, bad, nullptr, Y, ws.p, ws.bytes, nullptr);
  CHECK(s.code == StatusCode::unsupported);

  auto* out = static_cast<half_t*>(ws.p);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 32, 64, out, 64, nullptr).code == StatusCode::invalid_argument);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 0, 0, out, 64, nullptr).code == StatusCode::invalid_argument);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 64, 128, out, 128, nullptr).code == StatusCode::invalid_argument);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 0, 128, out, 64, nullptr).code == StatusCode::misaligned);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 0, 128, out, 132, nullptr).code == StatusCode::misaligned);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 0, 128, out + 1, 128, nullptr).code == StatusCode::misaligned);
  CHECK(dequantize_tiled<4, half_t>(w.view(), 0, 128, nullptr, 128, nullptr).code == StatusCode::invalid_argument);
  // a valid call after all the refusals still works
  CHECK(gemm_dequant_bits<4, half_t>(blas.h, A, M, w.view(), nullptr, Y, ws.p, ws.bytes, nullptr).ok());
  KT_CUDA(cudaDeviceSynchronize());
}
