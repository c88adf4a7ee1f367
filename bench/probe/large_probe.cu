// Probe: policies of the wgmma mid-M kernel (midm_wgmma.cuh): ring depths, and 256-row CTAs (wgmma N = 256,
// two warpgroups) against the default policies, next to dequantize + cuBLAS and cuBLAS fp16 on [N, K] weights
// (the benchmarks' baseline), same run. g128 asym fp16; median of 7 samples of 5 calls; each output compared with
// gemm_dequant's (the same dequantized values, cuBLAS's summation).
#include <cuda_fp16.h>

#include <lowbit/kernels/dequant_gemm.cuh>
#include <lowbit/kernels/gemm.cuh>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#include "common/tiled_weight.cuh"

using namespace lowbit;
using namespace lowbit::kernels;
using namespace lowbit_bench;
namespace kd = lowbit::kernels::detail;

/// Runs `call` once into a poisoned Y of M x N fp16 and returns the largest |y - yref| over the largest |yref| (1e30 once
/// an output is not finite).
template <class Call>
double rel_diff_of(Call&& call, void* Y, std::size_t M, std::size_t N, cudaStream_t st, const std::vector<std::uint16_t>& yref) {
  LB_CUDA(cudaMemsetAsync(Y, 0xff, M * N * 2, st));
  call();
  LB_CUDA(cudaStreamSynchronize(st));
  std::vector<std::uint16_t> y(M * N);
  LB_CUDA(cudaMemcpy(y.data(), Y, y.size() * 2, cudaMemcpyDeviceToHost));
  double md = 0, mr = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double r = __half2float(__ushort_as_half(yref[i])), v = __half2float(__ushort_as_half(y[i]));
    md = std::isfinite(v) ? std::max(md, std::abs(v - r)) : 1e30;
    mr = std::max(mr, std::abs(r));
  }
  return md / mr;
}

template <int B, class P>
void run_policy(const char* name, const half_t* A, std::size_t M, const TiledWeightView& w, half_t* Y, cudaStream_t st,
                int sms, double t_blas, const std::vector<std::uint16_t>& yref) {
  const kd::GemmPlan p = kd::make_midm_plan<B, P>(M, w.meta.N, w.meta.K, sms);
  void* ws = nullptr;
  if (p.workspace_bytes) {
    LB_CUDA(cudaMalloc(&ws, p.workspace_bytes));
    if (!gemm_workspace_init(ws, p.workspace_bytes, st).ok()) std::exit(1);
  }
  GemmOptions o;
  auto call = [&] {
    const Status s = kd::run_midm<B, half_t, P>(A, M, w, nullptr, Y, ws, p.workspace_bytes, p, st, o);
    if (!s.ok()) { std::fprintf(stderr, "%s: %s\n", name, s.message.c_str()); std::exit(1); }
  };
  const double rd = rel_diff_of(call, Y, M, w.meta.N, st, yref);
  const double t = time_stream_us(st, 5, 7, [&](int) { call(); });
  std::printf("    %-6s grid %3ux%3ux%2u: %8.1f us (%.3fx cuBLAS), rel diff %.1e%s\n", name, p.grid.x, p.grid.y, p.grid.z, t,
              t_blas / t, rd, rd > 4e-3 ? " MISMATCH" : "");
  if (ws) LB_CUDA(cudaFree(ws));
}

/// cuBLAS fp16 on fresh dense [N, K] weights (the benchmarks' baseline; median us), then gemm_dequant's output
/// for M rows into `yref`: the same dequantized values, cuBLAS's summation (prob.dense then holds them).
double blas_and_reference(cudaStream_t st, cublasHandle_t blas, const LargeProblem& prob, std::size_t K, std::size_t N,
                          std::size_t M, std::vector<std::uint16_t>& yref) {
  void *A = prob.A, *Y = prob.Y, *dense = prob.dense;
  const float one = 1.f, zero = 0.f;
  fill_fp16(dense, K * N, 5, 0x1800);
  const double t_blas = time_stream_us(st, 5, 7, [&](int) {
    LB_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, dense, CUDA_R_16F, (int)K, A,
                           CUDA_R_16F, (int)K, &zero, Y, CUDA_R_16F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  });
  if (!gemm_dequant<half_t>(blas, static_cast<const half_t*>(A), M, prob.w.view, nullptr, static_cast<half_t*>(Y), dense,
                            K * N * 2, st).ok())
    std::exit(1);
  LB_CUDA(cudaStreamSynchronize(st));
  yref.resize(M * N);
  LB_CUDA(cudaMemcpy(yref.data(), Y, yref.size() * 2, cudaMemcpyDeviceToHost));
  return t_blas;
}

