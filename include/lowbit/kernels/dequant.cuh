/// @file dequant.cuh
/// @brief Dequantization primitives: extract code pairs from a lane's TiledLayout words and turn them
///        into fp16/bf16 register pairs with exponent-bias ("magic number") tricks, plus a generic
///        fp32 fallback that is correct for any width and element type.
///
/// Magic-number trick: OR-ing a code `c < 2^p` into the mantissa of the float whose exponent makes the
/// mantissa step exactly 1 gives the value `magic + c`; subtracting `magic + z` (also exact) leaves
/// `c - z` with no integer-to-float conversion instruction. fp16 has p = 10 (magic 1024.0 = 0x6400),
/// bf16 has p = 7 (magic 128.0 = 0x4300), so bf16 with 8-bit codes takes the fp32 fallback.
///
/// Everything here except ElementOps::mma is also callable on the host, where the packed-pair
/// arithmetic and the lop3/prmt tricks are computed in plain C++ with the same bit-exact results
/// (tests/kernels/test_dequant_host.cpp checks them without a GPU). A host C++ compiler can include
/// this header given the CUDA include directory (for cuda_fp16.h's types).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "../bits.hpp"
#include "../numeric.hpp"
#include "layout.hpp"
#include "ptx.cuh"

namespace lowbit::kernels {

namespace detail {
// Host fallbacks of ElementOps' packed-pair arithmetic. Each result is the exact value rounded once to
// T (nearest even), as the device instructions (add/sub/mul/fma .rn) compute it; NaN payloads may differ.
//
// Why exact: fp16 and bf16 values are doubles, and so is the product of two of them (at most 2 x 11
// significant bits, exponents far inside double's range). A sum (a + b, or the exact product plus c) is
// then held exactly as s + e by Knuth's TwoSum (s the rounded double sum, e its error, |e| <= ulp(s)/2).
// round_exact rounds s + e to float *to odd* (if inexact, take the neighbour whose last bit is 1) and
// that float to T to nearest even (numeric.hpp). Float has at least 2 bits more than T at every
// magnitude T reaches (24 vs 11 or 8 significant bits; fp16 subnormals are float normals; bf16's
// subnormal step 2^-133 vs float's 2^-149), so every value of T and every midpoint between two of them
// (the rounding boundaries, including the overflow threshold) is a float with last bit 0. An inexact
// round-to-odd result has last bit 1 and lies strictly between the same two floats as the exact value,
// so it sits on the same side of every T boundary: rounding it to T gives the exact value's rounding
// (the argument of Boldo & Melquiond, "Emulation of FMA and correctly rounded sums", 2008). A plain
// fl32 or fl64 intermediate would round twice and could land on a midpoint.

/// Value of T bits as a double (exact).
template <class T>
inline double elem_to_double(std::uint32_t bits) {
  return static_cast<double>(static_cast<float>(T::from_bits(static_cast<std::uint16_t>(bits))));
}

/// T bits of the exact value s + e (|e| <= ulp(s)/2) rounded once to nearest even.
template <class T>
inline std::uint32_t round_exact(double s, double e) {
  if (std::isnan(s)) return T(static_cast<float>(s)).bits;
  // at or beyond float's largest value T (whose largest is smaller) overflows to infinity
  if (!(std::fabs(s) < 0x1p128)) return T(std::copysign(INFINITY, s)).bits;
  const float f = static_cast<float>(s);
  if (std::isinf(f)) return T(f).bits;
  const double r = s - static_cast<double>(f);  // exact: a multiple of ulp(s) of at most 30 bits
  const double dir = r != 0.0 ? r : e;          // sign of (s + e) - f: |e| < |r| whenever r != 0
  std::uint32_t u = lowbit::detail::bit_cast<std::uint32_t>(f);
  if (dir != 0.0 && (u & 1u) == 0u) u = ((dir > 0.0) == ((u >> 31) == 0u)) ? u + 1u : u - 1u;  // to odd
  return T(lowbit::detail::bit_cast<float>(u)).bits;
}

/// T bits of a + b, rounded once (TwoSum keeps the exact sum as s + e).
template <class T>
inline std::uint32_t round_sum(double a, double b) {
  const double s = a + b, bb = s - a;
  return round_exact<T>(s, (a - (s - bb)) + (b - bb));
}

/// Host model of a packed-pair operation: `op` maps the two (or three) element values, as doubles, of
/// each half to the result's T bits.
template <class T, class Op>
inline std::uint32_t host_pair(Op op, std::uint32_t a, std::uint32_t b, std::uint32_t c = 0) {
  const auto half = [&](int sh) {
    return op(elem_to_double<T>((a >> sh) & 0xffffu), elem_to_double<T>((b >> sh) & 0xffffu),
              elem_to_double<T>((c >> sh) & 0xffffu));
  };
  return half(0) | (half(16) << 16);
}

/// Pair ElementOps functions shared by both types on the host.
template <class T>
struct HostPairOps {
  static std::uint32_t sub2(std::uint32_t a, std::uint32_t b) {
    return host_pair<T>([](double x, double y, double) { return round_sum<T>(x, -y); }, a, b);
  }
  static std::uint32_t add2(std::uint32_t a, std::uint32_t b) {
    return host_pair<T>([](double x, double y, double) { return round_sum<T>(x, y); }, a, b);
  }
  static std::uint32_t fma2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
    return host_pair<T>([](double x, double y, double z) { return round_sum<T>(x * y, z); }, a, b, c);
  }
  static std::uint32_t mul2(std::uint32_t a, std::uint32_t b) {
    return host_pair<T>([](double x, double y, double) { return round_exact<T>(x * y, 0.0); }, a, b);
  }
  static std::uint32_t pack2(float lo, float hi) {
    return static_cast<std::uint32_t>(T(lo).bits) | (static_cast<std::uint32_t>(T(hi).bits) << 16);
  }
};
}  // namespace detail

