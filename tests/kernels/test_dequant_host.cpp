// Host tests of the dequantization primitives (kernels/dequant.cuh) and the lop3/prmt models under them,
// compiled by the host C++ compiler so CI (and its ASan/UBSan build) checks the bit tricks without a GPU.
// Every expectation comes from an independent reference: the PTX ISA definition of lop3/prmt, the mma
// fragment layout written out per lane, small exact integers, and IEEE round-to-nearest-even done on
// exact integers (128-bit) by this file's own rounding routine.
#include <catch2/catch.hpp>

#include <lowbit/kernels/dequant.cuh>

#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

using namespace lowbit;
using namespace lowbit::kernels;

namespace {

// ------------------------------------------------------------------------------------------------
// Exact IEEE reference: a value is sign * mag * 2^exp with an integer magnitude (128-bit).
// ------------------------------------------------------------------------------------------------
__extension__ typedef unsigned __int128 u128;

struct Exact {
  bool neg = false;  // sign (also of a zero)
  u128 mag = 0;      // magnitude
  int exp = 0;       // scale: value = mag * 2^exp
};

/// Binary format of T: significant bits (hidden bit included), exponent bias, exponent field width.
struct Format {
  int p, bias, ebits;
};
template <class T>
constexpr Format format_of() {
  return std::is_same_v<T, half_t> ? Format{11, 15, 5} : Format{8, 127, 8};
}

int bit_length(u128 m) {
  int n = 0;
  while (m) {
    m >>= 1;
    ++n;
  }
  return n;
}

/// The exact value of finite T bits.
template <class T>
Exact exact_of(std::uint32_t bits) {
  constexpr Format f = format_of<T>();
  const int total = f.p + f.ebits;  // 16
  const std::uint32_t e = (bits >> (f.p - 1)) & ((1u << f.ebits) - 1u), m = bits & ((1u << (f.p - 1)) - 1u);
  Exact x;
  x.neg = (bits >> (total - 1)) & 1u;
  if (e == 0) {
    x.mag = m;
    x.exp = 1 - f.bias - (f.p - 1);
  } else {
    x.mag = m | (1u << (f.p - 1));
    x.exp = static_cast<int>(e) - f.bias - (f.p - 1);
  }
  return x;
}

/// The exact value of a finite float.
Exact exact_of_float(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  Exact x;
  x.neg = u >> 31;
  const std::uint32_t e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
  x.mag = e ? (m | 0x800000u) : m;
  x.exp = (e ? static_cast<int>(e) : 1) - 127 - 23;
  return x;
}

/// T bits of x rounded to nearest, ties to even, with subnormals and overflow to infinity.
template <class T>
std::uint32_t round_to(const Exact& x) {
  constexpr Format f = format_of<T>();
  const std::uint32_t sign = x.neg ? 1u << (f.p + f.ebits - 1) : 0u;
  if (x.mag == 0) return sign;
  const int emin = 1 - f.bias, emax = f.bias;
  const int top = bit_length(x.mag) - 1 + x.exp;  // exponent of the leading bit
  int q = (top < emin ? emin : top) - (f.p - 1);  // exponent of the result's last bit
  const int shift = q - x.exp;
  u128 m;
  if (shift <= 0) {
    m = x.mag << -shift;  // exact (the value is a multiple of 2^q)
  } else if (shift > bit_length(x.mag)) {
    m = 0;  // below half a step
  } else {
    m = x.mag >> shift;
    const u128 rem = x.mag - (m << shift), half = u128(1) << (shift - 1);
    if (rem > half || (rem == half && (m & 1))) ++m;
  }
  if (m >> f.p) {  // carried into a new binade
    m >>= 1;
    ++q;
  }
  if (m == 0) return sign;
  const std::uint32_t mm = static_cast<std::uint32_t>(m);
  if (!(mm >> (f.p - 1))) return sign | mm;  // subnormal
  const int efield = q + (f.p - 1) + f.bias;
  if (q + (f.p - 1) > emax) return sign | (((1u << f.ebits) - 1u) << (f.p - 1));  // infinity
  return sign | (static_cast<std::uint32_t>(efield) << (f.p - 1)) | (mm & ((1u << (f.p - 1)) - 1u));
}

/// Exact product.
Exact mul(const Exact& a, const Exact& b) { return {a.neg != b.neg, a.mag * b.mag, a.exp + b.exp}; }

/// Exact sum, as IEEE defines it under round-to-nearest (x + (-x) = +0, (-0) + (-0) = -0). When the
/// operands' leading bits are more than 80 binades apart, the smaller one is replaced by a smaller value
/// of the same sign, so the sum fits in 128 bits: the larger has at most 22 significant bits here, so
/// its distance to any T rounding boundary is 0 or at least 2^-21 of it, and either small value can
/// only break a tie in its own direction or change nothing.
Exact add(Exact a, Exact b) {
  if (a.mag == 0 && b.mag == 0) return {a.neg && b.neg, 0, 0};
  if (a.mag == 0) return b;
  if (b.mag == 0) return a;
  const int ta = bit_length(a.mag) - 1 + a.exp, tb = bit_length(b.mag) - 1 + b.exp;
  if (ta - tb > 80) b = {b.neg, 1, ta - 90};
  if (tb - ta > 80) a = {a.neg, 1, tb - 90};
  const int e = std::min(a.exp, b.exp);
  const u128 ma = a.mag << (a.exp - e), mb = b.mag << (b.exp - e);
  if (a.neg == b.neg) return {a.neg, ma + mb, e};
  if (ma == mb) return {false, 0, 0};
  return ma > mb ? Exact{a.neg, ma - mb, e} : Exact{b.neg, mb - ma, e};
}

template <class T>
bool is_finite(std::uint32_t bits) {
  constexpr Format f = format_of<T>();
  const std::uint32_t emask = ((1u << f.ebits) - 1u) << (f.p - 1);
  return (bits & emask) != emask;
}

/// T bits of a small exact value (an integer times a power of two), through the reference rounding.
template <class T>
std::uint32_t bits_of(long long n, int exp = 0) {
  return round_to<T>({n < 0, static_cast<u128>(n < 0 ? -n : n), exp});
}

template <class T>
std::uint32_t pair_of(std::uint32_t lo, std::uint32_t hi) {
  return lo | (hi << 16);
}

// ------------------------------------------------------------------------------------------------
// Layout reference: a lane's words written out from the TiledLayout stream definition.
// ------------------------------------------------------------------------------------------------

/// Lane words holding codes lo[q] (low 16-bit stream) and hi[q] (high stream) at bit q*B of the stream.
template <int B>
std::array<std::uint32_t, TiledLayout<B>::words_per_lane> lane_words(const std::array<std::uint32_t, 64>& lo,
                                                                     const std::array<std::uint32_t, 64>& hi) {
  std::array<std::uint32_t, TiledLayout<B>::words_per_lane> w{};
  for (int q = 0; q < 64; ++q)
    for (int i = 0; i < B; ++i) {
      const int bit = q * B + i;
      w[bit / 16] |= ((lo[q] >> i) & 1u) << (bit % 16);
      w[bit / 16] |= ((hi[q] >> i) & 1u) << (bit % 16 + 16);
    }
  return w;
}

template <int B>
using Words = std::uint32_t[TiledLayout<B>::words_per_lane];

/// Overwrites pair q of lane words with codes lo (low stream) and hi (high stream).
template <int B>
void put_pair(Words<B>& w, int q, std::uint32_t lo, std::uint32_t hi) {
  for (int i = 0; i < B; ++i) {
    const int bit = q * B + i;
    std::uint32_t& word = w[bit / 16];
    word &= ~((1u << (bit % 16)) | (1u << (bit % 16 + 16)));
    word |= ((lo >> i) & 1u) << (bit % 16) | ((hi >> i) & 1u) << (bit % 16 + 16);
  }
}

/// A 64x64 tile of codes packed by the library's host packer, read back per lane.
template <int B>
struct PackedTile {
  std::vector<std::uint8_t> codes;  // [64, 64] row-major (k, n)
  std::vector<std::uint32_t> words;
  PackedTile(std::vector<std::uint8_t> c) : codes(std::move(c)), words(TiledLayout<B>::packed_size(64, 64)) {
    TiledLayout<B>::pack(codes.data(), 64, 64, words.data());
  }
  void lane(int l, Words<B>& w) const {
    for (int i = 0; i < TiledLayout<B>::words_per_lane; ++i) w[i] = words[TiledLayout<B>::lane_word_offset(l, i)];
  }
  /// Codes of pair q of lane l from the mma.m16n8k16 B fragment definition: lane 4g + t, pair
  /// 2*(8ks + j) + h holds (k = 16ks + 8h + 2t + {0, 1}, n = 8j + g).
  std::uint32_t pair(int l, int q) const {
    const int g = l / 4, t = l % 4, h = q % 2, j = (q / 2) % 8, ks = q / 16;
    const int k = 16 * ks + 8 * h + 2 * t, n = 8 * j + g;
    return codes[k * 64 + n] | (static_cast<std::uint32_t>(codes[(k + 1) * 64 + n]) << 16);
  }
};

template <int B>
std::vector<std::uint8_t> tile_codes(std::mt19937& rng, int pattern) {
  std::vector<std::uint8_t> c(64 * 64);
  std::uniform_int_distribution<int> d(0, (1 << B) - 1);
  for (int i = 0; i < 64 * 64; ++i) {
    switch (pattern) {
      case 0: c[i] = static_cast<std::uint8_t>(d(rng)); break;
      case 1: c[i] = static_cast<std::uint8_t>((1 << B) - 1); break;                      // all ones
      case 2: c[i] = static_cast<std::uint8_t>((i + i / 64) % 2 ? (1 << B) - 1 : 0); break;  // checkerboard
      default: c[i] = static_cast<std::uint8_t>((i * 37 + pattern) % (1 << B)); break;
    }
  }
  return c;
}

template <std::size_t... L>
void check_all_luts(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::index_sequence<L...>) {
  const auto one = [&](auto lut) {
    constexpr int Lut = decltype(lut)::value;
    std::uint32_t ref = 0;
    for (int i = 0; i < 32; ++i) {
      const int row = static_cast<int>(((a >> i) & 1u) << 2 | ((b >> i) & 1u) << 1 | ((c >> i) & 1u));
      ref |= static_cast<std::uint32_t>((Lut >> row) & 1) << i;
    }
    REQUIRE(ptx::lop3<Lut>(a, b, c) == ref);
    // the PTX ISA's rule for the immediate: Lut = F(0xF0, 0xCC, 0xAA) (bits above 7 see a = b = c = 0)
    REQUIRE((ptx::lop3<Lut>(0xF0u, 0xCCu, 0xAAu) & 0xffu) == static_cast<std::uint32_t>(Lut));
  };
  (one(std::integral_constant<int, static_cast<int>(L)>{}), ...);
}

}  // namespace

