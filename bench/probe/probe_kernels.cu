// Profiling probe: one kernel configuration, launched `calls` times after two warm-up calls, so that a
// profiler (ncu with --launch-skip / --launch-count) sees exactly the launches it should.
//
// usage: probe_kernels int8 K N M OUTLIERS [CALLS]     LLM.int8() layer (linear_forward), fp16, planted
//                                                      outlier columns (|a| 20..60) in every row
//        probe_kernels w BITS K N M [CALLS] [nopdl]    weight-only gemm, g128 asym, fp16
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <lowbit/int8/linear.cuh>
#include <lowbit/kernels/gemm.cuh>

#include "common/bench_util.cuh"
#include "common/tiled_weight.cuh"  // random_tiled_weight

using namespace lowbit;
namespace lb = lowbit_bench;

namespace {

__global__ void plant_outliers(std::uint16_t* A, int M, int K, const int* cols, int n) {
  const int m = blockIdx.x;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float mag = 20.f + 40.f * ((m * 7 + j * 13) % 41) / 40.f;
    const __half h = __float2half(((m + j) & 1) ? mag : -mag);
    A[static_cast<std::size_t>(m) * K + cols[j]] = __half_as_ushort(h);
  }
}

int usage() {
  std::fprintf(stderr, "usage: probe_kernels int8 K N M OUTLIERS [CALLS] | w BITS K N M [CALLS] [nopdl]\n");
  return 2;
}

int run_int8(int K, int N, int M, int outliers, int calls) {
  void *A, *Y, *W, *scales;
  LB_CUDA(cudaMalloc(&A, static_cast<std::size_t>(M) * K * 2));
  LB_CUDA(cudaMalloc(&Y, static_cast<std::size_t>(M) * N * 2));
  LB_CUDA(cudaMalloc(&W, static_cast<std::size_t>(N) * K));
  LB_CUDA(cudaMalloc(&scales, static_cast<std::size_t>(N) * 4));
  lb::fill_fp16(A, static_cast<std::size_t>(M) * K, 11u, 0x3800);  // |a| in [0.5, 1): below the threshold
  lb::fill_words(W, static_cast<std::size_t>(N) * K / 4, 12u, 0x7f7f7f7fu);
  std::vector<float> s(N, 0.02f);
  LB_CUDA(cudaMemcpy(scales, s.data(), N * 4, cudaMemcpyHostToDevice));
  if (outliers > 0) {
    std::mt19937 rng(5);
    std::vector<int> cols;
    while (static_cast<int>(cols.size()) < outliers) {
      const int c = static_cast<int>(rng() % K);
      bool dup = false;
      for (int x : cols) dup = dup || x == c;
      if (!dup) cols.push_back(c);
    }
    int* dcols;
    LB_CUDA(cudaMalloc(&dcols, outliers * 4));
    LB_CUDA(cudaMemcpy(dcols, cols.data(), outliers * 4, cudaMemcpyHostToDevice));
    plant_outliers<<<M, 64>>>(static_cast<std::uint16_t*>(A), M, K, dcols, outliers);
    LB_CUDA(cudaGetLastError());
  }
  int8::DeviceWeight dw{static_cast<const std::int8_t*>(W), static_cast<const float*>(scales), N, K};
  int8::LinearOptions opt;
  const std::size_t ws_bytes = int8::linear_workspace_size(M, N, K, opt);
  void* ws;
  LB_CUDA(cudaMalloc(&ws, ws_bytes));
  for (int i = 0; i < calls + 2; ++i) {
    const Status st = int8::linear_forward(static_cast<const half_t*>(A), M, dw, static_cast<const float*>(scales),
                                           static_cast<half_t*>(Y), ws, ws_bytes, opt, nullptr);
    if (!st.ok()) {
      std::fprintf(stderr, "linear_forward: %s\n", st.message.c_str());
      return 1;
    }
  }
  LB_CUDA(cudaDeviceSynchronize());
  std::printf("int8 K=%d N=%d M=%d outliers=%d: %d calls done\n", K, N, M, outliers, calls + 2);
  return 0;
}

int run_weight_only(int bits, int K, int N, int M, int calls, bool pdl) {
  // the benchmarks' random g128 asymmetric weight (codes, scales and zeros from seeds 1, 2, 3)
  const lb::RandomTiledWeight w = lb::random_tiled_weight(bits, static_cast<std::size_t>(K), static_cast<std::size_t>(N), 1u);
  const kernels::TiledWeightView& v = w.view;
  void *A, *Y;
  LB_CUDA(cudaMalloc(&A, static_cast<std::size_t>(M) * K * 2));
  LB_CUDA(cudaMalloc(&Y, static_cast<std::size_t>(M) * N * 2));
  lb::fill_fp16(A, static_cast<std::size_t>(M) * K, 4u, 0x3800);
  kernels::GemmOptions opt;
  opt.pdl = pdl ? kernels::PdlMode::on : kernels::PdlMode::off;
  const std::size_t ws_bytes = kernels::gemm_workspace_size(static_cast<std::size_t>(M), v.meta);
  void* ws = nullptr;
  if (ws_bytes) LB_CUDA(cudaMalloc(&ws, ws_bytes));
  if (ws_bytes && !kernels::gemm_workspace_init(ws, ws_bytes, nullptr).ok()) return 1;
  for (int i = 0; i < calls + 2; ++i) {
    const Status st = kernels::gemm(static_cast<const half_t*>(A), static_cast<std::size_t>(M), v,
                                    static_cast<const half_t*>(nullptr), static_cast<half_t*>(Y), ws, ws_bytes,
                                    nullptr, opt);
    if (!st.ok()) {
      std::fprintf(stderr, "gemm: %s\n", st.message.c_str());
      return 1;
    }
  }
  LB_CUDA(cudaDeviceSynchronize());
  std::printf("w%d K=%d N=%d M=%d pdl=%d: %d calls done\n", bits, K, N, M, pdl ? 1 : 0, calls + 2);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  if (!std::strcmp(argv[1], "int8") && argc >= 6)
    return run_int8(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]),
                    argc > 6 ? std::atoi(argv[6]) : 1);
  if (!std::strcmp(argv[1], "w") && argc >= 6)
    return run_weight_only(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]),
                           argc > 6 ? std::atoi(argv[6]) : 1, !(argc > 7 && !std::strcmp(argv[7], "nopdl")));
  return usage();
}