/// Per-element-type operations on packed pairs (two values in one 32-bit register). Host-callable
/// except mma: the host computes the same bit-exact results in plain C++.
/// @tparam T lowbit::half_t or lowbit::bfloat16_t.
template <class T>
struct ElementOps;

/// fp16 pair operations.
template <>
struct ElementOps<half_t> {
  /// fp16 bits of 1024.0: its mantissa step is 1, so (0x6400 | c) == 1024 + c for c < 1024.
  static constexpr std::uint32_t magic = 0x6400u;
  /// Widest code the magic trick represents exactly (10 mantissa bits).
  static constexpr int magic_max_bits = 10;
  /// fp16 bits of 1.0 (2^-e is `one - (e << magic_max_bits)`).
  static constexpr std::uint32_t one = 0x3C00u;
  /// a - b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t sub2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<half_t>::sub2(a, b);
#endif
  }
  /// a + b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t add2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __half2 r = __hadd2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<half_t>::add2(a, b);
#endif
  }
  /// a * b + c on packed pairs (one rounding).
  LOWBIT_HOST_DEVICE static std::uint32_t fma2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
#ifdef __CUDA_ARCH__
    const __half2 r = __hfma2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b),
                              *reinterpret_cast<const __half2*>(&c));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<half_t>::fma2(a, b, c);
#endif
  }
  /// a * b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t mul2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<half_t>::mul2(a, b);
#endif
  }
  /// Packs two floats (round to nearest even), `lo` in the low half.
  LOWBIT_HOST_DEVICE static std::uint32_t pack2(float lo, float hi) {
#ifdef __CUDA_ARCH__
    const __half2 r = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<half_t>::pack2(lo, hi);
#endif
  }
  /// A pair holding an fp16 scale (given as fp16 bits) twice.
  LOWBIT_HOST_DEVICE static std::uint32_t scale2(std::uint32_t fp16_bits) { return fp16_bits * 0x10001u; }
  /// Float value of one element's bits.
  LOWBIT_HOST_DEVICE static float to_float(std::uint16_t b) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(b));
#else
    return static_cast<float>(half_t::from_bits(b));
#endif
  }
#if defined(__CUDACC__)
  /// The tensor-core step for this type (device only).
  LOWBIT_DEVICE static void mma(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    ptx::mma_m16n8k16_f16(d, a, b);
  }
#endif
};

