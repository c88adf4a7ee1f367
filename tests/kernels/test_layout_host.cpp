// Host tests of the kernel layout (TiledLayout, scale interleave, tile_weight) and the reference GEMM.
#include <catch2/catch.hpp>

#include <lowbit/kernels/layout.hpp>
#include <lowbit/kernels/reference.hpp>

#include <random>
#include <set>

using namespace lowbit;
using namespace lowbit::kernels;

namespace {
template <int B>
std::vector<std::uint8_t> random_codes(std::size_t K, std::size_t N, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(0, Bits<B>::max_code);
  std::vector<std::uint8_t> c(K * N);
  for (auto& v : c) v = static_cast<std::uint8_t>(d(rng));
  return c;
}

QuantizedWeight random_weight(int bits, std::size_t K, std::size_t N, std::size_t group, bool sym, bool act_order,
                              std::mt19937& rng) {
  QuantizedWeight q;
  q.spec.bits = bits;
  q.spec.group_size = static_cast<int>(group);
  q.spec.sym = sym;
  q.K = K;
  q.N = N;
  const std::size_t G = K / group;
  std::uniform_int_distribution<int> dc(0, (1 << bits) - 1);
  std::uniform_real_distribution<float> ds(0.001f, 0.05f);
  q.codes.resize(K * N);
  for (auto& v : q.codes) v = static_cast<std::uint8_t>(dc(rng));
  q.scales.resize(G * N);
  for (auto& s : q.scales) s = round_to_half(ds(rng));
  q.zeros.resize(G * N);
  for (auto& z : q.zeros) z = static_cast<std::uint8_t>(sym ? (1 << (bits - 1)) : dc(rng));
  q.g_idx.resize(K);
  for (std::size_t k = 0; k < K; ++k) q.g_idx[k] = static_cast<std::int32_t>(k / group);
  if (act_order) std::shuffle(q.g_idx.begin(), q.g_idx.end(), rng);
  return q;
}
}  // namespace

TEMPLATE_TEST_CASE_SIG("TiledLayout pack/unpack round trip on odd shapes", "[kernels][layout]", ((int B), B), 2, 3, 4,
                       8) {
  std::mt19937 rng(1234 + B);
  for (auto [K, N] : {std::pair<std::size_t, std::size_t>{64, 64}, {192, 320}, {448, 64}}) {
    const auto codes = random_codes<B>(K, N, rng);
    std::vector<std::uint32_t> w(TiledLayout<B>::packed_size(K, N));
    REQUIRE(w.size() * 32 == K * N * B);
    TiledLayout<B>::pack(codes.data(), K, N, w.data());
    std::vector<std::uint8_t> back(K * N);
    TiledLayout<B>::unpack(w.data(), K, N, back.data());
    REQUIRE(back == codes);
  }
}

TEMPLATE_TEST_CASE_SIG("TiledLayout places each lane's mma B fragments where the PTX ISA says", "[kernels][layout]",
                       ((int B), B), 2, 3, 4, 8) {
  // Independent statement of m16n8k16's B fragment: lane l = 4g + t holds b0 = (k 2t, 2t+1; n g) and
  // b1 = (k 2t+8, 2t+9; n g). Every (lane, pair, half) must be hit exactly once per tile.
  const std::size_t K = 128, N = 128;
  std::set<std::tuple<std::size_t, int, int, int>> seen;
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t n = 0; n < N; ++n) {
      const auto p = TiledLayout<B>::locate(K, k, n);
      const int ks = p.pair / 16, j = (p.pair / 2) % 8, h = p.pair % 2, g = p.lane / 4, t = p.lane % 4;
      REQUIRE(static_cast<int>(k % 64) == 16 * ks + 2 * t + 8 * h + p.half);
      REQUIRE(static_cast<int>(n % 64) == 8 * j + g);
      REQUIRE(p.tile == ((n / 64) * (K / 64) + k / 64) * TiledLayout<B>::words_per_tile);
      REQUIRE(seen.insert({p.tile, p.lane, p.pair, p.half}).second);
    }
  REQUIRE(seen.size() == K * N);
}

TEMPLATE_TEST_CASE_SIG("paired extraction (word >> s) & (mask | mask << 16) matches the layout when B divides 16",
                       "[kernels][layout]", ((int B), B), 2, 4, 8) {
  std::mt19937 rng(77);
  const std::size_t K = 64, N = 64;
  const auto codes = random_codes<B>(K, N, rng);
  std::vector<std::uint32_t> w(TiledLayout<B>::packed_size(K, N));
  TiledLayout<B>::pack(codes.data(), K, N, w.data());
  constexpr std::uint32_t pair_mask = Bits<B>::mask | (Bits<B>::mask << 16);
  for (std::size_t k = 0; k < K; k += 2)
    for (std::size_t n = 0; n < N; ++n) {
      const auto p = TiledLayout<B>::locate(K, k, n);
      REQUIRE(p.half == 0);
      const std::uint32_t word = w[p.tile + TiledLayout<B>::lane_word_offset(p.lane, p.pair * B / 16)];
      const std::uint32_t x = (word >> (p.pair * B % 16)) & pair_mask;
      REQUIRE((x & 0xffffu) == codes[k * N + n]);
      REQUIRE((x >> 16) == codes[(k + 1) * N + n]);
    }
}

