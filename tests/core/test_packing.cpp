// Packing layouts against the published GPTQ layout and independent bit-by-bit references.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include <lowbit/packing.hpp>

namespace {

// Independent reference: an explicit bit array, bit (i*B + j) = bit j of code i, then words
// assembled from 32 consecutive bits. Shares nothing with stream_get/stream_set.
template <int B>
std::vector<std::uint32_t> reference_stream(const std::vector<int>& codes) {
  std::vector<int> bitarr;
  for (int c : codes)
    for (int j = 0; j < B; ++j) bitarr.push_back((c >> j) & 1);
  std::vector<std::uint32_t> words(bitarr.size() / 32, 0);
  for (std::size_t b = 0; b < bitarr.size(); ++b)
    if (bitarr[b]) words[b / 32] |= 1u << (b % 32);
  return words;
}

}  // namespace

TEST_CASE("4-bit codes 0..7 pack into 0x76543210 (published GPTQ layout)") {
  std::vector<int> codes{0, 1, 2, 3, 4, 5, 6, 7};
  std::uint32_t w = 0;
  lowbit::GptqQWeightLayout<4>::pack(codes.data(), 8, 1, &w);
  CHECK(w == 0x76543210u);
}

TEST_CASE("2-bit and 8-bit hand examples") {
  std::vector<int> c8{0x11, 0x22, 0x33, 0x44};
  std::uint32_t w8 = 0;
  lowbit::GptqQWeightLayout<8>::pack(c8.data(), 4, 1, &w8);
  CHECK(w8 == 0x44332211u);
  std::vector<int> c2(16, 0);
  c2[0] = 3;   // bits 0-1
  c2[15] = 2;  // bits 30-31 -> 0b10 << 30
  std::uint32_t w2 = 0;
  lowbit::GptqQWeightLayout<2>::pack(c2.data(), 16, 1, &w2);
  CHECK(w2 == (3u | (2u << 30)));
}

TEST_CASE("3-bit codes straddle words exactly as the published packer") {
  // Code 10 puts its low 2 bits in bits 30-31 of word 0 and its high bit in bit 0 of word 1;
  // code 21 puts its low bit in bit 31 of word 1 and its high 2 bits in bits 0-1 of word 2.
  std::vector<int> codes(32, 0);
  codes[10] = 0b101;
  codes[21] = 0b110;
  std::uint32_t w[3] = {};
  lowbit::GptqQWeightLayout<3>::pack(codes.data(), 32, 1, w);
  CHECK(w[0] == (0b01u << 30));
  CHECK(w[1] == (1u | (0u << 31)));
  CHECK(w[2] == 0b11u);
}

TEMPLATE_TEST_CASE_SIG("bit stream matches an independent bit-array reference", "", ((int B), B), 1, 2, 3, 4,
                       5, 6, 7, 8) {
  using T = lowbit::Bits<B>;
  std::mt19937 rng(1234 + B);
  const int n = T::values_per_pack * 5;
  std::vector<int> codes(n);
  for (auto& c : codes) c = static_cast<int>(rng() % T::num_codes);
  std::vector<std::uint32_t> words(lowbit::GptqQWeightLayout<B>::packed_size(n, 1));
  lowbit::GptqQWeightLayout<B>::pack(codes.data(), n, 1, words.data());
  CHECK(words == reference_stream<B>(codes));
}

TEMPLATE_TEST_CASE_SIG("pack/unpack round trip on odd shapes, both axes", "", ((int B), B), 2, 3, 4, 8) {
  using T = lowbit::Bits<B>;
  std::mt19937 rng(99 + B);
  for (std::size_t rows_packs : {1u, 3u, 7u}) {
    for (std::size_t other : {1u, 5u, 33u}) {
      const std::size_t rows = rows_packs * T::values_per_pack;
      std::vector<int> codes(rows * other);
      for (auto& c : codes) c = static_cast<int>(rng() % T::num_codes);
      using K = lowbit::GptqQWeightLayout<B>;
      std::vector<std::uint32_t> q(K::packed_size(rows, other));
      K::pack(codes.data(), rows, other, q.data());
      std::vector<int> back(codes.size());
      K::unpack(q.data(), rows, other, back.data());
      CHECK(back == codes);
      // the same codes transposed, packed along columns
      using Z = lowbit::GptqQZerosLayout<B>;
      std::vector<int> t(codes.size());
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < other; ++c) t[c * rows + r] = codes[r * other + c];
      std::vector<std::uint32_t> z(Z::packed_size(other, rows));
      Z::pack(t.data(), other, rows, z.data());
      std::vector<int> tb(t.size());
      Z::unpack(z.data(), other, rows, tb.data());
      CHECK(tb == t);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < other; ++c)
          REQUIRE(Z::get(z.data(), other, rows, c, r) == K::get(q.data(), rows, other, r, c));
    }
  }
}

TEST_CASE("packing rejects bad shapes and out-of-range codes") {
  std::vector<int> codes(31, 0);
  std::vector<std::uint32_t> w(3);
  CHECK_THROWS_AS(lowbit::GptqQWeightLayout<3>::pack(codes.data(), 31, 1, w.data()), lowbit::Error);
  std::vector<int> big{16, 0, 0, 0, 0, 0, 0, 0};
  CHECK_THROWS_WITH(lowbit::GptqQWeightLayout<4>::pack(big.data(), 8, 1, w.data()),
                    Catch::Contains("does not fit in 4 bits"));
}
