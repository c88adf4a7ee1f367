// Shared helpers of lowbit's GPU benchmarks: error checks that abort with the failing call, random
// device fills, a median-of-samples stream timer, the measured device-to-device copy bandwidth (the
// roofline every benchmark reports beside its speedups) and the JSON header fields.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#define LB_CUDA(x)                                                                                \
  do {                                                                                            \
    const cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));      \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)
#define LB_CUBLAS(x)                                                                                 \
  do {                                                                                               \
    const cublasStatus_t s_ = (x);                                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                               \
      std::fprintf(stderr, "%s:%d %s: cuBLAS status %d\n", __FILE__, __LINE__, #x, static_cast<int>(s_)); \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)

namespace lowbit_bench {

/// L2-defeating rotation: cycle through at least this many bytes of distinct weights (4x the 50 MB L2).
inline constexpr std::size_t kRotateBytes = 200ull << 20;

/// Number of weight copies to rotate so that together they exceed kRotateBytes (at least 2).
inline int rotation_count(std::size_t bytes_per_copy) {
  return static_cast<int>(std::max<std::size_t>(2, (kRotateBytes + bytes_per_copy - 1) / bytes_per_copy));
}

/// Random 32-bit words, `& mask` (a hash of the index and seed: deterministic, no RNG state).
__global__ void fill_words_kernel(std::uint32_t* p, std::size_t n, std::uint32_t seed, std::uint32_t mask) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = x & mask;
  }
}
/// Random 16-bit floats (fp16 or bf16 bit patterns) with a fixed exponent field `exp_bits`, random
/// sign and mantissa: finite, never zero, magnitude set by the exponent.
__global__ void fill_halves_kernel(std::uint16_t* p, std::size_t n, std::uint32_t seed, std::uint16_t exp_bits,
                                   std::uint16_t mant_mask) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 2246822519u ^ seed;
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    x ^= x >> 12;
    p[i] = static_cast<std::uint16_t>((x & 0x8000u) | exp_bits | (x & mant_mask));
  }
}
inline void fill_words(void* p, std::size_t words, std::uint32_t seed, std::uint32_t mask = 0xffffffffu) {
  fill_words_kernel<<<1024, 256>>>(static_cast<std::uint32_t*>(p), words, seed, mask);
  LB_CUDA(cudaGetLastError());
}
/// Streams `n` 16-byte vectors once (evict-first loads) and keeps a checksum so the loads stay: the plain
/// read that weight-streaming kernels are compared with.
__global__ void stream_read_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* sink) {
  unsigned x = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(p + i);
    x ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (x == 0x12345678u) *sink = x;
}
/// fp16 values of magnitude in [2^(e-15), 2^(e-14)) where e = exp_bits >> 10.
inline void fill_fp16(void* p, std::size_t n, std::uint32_t seed, std::uint16_t exp_bits) {
  fill_halves_kernel<<<1024, 256>>>(static_cast<std::uint16_t*>(p), n, seed, exp_bits, 0x3ffu);
  LB_CUDA(cudaGetLastError());
}