/// bf16 pair operations.
template <>
struct ElementOps<bfloat16_t> {
  /// bf16 bits of 128.0: its mantissa step is 1, so (0x4300 | c) == 128 + c for c < 128.
  static constexpr std::uint32_t magic = 0x4300u;
  /// Widest code the magic trick represents exactly (7 mantissa bits).
  static constexpr int magic_max_bits = 7;
  /// bf16 bits of 1.0 (2^-e is `one - (e << magic_max_bits)`).
  static constexpr std::uint32_t one = 0x3F80u;
  /// a - b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t sub2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __nv_bfloat162 r =
        __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<bfloat16_t>::sub2(a, b);
#endif
  }
  /// a + b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t add2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __nv_bfloat162 r =
        __hadd2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<bfloat16_t>::add2(a, b);
#endif
  }
  /// a * b + c on packed pairs (one rounding).
  LOWBIT_HOST_DEVICE static std::uint32_t fma2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
#ifdef __CUDA_ARCH__
    const __nv_bfloat162 r =
        __hfma2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b),
                *reinterpret_cast<const __nv_bfloat162*>(&c));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<bfloat16_t>::fma2(a, b, c);
#endif
  }
  /// a * b on packed pairs.
  LOWBIT_HOST_DEVICE static std::uint32_t mul2(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
    const __nv_bfloat162 r =
        __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<bfloat16_t>::mul2(a, b);
#endif
  }
  /// Packs two floats (round to nearest even), `lo` in the low half.
  LOWBIT_HOST_DEVICE static std::uint32_t pack2(float lo, float hi) {
#ifdef __CUDA_ARCH__
    const __nv_bfloat162 r = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&r);
#else
    return detail::HostPairOps<bfloat16_t>::pack2(lo, hi);
#endif
  }
  /// A pair holding an fp16 scale (given as fp16 bits), rounded to bf16, twice.
  LOWBIT_HOST_DEVICE static std::uint32_t scale2(std::uint32_t fp16_bits) {
#ifdef __CUDA_ARCH__
    const float f = __half2float(__ushort_as_half(static_cast<unsigned short>(fp16_bits)));
    return pack2(f, f);
#else
    const float f = half_bits_to_float(static_cast<std::uint16_t>(fp16_bits));
    return pack2(f, f);
#endif
  }
  /// Float value of one element's bits.
  LOWBIT_HOST_DEVICE static float to_float(std::uint16_t b) {
#ifdef __CUDA_ARCH__
    return __bfloat162float(__ushort_as_bfloat16(b));
#else
    return static_cast<float>(bfloat16_t::from_bits(b));
#endif
  }
#if defined(__CUDACC__)
  /// The tensor-core step for this type (device only).
  LOWBIT_DEVICE static void mma(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    ptx::mma_m16n8k16_bf16(d, a, b);
  }
#endif
};

/// Whether the magic-number path is exact for B-bit codes in element type T.
template <int B, class T>
inline constexpr bool magic_exact_v = B <= ElementOps<T>::magic_max_bits;

/// Extracts pair `q` of a lane's TiledLayout words: the first code in bits [0, B) and the second in bits
/// [16, 16 + B) of the result. Correct for any width (handles half-word straddles); when B divides 16 it
/// is one shift and one mask. `q` must be a compile-time constant after unrolling for speed.
/// @tparam B code width in bits.
template <int B>
LOWBIT_HOST_DEVICE std::uint32_t extract_pair(const std::uint32_t (&w)[TiledLayout<B>::words_per_lane], int q) {
  const int bit = q * B, wi = bit / 16, off = bit % 16;
  constexpr std::uint32_t m = Bits<B>::mask * 0x10001u;  // the code mask in both halves
  if (off + B <= 16) return (w[wi] >> off) & m;
  const int lo_bits = 16 - off;  // bits of the code that sit in word wi
  const std::uint32_t mlo = ((1u << lo_bits) - 1u) * 0x10001u;
  return ((w[wi] >> off) & mlo) | ((w[wi + 1] << lo_bits) & (m & ~mlo));
}

