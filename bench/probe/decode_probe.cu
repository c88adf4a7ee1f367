// Probe of the decode kernel (4-bit g128 asym, fp16): every decode plan (1-2 slabs x 4/8/16 warps x 1-8 splits)
// of the three large shapes at the listed M, timed with PDL on and weights rotated past the L2, each output
// compared with the planned one-slab plan's; prints the planned plan's time and the best plan's.
// Session 16 built it with probe-only edits of decode.cuh (not on main; NOTES.md "Session 16" gives them):
// LOWBIT_PROBE_DECODE_NO_ACTS (no activation copies: the cost of those bytes), LOWBIT_PROBE_DECODE_ONE_MT (one
// row block's MMAs at M > 8) and LOWBIT_PROBE_DECODE_A_COPIES=R (CTA y reads copy y % R of A, which this probe
// allocates: L2 hot spots); b8822c1 ran it on the shared-activation variant.
// usage: decode_probe [M,M,...]   (default 1,8,16)
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cuda_fp16.h>
#include <cstdlib>
#include <string>
#include <vector>

#include <lowbit/kernels/gemm.cuh>

#include "common/tiled_weight.cuh"

using namespace lowbit;
using namespace lowbit::kernels;
namespace lb = lowbit_bench;
namespace kd = lowbit::kernels::detail;

int main(int argc, char** argv) {
  std::vector<std::size_t> Ms = {1, 8, 16};
  if (argc > 1) {
    Ms.clear();
    for (char* q = argv[1]; *q;) {
      char* e;
      Ms.push_back(std::strtoul(q, &e, 10));
      q = *e == ',' ? e + 1 : e;
    }
  }
  cudaDeviceProp prop;
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t st;
  LB_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  std::printf("device %s\n", prop.name);
  constexpr int B = 4;
  struct Shape { std::size_t K, N; };
  for (Shape sh : {Shape{8192, 8192}, Shape{8192, 28672}, Shape{28672, 8192}}) {
    const std::size_t K = sh.K, N = sh.N, G = K / 128;
    const int nrot = lb::rotation_count(K * N * B / 8 + G * N * 3);
    std::vector<TiledWeightView> ws(nrot);
    std::vector<void*> mem(nrot);
    for (int r = 0; r < nrot; ++r) {
      const lb::RandomTiledWeight rw = lb::random_tiled_weight(B, K, N, 100 + 3 * r);
      ws[r] = rw.view;
      mem[r] = rw.mem;
    }
    void *A, *Y;
    // kACopies identical copies of A (LOWBIT_PROBE_DECODE_A_COPIES makes CTA y read copy y % copies)
    constexpr int kACopies = 16;
    LB_CUDA(cudaMalloc(&A, kACopies * 16 * K * 2));
    LB_CUDA(cudaMalloc(&Y, 16 * N * 2));
    lb::fill_fp16(A, 16 * K, 9, 0x3800);
    for (int c = 1; c < kACopies; ++c)
      LB_CUDA(cudaMemcpy(static_cast<char*>(A) + c * 16 * K * 2, A, 16 * K * 2, cudaMemcpyDeviceToDevice));
    std::vector<std::uint16_t> yref, yh(16 * N);
    auto y_to_host = [&](std::vector<std::uint16_t>& dst, std::size_t M) {
      dst.resize(M * N);
      LB_CUDA(cudaMemcpy(dst.data(), Y, M * N * 2, cudaMemcpyDeviceToHost));
    };
    auto h2f = [](std::uint16_t h) { return __half2float(__ushort_as_half(h)); };
    for (std::size_t M : Ms) {
      const kd::GemmPlan chosen = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount);
      {  // reference output: the planned one-slab plan without shared activations
        const kd::GemmPlan p = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount, false, 0, 0, 1);
        void* wsp = nullptr;
        if (p.workspace_bytes) {
          LB_CUDA(cudaMalloc(&wsp, p.workspace_bytes));
          if (!gemm_workspace_init(wsp, p.workspace_bytes, st).ok()) return 1;
        }
        if (!kd::run_decode<B, half_t, false>(static_cast<const half_t*>(A), M, ws[0], nullptr, static_cast<half_t*>(Y), wsp,
                                             p.workspace_bytes, p, st).ok()) return 1;
        LB_CUDA(cudaStreamSynchronize(st));
        y_to_host(yref, M);
        if (wsp) LB_CUDA(cudaFree(wsp));
      }
      double best = 1e30, planned = -1;
      std::string best_s;
      for (int ns : {1, 2})
        for (int W : {4, 8, 16})
          for (int sp = 1; sp <= 8; ++sp) {
            const kd::GemmPlan p = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount, false, W, sp, ns);
            if (p.kt_per_warp == 0) continue;
            void* wsp = nullptr;
            if (p.workspace_bytes) {
              LB_CUDA(cudaMalloc(&wsp, p.workspace_bytes));
              if (!gemm_workspace_init(wsp, p.workspace_bytes, st).ok()) return 1;
            }
            GemmOptions o;
            o.pdl = PdlMode::on;
            const double us = lb::time_stream_us(st, 20, 15, [&](int i) {
              const Status s = kd::run_decode<B, half_t, false>(static_cast<const half_t*>(A), M, ws[i % nrot], nullptr,
                                                                static_cast<half_t*>(Y), wsp, p.workspace_bytes, p, st, o);
              if (!s.ok()) { std::fprintf(stderr, "%s\n", s.message.c_str()); std::exit(1); }
            });
            // against the reference: max |diff| over max |ref|
            LB_CUDA(cudaMemsetAsync(Y, 0xff, M * N * 2, st));
            if (!kd::run_decode<B, half_t, false>(static_cast<const half_t*>(A), M, ws[0], nullptr, static_cast<half_t*>(Y), wsp,
                                                 p.workspace_bytes, p, st).ok()) return 1;
            LB_CUDA(cudaStreamSynchronize(st));
            y_to_host(yh, M);
            double md = 0, mr = 0;
            for (std::size_t e = 0; e < M * N; ++e) {
              const double r = h2f(yref[e]), v = h2f(yh[e]);
              md = std::isfinite(v) ? std::max(md, std::abs(v - r)) : 1e30;
              mr = std::max(mr, std::abs(r));
            }
            const bool is_chosen = p.warps_k == chosen.warps_k && p.splits == chosen.splits && p.slabs == chosen.slabs;
            char buf[128];
            std::snprintf(buf, sizeof buf, "%d slab x %2d warps x %d splits", ns, W, sp);
            if (is_chosen) planned = us;
            if (us < best) { best = us; best_s = buf; }
            std::printf("  K %5zu N %5zu M %2zu %s: %7.2f us, rel diff %.2e%s%s\n", K, N, M, buf, us, md / mr,
                        md / mr > 2e-3 ? " MISMATCH" : "", is_chosen ? "  <- planner" : "");
            if (wsp) LB_CUDA(cudaFree(wsp));
          }
      std::printf("SUMMARY K %5zu N %5zu M %2zu: planned %7.2f us, best %7.2f us (%s)\n", K, N, M, planned, best, best_s.c_str());
    }
    for (void* p : mem) LB_CUDA(cudaFree(p));
    LB_CUDA(cudaFree(A));
    LB_CUDA(cudaFree(Y));
  }
  return 0;
}
