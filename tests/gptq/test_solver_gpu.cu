// GPU GPTQ solver against the host reference (label gpu): codes agree except near rounding ties, output
// error within 0.1 %; damping escalation, dead columns, non-finite inputs, workspace checks; the GPU
// Hessian against the host one.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/gptq/hessian_gpu.cuh"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/solver_gpu.cuh"
#include "gptq_test_util.hpp"

using lowbit::QuantSpec;
using lowbit::gptq::GptqOptions;

namespace {

std::vector<float> hessian_f32(const std::vector<float>& X, std::size_t n, std::size_t K) {
  lowbit::gptq::Hessian<double> h(K);
  h.add_batch(X.data(), n);
  return std::vector<float>(h.matrix().begin(), h.matrix().end());
}

double agree(const lowbit::QuantizedWeight& a, const lowbit::QuantizedWeight& b) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.codes.size(); ++i) same += a.codes[i] == b.codes[i];
  return static_cast<double>(same) / static_cast<double>(a.codes.size());
}

struct Case {
  int bits, group;
  bool sym, act, stat, mse;
  int block;
  int super_block;
};

}  // namespace

TEST_CASE("GPU solver matches the host solver", "[gptq][gpu]") {
  const std::size_t N = 512, K = 384, n = 1024;
  const auto X = gptq_test::correlated_inputs(n, K, 201, 16.0);
  const auto H = hessian_f32(X, n, K);
  const auto W = gptq_test::random_weights(N, K, 202);
  const Case cases[] = {
      {4, 128, false, false, false, false, 128, 1024}, {4, 128, false, true, false, false, 128, 128},
      {3, 64, true, true, true, false, 128, 256},      {2, -1, false, false, false, false, 128, 1024},
      {8, 32, false, true, false, false, 128, 1024},   {4, 96, false, false, false, false, 128, 256},
      {4, 48, false, true, false, false, 64, 128},     {3, 128, false, false, false, true, 128, 1024},
      {4, 128, false, true, false, false, 32, 64},     {4, 96, false, true, false, false, 32, 128},
  };
  for (bool inv : {false, true})
  for (const Case& c : cases) {
    QuantSpec spec;
    spec.bits = c.bits;
    spec.group_size = c.group;
    spec.sym = c.sym;
    spec.mse = c.mse;
    GptqOptions opt;
    opt.act_order = c.act;
    opt.static_groups = c.stat;
    opt.block = c.block;
    const auto host = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
    lowbit::gptq::GptqGpuOptions tuning;
    tuning.super_block = c.super_block;
    tuning.inverse_free = inv;
    const auto gpu = lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt, nullptr, &tuning);
    lowbit::validate(gpu.weight);
    const double a = agree(host.weight, gpu.weight);
    const double rel = std::fabs(gpu.report.gptq_error - host.report.gptq_error) / host.report.gptq_error;
    INFO("bits " << c.bits << " group " << c.group << " sym " << c.sym << " act " << c.act << " static " << c.stat
                 << " mse " << c.mse << " block " << c.block << " super " << c.super_block << " inverse-free " << inv
                 << ": agree " << a << " err gpu "
                 << gpu.report.gptq_error << " host " << host.report.gptq_error << " rel " << rel << " rtn gpu "
                 << gpu.report.rtn_error << " host " << host.report.rtn_error);
    CHECK(gpu.weight.g_idx == host.weight.g_idx);
    CHECK(gpu.report.rtn_error == Approx(host.report.rtn_error).epsilon(1e-4));
    CHECK(gpu.report.gptq_error < gpu.report.rtn_error);
    if (!inv) {  // the published recurrence: same codes up to rounding ties, same error
      CHECK(a >= 0.98);
      CHECK(rel <= 1e-3);
      CHECK(gpu.report.loss == Approx(host.report.loss).epsilon(2e-3));
    } else {
      // the inverse-free recurrence is the same algorithm in exact arithmetic but rounds differently in
      // fp32 (H100, 2026-11-22: 76-78 % equal codes and +0.4-0.5 % error on the act-order cases of this
      // layer), so only the result quality is pinned: within 5 % of the host's error
      CHECK(rel <= 0.05);
      CHECK(gpu.report.loss == Approx(host.report.loss).epsilon(0.05));
    }
  }
}

TEST_CASE("GPU solver: escalation - dead columns - bad inputs", "[gptq][gpu]") {
  const std::size_t N = 64, K = 128;
  const auto W = gptq_test::random_weights(N, K, 211);
  QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 32;
  GptqOptions opt;
  opt.layer = "gpu.layer";
  {
    std::vector<float> H(K * K, 0.f);
    for (std::size_t i = 0; i < K; ++i) H[i * K + i] = 1.f;
    H[9 * K + 9] = -0.05f;
    const auto g = lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt);
    const auto h = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
    CHECK(g.report.damp_attempts == h.report.damp_attempts);
    CHECK(g.report.damp_attempts == 2);
    CHECK(g.report.damp_used == Approx(0.1));
    H[9 * K + 9] = -50.f;
    CHECK_THROWS_WITH(lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt),
                      Catch::Contains("gpu.layer") && Catch::Contains("not positive definite"));
  }
  {
    auto X = gptq_test::correlated_inputs(256, K, 212);
    for (std::size_t s = 0; s < 256; ++s) X[s * K + 5] = X[s * K + 77] = 0.f;
    const auto H = hessian_f32(X, 256, K);
    for (int variant = 0; variant < 4; ++variant) {
      opt.act_order = variant & 1;
      lowbit::gptq::GptqGpuOptions tuning;
      tuning.inverse_free = variant >= 2;
      const auto g = lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt, nullptr, &tuning);
      CHECK(g.report.dead_columns == 2);
      const auto Wq = lowbit::dequantize(g.weight);
      for (std::size_t r = 0; r < N; ++r) {
        REQUIRE(Wq[r * K + 5] == 0.f);
        REQUIRE(Wq[r * K + 77] == 0.f);
      }
    }
    auto Wn = W;
    Wn[3 * K + 4] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(lowbit::gptq::gptq_quantize_gpu(Wn.data(), N, K, H.data(), spec, opt),
                      Catch::Contains("non-finite weight"));
    auto Hn = H;
    Hn[7 * K + 3] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, Hn.data(), spec, opt),
                      Catch::Contains("non-finite Hessian"));
    spec.group_size = 48;  // does not divide 128
    CHECK_THROWS_WITH(lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt),
                      Catch::Contains("does not divide"));
  }
}