/// Median us of dequantize + cuBLAS (gemm_dequant into prob.dense, the whole weight at once) for M rows.
double time_dequant_cublas(cudaStream_t st, cublasHandle_t blas, const LargeProblem& prob, std::size_t K, std::size_t N,
                           std::size_t M) {
  return time_stream_us(st, 5, 7, [&](int) {
    if (!gemm_dequant<half_t>(blas, static_cast<const half_t*>(prob.A), M, prob.w.view, nullptr, static_cast<half_t*>(prob.Y),
                              prob.dense, K * N * 2, st).ok())
      std::exit(1);
  });
}

template <int B>
void sweep(cudaStream_t st, cublasHandle_t blas, const cudaDeviceProp& prop, const std::vector<std::size_t>& Ms, bool all) {
  std::printf("== %d-bit g128\n", B);
  using QW = MidmWgmmaPolicies<B>;
  using W256s3 = MidmWgmmaPolicy<256, 2, 3, 1, 1>;
  using W256s4 = MidmWgmmaPolicy<256, 2, 4, 1, 1>;
  using W128s4 = MidmWgmmaPolicy<128, 4, 4, 1, 1>;
  using W128s5 = MidmWgmmaPolicy<128, 4, 5, 1, 1>;
  using W64s5 = MidmWgmmaPolicy<64, 4, 5, 1, 1>;
  using W64s8 = MidmWgmmaPolicy<64, 4, 8, 1, 1>;
  for_each_bench_shape(B, 4096, [&](std::size_t K, std::size_t N, const LargeProblem& prob) {
    const TiledWeightView& w = prob.w.view;
    void *A = prob.A, *Y = prob.Y;
    for (std::size_t M : Ms) {
      std::vector<std::uint16_t> yref;
      const double t_blas = blas_and_reference(st, blas, prob, K, N, M, yref);
      const double t_deq = time_dequant_cublas(st, blas, prob, K, N, M);
      std::printf("K %5zu N %5zu M %4zu: cuBLAS fp16 %8.1f us, dequant+cuBLAS %8.1f us (%.3fx); W64 stages %d, W128 stages %d\n",
                  K, N, M, t_blas, t_deq, t_blas / t_deq, QW::W64::stages, QW::W128::stages);
      const auto* Ah = static_cast<const half_t*>(A);
      auto* Yh = static_cast<half_t*>(Y);
      if (M <= 64 && all) {
        run_policy<B, typename QW::W64>("W64", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
        run_policy<B, W64s5>("W64s5", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
        run_policy<B, W64s8>("W64s8", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
      }
      run_policy<B, typename QW::W128>("W128", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
      if (all) {
        run_policy<B, W128s4>("W128s4", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
        run_policy<B, W128s5>("W128s5", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
      }
      if (M > 128) {
        if (all) run_policy<B, W256s3>("W256s3", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
        run_policy<B, W256s4>("W256s4", Ah, M, w, Yh, st, prop.multiProcessorCount, t_blas, yref);
      }
    }
  });
}

// Session 24: the warp-specialized wgmma kernel (midm_wgmma_ws_kernel) against the lock-step one, 4-bit g128,
// M = 17-256, same policies' row blocks; every output checked against dequantize + cuBLAS.
template <int B>
void sweep_ws(cudaStream_t st, cublasHandle_t blas, const cudaDeviceProp& prop, const std::vector<std::size_t>& Ms) {
  std::printf("== %d-bit g128, warp-specialized\n", B);
  using QW = MidmWgmmaPolicies<B>;
  using W64ws8 = MidmWgmmaPolicy<64, 4, 8, 1, 1, 2>;
  using W64b = MidmWgmmaPolicy<64, 4, QW::W64::stages, 1, 1, 1>;
  using W128b = MidmWgmmaPolicy<128, 3, QW::W128::stages, 1, 1, 1>;
  using W64t = MidmWgmmaPolicy<64, 4, QW::W64::stages, 1, 1, 3>;
  using W128t = MidmWgmmaPolicy<128, 3, QW::W128::stages, 1, 1, 3>;
  for_each_bench_shape(B, 4096, [&](std::size_t K, std::size_t N, const LargeProblem& prob) {
    const TiledWeightView& w = prob.w.view;
    void *A = prob.A, *Y = prob.Y;
    for (std::size_t M : Ms) {
      std::vector<std::uint16_t> yref;
      const double t_blas = blas_and_reference(st, blas, prob, K, N, M, yref);
      std::printf("K %5zu N %5zu M %4zu: cuBLAS fp16 %8.1f us; stages W64 (ws) %d, W128 (ws) %d\n", K, N, M, t_blas,
                  QW::W64::stages, QW::W128::stages);
      const auto* Ah = static_cast<const half_t*>(A);
      auto* Yh = static_cast<half_t*>(Y);
      const int sms = prop.multiProcessorCount;
      if (M <= 64) {
        run_policy<B, typename QW::W64ls>("W64ls", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, typename QW::W64>("W64", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, W64ws8>("W64ws8", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, W64b>("W64b", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, W64t>("W64t", Ah, M, w, Yh, st, sms, t_blas, yref);
      }
      if (M > 32) {
        run_policy<B, typename QW::W128ls>("W128ls", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, typename QW::W128>("W128", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, W128b>("W128b", Ah, M, w, Yh, st, sms, t_blas, yref);
        run_policy<B, W128t>("W128t", Ah, M, w, Yh, st, sms, t_blas, yref);
      }
      if (M > 128) {
        run_policy<B, typename QW::W256>("W256", Ah, M, w, Yh, st, sms, t_blas, yref);
      }
    }
  });
}


/// The large-M kernel's arguments for M rows of `prob` (no bias, K not split): what launch_large_wgmma takes.
kd::MidmArgs large_args(const LargeProblem& prob, std::size_t M, std::size_t K) {
  kd::GemmPlan p{};
  p.splits = 1;
  p.kt_per_split = static_cast<int>(K / 64);
  kd::MidmArgs a{};
  kd::fill_common_args(a, M, prob.w.view, nullptr, p);
  a.A = static_cast<const std::uint16_t*>(prob.A);
  a.Y = static_cast<std::uint32_t*>(prob.Y);
  a.bias = nullptr;
  return a;
}

// Session 28: the large-M kernel (large_wgmma.cuh: weights dequantized once per CTA and k-tile into a shared-memory
// B operand, m64n256k16 wgmmas with both operands in shared memory) against cuBLAS fp16 and dequantize + cuBLAS,
// g128 asym fp16, every output compared with dequantize + cuBLAS.
template <int B>
void sweep_large(cudaStream_t st, cublasHandle_t blas, const std::vector<std::size_t>& Ms, bool ws_too) {
  std::printf("== %d-bit g128, large-M kernel (stages %d at 128 x 256, %d at 256 x 128)\n", B, LargeWgmmaConfig<B, 1, 128>::stages,
              LargeWgmmaConfig<B, 1, 256>::stages);
  {  // how many 2-CTA clusters of the 256-row kernel the device holds at once (a GPC with an odd SM count idles one)
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(16, 64, 1);
    cfg.blockDim = dim3(LargeWgmmaConfig<B, 1, 256, 2>::threads);
    cfg.dynamicSmemBytes = LargeWgmmaConfig<B, 1, 256, 2>::smem_bytes;
    cudaLaunchAttribute la[1];
    la[0].id = cudaLaunchAttributeClusterDimension;
    la[0].val.clusterDim.x = 1;
    la[0].val.clusterDim.y = 2;
    la[0].val.clusterDim.z = 1;
    cfg.attrs = la;
    cfg.numAttrs = 1;
    auto k = kd::large_wgmma_kernel<B, half_t, 1, 256, 2>;
    cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(cfg.dynamicSmemBytes));
    int clusters = -1;
    const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, k, &cfg);
    std::printf("   2-CTA clusters resident at once: %d (%s)\n", clusters, cudaGetErrorString(e));
  }
  const std::size_t m_max = *std::max_element(Ms.begin(), Ms.end());
  for_each_bench_shape(B, m_max, [&](std::size_t K, std::size_t N, const LargeProblem& prob) {
    const TiledWeightView& w = prob.w.view;
    void *A = prob.A, *Y = prob.Y;
    for (std::size_t M : Ms) {
      std::vector<std::uint16_t> yref;
      const double t_blas = blas_and_reference(st, blas, prob, K, N, M, yref);
      const double t_deq = time_dequant_cublas(st, blas, prob, K, N, M);
      std::printf("K %5zu N %5zu M %4zu: cuBLAS fp16 %8.1f us, dequant+cuBLAS %8.1f us (%.3fx)\n", K, N, M, t_blas, t_deq,
                  t_blas / t_deq);
      const kd::MidmArgs a = large_args(prob, M, K);
      // session 29: 128 x 256 CTAs (m64n256) against 256 x 128 (m64n128); session 30: CN CTAs of a cluster sharing the
      // activation loads (TMA multicast; its D = 2 variant, two k-tiles of wgmmas in flight, lost and was removed)
      auto variant = [&](auto bm, int pdl, auto cn) {
        constexpr int BM = decltype(bm)::value, CN = decltype(cn)::value;
        auto call = [&] {
          const cudaError_t e = kd::launch_large_wgmma<B, half_t, BM, CN>(a, st, pdl != 0);
          if (e != cudaSuccess) { std::fprintf(stderr, "large: %s\n", cudaGetErrorString(e)); std::exit(1); }
        };
        const double rd = rel_diff_of(call, Y, M, N, st, yref);
        const double t = time_stream_us(st, 5, 7, [&](int) { call(); });
        std::printf("    large%d%s%s: %8.1f us (%.3fx cuBLAS, %.3fx dequant+cuBLAS), rel diff %.1e%s\n", BM, CN == 2 ? "mc" : "",
                    pdl ? "-pdl" : "    ", t, t_blas / t, t_deq / t, rd, rd > 4e-3 ? " MISMATCH" : "");
      };
      using one = std::integral_constant<int, 1>;
      using two = std::integral_constant<int, 2>;
      using r256 = std::integral_constant<int, 256>;
      for (int pdl = 0; pdl < 2; ++pdl) {
        variant(std::integral_constant<int, 128>{}, pdl, one{});
        variant(r256{}, pdl, one{});
        if (!std::getenv("LARGE_PROBE_NO_MC")) variant(r256{}, pdl, two{});  // the recipe sets it when cluster tests fail
      }
      if (ws_too && M <= 256) {
        using QW = MidmWgmmaPolicies<B>;
        const int sms = [] { int d = 0, n = 0; cudaGetDevice(&d); cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d); return n; }();
        run_policy<B, typename QW::W128>("W128", static_cast<const half_t*>(A), M, w, static_cast<half_t*>(Y), st, sms, t_blas, yref);
        if (M > 128) run_policy<B, typename QW::W256>("W256", static_cast<const half_t*>(A), M, w, static_cast<half_t*>(Y), st, sms, t_blas, yref);
      }
    }
  });
}

// usage: large_probe [large | large4 | one | widths | ws | ws4]   (default: 4-bit at M = 64, 128, 192, 256 with every
// policy variant; "widths": 2, 3, 8 bits at M = 192, 256, W128 against W256; "large" / "large4": the large-M kernel's
// sweeps; "one [mc]": three launches of one large-M configuration, for ncu; mc: 2-CTA clusters)
int main(int argc, char** argv) {
  cudaDeviceProp prop{};
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  cudaStream_t st;
  LB_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cublasHandle_t blas;
  LB_CUBLAS(cublasCreate(&blas));
  LB_CUBLAS(cublasSetStream(blas, st));
  if (argc > 1 && !std::strcmp(argv[1], "large")) {  // session 28: the large-M kernel, 4 bits, then 2 and 8
    sweep_large<4>(st, blas, {128, 256, 512, 1024, 2048, 4096}, true);
    sweep_large<8>(st, blas, {1024, 4096}, false);
    sweep_large<2>(st, blas, {1024, 4096}, false);
  } else if (argc > 1 && !std::strcmp(argv[1], "large4")) {
    sweep_large<4>(st, blas, {256, 1024, 4096}, false);
  } else if (argc > 1 && !std::strcmp(argv[1], "one")) {  // session 29: for ncu, 4-bit 8192^2 M = 4096, 256 x 128, 3 launches
    const std::size_t K = 8192, N = 8192, M = 4096;
    LargeProblem prob = large_problem(4, K, N, M, 1);
    const kd::MidmArgs a = large_args(prob, M, K);
    // session 30: "one mc", 2-CTA clusters sharing the activation loads (gemm's); "one", single CTAs
    const bool mc = argc > 2 && !std::strcmp(argv[2], "mc");
    for (int i = 0; i < 3; ++i) {
      const cudaError_t e =
          mc ? kd::launch_large_wgmma<4, half_t, 256, 2>(a, st, false) : kd::launch_large_wgmma<4, half_t, 256, 1>(a, st, false);
      if (e != cudaSuccess) return 1;
    }
    LB_CUDA(cudaStreamSynchronize(st));
    free_problem(prob);
  } else if (argc > 1 && !std::strcmp(argv[1], "ws")) {
    sweep_ws<4>(st, blas, prop, {32, 64, 128, 256});
    sweep_ws<2>(st, blas, prop, {64, 128});
    sweep_ws<8>(st, blas, prop, {64, 128});
  } else if (argc > 1 && !std::strcmp(argv[1], "ws4")) {  // the diagnostic builds: 4 bits at M = 64, 128 only
    sweep_ws<4>(st, blas, prop, {64, 128});
  } else if (argc > 1 && !std::strcmp(argv[1], "widths")) {
    sweep<2>(st, blas, prop, {192, 256}, false);
    sweep<3>(st, blas, prop, {192, 256}, false);
    sweep<8>(st, blas, prop, {192, 256}, false);
  } else {
    sweep<4>(st, blas, prop, {64, 128, 192, 256}, true);
  }
  return 0;
}