TEST_CASE("ptx::lop3 and ptx::prmt host models follow the PTX ISA", "[kernels][dequant]") {
  std::mt19937 rng(7);
  for (int it = 0; it < 20; ++it) check_all_luts(rng(), rng(), rng(), std::make_index_sequence<256>{});
  for (int it = 0; it < 1000; ++it) {
    const std::uint32_t a = rng(), b = rng(), c = rng();
    REQUIRE(ptx::lop3<ptx::kLutAndOr>(a, b, c) == ((a & b) | c));
  }
  // prmt: byte i of the result is byte (sel >> 4i) & 7 of {b, a}; bit 3 of the nibble replicates its sign
  for (int it = 0; it < 2000; ++it) {
    const std::uint32_t a = rng(), b = rng(), sel = rng() & 0xffffu;
    const std::uint8_t bytes[8] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(a >> 8),
                                   static_cast<std::uint8_t>(a >> 16), static_cast<std::uint8_t>(a >> 24),
                                   static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(b >> 8),
                                   static_cast<std::uint8_t>(b >> 16), static_cast<std::uint8_t>(b >> 24)};
    std::uint32_t ref = 0;
    for (int i = 0; i < 4; ++i) {
      const unsigned n = (sel >> (4 * i)) & 0xfu;
      const std::uint32_t v = (n & 8u) ? ((bytes[n & 7u] & 0x80u) ? 0xffu : 0u) : bytes[n & 7u];
      ref |= v << (8 * i);
    }
    REQUIRE(ptx::prmt(a, b, sel) == ref);
  }
  const std::uint32_t a = 0x83828180u, b = 0x07060504u;
  CHECK(ptx::prmt<0x3210u>(a, b) == a);
  CHECK(ptx::prmt<0x7654u>(a, b) == b);
  CHECK(ptx::prmt<0x7551u>(a, b) == 0x07050581u);  // the selectors decode_centered_pair uses
  CHECK(ptx::prmt<0x7553u>(a, b) == 0x07050583u);
  CHECK(ptx::prmt<0x7552u>(a, b) == 0x07050582u);
  CHECK(ptx::prmt<0x7351u>(a, b) == 0x07830581u);
  CHECK(ptx::prmt<0x0008u>(a, b) == 0x808080ffu);  // sign of byte 0 (0x80) replicated
  CHECK(ptx::prmt<0x000cu>(a, b) == 0x80808000u);  // sign of byte 4 (0x04) replicated
}

