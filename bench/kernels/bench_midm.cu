// Mid-M (16 < M <= 256) weight-only GEMM benchmark: the mid-M kernel (midm.cuh, what gemm dispatches
// now), each of its default policies, and the previous tile kernels (gemm_policy with the Small/Medium
// TilePolicy gemm used before), against cuBLAS fp16 measured in the same run.
//
// usage: bench_midm_kernels OUT.json [--quick]
// Shapes (K, N) in {(8192,8192), (8192,28672), (28672,8192), (4096,4096)}, M in {32, 64, 128, 256};
// 4-bit g128 asym everywhere; on 8192^2 also sym / act-order / g32 / per-channel and 2-, 3-, 8-bit at
// M = 64 and 128. Weights rotate over >= 200 MB (4x the L2); each time is the median of 15 samples of
// 20 back-to-back launches. Reported: us, speedup vs cuBLAS fp16, weight GB/s and fraction of the
// measured D2D copy, achieved TFLOPS, and the memory floor (weights + A + Y at copy bandwidth).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <lowbit/kernels/gemm.cuh>

#include "common/bench_util.cuh"
#include "common/tiled_weight.cuh"  // random_tiled_weight

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace lowbit;
using namespace lowbit::kernels;
namespace lb = lowbit_bench;
namespace kd = lowbit::kernels::detail;

namespace {
constexpr int kCalls = 20, kSamples = 15;

std::string json;
void add_json(const char* buf) {
  json += json.empty() ? "    " : ",\n    ";
  json += buf;
}
}  // namespace

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "kernels_midm.json";
  const bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  cudaDeviceProp prop;
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  cudaStream_t st;
  LB_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cublasHandle_t h;
  LB_CUBLAS(cublasCreate(&h));
  LB_CUBLAS(cublasSetStream(h, st));
  const double copy_gbs = lb::copy_bandwidth_gbs(st);
  std::printf("device %s, %d SMs, L2 %d MB, D2D copy %.0f GB/s\n", prop.name, sms, prop.l2CacheSize >> 20, copy_gbs);

  // kernel resources of the 4-bit fp16 g128 instantiations
  std::string res;
  auto resources = [&](auto kernel, const char* name, int threads, std::size_t smem) {
    cudaFuncAttributes fa;
    LB_CUDA(cudaFuncGetAttributes(&fa, kernel));
    LB_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    int occ = 0;
    LB_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, threads, smem));
    std::printf("kernel %-12s regs %3d smem %6zu B ctas/SM %d\n", name, fa.numRegs, smem, occ);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s{\"kernel\": \"%s\", \"registers\": %d, \"smem_bytes\": %zu, \"ctas_per_sm\": %d}",
                  res.empty() ? "" : ", ", name, fa.numRegs, smem, occ);
    res += buf;
  };
  using Q = MidmPolicies<4>;
  resources(kd::midm_gemm_kernel<4, half_t, Q::M32, 1>, "midm-M32", Q::M32::threads, Q::M32::smem_bytes<4>(1));
  resources(kd::midm_gemm_kernel<4, half_t, Q::M64, 1>, "midm-M64", Q::M64::threads, Q::M64::smem_bytes<4>(1));
  resources(kd::midm_gemm_kernel<4, half_t, Q::M128, 1>, "midm-M128", Q::M128::threads, Q::M128::smem_bytes<4>(1));
#if defined(LOWBIT_MIDM_WGMMA)
  using QW4 = MidmWgmmaPolicies<4>;
  resources(kd::midm_kernel<4, half_t, QW4::W64, 1>(), "wgmma-W64", QW4::W64::threads, QW4::W64::smem_bytes<4>(1));
  resources(kd::midm_kernel<4, half_t, QW4::W128, 1>(), "wgmma-W128", QW4::W128::threads, QW4::W128::smem_bytes<4>(1));
  resources(kd::midm_kernel<4, half_t, QW4::W256, 1>(), "wgmma-W256", QW4::W256::threads, QW4::W256::smem_bytes<4>(1));