// ---------------------------------------------------------------------------------------------
// Centered decoding (c - z) with fused extraction: one lop3 per pair, codes masked where they sit.
// ---------------------------------------------------------------------------------------------
//
// A code at bit offset e of a half-word, masked in place and OR-ed into the magic, reads as
// magic + 2^e * c exactly while e + B fits the mantissa. For e = 0 one packed add of
// -(magic + z) gives c - z; for one more offset E1 the kernel keeps a second zero pair
// -(magic * 2^-E1 + z) and one packed FMA `x * 2^-E1 - (magic * 2^-E1 + z)` gives c - z (every
// intermediate is a small integer: exact). So a pair costs one lop3 and one packed add/FMA, plus a
// shift shared by the codes of a word that sit at the same offset modulo 2*E1 (4 bits, E1 = 4: one
// shift by 8 per word; without E1: one shift per code offset). 8-bit fp16 codes are whole bytes: the
// high bytes are placed under the magic's high byte by one prmt. bf16 with 8-bit codes (no exact
// magic) builds 2^23 + c in fp32 the same way, then one fp32 subtract and a pack finish the pair.
// Half-word straddles (3 bits) take the generic extractor.

/// Exponent offset e (0 or E1) at which pair `q`'s codes are decoded; the word is shifted right by
/// `bit offset - e` first (0: no shift). E1 = 0: every code is shifted down to bit 0.
/// @tparam B code width.  @tparam E1 the second offset (0 or a value with E1 + B <= mantissa bits).
template <int B, int E1>
LOWBIT_HOST_DEVICE constexpr int centered_exponent(int q) {
  if constexpr (E1 == 0) {
    return 0;
  } else {
    const int off = (q * B) % 16;
    return off % (2 * E1) >= E1 ? E1 : 0;
  }
}

/// The second exponent offset a kernel may use for width B and type T: 4 where 4 + B fits the
/// mantissa (fp16 2-4 bits, bf16 2-3 bits), else 0 (8-bit has its own byte path).
template <int B, class T>
inline constexpr int centered_e1_v = (B < 8 && 4 + B <= ElementOps<T>::magic_max_bits) ? 4 : 0;

/// The negated magic-biased zero pair `-(magic + z)` in both halves (what decode_centered_pair adds).
/// @tparam T element type.
template <class T>
LOWBIT_HOST_DEVICE constexpr std::uint32_t neg_biased_zero2(std::uint32_t z) {
  return (0x8000u | ElementOps<T>::magic | z) * 0x10001u;
}

/// The zero pairs `neg_biased_zero2<T>(z_j)` of 8 columns from their 8 zero codes as one 8-byte load
/// delivers them (`z_j` = byte j of `zv`: bytes 0-3 of `zv.x`, then of `zv.y`), by one lop3 and 8 byte
/// permutes instead of per-column shifts and masks: `t = [z_0, hb, 0, hb]` (hb: the high byte of
/// -magic; the zero code fills the low byte since the magic's low byte is 0), then pair j is
/// `[z_j, hb, z_j, hb]`, bytes taken from `zv` and `t`.
/// @tparam T element type (magic path).
template <class T>
LOWBIT_HOST_DEVICE void neg_biased_zero_pairs(const uint2& zv, std::uint32_t (&z2)[8]) {
  static_assert((ElementOps<T>::magic & 0xffu) == 0, "the zero code must fit the magic's low byte");
  const std::uint32_t t = ptx::lop3<ptx::kLutAndOr>(zv.x, 0xffu, neg_biased_zero2<T>(0u) & 0xff00ff00u);
  z2[0] = ptx::prmt<0x5050u>(zv.x, t);
  z2[1] = ptx::prmt<0x5151u>(zv.x, t);
  z2[2] = ptx::prmt<0x5252u>(zv.x, t);
  z2[3] = ptx::prmt<0x5353u>(zv.x, t);
  z2[4] = ptx::prmt<0x5050u>(zv.y, t);
  z2[5] = ptx::prmt<0x5151u>(zv.y, t);
  z2[6] = ptx::prmt<0x5252u>(zv.y, t);
  z2[7] = ptx::prmt<0x5353u>(zv.y, t);
}