TEMPLATE_TEST_CASE("ElementOps host arithmetic rounds once to nearest even", "[kernels][dequant]", half_t, bfloat16_t) {
  using T = TestType;
  using Ops = ElementOps<T>;
  std::mt19937 rng(std::is_same_v<T, half_t> ? 11 : 12);
  // random finite bits over the whole range (subnormals, overflow to infinity included), and values
  // of nearby magnitude (where sums cancel and ties are frequent)
  const auto draw = [&](int mode) -> std::uint32_t {
    for (;;) {
      std::uint32_t v = rng() & 0xffffu;
      if (mode == 1) {  // exponents 2^0 .. 2^7, random sign and mantissa
        constexpr std::uint32_t mant = (1u << (format_of<T>().p - 1)) - 1u;
        v = (v & (0x8000u | mant)) | ((format_of<T>().bias + rng() % 8) << (format_of<T>().p - 1));
      }
      if (is_finite<T>(v)) return v;
    }
  };
  int checked = 0;
  for (int it = 0; it < 60000; ++it) {
    const int mode = it % 2;
    const std::uint32_t a0 = draw(mode), a1 = draw(mode), b0 = draw(mode), b1 = draw(mode), c0 = draw(mode),
                        c1 = draw(mode);
    const std::uint32_t a = pair_of<T>(a0, a1), b = pair_of<T>(b0, b1), c = pair_of<T>(c0, c1);
    const Exact xa0 = exact_of<T>(a0), xa1 = exact_of<T>(a1), xb0 = exact_of<T>(b0), xb1 = exact_of<T>(b1);
    Exact nb0 = xb0, nb1 = xb1;
    nb0.neg = !nb0.neg;
    nb1.neg = !nb1.neg;
    INFO("a " << std::hex << a << " b " << b << " c " << c);
    REQUIRE(Ops::add2(a, b) == pair_of<T>(round_to<T>(add(xa0, xb0)), round_to<T>(add(xa1, xb1))));
    REQUIRE(Ops::sub2(a, b) == pair_of<T>(round_to<T>(add(xa0, nb0)), round_to<T>(add(xa1, nb1))));
    REQUIRE(Ops::mul2(a, b) == pair_of<T>(round_to<T>(mul(xa0, xb0)), round_to<T>(mul(xa1, xb1))));
    REQUIRE(Ops::fma2(a, b, c) == pair_of<T>(round_to<T>(add(mul(xa0, xb0), exact_of<T>(c0))),
                                             round_to<T>(add(mul(xa1, xb1), exact_of<T>(c1)))));
    ++checked;
  }
  CHECK(checked == 60000);
  // fma rounds once: (1 + 2^-p) * (1 - 2^-p) + (-1) = -2^-2p exactly, lost by a rounded product
  {
    constexpr int p = format_of<T>().p;
    const std::uint32_t x = bits_of<T>((1 << (p - 1)) + 1, -(p - 1)), y = bits_of<T>((1 << (p - 1)) - 1, -(p - 1));
    const std::uint32_t m1 = bits_of<T>(-1);
    CHECK(Ops::fma2(pair_of<T>(x, x), pair_of<T>(y, y), pair_of<T>(m1, m1)) ==
          pair_of<T>(bits_of<T>(-1, -2 * (p - 1)), bits_of<T>(-1, -2 * (p - 1))));
  }
  // pack2 / to_float / scale2 against the exact values
  for (int it = 0; it < 20000; ++it) {
    std::uint32_t u = rng();
    if (((u >> 23) & 0xffu) == 0xffu) continue;  // finite floats only
    float f;
    std::memcpy(&f, &u, 4);
    const std::uint32_t r = round_to<T>(exact_of_float(f));
    REQUIRE(Ops::pack2(f, -f) == pair_of<T>(r, r ^ 0x8000u));
    const std::uint32_t v = rng() & 0xffffu;
    if (is_finite<T>(v)) {
      const Exact xv = exact_of<T>(v);
      const float tf = Ops::to_float(static_cast<std::uint16_t>(v));
      REQUIRE(static_cast<double>(tf) == (xv.neg ? -1.0 : 1.0) * std::ldexp(static_cast<double>(xv.mag), xv.exp));
      REQUIRE(std::signbit(tf) == xv.neg);
    }
    if (is_finite<half_t>(v)) {
      const std::uint32_t s = round_to<T>(exact_of<half_t>(v));
      REQUIRE(Ops::scale2(v) == pair_of<T>(s, s));
    }
  }
}