#endif

  struct Shape { std::size_t K, N; };
  const std::vector<Shape> shapes = {{8192, 8192}, {8192, 28672}, {28672, 8192}, {4096, 4096}};
  // M = 1024: gemm's own kernel (the tile kernels) where WeightOnlyLinear dequantizes + calls cuBLAS
  const std::vector<std::size_t> Ms = quick ? std::vector<std::size_t>{64, 128} : std::vector<std::size_t>{32, 64, 128, 256, 1024};
  const std::size_t maxM = quick ? 256 : 1024;

  std::printf("%-5s %-5s %-5s %6s %6s %4s %-12s %9s %9s %7s %8s %6s %7s %6s\n", "bits", "group", "var", "K", "N", "M",
              "kernel", "us", "cublas", "speedup", "w_GB/s", "frac", "TFLOPS", "target");
  for (const Shape& s : shapes) {
    const std::size_t K = s.K, N = s.N;
    // cuBLAS fp16: weights [N, K] row-major (TN), rotated
    const int nrot16 = lb::rotation_count(K * N * 2);
    std::vector<void*> w16(nrot16);
    for (int r = 0; r < nrot16; ++r) {
      LB_CUDA(cudaMalloc(&w16[r], K * N * 2));
      lb::fill_fp16(w16[r], K * N, 77 + r, 0x2000);
    }
    void *A, *Y;
    LB_CUDA(cudaMalloc(&A, maxM * K * 2));
    LB_CUDA(cudaMalloc(&Y, maxM * N * 2));
    lb::fill_fp16(A, maxM * K, 5, 0x3800);
    LB_CUDA(cudaDeviceSynchronize());
    std::vector<double> cublas_us;
    for (std::size_t M : Ms) {
      const float alpha = 1.f, beta = 0.f;
      cublas_us.push_back(lb::time_stream_us(st, kCalls, kSamples, [&](int i) {
        LB_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, w16[i % nrot16], CUDA_R_16F,
                               (int)K, A, CUDA_R_16F, (int)K, &beta, Y, CUDA_R_16F, (int)N, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
      }));
    }
    for (void* p : w16) LB_CUDA(cudaFree(p));

    struct Variant { int bits; std::size_t group; bool sym, act; const char* name; bool all_kernels; std::vector<std::size_t> ms; };
    std::vector<Variant> variants = {{4, 128, false, false, "asym", true, Ms}};
    if (K == 8192 && N == 8192 && !quick) {
      variants.push_back({4, 128, true, false, "sym", false, {64, 128}});
      variants.push_back({4, 128, false, true, "act", false, {64, 128}});
      variants.push_back({4, 32, false, false, "asym", false, {64, 128}});
      variants.push_back({4, 0, false, false, "asym", false, {64, 128}});
      for (int b : {2, 3, 8}) variants.push_back({b, 128, false, false, "asym", false, {64, 128}});
    }
    for (const Variant& v : variants) {
      const std::size_t group = v.group ? v.group : K, G = K / group;
      const std::size_t wbytes = K * N * v.bits / 8 + G * N * 2 + (v.sym ? 0 : G * N);
      const int nrot = lb::rotation_count(wbytes);
      std::vector<lb::RandomTiledWeight> ws;
      for (int r = 0; r < nrot; ++r)
        ws.push_back(lb::random_tiled_weight(v.bits, K, N, 1000 + 17 * r, group, v.sym, v.act));
      LB_CUDA(cudaDeviceSynchronize());
      for (std::size_t M : v.ms) {
        const std::size_t mi = static_cast<std::size_t>(std::find(Ms.begin(), Ms.end(), M) - Ms.begin());
        if (mi >= Ms.size()) continue;
        const double cb = cublas_us[mi];
        // one workspace big enough for every kernel compared here
        std::size_t wsb = 0;
        dispatch_bits(v.bits, [&](auto Bc) {
          constexpr int B = decltype(Bc)::value;
          using QB = MidmPolicies<B>;
          using D = DefaultPolicies<B>;
          wsb = std::max(wsb, gemm_workspace_size(M, ws[0].view.meta));
          wsb = std::max(wsb, gemm_policy_workspace_size<typename D::Small>(M, ws[0].view.meta));
          wsb = std::max(wsb, gemm_policy_workspace_size<typename D::Medium>(M, ws[0].view.meta));
          for (const kd::GemmPlan& p : {kd::make_midm_plan<B, typename QB::M32>(M, N, K, sms),
                                        kd::make_midm_plan<B, typename QB::M64>(M, N, K, sms),
                                        kd::make_midm_plan<B, typename QB::M128>(M, N, K, sms)})
            wsb = std::max(wsb, kd::workspace_total(p, M, ws[0].view.meta));
        });
        void* wsp = nullptr;
        LB_CUDA(cudaMalloc(&wsp, wsb));
        if (!gemm_workspace_init(wsp, wsb, st).ok()) return 1;
        auto report = [&](const char* kname, double us, int splits) {
          const double speedup = cb / us, gbs = wbytes / (us * 1e-6) / 1e9;
          const double tflops = 2.0 * M * N * K / (us * 1e-6) / 1e12;
          const double floor_us = (wbytes + M * K * 2.0 + M * N * 2.0) / (copy_gbs * 1e9) * 1e6;
          const double cublas_floor_us = (K * N * 2.0 + M * K * 2.0 + M * N * 2.0) / (copy_gbs * 1e9) * 1e6;
          const bool dflt = std::strcmp(kname, "gemm") == 0;
          const double target = v.bits == 4 && v.group == 128 && !v.sym && !v.act && dflt ? (M == 64 ? 2.5 : M == 128 ? 1.5 : M >= 1024 ? 0.95 : 0) : 0;
          std::printf("%-5d %-5zu %-5s %6zu %6zu %4zu %-12s %9.2f %9.2f %7.2f %8.0f %6.3f %7.1f %6.2f%s\n", v.bits, v.group,
                      v.name, K, N, M, kname, us, cb, speedup, gbs, gbs / copy_gbs, tflops, target,
                      target > 0 ? (speedup >= target ? " met" : " MISSED") : "");
          char buf[768];
          std::snprintf(buf, sizeof buf,
                        "{\"bits\": %d, \"group\": %zu, \"variant\": \"%s\", \"K\": %zu, \"N\": %zu, \"M\": %zu, \"kernel\": \"%s\", "
                        "\"us\": %.3f, \"cublas_fp16_us\": %.3f, \"speedup\": %.3f, \"splits\": %d, \"weight_bytes\": %zu, "
                        "\"weight_GBps\": %.1f, \"weight_bw_frac_of_copy\": %.3f, \"TFLOPS\": %.1f, \"cublas_TFLOPS\": %.1f, "
                        "\"memory_floor_us\": %.3f, \"ideal_speedup_memory\": %.3f, \"target_speedup\": %.2f, \"target_met\": %s}",
                        v.bits, v.group, v.name, K, N, M, kname, us, cb, speedup, splits, wbytes, gbs, gbs / copy_gbs, tflops,
                        2.0 * M * N * K / (cb * 1e-6) / 1e12, floor_us, cublas_floor_us / floor_us, target,
                        target > 0 ? (speedup >= target ? "true" : "false") : "null");
          add_json(buf);
        };
        dispatch_bits(v.bits, [&](auto Bc) {
          constexpr int B = decltype(Bc)::value;
          using QB = MidmPolicies<B>;
          using D = DefaultPolicies<B>;
          const half_t* a = static_cast<const half_t*>(A);
          half_t* y = static_cast<half_t*>(Y);
          bool ok = true;
          auto check = [&](const Status& x) { if (!x.ok()) { std::fprintf(stderr, "failed: %s\n", x.message.c_str()); ok = false; } };
          // gemm as dispatched (the mid-M kernel for 16 < M <= 256)
          const kd::GemmPlan gp = kd::plan_gemm<B>(M, N, K, sms);
          double us = lb::time_stream_us(st, kCalls, kSamples, [&](int i) {
            check(gemm_bits<B, half_t>(a, M, ws[i % nrot].view, nullptr, y, wsp, wsb, st));
          });
          if (!ok) std::exit(1);
          report("gemm", us, gp.splits);
          if (!v.all_kernels) return;
          // each mid-M policy
          auto run_p = [&](auto pol, const char* name) {
            using P = decltype(pol);
            const kd::GemmPlan p = kd::make_midm_plan<B, P>(M, N, K, sms);
            const std::size_t need = kd::workspace_total(p, M, ws[0].view.meta);
            void* wp = wsp;
            std::size_t wb = wsb;
            if (need > wsb) {  // a policy of the sweep with more splits: its own workspace
              LB_CUDA(cudaMalloc(&wp, need));
              wb = need;
              if (!gemm_workspace_init(wp, wb, st).ok()) std::exit(1);
            }
            const double t = lb::time_stream_us(st, kCalls, kSamples, [&](int i) {
              check(kd::run_midm<B, half_t, P>(a, M, ws[i % nrot].view, nullptr, y, wp, wb, p, st));
            });
            if (wp != wsp) LB_CUDA(cudaFree(wp));
            report(name, t, p.splits);
          };
          if (M > kd::kMidmMaxM) return;
          // the previous tile kernels (what gemm ran for 16 < M <= 256 before)
          if (M <= 32) {
            us = lb::time_stream_us(st, kCalls, kSamples, [&](int i) {
              check(gemm_policy<B, half_t, typename D::Small>(a, M, ws[i % nrot].view, nullptr, y, wsp, wsb, st));
            });
            report("tile-Small", us, kd::make_plan<typename D::Small>(kd::PolicyKind::custom, M, N, K, sms).splits);
          } else {
            us = lb::time_stream_us(st, kCalls, kSamples, [&](int i) {
              check(gemm_policy<B, half_t, typename D::Medium>(a, M, ws[i % nrot].view, nullptr, y, wsp, wsb, st));
            });
            report("tile-Medium", us, kd::make_plan<typename D::Medium>(kd::PolicyKind::custom, M, N, K, sms).splits);
          }
          if (M <= 64) run_p(typename QB::M32{}, "midm-M32");
          run_p(typename QB::M64{}, "midm-M64");
          if (M >= 64) run_p(typename QB::M128{}, "midm-M128");
#if defined(LOWBIT_MIDM_WGMMA)
          if (midm_wgmma_available()) {  // the sm_90a wgmma variant
            using QW = MidmWgmmaPolicies<B>;
            if (M <= 64) run_p(typename QW::W64{}, "wgmma-W64");
            if (M >= 64) run_p(typename QW::W128{}, "wgmma-W128");
            if (M > 128) run_p(typename QW::W256{}, "wgmma-W256");
            if constexpr (B == 4) {  // two CTAs of two warpgroups per SM (barriers of one overlap the other)
              if (M <= 64) run_p(MidmWgmmaPolicy<64, 2, 8, 2, 1>{}, "w<64,2,8,2,1>");
              if (M >= 64) run_p(MidmWgmmaPolicy<128, 2, 5, 2, 1>{}, "w<128,2,5,2,1>");
            }
          }
#endif
          if constexpr (B == 4) {  // policy sweep (4-bit only): other CTA shapes and ring depths
            if (M <= 32) {
              run_p(MidmPolicy<2, 4, 1, 2, 4, 1>{}, "p<2,4,1,2,4,1>");
              run_p(MidmPolicy<2, 8, 1, 1, 4, 1>{}, "p<2,8,1,1,4,1>");
            }
            if (M >= 64 && M <= 128) run_p(MidmPolicy<4, 2, 1, 4, 4, 1>{}, "p<4,2,1,4,4,1>");
            if (M >= 128) run_p(MidmPolicy<4, 4, 2, 1, 8, 1>{}, "p<4,4,2,1,8,1>");
          }
          if (!ok) std::exit(1);
        });
        LB_CUDA(cudaFree(wsp));
      }
      for (auto& w : ws) LB_CUDA(cudaFree(w.mem));
    }
    LB_CUDA(cudaFree(A));
    LB_CUDA(cudaFree(Y));
  }
  FILE* f = std::fopen(out, "w");
  if (!f) return 1;
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"date\": \"%s\",\n  \"sm_count\": %d,\n  \"l2_bytes\": %d,\n", prop.name,
               lb::utc_date().c_str(), sms, prop.l2CacheSize);
  std::fprintf(f, "  \"d2d_copy_GBps\": %.1f,\n  \"baseline\": \"cublasGemmEx fp16 in/out, fp32 compute, TN (W [N,K] row-major)\",\n", copy_gbs);
  std::fprintf(f, "  \"timing\": \"median of %d samples of %d back-to-back launches, weights rotated over >= 200 MB\",\n", kSamples, kCalls);
  std::fprintf(f, "  \"kernels\": [%s],\n  \"results\": [\n%s\n  ]\n}\n", res.c_str(), json.c_str());
  std::fclose(f);
  cublasDestroy(h);
  return 0;
}