/// `magic * (1 - 2^-E1)` in both halves of a packed T pair: the zero pair of the second decode offset is
/// `nz2e = add2(nz2, this)` (= -(magic * 2^-E1 + z), exact: small integers); 0 when E1 = 0.
/// @tparam T element type.  @tparam E1 second exponent offset (centered_e1_v).
template <class T, int E1>
LOWBIT_HOST_DEVICE std::uint32_t centered_e1_bias2() {
  if constexpr (E1 > 0) {
    const float b = ElementOps<T>::to_float(static_cast<std::uint16_t>(ElementOps<T>::magic)) * (1.f - 1.f / (1 << E1));
    return ElementOps<T>::pack2(b, b);
  } else {
    return 0u;
  }
}

/// fp32 bits of 2^23: its mantissa step is 1, so (kFloatMagic | c) == 2^23 + c for any code.
inline constexpr std::uint32_t kFloatMagic = 0x4B000000u;

/// Decodes pair `q` of a lane's TiledLayout words into the packed T pair (c_lo - z, c_hi - z), exact.
/// `nz2` = neg_biased_zero2<T>(z); `nz2e` = nz2 + magic * (1 - 2^-E1) (= -(magic * 2^-E1 + z), used
/// only when E1 > 0); `zf` = 2^23 + z (fp32 path, when T's mantissa cannot hold B bits). `q` must be a
/// constant after unrolling.
/// @tparam B code width.  @tparam T element type.  @tparam E1 second exponent offset (0: none).
template <int B, class T, int E1 = 0>
LOWBIT_HOST_DEVICE std::uint32_t decode_centered_pair(const std::uint32_t (&w)[TiledLayout<B>::words_per_lane], int q,
                                                      std::uint32_t nz2, std::uint32_t nz2e, float zf) {
  using Ops = ElementOps<T>;
  static_assert(E1 == 0 || E1 + B <= Ops::magic_max_bits, "E1 + B must fit the mantissa");
  const int bit = q * B, wi = bit / 16, off = bit % 16;
  if constexpr (!magic_exact_v<B, T>) {
    static_assert(B == 8, "only 8-bit codes exceed a magic mantissa");
    // fp32 2^23 + c: byte 0 by a masked OR; the other bytes by a prmt that takes the exponent byte and
    // zero bytes from that first result (a non-constant operand keeps the selector an immediate)
    const std::uint32_t x0 = ptx::lop3<ptx::kLutAndOr>(w[wi], 0xffu, kFloatMagic);
    const std::uint32_t lo = off != 0 ? ptx::prmt<0x7551u>(w[wi], x0) : x0;
    const std::uint32_t hi = off != 0 ? ptx::prmt<0x7553u>(w[wi], x0) : ptx::prmt<0x7552u>(w[wi], x0);
#ifdef __CUDA_ARCH__
    return Ops::pack2(__uint_as_float(lo) - zf, __uint_as_float(hi) - zf);
#else
    return Ops::pack2(lowbit::detail::bit_cast<float>(lo) - zf, lowbit::detail::bit_cast<float>(hi) - zf);
#endif
  } else if constexpr (B == 8) {
    // fp16 1024 + c: the low bytes by a masked OR with the magic; the high bytes by a prmt that takes
    // the magic's high byte from that first result
    const std::uint32_t x0 = ptx::lop3<ptx::kLutAndOr>(w[wi], 0x00ff00ffu, Ops::magic * 0x10001u);
    const std::uint32_t x = off != 0 ? ptx::prmt<0x7351u>(w[wi], x0) : x0;
    return Ops::add2(x, nz2);
  } else {
    constexpr std::uint32_t magic2 = Ops::magic * 0x10001u;
    if (off + B > 16) return Ops::add2(extract_pair<B>(w, q) | magic2, nz2);  // straddle
    const int e = centered_exponent<B, E1>(q), s = off - e;
    const std::uint32_t src = s ? w[wi] >> s : w[wi];
    const std::uint32_t x = ptx::lop3<ptx::kLutAndOr>(src, (Bits<B>::mask << e) * 0x10001u, magic2);
    if (e == 0) return Ops::add2(x, nz2);
    return Ops::fma2(x, (Ops::one - (static_cast<std::uint32_t>(E1) << Ops::magic_max_bits)) * 0x10001u, nz2e);
  }
}