TEMPLATE_TEST_CASE_SIG("extract_pair returns the codes the host packer put at every pair", "[kernels][dequant]",
                       ((int B), B), 2, 3, 4, 8) {
  std::mt19937 rng(100 + B);
  for (int pattern = 0; pattern < 8; ++pattern) {
    const PackedTile<B> tile(tile_codes<B>(rng, pattern));
    for (int l = 0; l < 32; ++l) {
      Words<B> w;
      tile.lane(l, w);
      for (int q = 0; q < 64; ++q) {
        INFO("pattern " << pattern << " lane " << l << " q " << q);
        REQUIRE(extract_pair<B>(w, q) == tile.pair(l, q));
      }
    }
  }
  // every code value at every pair, both streams, among random neighbours (3-bit straddles included)
  for (int q = 0; q < 64; ++q)
    for (std::uint32_t c = 0; c < (1u << B); ++c) {
      std::array<std::uint32_t, 64> lo{}, hi{};
      for (int i = 0; i < 64; ++i) {
        lo[i] = rng() & Bits<B>::mask;
        hi[i] = rng() & Bits<B>::mask;
      }
      lo[q] = c;
      hi[q] = Bits<B>::mask - c;
      const auto wa = lane_words<B>(lo, hi);
      Words<B> w;
      std::copy(wa.begin(), wa.end(), w);
      REQUIRE(extract_pair<B>(w, q) == (lo[q] | hi[q] << 16));
    }
}