TEST_CASE("scale interleave is a permutation within each 64-column slab", "[kernels][layout]") {
  std::set<std::size_t> s;
  for (std::size_t n = 0; n < 192; ++n) {
    const std::size_t p = scale_position(n);
    REQUIRE(p / 64 == n / 64);
    REQUIRE(scale_column(p) == n);
    s.insert(p);
  }
  REQUIRE(s.size() == 192);
  REQUIRE(scale_position(8) == 1);  // column 8 (n8-tile 1, row 0) sits next to column 0
}

TEST_CASE("tile_weight: act-order permutation makes groups contiguous and keeps every code", "[kernels][layout]") {
  std::mt19937 rng(5);
  for (int bits : {2, 3, 4, 8}) {
    for (bool act : {false, true}) {
      const auto q = random_weight(bits, 256, 128, 64, bits == 4, act, rng);
      const auto t = tile_weight(q);
      REQUIRE(t.meta.act_order == act);
      REQUIRE(t.meta.sym == (bits == 4));
      REQUIRE(t.meta.group_size == 64);
      dispatch_bits(bits, [&](auto Bc) {
        constexpr int Bv = decltype(Bc)::value;
        for (std::size_t k = 0; k < q.K; ++k) {
          const std::size_t orig = act ? static_cast<std::size_t>(t.perm[k]) : k;
          REQUIRE(static_cast<std::size_t>(q.g_idx[orig]) == k / 64);
          for (std::size_t n = 0; n < q.N; n += 7)
            REQUIRE(TiledLayout<Bv>::get(t.qweight.data(), q.K, q.N, k, n) == q.codes[orig * q.N + n]);
        }
      });
      for (std::size_t g = 0; g < q.groups(); ++g)
        for (std::size_t n = 0; n < q.N; ++n) {
          REQUIRE(half_bits_to_float(t.scales[g * q.N + scale_position(n)]) == q.scales[g * q.N + n]);
          REQUIRE(t.zeros[g * q.N + scale_position(n)] == q.zeros[g * q.N + n]);
        }
    }
  }
}

TEST_CASE("tiled_weight_bytes is the size of every array tile_weight produces", "[kernels][layout]") {
  std::mt19937 rng(7);
  const std::size_t K = 256, N = 192;
  for (int bits : {2, 3, 4, 8})
    for (std::size_t group : {std::size_t{32}, std::size_t{64}, std::size_t{128}, K})  // K: one group
      for (int act = 0; act < 2; ++act) {
        const HostTiledWeight t = tile_weight(random_weight(bits, K, N, group, false, act != 0, rng));
        const std::size_t arrays = t.qweight.size() * 4 + t.scales.size() * 2 + t.zeros.size() + t.perm.size() * 4;
        INFO("bits " << bits << " group " << group << " act-order " << act);
        CHECK(t.meta.act_order == (act != 0 && group < K));
        CHECK(tiled_weight_bytes(t.meta) == arrays);
      }
}

TEST_CASE("tile_weight rejects shapes and groupings the kernels cannot run", "[kernels][layout]") {
  std::mt19937 rng(6);
  auto q = random_weight(4, 128, 96, 64, false, false, rng);
  CHECK_THROWS_WITH(tile_weight(q), Catch::Contains("multiples of 64"));
  q = random_weight(4, 192, 64, 96, false, false, rng);
  CHECK_THROWS_WITH(tile_weight(q), Catch::Contains("group size 96"));
  q = random_weight(4, 128, 64, 64, false, false, rng);
  q.g_idx[0] = 1;  // group 1 now has 65 members
  CHECK_THROWS_WITH(tile_weight(q), Catch::Contains("exactly 64 members"));
  q.g_idx[0] = 7;
  CHECK_THROWS_WITH(tile_weight(q), Catch::Contains("outside"));
  q = random_weight(4, 128, 64, 64, false, false, rng);
  q.scales[3] = 1e-9f;  // not an fp16 value
  CHECK_THROWS_WITH(tile_weight(q), Catch::Contains("fp16"));
}

TEST_CASE("reference_gemm: hand example and act-order invariance", "[kernels][reference]") {
  QuantizedWeight q;
  q.spec.bits = 2;
  q.K = 2;
  q.N = 1;
  q.codes = {3, 1};
  q.scales = {0.5f};
  q.zeros = {2};
  q.g_idx = {0, 0};
  const float A[2] = {2.f, 4.f}, bias = 0.25f;
  // w = 0.5 * ({3, 1} - 2) = {0.5, -0.5}; y = 2*0.5 - 4*0.5 + 0.25
  REQUIRE(reference_gemm(q, A, 1, &bias)[0] == -0.75f);

  // Permuting input columns of both A and the weight (codes + g_idx) leaves Y unchanged.
  std::mt19937 rng(9);
  const auto w = random_weight(3, 128, 64, 32, false, true, rng);
  const std::size_t M = 3;
  std::vector<float> a(M * w.K);
  std::normal_distribution<float> dn;
  for (auto& v : a) v = round_to_half(dn(rng));
  std::vector<std::size_t> p(w.K);
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), rng);
  QuantizedWeight w2 = w;
  std::vector<float> a2(a.size());
  for (std::size_t k = 0; k < w.K; ++k) {
    w2.g_idx[k] = w.g_idx[p[k]];
    for (std::size_t n = 0; n < w.N; ++n) w2.codes[k * w.N + n] = w.codes[p[k] * w.N + n];
    for (std::size_t m = 0; m < M; ++m) a2[m * w.K + k] = a[m * w.K + p[k]];
  }
  const auto y1 = reference_gemm(w, a.data(), M), y2 = reference_gemm(w2, a2.data(), M);
  REQUIRE(relative_error(y1, y2) < 1e-6);
  REQUIRE(relative_error(y1, y1) == 0.0);
}
