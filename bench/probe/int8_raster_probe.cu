// Probe (session 17): the tile order of the persistent int8 wgmma TMA kernel at large M. The kernel takes its
// 128 x 256 tiles M-fastest over all N (group_m = 0); banded orders (detail::wgmma_tile_coords, group_m M tiles
// per band) keep a band's rows of A in L2 while its blocks sweep N. ncu (session 17) read 1.30 GB of DRAM for
// 8192 x 28672 at M = 4096, five times the bytes of A and W. Each variant's int32 output is compared with the
// plain order's (exact), then the variants are timed against each other (interleaved samples, medians).
// Built with LOWBIT_PROBE_INT8_NO_STORE (a probe-only edit of the i32 epilogue, not in the library) it also
// says what the epilogue's stores cost.
// usage: int8_raster_probe [M,M,...]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <lowbit/int8/linear.cuh>

#include "common/bench_util.cuh"

using namespace lowbit;
namespace lb = lowbit_bench;

int main(int argc, char** argv) {
  std::vector<int> Ms = {1024, 2048, 4096};
  if (argc > 1) {
    Ms.clear();
    for (std::string a = argv[1]; !a.empty();) {
      const std::size_t c = a.find(',');
      Ms.push_back(std::stoi(a.substr(0, c)));
      a = c == std::string::npos ? "" : a.substr(c + 1);
    }
  }
  cudaStream_t s;
  LB_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int sms = int8::detail::sm_count();
  const int groups[] = {0, 16, 8, 4};
  constexpr int kG = 4;
  const int shapes[][2] = {{8192, 8192}, {8192, 28672}, {28672, 8192}};
  for (const auto& sh : shapes) {
    const int K = sh[0], N = sh[1];
    const std::size_t wbytes = static_cast<std::size_t>(N) * K;
    const int R = lb::rotation_count(wbytes);
    std::vector<void*> W(R);
    for (int r = 0; r < R; ++r) {
      LB_CUDA(cudaMalloc(&W[r], wbytes));
      lb::fill_words(W[r], wbytes / 4, 100u + r, 0x7f7f7f7fu);  // codes 0..127 (no -128)
    }
    for (const int M : Ms) {
      void *A, *C;
      LB_CUDA(cudaMalloc(&A, static_cast<std::size_t>(M) * K));
      LB_CUDA(cudaMalloc(&C, static_cast<std::size_t>(M) * N * 4));
      lb::fill_words(A, static_cast<std::size_t>(M) * K / 4, 7u, 0x7f7f7f7fu);
      auto plan = int8::detail::make_plan(M, N, K, sms, -1);
      if (!plan.wgmma() || plan.splits != 1) {
        std::printf("K=%d N=%d M=%d: plan is not the one-split wgmma path, skipped\n", K, N, M);
        continue;
      }
      const kernels::Int8EpilogueParams none{};
      auto launch = [&](int g, int r) {
        const cudaError_t e = int8::detail::launch_wgmma<kernels::TiledOut::i32, __half>(
            static_cast<const std::int8_t*>(A), static_cast<const std::int8_t*>(W[r % R]), static_cast<int*>(C), none, M,
            N, K, 1, K, true, 0, s, nullptr, g);
        if (e != cudaSuccess) {
          std::fprintf(stderr, "launch: %s\n", cudaGetErrorString(e));
          std::exit(1);
        }
      };
      // exactness of the orders: each variant's C against the plain order's (same weights copy)
      std::vector<int> ref(static_cast<std::size_t>(M) * N), got(ref.size());
      bool same = true;
      for (int gi = 0; gi < kG; ++gi) {
        LB_CUDA(cudaMemsetAsync(C, 0x5a, static_cast<std::size_t>(M) * N * 4, s));
        launch(groups[gi], 0);
        LB_CUDA(cudaStreamSynchronize(s));
        LB_CUDA(cudaMemcpy(gi == 0 ? ref.data() : got.data(), C, ref.size() * 4, cudaMemcpyDeviceToHost));
        if (gi > 0)
          for (std::size_t i = 0; i < ref.size(); ++i) same = same && ref[i] == got[i];
      }
      std::vector<std::function<void(int)>> fns;
      for (int gi = 0; gi < kG; ++gi) fns.push_back([&, gi](int i) { launch(groups[gi], i); });
      const auto t = lb::time_stream_interleaved_us(s, 3, 9, fns);
      std::printf("K=%5d N=%5d M=%5d tiles %4d on %d SMs:", K, N, M, ((M + 127) / 128) * ((N + 255) / 256), sms);
      for (int gi = 0; gi < kG; ++gi)
        std::printf("  g%-2d %8.1f us (%.3f)", groups[gi], t[gi], t[0] / t[gi]);
      std::printf("  outputs %s\n", same ? "identical" : "DIFFER");
      LB_CUDA(cudaFree(A));
      LB_CUDA(cudaFree(C));
    }
    for (void* w : W) LB_CUDA(cudaFree(w));
  }
  return 0;
}