namespace {
/// decode_centered_pair for one (B, T, E1): every pair q, every zero z, every code in both halves.
template <int B, class T, int E1>
void check_centered() {
  using Ops = ElementOps<T>;
  std::mt19937 rng(1000 + 10 * B + E1);
  constexpr std::uint32_t mask = Bits<B>::mask;
  const double magic = static_cast<double>(Ops::to_float(static_cast<std::uint16_t>(Ops::magic)));
  REQUIRE(magic == (std::is_same_v<T, half_t> ? 1024.0 : 128.0));
  for (std::uint32_t z = 0; z <= mask; ++z) {
    // the caller's constants, from their definitions: -(magic + z), -(magic * 2^-E1 + z), 2^23 + z
    const std::uint32_t nz = bits_of<T>(-static_cast<long long>(magic) - z);
    const std::uint32_t nz2 = pair_of<T>(nz, nz);  // (magic path only; -(magic + z) rounds for bf16 8-bit)
    if constexpr (magic_exact_v<B, T>) REQUIRE(neg_biased_zero2<T>(z) == nz2);
    std::uint32_t nz2e = 0;
    if constexpr (E1 > 0) {
      const std::uint32_t nze = bits_of<T>(-((static_cast<long long>(magic) >> E1) + z));
      nz2e = pair_of<T>(nze, nze);
      // how the kernels build it (dequant.cuh's contract): nz2 + magic * (1 - 2^-E1), exact
      const std::uint32_t bias = bits_of<T>(static_cast<long long>(magic) - (static_cast<long long>(magic) >> E1));
      REQUIRE(Ops::add2(nz2, pair_of<T>(bias, bias)) == nz2e);
      REQUIRE(centered_e1_bias2<T, E1>() == pair_of<T>(bias, bias));  // the helper both kernels call
    }
    const float zf = 8388608.0f + static_cast<float>(z);
    std::vector<std::uint32_t> want(mask + 1);  // T bits of c - z
    for (std::uint32_t c = 0; c <= mask; ++c) want[c] = bits_of<T>(static_cast<long long>(c) - z);
    for (int q = 0; q < 64; ++q) {
      std::array<std::uint32_t, 64> lo{}, hi{};
      for (int i = 0; i < 64; ++i) {  // random neighbours: nothing may leak into pair q
        lo[i] = rng() & mask;
        hi[i] = rng() & mask;
      }
      const auto wa = lane_words<B>(lo, hi);
      Words<B> w;
      std::copy(wa.begin(), wa.end(), w);
      for (std::uint32_t c = 0; c <= mask; ++c) {
        const std::uint32_t c2 = (c * 5u + z + 3u) & mask;  // every code in the high half too
        put_pair<B>(w, q, c, c2);
        const std::uint32_t got = decode_centered_pair<B, T, E1>(w, q, nz2, nz2e, zf);
        if (got != pair_of<T>(want[c], want[c2])) {
          INFO("B " << B << " E1 " << E1 << " q " << q << " z " << z << " codes " << c << ", " << c2 << " got "
                    << std::hex << got << " want " << pair_of<T>(want[c], want[c2]));
          REQUIRE(got == pair_of<T>(want[c], want[c2]));
        }
      }
    }
  }
}
}  // namespace

