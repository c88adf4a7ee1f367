// A random TiledLayout weight on the device, for the benchmarks and probes: codes, fp16 scales of magnitude
// 2^-9..2^-8, zero codes below 2^bits and, for act-order, a pseudo-random permutation of K, in one allocation
// that the caller frees.
#pragma once

#include <lowbit/kernels/gemm.cuh>  // TiledWeightView

#include <cstdint>
#include <utility>
#include <vector>

#include "bench_util.cuh"

namespace lowbit_bench {

/// The weight's view and its allocation (cudaFree(mem) when done).
struct RandomTiledWeight {
  lowbit::kernels::TiledWeightView view;
  void* mem = nullptr;
};

/// Random `bits`-wide weight of K x N (K a multiple of `group`, N of 64) with groups of `group` rows, symmetric
/// or not, act-order or not; `seed` varies the values (codes, scales and zeros use seed, seed + 1, seed + 2).
inline RandomTiledWeight random_tiled_weight(int bits, std::size_t K, std::size_t N, std::uint32_t seed,
                                             std::size_t group = 128, bool sym = false, bool act = false) {
  const std::size_t G = K / group, words = K * N * static_cast<std::size_t>(bits) / 32;
  const std::size_t zoff = words * 4 + G * N * 2, poff = (zoff + G * N + 15) / 16 * 16;
  RandomTiledWeight w;
  LB_CUDA(cudaMalloc(&w.mem, poff + (act ? K * 4 : 0)));
  auto* base = static_cast<unsigned char*>(w.mem);
  fill_words(base, words, seed);
  fill_fp16(base + words * 4, G * N, seed + 1, 0x1800);                            // scales ~ 2^-9 .. 2^-8
  fill_words(base + zoff, G * N / 4, seed + 2, ((1u << bits) - 1u) * 0x01010101u);  // zero codes < 2^bits
  if (act) {  // a fixed pseudo-random permutation of K
    std::vector<std::int32_t> p(K);
    for (std::size_t k = 0; k < K; ++k) p[k] = static_cast<std::int32_t>(k);
    std::uint64_t s = seed;
    for (std::size_t k = K - 1; k > 0; --k) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(p[k], p[(s >> 33) % (k + 1)]);
    }
    LB_CUDA(cudaMemcpy(base + poff, p.data(), K * 4, cudaMemcpyHostToDevice));
  }
  w.view.meta = {bits, K, N, group, sym, act};
  w.view.qweight = reinterpret_cast<const std::uint32_t*>(base);
  w.view.scales = reinterpret_cast<const std::uint16_t*>(base + words * 4);
  w.view.zeros = base + zoff;
  w.view.perm = act ? reinterpret_cast<const std::int32_t*>(base + poff) : nullptr;
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