/// Per-lane quantization parameters of one group for the 8 n8-tiles of a 64-column slab:
/// `s2[j]` the scale pair, `z2[j]` the biased zero pair (magic + zero) for column 8j + lane/4.
/// @tparam T element type.
template <class T>
struct GroupParams {
  std::uint32_t s2[8];  ///< scale, twice, as a packed T pair
  std::uint32_t z2[8];  ///< magic + zero, twice, as packed T bits (magic path only)
  float sf[8];          ///< scale as float (fp32 fallback path only)
  float zf[8];          ///< zero as float (fp32 fallback path only)

  /// Builds the parameters from the raw loads: `scales` = 8 fp16 values (one 16-byte load at
  /// `scales + g*N + slab*64 + 8*(lane/4)`), `zeros` = 8 zero codes (8-byte load, same position).
  /// With `sym`, every zero is 2^(B-1) and `zeros` is ignored.
  /// @tparam B code width.
  template <int B>
  LOWBIT_HOST_DEVICE void prepare(const uint4& scales, const uint2& zeros, bool sym) {
    const std::uint32_t sw[4] = {scales.x, scales.y, scales.z, scales.w};
    const std::uint32_t zw[2] = {zeros.x, zeros.y};
    constexpr std::uint32_t sym_zero = 1u << (B - 1);
#ifdef __CUDA_ARCH__  // (host compilers warn about the nvcc pragma)
#pragma unroll
#endif
    for (int j = 0; j < 8; ++j) {
      const std::uint32_t sb = (sw[j / 2] >> (16 * (j % 2))) & 0xffffu;
      const std::uint32_t z = sym ? sym_zero : (zw[j / 4] >> (8 * (j % 4))) & 0xffu;
      if constexpr (magic_exact_v<B, T>) {
        s2[j] = ElementOps<T>::scale2(sb);
        z2[j] = (ElementOps<T>::magic | z) * 0x10001u;
      } else {
#ifdef __CUDA_ARCH__
        sf[j] = __half2float(__ushort_as_half(static_cast<unsigned short>(sb)));
#else
        sf[j] = half_bits_to_float(static_cast<std::uint16_t>(sb));
#endif
        zf[j] = static_cast<float>(z);
      }
    }
  }
};

/// Dequantizes a code pair (from extract_pair) of n8-tile `j` into a packed T pair `s * (c - z)`.
/// Magic path: (magic | c) - (magic + z) is exact, one rounding in the scale multiply — bit-identical
/// to rounding `s*(c-z)` to T once, where s is the scale pair of GroupParams (for bf16 that is the fp16
/// scale already rounded to bf16 by ElementOps::scale2). Fallback: fp32 arithmetic with the fp16 scale
/// (exact), then one rounding.
/// @tparam B code width.  @tparam T element type.
template <int B, class T>
LOWBIT_HOST_DEVICE std::uint32_t dequant_pair(std::uint32_t codes, const GroupParams<T>& p, int j) {
  if constexpr (magic_exact_v<B, T>) {
    const std::uint32_t biased = codes | (ElementOps<T>::magic * 0x10001u);
    return ElementOps<T>::mul2(ElementOps<T>::sub2(biased, p.z2[j]), p.s2[j]);
  } else {
    const float lo = (static_cast<float>(codes & 0xffffu) - p.zf[j]) * p.sf[j];
    const float hi = (static_cast<float>(codes >> 16) - p.zf[j]) * p.sf[j];
    return ElementOps<T>::pack2(lo, hi);
  }
}

/// Dequantizes the mma B fragment (2 registers) of k16-step `ks`, n8-tile `j` from a lane's words.
/// @tparam B code width.  @tparam T element type.
template <int B, class T>
LOWBIT_HOST_DEVICE void dequant_b_fragment(std::uint32_t (&b)[2],
                                           const std::uint32_t (&w)[TiledLayout<B>::words_per_lane],
                                           const GroupParams<T>& p, int ks, int j) {
  const int q = 2 * (TileGeometry::n_tiles * ks + j);
  b[0] = dequant_pair<B, T>(extract_pair<B>(w, q), p, j);
  b[1] = dequant_pair<B, T>(extract_pair<B>(w, q + 1), p, j);
}

}  // namespace lowbit::kernels
