// Host GPTQ solver timing: bench_gptq_host [K=4096] [N=K] [threads=0] [bits=4] [group=128] [act=0] [samples=2K]
// Prints one JSON line: factorization, column loop, total (errors off).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "lowbit/gptq.hpp"

int main(int argc, char** argv) {
  const std::size_t K = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4096;
  const std::size_t N = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : K;
  const unsigned threads = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 0;
  lowbit::QuantSpec spec;
  spec.bits = argc > 4 ? std::atoi(argv[4]) : 4;
  spec.group_size = argc > 5 ? std::atoi(argv[5]) : 128;
  lowbit::gptq::GptqOptions opt;
  opt.act_order = argc > 6 && std::atoi(argv[6]) != 0;
  opt.threads = threads;
  opt.compute_errors = false;
  // H = 2/n XᵀX from n = 2K correlated samples (fp32 accumulation, as published)
  const std::size_t n = argc > 7 ? std::strtoul(argv[7], nullptr, 10) : 2 * K;  // calibration samples
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> X(n * K);
  for (auto& x : X) x = nd(rng);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t k = 1; k < K; ++k) X[s * K + k] += 0.5f * X[s * K + k - 1];
  const auto th0 = std::chrono::steady_clock::now();
  lowbit::gptq::Hessian<float> h(K, threads);
  h.add_batch(X.data(), n);
  const double th = std::chrono::duration<double>(std::chrono::steady_clock::now() - th0).count();
  std::vector<float> W(N * K);
  for (auto& w : W) w = 0.02f * nd(rng);
  const auto res = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, h.matrix().data(), spec, opt);
  std::printf("{\"K\": %zu, \"N\": %zu, \"threads\": %u, \"bits\": %d, \"group\": %d, \"act_order\": %d, "
              "\"hessian_s\": %.3f, \"hessian_samples\": %zu, \"factor_s\": %.3f, \"columns_s\": %.3f, \"total_s\": %.3f}\n",
              K, N, lowbit::detail::resolve_threads(threads), spec.bits, spec.group_size, opt.act_order ? 1 : 0, th, n,
              res.report.factor_seconds, res.report.solve_seconds, res.report.seconds);
  return 0;
}