TEST_CASE("GPU solver status: workspace and block checks", "[gptq][gpu]") {
  const std::size_t N = 32, K = 64;
  QuantSpec spec;
  lowbit::gptq::GptqGpuOptions opt;
  spec.group_size = 32;
  cusolverDnHandle_t solver;
  cublasHandle_t blas;
  REQUIRE(cusolverDnCreate(&solver) == CUSOLVER_STATUS_SUCCESS);
  REQUIRE(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS);
  std::size_t bytes = 0;
  REQUIRE(lowbit::gptq::gptq_gpu_workspace_size(N, K, spec, opt, solver, &bytes).ok());
  CHECK(bytes >= (K * K + N * K) * sizeof(float));
  lowbit::gptq::DeviceBuffer W(N * K * 4), H(K * K * 4), codes(N * K), scales(N * 2 * 4), zeros(N * 2), gidx(K * 4),
      ws(bytes);
  lowbit::gptq::GptqGpuProblem p;
  p.W = W.as<float>();
  p.H = H.as<float>();
  p.N = N;
  p.K = K;
  p.codes = codes.as<std::uint8_t>();
  p.scales = scales.as<float>();
  p.zeros = zeros.as<std::uint8_t>();
  p.g_idx = gidx.as<std::int32_t>();
  auto s = lowbit::gptq::gptq_solve_gpu(p, spec, opt, ws.ptr, bytes - 1, blas, solver, nullptr, nullptr);
  CHECK(s.code == lowbit::StatusCode::workspace_too_small);
  opt.block = 256;
  s = lowbit::gptq::gptq_solve_gpu(p, spec, opt, ws.ptr, bytes, blas, solver, nullptr, nullptr);
  CHECK(s.code == lowbit::StatusCode::invalid_argument);
  cusolverDnDestroy(solver);
  cublasDestroy(blas);
}

TEST_CASE("GPU Hessian equals the host Hessian", "[gptq][gpu]") {
  const std::size_t K = 256, n = 600;
  const auto X = gptq_test::correlated_inputs(n, K, 221);
  std::vector<lowbit::half_t> xh(n * K);
  std::vector<float> xr(n * K);
  for (std::size_t i = 0; i < n * K; ++i) {
    xh[i] = lowbit::half_t(X[i]);
    xr[i] = static_cast<float>(xh[i]);
  }
  lowbit::gptq::Hessian<double> ref(K);
  ref.add_batch(xr.data(), n);
  lowbit::gptq::DeviceBuffer dx(n * K * 2), dxf(n * K * 4), dH(K * K * 4), flag(4);
  REQUIRE(cudaMemcpy(dx.ptr, xh.data(), n * K * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemcpy(dxf.ptr, xr.data(), n * K * 4, cudaMemcpyHostToDevice) == cudaSuccess);
  cublasHandle_t blas;
  REQUIRE(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS);
  for (int fp32 = 0; fp32 < 2; ++fp32) {
    lowbit::gptq::HessianGpu h(K, dH.as<float>(), flag.as<int>());
    for (std::size_t s0 = 0; s0 < n; s0 += 250) {
      const std::size_t rows = std::min<std::size_t>(250, n - s0);
      const auto st = fp32 ? h.add_batch(blas, dxf.as<float>() + s0 * K, rows, nullptr)
                           : h.add_batch(blas, dx.as<lowbit::half_t>() + s0 * K, rows, nullptr);
      REQUIRE(st.ok());
    }
    REQUIRE(h.check(nullptr).ok());
    std::vector<float> Hg(K * K);
    REQUIRE(cudaMemcpy(Hg.data(), dH.ptr, K * K * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
    double maxdiff = 0, maxv = 0;
    for (std::size_t i = 0; i < K * K; ++i) {
      maxdiff = std::max(maxdiff, std::fabs(Hg[i] - ref.matrix()[i]));
      maxv = std::max(maxv, std::fabs(ref.matrix()[i]));
    }
    INFO("fp32 " << fp32);
    CHECK(maxdiff <= 1e-5 * maxv);
  }
  xh[17 * K + 3] = lowbit::half_t(std::numeric_limits<float>::quiet_NaN());
  REQUIRE(cudaMemcpy(dx.ptr, xh.data(), n * K * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  lowbit::gptq::HessianGpu h(K, dH.as<float>(), flag.as<int>());
  REQUIRE(h.add_batch(blas, dx.as<lowbit::half_t>(), n, nullptr).ok());
  CHECK(h.check(nullptr).code == lowbit::StatusCode::non_finite);
  cublasDestroy(blas);
}
