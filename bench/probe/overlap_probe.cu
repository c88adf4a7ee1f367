// Feasibility probe: dequantize + cuBLAS at large M with the dequantization of slab i + 1 on a second stream
// while cuBLAS multiplies slab i (two dense slab buffers), against the serial gemm_dequant and cuBLAS fp16
// on dense weights, same run. 4-bit g128 asym fp16; median of 7 samples of 5 calls.
// usage: overlap_probe
#include <cuda_fp16.h>

#include <lowbit/kernels/dequant_gemm.cuh>

#include <cstdio>
#include <vector>

#include "common/bench_util.cuh"

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
  struct Shape { std::size_t K, N; };
  for (Shape sh : {Shape{8192, 8192}, Shape{8192, 28672}, Shape{28672, 8192}, Shape{4096, 4096}}) {
    const std::size_t K = sh.K, N = sh.N, G = K / 128, words = K * N * B / 32;
    void* wm;
    LB_CUDA(cudaMalloc(&wm, words * 4 + G * N * 3));
    auto* base = static_cast<unsigned char*>(wm);
    fill_words(base, words, 1);
    fill_fp16(base + words * 4, G * N, 2, 0x1800);
    fill_words(base + words * 4 + G * N * 2, G * N / 4, 3, 0x0f0f0f0fu);
    TiledWeightView w;
    w.meta = {B, K, N, 128, false, false};
    w.qweight = reinterpret_cast<const std::uint32_t*>(base);
    w.scales = reinterpret_cast<const std::uint16_t*>(base + words * 4);
    w.zeros = base + words * 4 + G * N * 2;
    void *A, *Y, *dense;
    LB_CUDA(cudaMalloc(&A, 4096 * K * 2));
    LB_CUDA(cudaMalloc(&Y, 4096 * N * 2));
    LB_CUDA(cudaMalloc(&dense, K * N * 2));
    fill_fp16(A, 4096 * K, 4, 0x3800);
    fill_fp16(dense, K * N, 5, 0x1800);
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
    LB_CUDA(cudaFree(wm));
    LB_CUDA(cudaFree(A));
    LB_CUDA(cudaFree(Y));
    LB_CUDA(cudaFree(dense));
  }
  return 0;
}