/// Median per-call time in µs: `samples` times, `calls` back-to-back launches of fn(i) between two
/// events (launch overhead hides behind the queue once each call runs tens of µs).
inline double time_stream_us(cudaStream_t s, int calls, int samples, const std::function<void(int)>& fn) {
  for (int i = 0; i < 3; ++i) fn(i);  // warm-up: module load, cuBLAS heuristics, clocks
  LB_CUDA(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  LB_CUDA(cudaEventCreate(&a));
  LB_CUDA(cudaEventCreate(&b));
  std::vector<double> t;
  int i = 0;
  for (int r = 0; r < samples; ++r) {
    LB_CUDA(cudaEventRecord(a, s));
    for (int c = 0; c < calls; ++c) fn(i++);
    LB_CUDA(cudaEventRecord(b, s));
    LB_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    LB_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(1000.0 * ms / calls);
  }
  LB_CUDA(cudaEventDestroy(a));
  LB_CUDA(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Index of the function that goes k-th in round r of an interleaved timing of n functions: the order
/// rotates by one each round, so every function follows every other one equally often (the clocks follow
/// what ran just before, and a fixed order would always give a function the same neighbour).
inline std::size_t interleaved_slot(int r, std::size_t k, std::size_t n) { return (static_cast<std::size_t>(r) + k) % n; }

/// The sampling loop of the interleaved timers: `samples` rounds, in each of which issue(j) enqueues one sample
/// of function j, for every j in the rotating order of interleaved_slot, timed between two events; returns the
/// median of each function's samples divided by `per` (its launches per sample), in µs.
inline std::vector<double> interleaved_medians_us(cudaStream_t s, std::size_t n, int per, int samples,
                                                  const std::function<void(std::size_t)>& issue) {
  cudaEvent_t a, b;
  LB_CUDA(cudaEventCreate(&a));
  LB_CUDA(cudaEventCreate(&b));
  std::vector<std::vector<double>> t(n);
  for (int r = 0; r < samples; ++r)
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t j = interleaved_slot(r, k, n);
      LB_CUDA(cudaEventRecord(a, s));
      issue(j);
      LB_CUDA(cudaEventRecord(b, s));
      LB_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      LB_CUDA(cudaEventElapsedTime(&ms, a, b));
      t[j].push_back(1000.0 * ms / per);
    }
  LB_CUDA(cudaEventDestroy(a));
  LB_CUDA(cudaEventDestroy(b));
  std::vector<double> med(n);
  for (std::size_t j = 0; j < n; ++j) {
    std::sort(t[j].begin(), t[j].end());
    med[j] = t[j][t[j].size() / 2];
  }
  return med;
}

/// time_stream_us for several functions timed against each other: after a warm-up of each, the samples
/// alternate (interleaved_slot), so that a drift or a step of the clocks falls on all of them alike (at large
/// M the GEMMs are power-bound and the clocks follow what ran just before). Medians, in the given order.
inline std::vector<double> time_stream_interleaved_us(cudaStream_t s, int calls, int samples,
                                                      const std::vector<std::function<void(int)>>& fns) {
  for (const auto& fn : fns)
    for (int i = 0; i < 3; ++i) fn(i);
  LB_CUDA(cudaStreamSynchronize(s));
  int i = 0;
  return interleaved_medians_us(s, fns.size(), calls, samples, [&](std::size_t j) {
    for (int c = 0; c < calls; ++c) fns[j](i++);
  });
}

/// The same with CUDA graphs: `batches[j]` issues `launches` launches, captured once as a graph (launched
/// directly where capture fails); the replays alternate as in time_stream_interleaved_us, `samples` each.
/// Per-launch medians, in the given order.
inline std::vector<double> time_graphs_interleaved_us(cudaStream_t s, int launches, int samples,
                                                      const std::vector<std::function<void()>>& batches) {
  const std::size_t n = batches.size();
  std::vector<cudaGraphExec_t> ge(n, nullptr);
  for (std::size_t j = 0; j < n; ++j) {
    for (int w = 0; w < 3; ++w) batches[j]();  // warm-up outside the graph (module load, handles, attributes)
    LB_CUDA(cudaStreamSynchronize(s));
    cudaGraph_t g;
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      batches[j]();
      if (cudaStreamEndCapture(s, &g) == cudaSuccess) {
        if (cudaGraphInstantiate(&ge[j], g, 0) != cudaSuccess) ge[j] = nullptr;
        LB_CUDA(cudaGraphDestroy(g));
      }
    }
    if (!ge[j]) {
      (void)cudaGetLastError();
      std::fprintf(stderr, "note: graph capture failed, timing direct launches\n");
    } else {
      LB_CUDA(cudaGraphLaunch(ge[j], s));  // warm the graph
    }
  }
  LB_CUDA(cudaStreamSynchronize(s));
  const std::vector<double> med = interleaved_medians_us(s, n, launches, samples, [&](std::size_t j) {
    if (ge[j]) LB_CUDA(cudaGraphLaunch(ge[j], s)); else batches[j]();
  });
  for (cudaGraphExec_t x : ge)
    if (x) LB_CUDA(cudaGraphExecDestroy(x));
  return med;
}

/// Device-to-device copy bandwidth in GB/s (read + write counted), 1 GiB copies, median of 10.
inline double copy_bandwidth_gbs(cudaStream_t s) {
  constexpr std::size_t kBytes = 1ull << 30;
  void *a = nullptr, *b = nullptr;
  LB_CUDA(cudaMalloc(&a, kBytes));
  LB_CUDA(cudaMalloc(&b, kBytes));
  LB_CUDA(cudaMemsetAsync(a, 1, kBytes, s));
  const double us = time_stream_us(s, 1, 10, [&](int) { LB_CUDA(cudaMemcpyAsync(b, a, kBytes, cudaMemcpyDeviceToDevice, s)); });
  LB_CUDA(cudaFree(a));
  LB_CUDA(cudaFree(b));
  return 2.0 * static_cast<double>(kBytes) / (us * 1e3);
}

/// UTC date as YYYY-MM-DD.
inline std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

}  // namespace lowbit_bench
