// GPU GPTQ solver against the host reference (label gpu): codes agree except near rounding ties, output
// error within 0.1 %; damping escalation, dead columns, non-finite inputs, workspace checks; the GPU
// Hessian against the host one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/gptq/hessian_gpu.cuh"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/solver_gpu.cuh"
#include "lowbit/gptq/triangular_gpu.cuh"
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
  // variants: 0 recursive GEMM-panel inverse (the default), 1 recursive trsm inverse, 2 cuSOLVER trtri
  // (1 and 2: first four cases each), 3 inverse-free
  for (int variant = 0; variant < 4; ++variant)
  for (const Case& c : cases) {
    if ((variant == 1 || variant == 2) && &c - cases >= 4) continue;
    const bool inv = variant == 3;
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
    tuning.inverse = variant == 1   ? lowbit::gptq::TriInverse::recursive_trsm
                     : variant == 2 ? lowbit::gptq::TriInverse::cusolver
                                    : lowbit::gptq::TriInverse::recursive_gemm;
    const auto gpu = lowbit::gptq::gptq_quantize_gpu(W.data(), N, K, H.data(), spec, opt, nullptr, &tuning);
    lowbit::validate(gpu.weight);
    const double a = agree(host.weight, gpu.weight);
    const double rel = std::fabs(gpu.report.gptq_error - host.report.gptq_error) / host.report.gptq_error;
    INFO("bits " << c.bits << " group " << c.group << " sym " << c.sym << " act " << c.act << " static " << c.stat
                 << " mse " << c.mse << " block " << c.block << " super " << c.super_block << " variant " << variant
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
  lowbit::gptq::DeviceBuffer W(N * K * 4), H(K * K * 4), ws(bytes);
  const lowbit::gptq::GptqGpuOutputs out(N, K, spec);
  CHECK(spec.num_groups(K) == 2);
  lowbit::gptq::GptqGpuProblem p = out.problem(W.as<float>(), H.as<float>());
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

namespace {

/// Lower Cholesky factor (double, row-major) of the damped Hessian of correlated inputs: a realistic,
/// well-conditioned triangular matrix of order n.
std::vector<double> realistic_factor(std::size_t n, unsigned seed) {
  const std::size_t samples = 2 * n + 2;
  const auto X = gptq_test::correlated_inputs(samples, n, seed, 8.0);
  lowbit::gptq::Hessian<double> h(n);
  h.add_batch(X.data(), samples);
  std::vector<double> A(h.matrix().begin(), h.matrix().end());
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += A[i * n + i] / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) A[i * n + i] += 0.01 * mean;
  std::vector<double> L(n * n, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    double d = A[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= L[j * n + k] * L[j * n + k];
    L[j * n + j] = std::sqrt(d);
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = A[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / L[j * n + j];
    }
  }
  return L;
}

}  // namespace

TEST_CASE("GPU triangular inverse equals the host inverse", "[gptq][gpu]") {
  cublasHandle_t blas;
  cusolverDnHandle_t solver;
  REQUIRE(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cusolverDnCreate(&solver) == CUSOLVER_STATUS_SUCCESS);
  for (std::size_t n : {1, 5, 128, 129, 300, 700}) {
    const std::size_t ld = n + 3;  // padding rows must stay untouched
    const auto Ld = realistic_factor(n, 300 + static_cast<unsigned>(n));
    // the fp32 input, column-major with ld; its exact inverse in double (forward substitution)
    std::vector<float> in(ld * n, 7.f);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) in[j * ld + i] = static_cast<float>(Ld[i * n + j]);  // upper too: junk
    std::vector<double> ref(n * n, 0.0);  // row-major
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = j; i < n; ++i) {
        double s = i == j ? 1.0 : 0.0;
        for (std::size_t l = j; l < i; ++l) s -= static_cast<double>(in[l * ld + i]) * ref[l * n + j];
        ref[i * n + j] = s / static_cast<double>(in[i * ld + i]);
      }
    double refmax = 0;
    for (double v : ref) refmax = std::max(refmax, std::fabs(v));
    auto rel_error = [&](const std::vector<float>& out) {
      double e = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j <= i; ++j) e = std::max(e, std::fabs(out[j * ld + i] - ref[i * n + j]));
      return e / refmax;
    };
    lowbit::gptq::DeviceBuffer dL(ld * n * sizeof(float));
    // cuSOLVER's trtri on the same input: the accuracy the recursive inverses must match
    REQUIRE(cudaMemcpy(dL.ptr, in.data(), ld * n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    std::size_t dev_bytes = 0, host_bytes = 0;
    REQUIRE(cusolverDnXtrtri_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, static_cast<int64_t>(n),
                                        CUDA_R_32F, dL.ptr, static_cast<int64_t>(ld), &dev_bytes,
                                        &host_bytes) == CUSOLVER_STATUS_SUCCESS);
    lowbit::gptq::DeviceBuffer dwork(std::max<std::size_t>(dev_bytes, 4)), dinfo(sizeof(int));
    std::vector<char> hwork(std::max<std::size_t>(host_bytes, 1));
    REQUIRE(cusolverDnXtrtri(solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, static_cast<int64_t>(n), CUDA_R_32F,
                             dL.ptr, static_cast<int64_t>(ld), dwork.ptr, dev_bytes, hwork.data(), host_bytes,
                             dinfo.as<int>()) == CUSOLVER_STATUS_SUCCESS);
    std::vector<float> out(ld * n);
    REQUIRE(cudaMemcpy(out.data(), dL.ptr, ld * n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    const double e_cusolver = rel_error(out);
    if (n <= static_cast<std::size_t>(lowbit::gptq::kTriLeaf)) {  // one leaf: every leaf-kernel storage variant
      for (int v = 0; v < lowbit::detail::kTriLeafVariants; ++v) {
        REQUIRE(cudaMemcpy(dL.ptr, in.data(), ld * n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
        REQUIRE(lowbit::detail::tri_leaves(dL.as<float>(), n, ld, nullptr, v).ok());
        REQUIRE(cudaMemcpy(out.data(), dL.ptr, ld * n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
        INFO("n " << n << " leaf variant " << v << ": " << rel_error(out) << " (cuSOLVER trtri " << e_cusolver << ")");
        CHECK(rel_error(out) <= 3.0 * e_cusolver + 1e-6);
        std::size_t upper_nonzero = 0;
        for (std::size_t j = 0; j < n; ++j)
          for (std::size_t i = 0; i < j; ++i) upper_nonzero += out[j * ld + i] != 0.f;
        CHECK(upper_nonzero == 0);
      }
    }
    // recursive_gemm twice: default panels, and 64-wide panels so that n = 300 / 700 split both products
    // into several row and column panels
    const lowbit::gptq::TriInverse methods[] = {lowbit::gptq::TriInverse::recursive_trsm,
                                                lowbit::gptq::TriInverse::recursive_gemm,
                                                lowbit::gptq::TriInverse::recursive_gemm};
    for (int mi = 0; mi < 3; ++mi) {
      const auto method = methods[mi];
      const std::size_t panel_min = mi == 2 ? 64 : lowbit::gptq::kTriPanelMin;
      REQUIRE(cudaMemcpy(dL.ptr, in.data(), ld * n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
      const std::size_t scratch = lowbit::gptq::tri_inverse_min_scratch(n);  // narrowest panels
      lowbit::gptq::DeviceBuffer dT(scratch * sizeof(float));
      if (method == lowbit::gptq::TriInverse::recursive_gemm)
        CHECK(lowbit::gptq::tri_inverse_lower_gpu(blas, method, dL.as<float>(), n, ld, dT.as<float>(), scratch - 1,
                                                  nullptr)
                  .code == lowbit::StatusCode::workspace_too_small);
      REQUIRE(lowbit::gptq::tri_inverse_lower_gpu(blas, method, dL.as<float>(), n, ld, dT.as<float>(), scratch, nullptr,
                                                  panel_min)
                  .ok());
      REQUIRE(cudaMemcpy(out.data(), dL.ptr, ld * n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
      const double e = rel_error(out);
      INFO("n " << n << " method " << static_cast<int>(method) << " panel_min " << panel_min
                << ": max error / max |L^-1| = " << e
                << " (cuSOLVER trtri " << e_cusolver << ")");
      CHECK(e <= 3.0 * e_cusolver + 1e-6);
      CHECK(e <= 1e-3);
      std::size_t pad_changed = 0;
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t i = n; i < ld; ++i) pad_changed += out[j * ld + i] != 7.f;
      CHECK(pad_changed == 0);
      if (method == lowbit::gptq::TriInverse::recursive_gemm) {  // documented: strict upper triangle zeroed
        std::size_t upper_nonzero = 0;
        for (std::size_t j = 0; j < n; ++j)
          for (std::size_t i = 0; i < j; ++i) upper_nonzero += out[j * ld + i] != 0.f;
        CHECK(upper_nonzero == 0);
      }
    }
  }
  cusolverDnDestroy(solver);
  cublasDestroy(blas);
}
