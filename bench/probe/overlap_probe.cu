// Feasibility probe: dequantize + cuBLAS at large M with the dequantization of slab i + 1 on a second stream
// while cuBLAS multiplies slab i (two dense slab buffers), against the serial gemm_dequant and cuBLAS fp16
// on dense weights, same run. 4-bit g128 asym fp16; median of 7 samples of 5 calls.
// usage: overlap_probe
#include <cuda_fp16.h>

#include <lowbit/kernels/dequant_gemm.cuh>

#include <cstdio>
#include <vector>

#include "common/tiled_weight.cuh"

using namespace lowbit;
using namespace lowbit::kernels;
using namespace lowbit_bench;

int main() {
  cudaDeviceProp prop{};
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  int lo = 0, hi = 0;
  LB_CUDA(cudaDeviceGetStreamPriorityRange(&lo, &hi));
  cudaStream_t st, side_hi, side_lo;
  LB_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  LB_CUDA(cudaStreamCreateWithPriority(&side_hi, cudaStreamNonBlocking, hi));
  LB_CUDA(cudaStreamCreateWithPriority(&side_lo, cudaStreamNonBlocking, lo));
  cublasHandle_t blas;
  LB_CUBLAS(cublasCreate(&blas));
  LB_CUBLAS(cublasSetStream(blas, st));
  constexpr int B = 4;
  for_each_bench_shape(B, 4096, [&](std::size_t K, std::size_t N, const LargeProblem& prob) {
    const TiledWeightView& w = prob.w.view;
    void *A = prob.A, *Y = prob.Y, *dense = prob.dense;
    std::vector<cudaEvent_t> ev(64);
    for (auto& e : ev) LB_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (std::size_t M : {1024, 4096}) {
      const float one = 1.f, zero = 0.f;
      auto blas_slab = [&](const void* Wd, std::size_t n0, std::size_t ns) {
        LB_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)ns, (int)M, (int)K, &one, Wd, CUDA_R_16F, (int)ns, A,
                               CUDA_R_16F, (int)K, &zero, static_cast<half_t*>(Y) + n0, CUDA_R_16F, (int)N, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
      };
      const double t_blas = time_stream_us(st, 5, 7, [&](int) { blas_slab(dense, 0, N); });
      const double t_serial = time_stream_us(st, 5, 7, [&](int) {
        if (!gemm_dequant<half_t>(blas, static_cast<const half_t*>(A), M, w, nullptr, static_cast<half_t*>(Y), dense, K * N * 2, st).ok())
          std::exit(1);
      });
      std::printf("K %5zu N %5zu M %4zu: cuBLAS %8.1f us, serial deq+BLAS %8.1f us (%.3fx)\n", K, N, M, t_blas, t_serial,
                  t_blas / t_serial);
      for (int slabs : {2, 4, 8, 16}) {
        for (int pri = 0; pri < 2; ++pri) {
          cudaStream_t side = pri ? side_hi : side_lo;
          const std::size_t ns = N / slabs;
          half_t* buf[2] = {static_cast<half_t*>(dense), static_cast<half_t*>(dense) + K * ns};
          const double t = time_stream_us(st, 5, 7, [&](int) {
            // fork: the side stream starts after what st has queued
            LB_CUDA(cudaEventRecord(ev[0], st));
            LB_CUDA(cudaStreamWaitEvent(side, ev[0]));
            for (int i = 0; i < slabs; ++i) {
              if (i >= 2) LB_CUDA(cudaStreamWaitEvent(side, ev[32 + i - 2]));  // buffer i % 2 free again
              if (!dequantize_tiled<B, half_t>(w, i * ns, ns, buf[i % 2], ns, side).ok()) std::exit(1);
              LB_CUDA(cudaEventRecord(ev[1 + i], side));
              LB_CUDA(cudaStreamWaitEvent(st, ev[1 + i]));
              blas_slab(buf[i % 2], i * ns, ns);
              LB_CUDA(cudaEventRecord(ev[32 + i], st));
            }
          });
          std::printf("    %2d slabs, side priority %s: %8.1f us (%.3fx cuBLAS)\n", slabs, pri ? "high" : "low ", t, t_blas / t);
        }
      }
    }
    for (auto& e : ev) LB_CUDA(cudaEventDestroy(e));
  });
  return 0;
}
