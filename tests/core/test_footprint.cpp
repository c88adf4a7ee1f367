// Checkpoint footprint against the sizes of actually packed tensors, and the deployment math
// against the published 70B / 4-bit figure.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/footprint.hpp>
#include <lowbit/numeric.hpp>
#include <lowbit/packing.hpp>
#include <lowbit/quant.hpp>

TEMPLATE_TEST_CASE_SIG("gptq_footprint equals the bytes of the packed checkpoint tensors", "[core][footprint]",
                       ((int B, int G), B, G), (2, 0), (2, 32), (2, 128), (3, 0), (3, 32), (3, 64), (3, 128), (4, 0),
                       (4, 64), (4, 128), (8, 0), (8, 32), (8, 128)) {
  // K a multiple of 128 and of every pack length; N a multiple of 32 (3-bit qzeros need it), not a power of 2.
  const std::size_t K = 384, N = 96;
  lowbit::QuantSpec spec;
  spec.bits = B;
  spec.group_size = G;
  std::mt19937 rng(B * 100 + G);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> W(N * K);
  for (auto& w : W) w = d(rng);
  const lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), N, K, spec);
  const std::size_t Gn = q.groups();

  // Pack what a checkpoint writer stores and measure the vectors.
  using QW = lowbit::GptqQWeightLayout<B>;
  using QZ = lowbit::GptqQZerosLayout<B>;
  std::vector<std::uint32_t> qweight(QW::packed_size(K, N));
  QW::pack(q.codes.data(), K, N, qweight.data());
  std::vector<std::uint32_t> qzeros(QZ::packed_size(Gn, N));
  QZ::pack(q.zeros.data(), Gn, N, qzeros.data());
  std::vector<lowbit::half_t> scales;
  for (float s : q.scales) scales.emplace_back(s);
  const std::vector<std::int32_t> g_idx = q.g_idx;
  const std::vector<lowbit::half_t> bias(N);

  for (bool with_g : {false, true}) {
    for (bool with_b : {false, true}) {
      const lowbit::Footprint f = lowbit::gptq_footprint(N, K, spec, with_g, with_b);
      CHECK(f.codes == qweight.size() * sizeof(std::uint32_t));
      CHECK(f.zeros == qzeros.size() * sizeof(std::uint32_t));
      CHECK(f.scales == scales.size() * sizeof(lowbit::half_t));
      CHECK(f.g_idx == (with_g ? g_idx.size() * sizeof(std::int32_t) : 0u));
      CHECK(f.bias == (with_b ? bias.size() * sizeof(lowbit::half_t) : 0u));
      CHECK(f.total == f.codes + f.zeros + f.scales + f.g_idx + f.bias);
      CHECK(f.bits_per_weight == Approx(8.0 * static_cast<double>(f.total) / static_cast<double>(N * K)));
      // The published tensor shapes: qweight int32 [K*b/32, N], qzeros int32 [G, N*b/32].
      CHECK(f.codes == K * B / 32 * N * 4);
      CHECK(f.zeros == Gn * (N * B / 32) * 4);
    }
  }
  // Codes alone cost exactly B bits per weight.
  CHECK(8.0 * static_cast<double>(lowbit::gptq_footprint(N, K, spec).codes) / static_cast<double>(N * K) == B);
}

TEST_CASE("g128 4-bit overhead and fp16 ratio", "[core][footprint]") {
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 128;
  const std::size_t N = 4096, K = 4096;
  const lowbit::Footprint f = lowbit::gptq_footprint(N, K, spec, false);
  // Per group of 128 weights: one fp16 scale (16 bits) + one 4-bit zero = 20 bits -> 0.15625 bits/weight.
  CHECK(f.bits_per_weight == Approx(4.0 + 20.0 / 128.0).epsilon(1e-12));
  CHECK(lowbit::fp16_bytes(N, K) == N * K * 2);
}

TEST_CASE("gptq_footprint rejects shapes the GPTQ packing cannot hold", "[core][footprint]") {
  lowbit::QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 32;
  CHECK_THROWS_WITH(lowbit::gptq_footprint(48, 64, spec), Catch::Contains("qzeros"));   // N not a multiple of 32
  CHECK_THROWS_WITH(lowbit::gptq_footprint(64, 48, spec), Catch::Contains("divide"));   // group 32 vs K 48
  spec.group_size = 16;
  CHECK_THROWS_WITH(lowbit::gptq_footprint(64, 48, spec), Catch::Contains("qweight"));  // K not a multiple of 32
  spec.bits = 5;
  CHECK_THROWS_AS(lowbit::gptq_footprint(64, 64, spec), lowbit::Error);
  spec.bits = 4;
  CHECK_THROWS_AS(lowbit::gptq_footprint(0, 64, spec), lowbit::Error);
}

TEST_CASE("deployment math: 70B parameters at 4 bits are 32.6 GiB of raw codes", "[core][footprint]") {
  const double expected = 70e9 * 4.0 / 8.0 / (1024.0 * 1024.0 * 1024.0);
  const double gib = lowbit::deployment_gib(70e9, 4.0);
  CHECK(gib == Approx(expected).epsilon(1e-12));
  CHECK(std::abs(gib - 32.6) < 0.05);  // the published figure
  // Metadata is added in bytes.
  CHECK(lowbit::deployment_gib(0, 4.0, 1024.0 * 1024.0 * 1024.0) == Approx(1.0));
  CHECK(lowbit::deployment_gib(70e9, 16.0) == Approx(4.0 * expected));
}
