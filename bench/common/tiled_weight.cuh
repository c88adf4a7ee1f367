// A random g128 asymmetric TiledLayout weight on the device, for the probes (bench/probe): codes, fp16
// scales of magnitude 2^-9..2^-8 and zero codes below 2^bits, in one allocation that the caller frees.
#pragma once

#include <lowbit/kernels/layout.hpp>

#include "bench_util.cuh"

namespace lowbit_bench {

/// The weight's view and its allocation (cudaFree(mem) when done).
struct RandomTiledWeight {
  lowbit::kernels::TiledWeightView view;
  void* mem = nullptr;
};

/// Random `bits`-wide g128 asymmetric weight of K x N (K a multiple of 128, N of 64); `seed` varies the values.
inline RandomTiledWeight random_tiled_weight(int bits, std::size_t K, std::size_t N, std::uint32_t seed) {
  const std::size_t G = K / 128, words = K * N * static_cast<std::size_t>(bits) / 32;
  RandomTiledWeight w;
  LB_CUDA(cudaMalloc(&w.mem, words * 4 + G * N * 3));
  auto* base = static_cast<unsigned char*>(w.mem);
  fill_words(base, words, seed);
  fill_fp16(base + words * 4, G * N, seed + 1, 0x1800);
  fill_words(base + words * 4 + G * N * 2, G * N / 4, seed + 2, ((1u << bits) - 1u) * 0x01010101u);
  w.view.meta = {bits, K, N, 128, false, false};
  w.view.qweight = reinterpret_cast<const std::uint32_t*>(base);
  w.view.scales = reinterpret_cast<const std::uint16_t*>(base + words * 4);
  w.view.zeros = base + words * 4 + G * N * 2;
  return w;
}

/// A large-M problem: a random weight, fp16 activations [m_max, K] (|a| in [0.5, 1)), outputs [m_max, N] and a
/// dense fp16 buffer of K x N (cuBLAS's weight, or dequantize + cuBLAS's workspace).
struct LargeProblem {
  RandomTiledWeight w;
  void* A = nullptr;
  void* Y = nullptr;
  void* dense = nullptr;
};
inline LargeProblem large_problem(int bits, std::size_t K, std::size_t N, std::size_t m_max, std::uint32_t seed) {
  LargeProblem p;
  p.w = random_tiled_weight(bits, K, N, seed);
  LB_CUDA(cudaMalloc(&p.A, m_max * K * 2));
  LB_CUDA(cudaMalloc(&p.Y, m_max * N * 2));
  LB_CUDA(cudaMalloc(&p.dense, K * N * 2));
  fill_fp16(p.A, m_max * K, seed + 3, 0x3800);
  fill_fp16(p.dense, K * N, seed + 4, 0x1800);
  return p;
}
inline void free_problem(LargeProblem& p) {
  for (void* q : {p.w.mem, p.A, p.Y, p.dense}) LB_CUDA(cudaFree(q));
  p = LargeProblem{};
}

/// Calls f(K, N, problem) for each of the four benchmark shapes (K x N: 8192^2, 8192 x 28672, 28672 x 8192,
/// 4096^2) with a fresh large_problem of width `bits` and m_max rows, freed afterwards.
template <class F>
void for_each_bench_shape(int bits, std::size_t m_max, F&& f) {
  struct Shape { std::size_t K, N; };
  for (const Shape sh : {Shape{8192, 8192}, Shape{8192, 28672}, Shape{28672, 8192}, Shape{4096, 4096}}) {
    LargeProblem p = large_problem(bits, sh.K, sh.N, m_max, 1);
    f(sh.K, sh.N, p);
    free_problem(p);
  }
}

}  // namespace lowbit_bench