TEMPLATE_TEST_CASE("decode_centered_pair gives c - z exactly for every pair, code and zero", "[kernels][dequant]",
                   half_t, bfloat16_t) {
  using T = TestType;
  // the second exponent offset the kernels may use, and none
  STATIC_REQUIRE(centered_e1_v<2, T> == 4);
  STATIC_REQUIRE(centered_e1_v<3, T> == 4);
  STATIC_REQUIRE(centered_e1_v<4, T> == (std::is_same_v<T, half_t> ? 4 : 0));
  STATIC_REQUIRE(centered_e1_v<8, T> == 0);
  check_centered<2, T, 0>();
  check_centered<2, T, centered_e1_v<2, T>>();
  check_centered<3, T, 0>();
  check_centered<3, T, centered_e1_v<3, T>>();
  check_centered<4, T, 0>();
  if constexpr (centered_e1_v<4, T> != 0) check_centered<4, T, centered_e1_v<4, T>>();
  check_centered<8, T, 0>();
}

TEMPLATE_TEST_CASE("neg_biased_zero_pairs builds -(magic + z) for each column's zero byte", "[kernels][dequant]",
                   half_t, bfloat16_t) {
  using T = TestType;
  const long long magic = std::is_same_v<T, half_t> ? 1024 : 128;
  // zero codes the magic path meets: < 2^8 for fp16 (8-bit codes), < 2^4 for bf16 (2-4 bits)
  const int zmax = std::is_same_v<T, half_t> ? 255 : 15;
  std::mt19937 rng(77);
  for (int j = 0; j < 8; ++j)
    for (int z = 0; z <= zmax; ++z) {
      std::uint8_t zb[8];
      for (auto& b : zb) b = static_cast<std::uint8_t>(rng() % (zmax + 1));  // random neighbours
      zb[j] = static_cast<std::uint8_t>(z);
      uint2 zv;
      std::memcpy(&zv, zb, 8);  // what the kernel's 8-byte load delivers (little-endian)
      std::uint32_t z2[8];
      neg_biased_zero_pairs<T>(zv, z2);
      const std::uint32_t nz = bits_of<T>(-magic - z);  // T bits of -(magic + z), exact
      INFO("column " << j << " zero " << z);
      REQUIRE(z2[j] == pair_of<T>(nz, nz));
      REQUIRE(z2[j] == neg_biased_zero2<T>(static_cast<std::uint32_t>(z)));
    }
}

namespace {
/// The fp16 scale bits a test group uses: subnormal, tiny, ordinary, large (overflowing products),
/// negative, and random.
std::vector<std::uint16_t> scale_cases(std::mt19937& rng) {
  std::vector<std::uint16_t> s = {0x0001, 0x0003, 0x02aa, 0x03ff, 0x0400, 0x0401, 0x1234, 0x2e66, 0x3c00, 0x3c01,
                                  0x3c05, 0x3dff, 0x57ff, 0x5bff, 0x7bff, 0x7000, 0x8001, 0xbc01, 0xa3d7, 0x0000};
  for (int i = 0; i < 44; ++i) {
    std::uint16_t v;
    do v = static_cast<std::uint16_t>(rng()); while (!is_finite<half_t>(v));
    s.push_back(v);
  }
  return s;
}

/// Reference of one dequantized element: s * (c - z) rounded once to T. ElementOps<bf16>::scale2 rounds
/// the fp16 scale to bf16 first on the magic path, so there the scale is that bf16 value.
template <int B, class T>
std::uint32_t dequant_ref(std::uint16_t scale_bits, std::uint32_t c, std::uint32_t z) {
  Exact s = exact_of<half_t>(scale_bits);
  if (magic_exact_v<B, T>) s = exact_of<T>(round_to<T>(s));
  const long long d = static_cast<long long>(c) - static_cast<long long>(z);
  return round_to<T>(mul(s, {d < 0, static_cast<u128>(d < 0 ? -d : d), 0}));
}

template <int B, class T>
void check_dequant() {
  std::mt19937 rng(2000 + B + (std::is_same_v<T, half_t> ? 0 : 50));
  constexpr std::uint32_t mask = Bits<B>::mask;
  const auto scales = scale_cases(rng);
  for (std::size_t base = 0; base < scales.size(); base += 8) {
    for (int sym = 0; sym < 2; ++sym) {
      std::uint16_t sb[8];
      std::uint8_t zb[8];
      for (int j = 0; j < 8; ++j) {
        sb[j] = scales[base + j];
        zb[j] = static_cast<std::uint8_t>(j == 0 ? 0 : j == 1 ? mask : rng() & mask);
      }
      // what the kernel's 16- and 8-byte loads deliver (little-endian)
      uint4 sv;
      uint2 zv;
      std::memcpy(&sv, sb, 16);
      std::memcpy(&zv, zb, 8);
      if (sym) zv = make_uint2(0xdeadbeefu, 0xdeadbeefu);  // ignored with sym
      GroupParams<T> p;
      p.template prepare<B>(sv, zv, sym != 0);
      for (int j = 0; j < 8; ++j) {
        const std::uint32_t z = sym ? 1u << (B - 1) : zb[j];
        for (std::uint32_t c = 0; c <= mask; ++c) {
          const std::uint32_t c2 = mask - c;
          INFO("B " << B << " scale " << std::hex << sb[j] << std::dec << " sym " << sym << " z " << z << " c " << c);
          REQUIRE(dequant_pair<B, T>(c | c2 << 16, p, j) ==
                  pair_of<T>(dequant_ref<B, T>(sb[j], c, z), dequant_ref<B, T>(sb[j], c2, z)));
        }
      }
      // a whole B fragment set of a packed tile: every lane, k16-step and n8-tile
      const PackedTile<B> tile(tile_codes<B>(rng, 0));
      for (int l = 0; l < 32; ++l) {
        Words<B> w;
        tile.lane(l, w);
        for (int ks = 0; ks < 4; ++ks)
          for (int j = 0; j < 8; ++j) {
            std::uint32_t b[2];
            dequant_b_fragment<B, T>(b, w, p, ks, j);
            const std::uint32_t z = sym ? 1u << (B - 1) : zb[j];
            for (int h = 0; h < 2; ++h) {
              const std::uint32_t codes = tile.pair(l, 2 * (8 * ks + j) + h);
              REQUIRE(b[h] == pair_of<T>(dequant_ref<B, T>(sb[j], codes & 0xffffu, z),
                                         dequant_ref<B, T>(sb[j], codes >> 16, z)));
            }
          }
      }
    }
  }
}
}  // namespace

TEMPLATE_TEST_CASE("GroupParams + dequant_pair give s * (c - z) rounded once", "[kernels][dequant]", half_t,
                   bfloat16_t) {
  using T = TestType;
  check_dequant<2, T>();
  check_dequant<3, T>();
  check_dequant<4, T>();
  check_dequant<8, T>();
}
